/**
 * Concord's ranges admin service (`concordpb.Ranges`, proto/concord/ranges.proto) on the client
 * port: List describes every range of the keyspace, Split splits the range holding a key at
 * that key, Merge merges a range into its left neighbour. It owns the `RangeAdmin` contract (what a member must provide to serve it; the
 * placement coordinator implements it), the two error classes an admin refuses a split with,
 * and how every failure maps onto a gRPC status:
 *
 * - `InvalidSplitKeyError`, and the coordinators' `SplitRefusedError` / `MergeRefusedError`
 *   unless retryable (the key is already a boundary, lies in the system span; the range is
 *   the first one or unknown, ...): INVALID_ARGUMENT with the error's message; nothing changed.
 * - `RangeBusyError`, and any other error marked `retryable` (a refusal because the route is
 *   not active, catalog version races, routes not loaded or moved): UNAVAILABLE with its
 *   message; the caller may retry.
 * - Concord's KV and node errors as the etcd services answer them (toServiceError):
 *   KeyOutsideRange / RangeFenced and "no leader" are UNAVAILABLE too; anything else INTERNAL.
 *
 * The service checks the request itself first (a split key must be given, a route id must be
 * one), so a malformed request never reaches the admin.
 */
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { ServiceHandlers } from "./grpc-server.js";
import { KvError } from "../../kv/errors.js";
import { ReplicaRequestError } from "../../node/errors.js";
import type { RangeListing } from "../../placement/node-ranges.js";
import { MergeRefusedError, SplitRefusedError } from "../../placement/split/errors.js";
import { EtcdRpcError, unary, type EtcdContext } from "./context.js";
import {
  ListRangesResponseSchema,
  MergeRangeResponseSchema,
  RangeInfoSchema,
  SplitRangeResponseSchema,
  type ListRangesRequest,
  type ListRangesResponse,
  type MergeRangeRequest,
  type MergeRangeResponse,
  type RangeInfo as RangeInfoMessage,
  type SplitRangeRequest,
  type SplitRangeResponse,
} from "./gen/concord/ranges_pb.js";

/** One range as the service lists it: NodeRanges' listing (route, group, span, state, replicas, leader, size, load). */
export type RangeInfo = RangeListing;

/** What a member provides to serve the Ranges service (the placement coordinator). */
export interface RangeAdmin {
  /** Every range, in key order. */
  list(): Promise<RangeInfo[]>;
  /**
   * Splits the range holding `key` at `key`. Throws InvalidSplitKeyError when `key` is not
   * strictly inside a range or lies in the system span, RangeBusyError (or KvError RangeFenced)
   * while the range is fenced or busy.
   */
  split(key: Uint8Array): Promise<{ left: RangeInfo; right: RangeInfo }>;
  /**
   * Merges route `routeId` into its left neighbour; resolves with the neighbour grown. Throws
   * MergeRefusedError (retryable or not, see its reasons) when it cannot.
   */
  merge(routeId: number): Promise<{ merged: RangeInfo }>;
}

/** The admin refuses the split key; nothing changed. Answered with INVALID_ARGUMENT. */
export class InvalidSplitKeyError extends Error {
  override readonly name = "InvalidSplitKeyError";
  readonly retryable = false;
}

/** The range cannot be split right now (fenced, another split or merge in progress). UNAVAILABLE. */
export class RangeBusyError extends Error {
  override readonly name = "RangeBusyError";
  readonly retryable = true;
}

export const SPLIT_KEY_MISSING = {
  code: GrpcStatus.INVALID_ARGUMENT,
  message: "concord: split key is not provided",
} as const;

export const ROUTE_ID_MISSING = {
  code: GrpcStatus.INVALID_ARGUMENT,
  message: "concord: range id is not provided",
} as const;

/** An admin failure as the gRPC error the caller gets (see the module comment). */
function rangeAdminError(error: unknown): unknown {
  const refused =
    error instanceof InvalidSplitKeyError ||
    ((error instanceof SplitRefusedError || error instanceof MergeRefusedError) && !error.retryable);
  if (refused) return new EtcdRpcError({ code: GrpcStatus.INVALID_ARGUMENT, message: error.message });
  // The node's own errors keep the etcd wording the other services answer with.
  if (error instanceof ReplicaRequestError || error instanceof KvError) return error;
  if (error instanceof Error && (error as { retryable?: unknown }).retryable === true)
    return new EtcdRpcError({ code: GrpcStatus.UNAVAILABLE, message: error.message });
  return error;
}

async function adminCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw rangeAdminError(error);
  }
}

function nonNegativeInteger(value: number, what: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`range admin gave a bad ${what}: ${value}`);
  return BigInt(value);
}

/** A RangeInfo as its wire message (end null → empty bytes, which mean +infinity). */
export function rangeInfoMessage(info: RangeInfo): RangeInfoMessage {
  return create(RangeInfoSchema, {
    routeId: nonNegativeInteger(info.routeId, "route id"),
    groupId: nonNegativeInteger(info.groupId, "group id"),
    start: info.start,
    end: info.end ?? new Uint8Array(0),
    state: info.state,
    replicas: info.replicas.map((id) => nonNegativeInteger(id, "replica id")),
    leader: nonNegativeInteger(info.leader, "leader id"),
    sizeBytes: nonNegativeInteger(Math.round(info.sizeBytes), "size"),
    opsPerSecond: info.opsPerSecond,
    catalogVersion: nonNegativeInteger(info.catalogVersion, "catalog version"),
  });
}

export function rangeService(ctx: EtcdContext, admin: RangeAdmin): ServiceHandlers {
  return {
    List: unary(async (_request: ListRangesRequest): Promise<ListRangesResponse> => {
      const ranges = await adminCall(() => admin.list());
      return create(ListRangesResponseSchema, {
        header: ctx.header(),
        ranges: ranges.map(rangeInfoMessage),
      });
    }),

    Split: unary(async (request: SplitRangeRequest): Promise<SplitRangeResponse> => {
      if (request.key.length === 0) throw new EtcdRpcError(SPLIT_KEY_MISSING);
      // A plain copy: the decoded field is a view into the request's buffer.
      const key = Uint8Array.from(request.key);
      const { left, right } = await adminCall(() => admin.split(key));
      return create(SplitRangeResponseSchema, {
        header: ctx.header(),
        left: rangeInfoMessage(left),
        right: rangeInfoMessage(right),
      });
    }),

    Merge: unary(async (request: MergeRangeRequest): Promise<MergeRangeResponse> => {
      // Route ids are in 1..2^53-1 (catalog/descriptor.ts); anything else names no route.
      if (request.routeId === 0n) throw new EtcdRpcError(ROUTE_ID_MISSING);
      if (request.routeId > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new EtcdRpcError({
          code: GrpcStatus.INVALID_ARGUMENT,
          message: `concord: range id ${request.routeId} is not a range id`,
        });
      }
      const { merged } = await adminCall(() => admin.merge(Number(request.routeId)));
      return create(MergeRangeResponseSchema, { header: ctx.header(), merged: rangeInfoMessage(merged) });
    }),
  };
}
