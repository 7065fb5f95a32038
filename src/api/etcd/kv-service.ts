/**
 * etcd's KV service on a Concord member: Range (linearizable through ReadIndex on any member,
 * or serializable from this member's applied state), Put, DeleteRange, Txn and Compact
 * (proposed to the range's Raft group; a follower forwards them to the leader). A request
 * etcd would refuse is refused here before anything is proposed. Compact answers once this
 * member has applied the compaction; with `physical`, once this member has also removed the
 * versions it compacted away (which, as in etcd, happens afterwards, in the background).
 */
import type { ServiceHandlers } from "./grpc-server.js";
import { compactRequest } from "../../kv/commands.js";
import { unary, type EtcdContext } from "./context.js";
import {
  commandResponse,
  fromDeleteRangeRequest,
  fromPutRequest,
  fromRangeRequest,
  fromTxnRequest,
  toDeleteRangeResponse,
  toPutResponse,
  toRangeResponse,
  toTxnResponse,
} from "./convert.js";
import { create } from "@bufbuild/protobuf";
import {
  CompactionResponseSchema,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type TxnRequest,
  type TxnResponse,
} from "./gen/rpc_pb.js";

export function kvService(ctx: EtcdContext): ServiceHandlers {
  return {
    Range: unary(async (request: RangeRequest): Promise<RangeResponse> => {
      const range = fromRangeRequest(request);
      const result = await ctx.kv().range(range, request.serializable ? "serializable" : "linearizable");
      return toRangeResponse(ctx.header(result.revision), result);
    }),

    Put: unary(async (request: PutRequest): Promise<PutResponse> => {
      const result = await ctx.kv().propose(fromPutRequest(request));
      return toPutResponse(ctx.header(result.revision), commandResponse(result, "put"));
    }),

    DeleteRange: unary(async (request: DeleteRangeRequest): Promise<DeleteRangeResponse> => {
      const result = await ctx.kv().propose(fromDeleteRangeRequest(request));
      return toDeleteRangeResponse(ctx.header(result.revision), commandResponse(result, "deleteRange"));
    }),

    Txn: unary(async (request: TxnRequest): Promise<TxnResponse> => {
      const result = await ctx.kv().propose(fromTxnRequest(request));
      return toTxnResponse(ctx.header(result.revision), commandResponse(result, "txn"));
    }),

    Compact: unary(async (request: CompactionRequest): Promise<CompactionResponse> => {
      const result = await ctx.kv().propose(compactRequest(request.revision > 0n ? request.revision : 0n));
      commandResponse(result, "compact");
      if (request.physical) await ctx.kv().compactedPhysically();
      return create(CompactionResponseSchema, { header: ctx.header(result.revision) });
    }),
  };
}
