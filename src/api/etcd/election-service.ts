/**
 * etcd's v3electionpb.Election service on a Concord member, served by the fenced election
 * recipe (src/recipes/election) through a server-side client (recipe-client.ts):
 *
 * - The election `name` (UTF-8) is the recipe's subspace: its keys are `name/config`,
 *   `name/leader`, `name/term` and `name/candidates/<id>`.
 * - The caller's lease is the candidate's session (the caller grants it and keeps it alive;
 *   with lease 0 the server grants one of etcd's default session TTL, 60 s, that nobody
 *   renews, as etcd does). The candidate id is the lease id in hex, so campaigning again with
 *   the same lease is the same candidacy (etcd's behaviour), and leadership ends with the lease.
 * - `LeaderKey.key` is the holder's candidate key `name/candidates/<lease hex>`;
 *   `LeaderKey.rev` is the recipe's **term**, the fencing token: it grows with every change of
 *   holder and survives resignation, expiry and restart. A write made only while the term holds
 *   carries `guard(name, rev)` (src/recipes/fencing.ts: `name/term` equals the term, and
 *   `name/leader` exists). etcd's rev is the leader key's create revision; clients that only
 *   hand LeaderKey back to Proclaim and Resign see no difference.
 * - Leader and Observe answer with a key-value made from the leader record: the holder's
 *   candidate key, its proclaimed value, `create_revision` = the term (as etcd's equals rev),
 *   `mod_revision` = the revision of the record's last change, `lease` = the holder's lease
 *   (Observe reports version and lease as 0: the recipe's leader changes do not carry them).
 * - Proclaim and Resign act on the LeaderKey alone, as etcd's (any member can serve them): a
 *   transaction guarded by the term and the holder's lease.
 *
 * Where etcd reports a candidate elected although its lease expired while it waited, the
 * recipe does not: Campaign fails with "election: session is expired". An election name must
 * not be shared with KV-based election clients (etcdctl `elect`): their keys `name/<lease>`
 * are not the recipe's.
 */
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { once } from "node:events";
import { deleteRangeRequest, putRequest, txnRequest } from "../../kv/commands.js";
import { KvError } from "../../kv/errors.js";
import { KeyValueSchema, type KeyValue } from "./gen/kv_pb.js";
import {
  CampaignAbortedError,
  Election,
  NotLeaderError,
  RecipeConfigError,
  Session,
  guard,
  type LeaderRecord,
} from "../../recipes/index.js";
import { observeLeader } from "../../recipes/election/observe.js";
import { checkSubspace, decodeLeaderRecord, encodeLeaderRecord } from "../../recipes/election/records.js";
import { ElectionKeys, leaseIs } from "../../recipes/election/state.js";
import {
  ETCD_ERRORS,
  EtcdRpcError,
  kvErrorSpec,
  serverStream,
  unary,
  type EtcdContext,
  type EtcdErrorSpec,
} from "./context.js";
import {
  CampaignResponseSchema,
  LeaderKeySchema,
  LeaderResponseSchema,
  ProclaimResponseSchema,
  ResignResponseSchema,
  type CampaignRequest,
  type CampaignResponse,
  type LeaderKey,
  type LeaderRequest,
  type LeaderResponse,
  type ProclaimRequest,
  type ProclaimResponse,
  type ResignRequest,
  type ResignResponse,
} from "./gen/v3election_pb.js";
import type { GrpcCall, ServiceHandlers, UnaryHandler } from "./grpc-server.js";
import { ReplicaRecipeClient } from "./recipe-client.js";

/** etcd's election errors: plain Go errors, so gRPC's UNKNOWN code with their text. */
export const ELECTION_ERRORS = {
  notLeader: { code: GrpcStatus.UNKNOWN, message: "election: not leader" },
  noLeader: { code: GrpcStatus.UNKNOWN, message: "election: no leader" },
  missingLeaderKey: { code: GrpcStatus.UNKNOWN, message: '"leader" field must be provided' },
  /** Concord's: the candidate's lease (or registration) went before it was elected. */
  sessionExpired: { code: GrpcStatus.UNKNOWN, message: "election: session is expired" },
  leaseNotFound: { code: GrpcStatus.UNKNOWN, message: ETCD_ERRORS.leaseNotFound.message },
} as const;

/** The lease of a session the caller did not bring: etcd's default session TTL. */
export const DEFAULT_SESSION_TTL_SECONDS = 60;

const CANCELLED: EtcdErrorSpec = { code: GrpcStatus.CANCELLED, message: "context canceled" };
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The recipe subspace of an election or lock name; INVALID_ARGUMENT for a name it cannot be. */
export function subspaceOf(name: Uint8Array): string {
  try {
    return checkSubspace(decoder.decode(name));
  } catch {
    throw new EtcdRpcError({
      code: GrpcStatus.INVALID_ARGUMENT,
      message: 'concord: an election or lock name must be non-empty UTF-8 not ending in "/"',
    });
  }
}

