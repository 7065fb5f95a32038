/**
 * Translation between etcd's KV messages (the generated protobuf-es types) and the kv layer's
 * commands and results, with etcd's request checks done before anything is proposed (the
 * ones etcd's gRPC layer does: empty keys, ignore_value / ignore_lease conflicts, txn size,
 * empty txn ops, sort options) so a bad request fails with etcd's error and changes nothing.
 *
 * Numbers: etcd's int64 limits and revisions arrive as bigint. A limit of 0 or below means
 * none; a revision of 0 or below means the current one; revision filters of 0 or below filter
 * nothing. Values beyond what the kv layer holds are clamped (a limit) or refused.
 */
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import {
  CompareResult,
  CompareTarget,
  SortOrder,
  SortTarget,
  deleteRangeRequest,
  putRequest,
  rangeRequest,
  txnRequest,
  type Compare as KvCompare,
  type DeleteRangeRequest as KvDeleteRangeRequest,
  type PutRequest as KvPutRequest,
  type RangeRequest as KvRangeRequest,
  type TxnOp,
  type TxnRequest as KvTxnRequest,
} from "../../kv/commands.js";
import { KvError } from "../../kv/errors.js";
import type {
  CommandResult,
  DeleteRangeResponse as KvDeleteRangeResponse,
  KeyValue as KvKeyValue,
  OpResponse,
  PutResponse as KvPutResponse,
  RangeResponse as KvRangeResponse,
  TxnResponse as KvTxnResponse,
} from "../../kv/results.js";
import { ETCD_ERRORS, EtcdRpcError } from "./context.js";
import { KeyValueSchema, type KeyValue } from "./gen/kv_pb.js";
import {
  DeleteRangeResponseSchema,
  PutResponseSchema,
  RangeResponseSchema,
  ResponseOpSchema,
  TxnResponseSchema,
  type Compare,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from "./gen/rpc_pb.js";

/** etcd's default --max-txn-ops: no list of a transaction may be longer. */
export const MAX_TXN_OPS = 128;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function invalid(message: string): EtcdRpcError {
  return new EtcdRpcError({ code: GrpcStatus.INVALID_ARGUMENT, message });
}

/** A revision argument: 0 or below means none / current. */
function revisionArgument(revision: bigint): bigint {
  return revision > 0n ? revision : 0n;
}

function isEnumValue(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}

export function toKeyValue(kv: KvKeyValue): KeyValue {
  return create(KeyValueSchema, {
    key: kv.key,
    value: kv.value,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  });
}

export function fromRangeRequest(request: RangeRequest): KvRangeRequest {
  if (request.key.length === 0) throw new EtcdRpcError(ETCD_ERRORS.emptyKey);
  if (
    !isEnumValue(request.sortOrder, SortOrder.Descend) ||
    !isEnumValue(request.sortTarget, SortTarget.Value)
  ) {
    throw invalid("etcdserver: invalid sort option");
  }
  return rangeRequest({
    key: request.key,
    rangeEnd: request.rangeEnd,
    limit: request.limit <= 0n ? 0 : Number(request.limit > MAX_SAFE ? MAX_SAFE : request.limit),
    revision: revisionArgument(request.revision),
    sortOrder: request.sortOrder as number,
    sortTarget: request.sortTarget as number,
    keysOnly: request.keysOnly,
    countOnly: request.countOnly,
    minModRevision: revisionArgument(request.minModRevision),
    maxModRevision: revisionArgument(request.maxModRevision),
    minCreateRevision: revisionArgument(request.minCreateRevision),
    maxCreateRevision: revisionArgument(request.maxCreateRevision),
  });
}

export function fromPutRequest(request: PutRequest): KvPutRequest {
  if (request.key.length === 0) throw new EtcdRpcError(ETCD_ERRORS.emptyKey);
  if (request.ignoreValue && request.value.length !== 0) throw new EtcdRpcError(ETCD_ERRORS.valueProvided);
  if (request.ignoreLease && request.lease !== 0n) throw new EtcdRpcError(ETCD_ERRORS.leaseProvided);
  return putRequest({
    key: request.key,
    value: request.value,
    lease: request.lease,
    prevKv: request.prevKv,
    ignoreValue: request.ignoreValue,
    ignoreLease: request.ignoreLease,
  });
}

export function fromDeleteRangeRequest(request: DeleteRangeRequest): KvDeleteRangeRequest {
  if (request.key.length === 0) throw new EtcdRpcError(ETCD_ERRORS.emptyKey);
  return deleteRangeRequest({ key: request.key, rangeEnd: request.rangeEnd, prevKv: request.prevKv });
}

/**
 * A compare reads the operand its target names; an operand of another kind counts as the
 * zero value, as in etcd.
 */
function fromCompare(compare: Compare): KvCompare {
  if (compare.key.length === 0) throw new EtcdRpcError(ETCD_ERRORS.emptyKey);
  if (!isEnumValue(compare.result, CompareResult.NotEqual))
    throw invalid(`etcdserver: invalid compare result ${compare.result}`);
  const result = compare.result as number as CompareResult;
  const { key, rangeEnd, targetUnion } = compare;
  const target = compare.target as number as CompareTarget;
  switch (target) {
    case CompareTarget.Value:
      return {
        target,
        result,
        key,
        rangeEnd,
        value: targetUnion.case === "value" ? targetUnion.value : new Uint8Array(0),
      };
    case CompareTarget.Version:
      return {
        target,
        result,
        key,
        rangeEnd,
        operand: targetUnion.case === "version" ? targetUnion.value : 0n,
      };
    case CompareTarget.Create:
      return {
        target,
        result,
        key,
        rangeEnd,
        operand: targetUnion.case === "createRevision" ? targetUnion.value : 0n,
      };
    case CompareTarget.Mod:
      return {
        target,
        result,
        key,
        rangeEnd,
        operand: targetUnion.case === "modRevision" ? targetUnion.value : 0n,
      };
    case CompareTarget.Lease:
      return {
        target,
        result,
        key,
        rangeEnd,
        operand: targetUnion.case === "lease" ? targetUnion.value : 0n,
      };
    default:
      throw invalid(`etcdserver: invalid compare target ${String(compare.target)}`);
  }
}

function fromRequestOp(op: RequestOp, maxOps: number): TxnOp {
  switch (op.request.case) {
    case "requestRange":
      return fromRangeRequest(op.request.value);
    case "requestPut":
      return fromPutRequest(op.request.value);
    case "requestDeleteRange":
      return fromDeleteRangeRequest(op.request.value);
    case "requestTxn":
      return fromTxnRequestWithin(op.request.value, maxOps);
    case undefined:
      // etcd's answer to an op with no request in it.
      throw new EtcdRpcError(ETCD_ERRORS.keyNotFound);
  }
}

function fromTxnRequestWithin(request: TxnRequest, maxOps: number): KvTxnRequest {
  const longest = Math.max(request.compare.length, request.success.length, request.failure.length);
  if (longest > maxOps) throw new EtcdRpcError(ETCD_ERRORS.tooManyOps);
  const compares = request.compare.map(fromCompare);
  const success = request.success.map((op) => fromRequestOp(op, maxOps - longest));
  const failure = request.failure.map((op) => fromRequestOp(op, maxOps - longest));
  return txnRequest({ compares, success, failure });
}

/** etcd's Txn checks (at most MAX_TXN_OPS per list, nested lists sharing the budget), then the command. */
export function fromTxnRequest(request: TxnRequest): KvTxnRequest {
  return fromTxnRequestWithin(request, MAX_TXN_OPS);
}

/** The response of a write command, or its error thrown as KvError. */
export function commandResponse<K extends CommandResult["response"]["kind"]>(
  result: CommandResult,
  kind: K,
): Extract<CommandResult["response"], { kind: K }> {
  const response = result.response;
  if (response.kind === "error") throw new KvError(response.code);
  if (response.kind !== kind)
    throw new Error(`the store answered a ${kind} with a ${response.kind} response`);
  return response as Extract<CommandResult["response"], { kind: K }>;
}

export function toRangeResponse(header: ResponseHeader, response: KvRangeResponse): RangeResponse {
  return create(RangeResponseSchema, {
    header,
    kvs: response.kvs.map(toKeyValue),
    more: response.more,
    count: BigInt(response.count),
  });
}

export function toPutResponse(header: ResponseHeader, response: KvPutResponse): PutResponse {
  return create(PutResponseSchema, {
    header,
    ...(response.prevKv === null ? {} : { prevKv: toKeyValue(response.prevKv) }),
  });
}

export function toDeleteRangeResponse(
  header: ResponseHeader,
  response: KvDeleteRangeResponse,
): DeleteRangeResponse {
  return create(DeleteRangeResponseSchema, {
    header,
    deleted: BigInt(response.deleted),
    prevKvs: response.prevKvs.map(toKeyValue),
  });
}

function toResponseOp(header: ResponseHeader, response: OpResponse): ResponseOp {
  switch (response.kind) {
    case "range":
      return create(ResponseOpSchema, {
        response: { case: "responseRange", value: toRangeResponse(header, response) },
      });
    case "put":
      return create(ResponseOpSchema, {
        response: { case: "responsePut", value: toPutResponse(header, response) },
      });
    case "deleteRange":
      return create(ResponseOpSchema, {
        response: { case: "responseDeleteRange", value: toDeleteRangeResponse(header, response) },
      });
    case "txn":
      return create(ResponseOpSchema, {
        response: { case: "responseTxn", value: toTxnResponse(header, response) },
      });
  }
}

/** Every nested response carries the transaction's header (one revision for the whole txn). */
export function toTxnResponse(header: ResponseHeader, response: KvTxnResponse): TxnResponse {
  return create(TxnResponseSchema, {
    header,
    succeeded: response.succeeded,
    responses: response.responses.map((op) => toResponseOp(header, op)),
  });
}
