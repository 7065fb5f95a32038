/**
 * What every etcd v3 service module needs, and the contract between the server and the
 * modules: `EtcdContext` (the node, the range the etcd API serves, this member's and the
 * cluster's ids, truthful response headers, the member list and the range leader's client
 * URL), etcd's gRPC errors (`EtcdRpcError`, `ETCD_ERRORS`) with the mapping of Concord's
 * errors onto them (`toServiceError`), and the handler wrappers (`unary`, `serverStream`) that
 * turn an async function over the generated messages into a GrpcServer handler (grpc-server.ts)
 * whose failures are etcd's errors.
 *
 * A service module exports `fooService(ctx: EtcdContext): ServiceHandlers` whose keys are the
 * method names of the generated `DescService` (`Foo` in gen/rpc_pb.ts); the server (server.ts)
 * pairs the two with the service definition (serialization included).
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { KV_ERROR_MESSAGES, KvError, KvErrorCode } from "../../kv/errors.js";
import {
  AmbiguousResultError,
  NotLeaderError,
  ProposalDroppedError,
  ReadTimeoutError,
  ReplicaStoppedError,
} from "../../node/errors.js";
import type { NodeHost } from "../../node/host.js";
import type { Replica } from "../../node/replica.js";
import type { RoutedKv } from "../../placement/node-ranges.js";
import { isRoutingError } from "../../placement/router/retry.js";
import { SystemKeyError } from "../../placement/router/system-keys.js";
import type { MemberRecord } from "../../node/types.js";
import { ResponseHeaderSchema, type ResponseHeader } from "./gen/rpc_pb.js";
import type { GrpcCall, StreamHandler, UnaryHandler } from "./grpc-server.js";
import type { HeaderFields } from "./proto-writer.js";

export type { MemberRecord };

/** A gRPC status code and message, exactly as etcd sends them. */
export interface EtcdErrorSpec {
  readonly code: GrpcStatus;
  readonly message: string;
}

const spec = (code: GrpcStatus, message: string): EtcdErrorSpec => ({ code, message });