/** An AbortSignal that fires when the client cancels the call (or its deadline passes). */
export function callSignal(call: GrpcCall): {
  readonly signal: AbortSignal;
  readonly dispose: () => void;
} {
  const controller = new AbortController();
  const cancel = () => controller.abort(new EtcdRpcError(CANCELLED));
  if (call.cancelled) cancel();
  else call.on("cancelled", cancel);
  return { signal: controller.signal, dispose: () => call.off("cancelled", cancel) };
}

/**
 * The caller's lease as a session the recipes register under and never renew (lease 0: a
 * fresh one of DEFAULT_SESSION_TTL_SECONDS). etcd's "requested lease not found" when it is gone.
 */
export async function callerSession(client: ReplicaRecipeClient, lease: bigint): Promise<Session> {
  const id = lease === 0n ? (await client.leaseGrant(DEFAULT_SESSION_TTL_SECONDS)).id : lease;
  const ttlSeconds = await client.leaseTtl(id);
  if (ttlSeconds === null) throw new EtcdRpcError(ELECTION_ERRORS.leaseNotFound);
  return Session.attach(client, id, { ttlSeconds, keepAlive: false });
}

/**
 * Ends this call's view of the caller's session once the campaign or lock is won: the
 * handle's monitors stop without touching any record (the lease and the records stay). The
 * leadership outlives the call: the caller's later Proclaim, Resign or Unlock address it by
 * its key on any member, and a monitor left behind could withdraw a registration the same
 * lease makes again after resigning.
 */
export function endCallSession(session: Session): void {
  session.markLost("closed");
}

/**
 * A failure as etcd's election and lock services answer it. Those run etcd's client library
 * in-process and return its errors as plain errors, so a store error (a lease not found, an
 * empty key) comes back with gRPC's UNKNOWN code and etcd's text. A given-up campaign is
 * CANCELLED when the caller left, else `expired` (its session went); a lost leadership is
 * "election: not leader"; a refused argument is INVALID_ARGUMENT. Anything else goes to the
 * usual mapping (toServiceError: no leader, timeouts ...).
 */
export function recipeError(error: unknown, expired: EtcdErrorSpec): unknown {
  if (error instanceof CampaignAbortedError)
    return new EtcdRpcError(error.reason === "signal" ? CANCELLED : expired);
  if (error instanceof NotLeaderError) return new EtcdRpcError(ELECTION_ERRORS.notLeader);
  if (error instanceof RecipeConfigError) {
    return new EtcdRpcError({ code: GrpcStatus.INVALID_ARGUMENT, message: error.message });
  }
  if (error instanceof KvError)
    return new EtcdRpcError({ code: GrpcStatus.UNKNOWN, message: kvErrorSpec(error.code).message });
  return error;
}

/** A unary handler whose failures are answered as `recipeError` says. */
export function recipeUnary<I, O>(
  expired: EtcdErrorSpec,
  handle: (request: I, call: GrpcCall) => Promise<O>,
): UnaryHandler {
  return unary(async (request: I, call: GrpcCall) => {
    try {
      return await handle(request, call);
    } catch (error) {
      throw recipeError(error, expired);
    }
  });
}

function requireLeader(leader: LeaderKey | undefined): LeaderKey {
  if (leader === undefined) throw new EtcdRpcError(ELECTION_ERRORS.missingLeaderKey);
  return leader;
}

/** The key-value etcd's Leader and Observe answer with, made from a leader record. */
function leaderKeyValue(
  keys: ElectionKeys,
  record: LeaderRecord,
  modRevision: bigint,
  version: bigint,
): KeyValue {
  return create(KeyValueSchema, {
    key: keys.candidate(record.holder),
    value: record.value,
    createRevision: record.term,
    modRevision,
    version,
    lease: record.lease,
  });
}

/** The leader record if `leader` (term and lease) still holds, else null. */
async function heldRecord(
  client: ReplicaRecipeClient,
  keys: ElectionKeys,
  leader: LeaderKey,
): Promise<LeaderRecord | null> {
  if (leader.rev <= 0n) return null;
  const kv = await client.get(keys.leader);
  if (kv === null) return null;
  const record = decodeLeaderRecord(kv.value, `${keys.subspace}/leader`);
  return record.term === leader.rev && record.lease === leader.lease ? record : null;
}

/** The compares under which `leader` still holds: its term is current and the record is its lease's. */
function stillHolds(keys: ElectionKeys, leader: LeaderKey) {
  return [...guard(keys.subspace, leader.rev), leaseIs(keys.leader, leader.lease)];
}

/**
 * Replaces the value `leader` announces, keeping its term; "election: not leader" when that
 * leadership is over. Resolves with the revision of the change.
 */
