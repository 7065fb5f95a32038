/**
 * etcd's v3lockpb.Lock service on a Concord member, served by the fenced lock recipe
 * (src/recipes/lock: an election whose candidates all have priority 0, so waiters are served
 * first come, first served) through the server-side client (recipe-client.ts):
 *
 * - The lock `name` (UTF-8) is the recipe's subspace; the caller's lease is the session (the
 *   caller keeps it alive; lease 0: the server grants one of 60 s that nobody renews, as etcd).
 * - Lock blocks until the caller holds the lock and answers with its key
 *   `name/candidates/<lease hex>`, which exists while the lock is held. Locking again with the
 *   same lease is the same acquisition (etcd's behaviour). The fencing token is the lock's term,
 *   stored at `name/term` (the leader record `name/leader` names the holder and its term); a
 *   write guarded by `guard(name, term)` fails once a later holder has the lock.
 * - Unlock takes that key alone (any member can serve it): if its lease holds the lock, the
 *   lock is released (leader and waiter records deleted in one transaction, the term kept);
 *   otherwise the waiter's record is withdrawn. A key that is not a lock key is refused.
 *
 * A waiter whose lease goes before it gets the lock fails with etcd's "mutex: session is
 * expired"; a cancelled Lock call gives its place up. A lock name must not be shared with
 * KV-based lock clients (etcdctl `lock`): their keys are not the recipe's.
 */
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { ServiceHandlers } from "./grpc-server.js";
import { deleteRangeRequest } from "../../kv/commands.js";
import { acquireLock } from "../../recipes/index.js";
import { decodeLeaderRecord } from "../../recipes/election/records.js";
import { ElectionKeys, leaseIs } from "../../recipes/election/state.js";
import { ETCD_ERRORS, EtcdRpcError, type EtcdContext } from "./context.js";
import {
  callSignal,
  callerSession,
  endCallSession,
  recipeUnary,
  resignTerm,
  subspaceOf,
} from "./election-service.js";
import {
  LockResponseSchema,
  UnlockResponseSchema,
  type LockRequest,
  type LockResponse,
  type UnlockRequest,
  type UnlockResponse,
} from "./gen/v3lock_pb.js";
import { LeaderKeySchema } from "./gen/v3election_pb.js";
import { ReplicaRecipeClient } from "./recipe-client.js";

/** etcd's mutex error for a waiter whose session went before it got the lock (UNKNOWN: a plain Go error). */
export const LOCK_SESSION_EXPIRED = {
  code: GrpcStatus.UNKNOWN,
  message: "mutex: session is expired",
} as const;

const NOT_A_LOCK_KEY = {
  code: GrpcStatus.INVALID_ARGUMENT,
  message: "concord: not a lock key (expected <name>/candidates/<lease id in hex>)",
} as const;
const CANDIDATES = "/candidates/";
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The lock name and lease of a key Lock returned; NOT_A_LOCK_KEY for anything else. */
function parseLockKey(key: Uint8Array): { name: Uint8Array; lease: bigint } {
  let text: string;
  try {
    text = decoder.decode(key);
  } catch {
    throw new EtcdRpcError(NOT_A_LOCK_KEY);
  }
  const at = text.lastIndexOf(CANDIDATES);
  const hex = at < 0 ? "" : text.slice(at + CANDIDATES.length);
  if (at <= 0 || !/^[0-9a-f]{1,16}$/.test(hex)) throw new EtcdRpcError(NOT_A_LOCK_KEY);
  return { name: new TextEncoder().encode(text.slice(0, at)), lease: BigInt(`0x${hex}`) };
}

export function lockService(ctx: EtcdContext): ServiceHandlers {
  const client = new ReplicaRecipeClient(ctx);
  return {
    Lock: recipeUnary(LOCK_SESSION_EXPIRED, async (request: LockRequest, call): Promise<LockResponse> => {
      const subspace = subspaceOf(request.name);
      const { signal, dispose } = callSignal(call);
      try {
        const session = await callerSession(client, request.lease);
        const held = await acquireLock(client, subspace, { session, signal });
        endCallSession(session);
        return create(LockResponseSchema, { header: ctx.header(), key: held.key });
      } finally {
        dispose();
      }
    }),

    Unlock: recipeUnary(LOCK_SESSION_EXPIRED, async (request: UnlockRequest): Promise<UnlockResponse> => {
      if (request.key.length === 0)
        throw new EtcdRpcError({ code: GrpcStatus.UNKNOWN, message: ETCD_ERRORS.emptyKey.message });
      const { name, lease } = parseLockKey(request.key);
      const keys = new ElectionKeys(subspaceOf(name));
      const kv = await client.get(keys.leader);
      const record = kv === null ? null : decodeLeaderRecord(kv.value, `${keys.subspace}/leader`);
      if (record !== null && record.lease === lease) {
        const leader = create(LeaderKeySchema, { name, key: request.key, rev: record.term, lease });
        const revision = await resignTerm(client, keys, leader);
        return create(UnlockResponseSchema, { header: ctx.header(revision) });
      }
      const result = await client.txn({
        compares: [leaseIs(request.key, lease)],
        success: [deleteRangeRequest({ key: request.key })],
      });
      return create(UnlockResponseSchema, { header: ctx.header(result.revision) });
    }),
  };
}