/** etcd's server-side gRPC errors (its rpctypes) that Concord can produce. */
export const ETCD_ERRORS = {
  emptyKey: spec(GrpcStatus.INVALID_ARGUMENT, "etcdserver: key is not provided"),
  keyNotFound: spec(GrpcStatus.INVALID_ARGUMENT, "etcdserver: key not found"),
  valueProvided: spec(GrpcStatus.INVALID_ARGUMENT, "etcdserver: value is provided"),
  leaseProvided: spec(GrpcStatus.INVALID_ARGUMENT, "etcdserver: lease is provided"),
  tooManyOps: spec(GrpcStatus.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"),
  duplicateKey: spec(GrpcStatus.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"),
  compacted: spec(GrpcStatus.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"),
  futureRevision: spec(GrpcStatus.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"),
  noSpace: spec(GrpcStatus.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"),
  leaseNotFound: spec(GrpcStatus.NOT_FOUND, "etcdserver: requested lease not found"),
  leaseExists: spec(GrpcStatus.FAILED_PRECONDITION, "etcdserver: lease already exists"),
  leaseTtlTooLarge: spec(GrpcStatus.OUT_OF_RANGE, "etcdserver: too large lease TTL"),
  memberExists: spec(GrpcStatus.FAILED_PRECONDITION, "etcdserver: member ID already exist"),
  peerUrlExists: spec(GrpcStatus.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"),
  memberBadUrls: spec(GrpcStatus.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid"),
  memberNotFound: spec(GrpcStatus.NOT_FOUND, "etcdserver: member not found"),
  memberNotLearner: spec(GrpcStatus.FAILED_PRECONDITION, "etcdserver: can only promote a learner member"),
  learnerNotReady: spec(
    GrpcStatus.FAILED_PRECONDITION,
    "etcdserver: can only promote a learner member which is in sync with leader",
  ),
  requestTooLarge: spec(GrpcStatus.INVALID_ARGUMENT, "etcdserver: request is too large"),
  authNotEnabled: spec(GrpcStatus.FAILED_PRECONDITION, "etcdserver: authentication is not enabled"),
  noLeader: spec(GrpcStatus.UNAVAILABLE, "etcdserver: no leader"),
  notLeader: spec(GrpcStatus.FAILED_PRECONDITION, "etcdserver: not leader"),
  leaderChanged: spec(GrpcStatus.UNAVAILABLE, "etcdserver: leader changed"),
  stopped: spec(GrpcStatus.UNAVAILABLE, "etcdserver: server stopped"),
  timeout: spec(GrpcStatus.UNAVAILABLE, "etcdserver: request timed out"),
  unhealthy: spec(GrpcStatus.UNAVAILABLE, "etcdserver: unhealthy cluster"),
  notEnoughStartedMembers: spec(
    GrpcStatus.FAILED_PRECONDITION,
    "etcdserver: re-configuration failed due to not enough started members",
  ),
  badLeaderTransferee: spec(GrpcStatus.FAILED_PRECONDITION, "etcdserver: bad leader transferee"),
} as const;

/** An error to answer a request with: a gRPC status code and etcd's message. */
export class EtcdRpcError extends Error {
  readonly code: GrpcStatus;

  constructor(error: EtcdErrorSpec | { code: GrpcStatus; message: string }) {
    super(error.message);
    this.name = "EtcdRpcError";
    this.code = error.code;
  }
}

const KV_ERRORS: Readonly<Record<KvErrorCode, EtcdErrorSpec>> = {
  [KvErrorCode.Compacted]: ETCD_ERRORS.compacted,
  [KvErrorCode.FutureRevision]: ETCD_ERRORS.futureRevision,
  [KvErrorCode.KeyNotFound]: ETCD_ERRORS.keyNotFound,
  [KvErrorCode.DuplicateKey]: ETCD_ERRORS.duplicateKey,
  [KvErrorCode.EmptyKey]: ETCD_ERRORS.emptyKey,
  [KvErrorCode.ValueProvided]: ETCD_ERRORS.valueProvided,
  [KvErrorCode.LeaseProvided]: ETCD_ERRORS.leaseProvided,
  // Requests of the etcd API carry no client id, so the store never answers them with it.
  [KvErrorCode.StaleSequence]: spec(GrpcStatus.INTERNAL, "concord: stale request sequence"),
  [KvErrorCode.LeaseNotFound]: ETCD_ERRORS.leaseNotFound,
  [KvErrorCode.LeaseExists]: ETCD_ERRORS.leaseExists,
  [KvErrorCode.LeaseTtlTooLarge]: ETCD_ERRORS.leaseTtlTooLarge,
  [KvErrorCode.NotLeader]: ETCD_ERRORS.notLeader,
  [KvErrorCode.WatchOverloaded]: spec(GrpcStatus.RESOURCE_EXHAUSTED, "etcdserver: too many requests"),
  // The server's router retries these two itself; a client sees them only when retries ran out.
  [KvErrorCode.KeyOutsideRange]: spec(GrpcStatus.UNAVAILABLE, KV_ERROR_MESSAGES[KvErrorCode.KeyOutsideRange]),
  [KvErrorCode.RangeFenced]: spec(GrpcStatus.UNAVAILABLE, KV_ERROR_MESSAGES[KvErrorCode.RangeFenced]),
  [KvErrorCode.CrossRangeTxn]: spec(GrpcStatus.UNIMPLEMENTED, KV_ERROR_MESSAGES[KvErrorCode.CrossRangeTxn]),
  [KvErrorCode.MergeImageInvalid]: spec(
    GrpcStatus.FAILED_PRECONDITION,
    KV_ERROR_MESSAGES[KvErrorCode.MergeImageInvalid],
  ),
  [KvErrorCode.KeyTooLarge]: spec(GrpcStatus.INVALID_ARGUMENT, KV_ERROR_MESSAGES[KvErrorCode.KeyTooLarge]),
};

/** The gRPC error for a KvError code (the store's etcd wording, with etcd's gRPC code). */
export function kvErrorSpec(code: KvErrorCode): EtcdErrorSpec {
  return KV_ERRORS[code];
}

/**
 * Any failure as the gRPC error etcd would answer with. Node errors: no leader known →
 * "no leader"; a dropped proposal (refused by the core, or overwritten by a new leader, so it
 * never applies) → "leader changed"; an ambiguous write or a read without a read index →
 * "request timed out"; a stopped replica → "server stopped". Anything unexpected → INTERNAL
 * with its message.
 */
export function toServiceError(error: unknown): EtcdRpcError {
  let code: GrpcStatus;
  let message: string;
  if (error instanceof EtcdRpcError) return error;
  if (error instanceof KvError) ({ code, message } = KV_ERRORS[error.code]);
  else if (error instanceof NotLeaderError) ({ code, message } = ETCD_ERRORS.noLeader);
  else if (error instanceof ProposalDroppedError) ({ code, message } = ETCD_ERRORS.leaderChanged);
  else if (error instanceof AmbiguousResultError) ({ code, message } = ETCD_ERRORS.timeout);
  else if (error instanceof ReadTimeoutError) ({ code, message } = ETCD_ERRORS.timeout);
  else if (error instanceof ReplicaStoppedError) ({ code, message } = ETCD_ERRORS.stopped);
  else if (error instanceof SystemKeyError)
    ({ code, message } = { code: GrpcStatus.INVALID_ARGUMENT, message: error.message });
  else if (isRoutingError(error))
    ({ code, message } = { code: GrpcStatus.UNAVAILABLE, message: errorMessage(error) });
  else {
    code = GrpcStatus.INTERNAL;
    message = error instanceof Error ? error.message : String(error);
  }
  return new EtcdRpcError({ code, message });
}

/** An error's message (or the thrown value as text). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** etcd's cluster id for a Concord cluster id: its 16 hex digits as is, else a hash of it. */
export function etcdClusterId(clusterId: string): bigint {
  if (/^[0-9a-f]{16}$/.test(clusterId)) return BigInt(`0x${clusterId}`);
  return createHash("sha256").update(clusterId).digest().readBigUInt64BE(0);
}

export interface EtcdContextOptions {
  readonly host: NodeHost;
  /** The cluster's id in responses (etcdClusterId of the Concord cluster id). */
  readonly clusterId: bigint;
  /**
   * Routes key-value requests, watches and leases over every range (NodeRanges). Without it
   * everything goes to range 1's replica, which then must hold the whole keyspace.
   */
  readonly kv?: RoutedKv;
}

export class EtcdContext {
  readonly host: NodeHost;
  readonly rangeId: number;
  readonly clusterId: bigint;
  /** This member's id: the node id. */
  readonly memberId: number;

  private readonly routedKv: RoutedKv | undefined;

  constructor(options: EtcdContextOptions) {
    this.host = options.host;
    this.rangeId = 1;
    this.routedKv = options.kv;
    this.clusterId = options.clusterId;
    this.memberId = options.host.nodeId;
  }

  /** The range's replica on this node; EtcdRpcError "server stopped" when there is none. */
  replica(): Replica {
    const replica = this.host.replica(this.rangeId);
    if (replica === undefined) throw new EtcdRpcError(ETCD_ERRORS.stopped);
    return replica;
  }

  /** Where key-value requests, watches, lease grants and revocations go (see `kv` option). */
  kv(): RoutedKv {
    return this.routedKv ?? this.replica();
  }

  /**
   * A response header: this cluster and member, the replica's current Raft term, and
   * `revision` (the operation's revision), else the revision this replica has applied.
   */
  header(revision?: bigint): ResponseHeader {
    return create(ResponseHeaderSchema, this.headerFields(revision));
  }

  /** `header`'s fields as a plain object, for encoders that write them without a message. */
  headerFields(revision?: bigint): HeaderFields {
    const now = this.host.replica(this.rangeId)?.termLeaderRevision();
    return {
      clusterId: this.clusterId,
      memberId: BigInt(this.memberId),
      revision: revision ?? now?.revision ?? 0n,
      raftTerm: BigInt(now?.term ?? 0),
    };
  }

  /** The range's voters and learners with their names and URLs, as applied on this member. */
  members(): readonly MemberRecord[] {
    return this.replica().members();
  }

  /** The member this replica believes leads the range; EtcdRpcError "no leader" when none. */
  leaderId(): number {
    const leader = this.replica().termLeaderRevision().leader;
    if (leader === 0) throw new EtcdRpcError(ETCD_ERRORS.noLeader);
    return leader;
  }

  /**
   * The first client URL the range leader published ("http://host:port"), for requests only
   * the leader serves; null when this member leads. EtcdRpcError "no leader" when no leader is
   * known or it has published no client URL yet.
   */
  leaderClientUrl(): string | null {
    const leader = this.leaderId();
    if (leader === this.memberId) return null;
    const url = this.members().find((member) => member.id === leader)?.clientUrls[0];
    if (url === undefined) throw new EtcdRpcError(ETCD_ERRORS.noLeader);
    return url;
  }
}

/**
 * A unary handler from a function returning the response or a promise of it; a throw or a
 * rejection becomes the gRPC error etcd would send.
 */
export function unary<I, O>(handle: (request: I, call: GrpcCall) => O | Promise<O>): UnaryHandler {
  return (request: I, call: GrpcCall) =>
    new Promise<O>((resolve) => resolve(handle(request, call))).catch((error: unknown) => {
      throw toServiceError(error);
    });
}

/**
 * A server-streaming handler from an async function that writes the responses (waiting for
 * drain when `write` returns false); the call ends when it resolves, with the gRPC error etcd
 * would send when it rejects.
 */
export function serverStream<I>(handle: (request: I, call: GrpcCall) => Promise<void>): StreamHandler {
  return (call) => {
    new Promise<void>((resolve) => resolve(handle(call.request as I, call))).then(
      () => call.end(),
      (error: unknown) => call.fail(toServiceError(error)),
    );
  };
}