async function proclaimAs(
  client: ReplicaRecipeClient,
  keys: ElectionKeys,
  leader: LeaderKey,
  value: Uint8Array,
): Promise<bigint> {
  const record = await heldRecord(client, keys, leader);
  if (record === null) throw new EtcdRpcError(ELECTION_ERRORS.notLeader);
  if (Buffer.compare(record.value, value) === 0) return (await client.range(keys.leader)).revision;
  const result = await client.txn({
    compares: stillHolds(keys, leader),
    success: [
      putRequest({ key: keys.leader, value: encodeLeaderRecord({ ...record, value }), lease: leader.lease }),
    ],
  });
  if (!result.succeeded) throw new EtcdRpcError(ELECTION_ERRORS.notLeader);
  return result.revision;
}

/**
 * Ends the leadership `leader` names (its term, under its lease): the leader record and the
 * candidate record go in one transaction, the term stays. Does nothing when that leadership is
 * over. Resolves with the revision answered.
 */
export async function resignTerm(
  client: ReplicaRecipeClient,
  keys: ElectionKeys,
  leader: LeaderKey,
): Promise<bigint> {
  const candidate = keys.candidate(leader.lease.toString(16));
  const result = await client.txn({
    compares: stillHolds(keys, leader),
    success: [
      deleteRangeRequest({ key: keys.leader }),
      txnRequest({
        compares: [leaseIs(candidate, leader.lease)],
        success: [deleteRangeRequest({ key: candidate })],
      }),
    ],
  });
  return result.revision;
}

async function writeResponse<O>(call: GrpcCall, response: O, signal: AbortSignal): Promise<void> {
  if (call.write(response)) return;
  await once(call, "drain", { signal });
}

export function electionService(ctx: EtcdContext): ServiceHandlers {
  const client = new ReplicaRecipeClient(ctx);
  return {
    Campaign: recipeUnary(
      ELECTION_ERRORS.sessionExpired,
      async (request: CampaignRequest, call): Promise<CampaignResponse> => {
        const subspace = subspaceOf(request.name);
        const { signal, dispose } = callSignal(call);
        try {
          const session = await callerSession(client, request.lease);
          const election = new Election(client, {
            subspace,
            candidateId: session.leaseId.toString(16),
            session,
          });
          const leadership = await election.campaign(request.value, { signal });
          endCallSession(session);
          const leader = create(LeaderKeySchema, {
            name: request.name,
            key: leadership.leaderKey,
            rev: leadership.term,
            lease: leadership.lease,
          });
          // A lease that already led keeps its old value in the recipe; etcd announces the new one.
          const revision = await proclaimAs(client, new ElectionKeys(subspace), leader, request.value);
          return create(CampaignResponseSchema, { header: ctx.header(revision), leader });
        } finally {
          dispose();
        }
      },
    ),

    Proclaim: recipeUnary(
      ELECTION_ERRORS.sessionExpired,
      async (request: ProclaimRequest): Promise<ProclaimResponse> => {
        const leader = requireLeader(request.leader);
        const keys = new ElectionKeys(subspaceOf(leader.name));
        const revision = await proclaimAs(client, keys, leader, request.value);
        return create(ProclaimResponseSchema, { header: ctx.header(revision) });
      },
    ),

    Leader: recipeUnary(
      ELECTION_ERRORS.sessionExpired,
      async (request: LeaderRequest): Promise<LeaderResponse> => {
        const keys = new ElectionKeys(subspaceOf(request.name));
        const read = await client.range(keys.leader);
        const kv = read.kvs[0];
        if (kv === undefined) throw new EtcdRpcError(ELECTION_ERRORS.noLeader);
        const record = decodeLeaderRecord(kv.value, `${keys.subspace}/leader`);
        return create(LeaderResponseSchema, {
          header: ctx.header(read.revision),
          kv: leaderKeyValue(keys, record, kv.modRevision, kv.version),
        });
      },
    ),

    Observe: serverStream(async (request: LeaderRequest, call: GrpcCall) => {
      const keys = new ElectionKeys(subspaceOf(request.name));
      const { signal, dispose } = callSignal(call);
      try {
        for await (const change of observeLeader(client, keys, { signal })) {
          if (change.leader === null || change.value === null) continue;
          const record: LeaderRecord = {
            holder: change.leader,
            term: change.term,
            priority: change.priority ?? 0,
            // A leader change does not carry the holder's lease; Leader reports it.
            lease: 0n,
            value: change.value,
          };
          const kv = leaderKeyValue(keys, record, change.revision, 0n);
          await writeResponse(
            call,
            create(LeaderResponseSchema, { header: ctx.header(change.revision), kv }),
            signal,
          );
        }
      } catch (error) {
        if (!signal.aborted) throw error;
      } finally {
        dispose();
      }
    }),

    Resign: recipeUnary(
      ELECTION_ERRORS.sessionExpired,
      async (request: ResignRequest): Promise<ResignResponse> => {
        const leader = requireLeader(request.leader);
        const keys = new ElectionKeys(subspaceOf(leader.name));
        if (leader.rev <= 0n) return create(ResignResponseSchema, { header: ctx.header() });
        const revision = await resignTerm(client, keys, leader);
        return create(ResignResponseSchema, { header: ctx.header(revision) });
      },
    ),
  };
}
