/**
 * `ConcordDb`: the typed client handle, the same for an embedded store and a remote cluster.
 * It owns what both share: the handle's client id and write sequence (every write carries
 * them, so a retry applies at most once), one write in flight at a time (the store's dedup
 * contract), retries of errors that guarantee no effect with capped exponential backoff,
 * turning a write's unknown outcome into an `AmbiguousWriteError` that can be retried with
 * its original id, and the mapping of results to small typed answers. How a request reaches
 * a replica is a `Backend`'s job (embedded.ts, client.ts).
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  compactRequest,
  deleteRangeRequest,
  leaseGrantRequest,
  leaseRevokeRequest,
  putRequest,
  rangeRequest,
  txnRequest,
  type Compare,
  type KvCommand,
  type RangeRequest,
  type SortOrder,
  type SortTarget,
  type TxnOp,
} from "../kv/commands.js";
import { prefixRangeEnd } from "../kv/bytes.js";
import { KvError } from "../kv/errors.js";
import type { TimeToLive } from "../kv/lease-clock.js";
import type { LeaseSummary } from "../kv/leases.js";
import type { WatchFilter, WatchRequest } from "../kv/watch.js";
import type { CommandResponse, CommandResult, KeyValue, OpResponse, RangeResult } from "../kv/results.js";
import { AmbiguousResultError } from "../node/errors.js";
import type { ReadConsistency, RequestId } from "../node/types.js";
import {
  AmbiguousWriteError,
  ambiguityReason,
  ClientClosedError,
  isRetryable,
  type PendingWrite,
} from "./errors.js";
import type { RangeStatus } from "./native/protocol.js";
import type { ConcordWatch } from "./watch.js";

/** How requests reach replicas: in this process, or over the native protocol. */
export interface Backend {
  write(rangeId: number, command: KvCommand, request: RequestId): Promise<CommandResult>;
  read(rangeId: number, request: RangeRequest, consistency: ReadConsistency): Promise<RangeResult>;
  status(rangeId: number): Promise<RangeStatus>;
  watch(rangeId: number, request: WatchRequest): Promise<ConcordWatch>;
  /** The lease's TTL in seconds, renewed; null when it does not exist or has expired. */
  leaseKeepAlive(rangeId: number, id: bigint): Promise<number | null>;
  leaseTimeToLive(rangeId: number, id: bigint, withKeys: boolean): Promise<TimeToLive | null>;
  leases(rangeId: number): Promise<readonly LeaseSummary[]>;
  close(): Promise<void>;
}

export interface RetryPolicy {
  /** Attempts per request, the first included (default 20). */
  readonly maxAttempts: number;
  /** Backoff before the first retry; doubles per retry up to `maxBackoffMs` (defaults 25, 1000). */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 20,
  initialBackoffMs: 25,
  maxBackoffMs: 1_000,
};

/** Keys and values: bytes, or strings stored as UTF-8. */
export type Bytes = Uint8Array | string;

export interface ReadOptions {
  /** Read at this revision (default: the current one). */
  readonly revision?: bigint;
  /** Serve from the member's local applied state instead of a linearizable read. */
  readonly serializable?: boolean;
}

export interface RangeOptions extends ReadOptions {
  /** End of the range, exclusive ("\0": every key from `key` on). */
  readonly rangeEnd?: Bytes;
  /** Every key starting with `key` (instead of `rangeEnd`). */
  readonly prefix?: boolean;
  readonly limit?: number;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly sortOrder?: SortOrder;
  readonly sortTarget?: SortTarget;
}

export interface PutOptions {
  readonly lease?: bigint;
  readonly prevKv?: boolean;
}

export interface DeleteOptions {
  readonly rangeEnd?: Bytes;
  readonly prefix?: boolean;
  readonly prevKv?: boolean;
}

export interface WatchOptions {
  readonly rangeEnd?: Bytes;
  /** Every key starting with `key` (instead of `rangeEnd`). */
  readonly prefix?: boolean;
  /** The first revision to report (default: changes after the current revision). */
  readonly startRevision?: bigint;
  /** Report the key-value each event replaced. */
  readonly prevKv?: boolean;
  readonly filters?: readonly WatchFilter[];
  readonly progressNotify?: boolean;
}

export interface TxnSpec {
  readonly compares?: readonly Compare[];
  readonly success?: readonly TxnOp[];
  readonly failure?: readonly TxnOp[];
}

export interface PutResult {
  readonly revision: bigint;
  readonly prevKv: KeyValue | null;
}

export interface DeleteResult {
  readonly revision: bigint;
  readonly deleted: number;
  readonly prevKvs: readonly KeyValue[];
}

export interface TxnResult {
  readonly revision: bigint;
  readonly succeeded: boolean;
  readonly responses: readonly OpResponse[];
}

export interface LeaseGrantResult {
  readonly revision: bigint;
  readonly id: bigint;
  readonly ttlSeconds: number;
}

/** Which range holds a key. */
export type KeyRouter = (key: Uint8Array) => number;

/** What a handle takes from its process; injectable so the simulator can run it on virtual time. */
export interface ClientEnvironment {
  /** The handle's client id (default: a random UUID). */
  readonly clientId?: string;
  /** Waits `ms` milliseconds between retries (default: node:timers/promises setTimeout). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * One range covers the whole keyspace until the placement layer's route cache exists; every
 * request already carries the range id it was routed to.
 */
export const singleRange: KeyRouter = () => 1;

const utf8 = new TextEncoder();

export function toBytes(value: Bytes): Uint8Array {
  return typeof value === "string" ? utf8.encode(value) : value;
}

/** The smallest key above every key starting with `prefix` (etcd's prefix range end). */
export const prefixEnd = prefixRangeEnd;

function rangeEndOf(key: Uint8Array, options: { rangeEnd?: Bytes; prefix?: boolean }): Uint8Array {
  if (options.prefix === true) {
    if (options.rangeEnd !== undefined) throw new RangeError("give either rangeEnd or prefix, not both");
    return prefixEnd(key);
  }
  return options.rangeEnd === undefined ? new Uint8Array(0) : toBytes(options.rangeEnd);
}

/** The response of a write, or the KvError it carries. */
function responseOf<K extends CommandResponse["kind"]>(
  result: CommandResult,
  kind: K,
): Extract<CommandResponse, { kind: K }> {
  const response = result.response;
  if (response.kind === "error") throw new KvError(response.code);
  if (response.kind !== kind) {
    throw new Error(`a ${kind} command was answered with a ${response.kind} response`);
  }
  return response as Extract<CommandResponse, { kind: K }>;
}

export class ConcordDb {
  /** Sent with every write; the store deduplicates retries by (clientId, sequence). */
  readonly clientId: string;
  private readonly sleep: (ms: number) => Promise<void>;
  private sequence = 0;
  /** Writes run one at a time: the store's dedup table expects one outstanding request per client. */
  private writeChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly retryPolicy: RetryPolicy;

  constructor(
    private readonly backend: Backend,
    retryPolicy: Partial<RetryPolicy> = {},
    /** The range holding a key (default: range 1 holds every key). */
    private readonly rangeOf: KeyRouter = singleRange,
    environment: ClientEnvironment = {},
  ) {
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...retryPolicy };
    this.clientId = environment.clientId ?? randomUUID();
    this.sleep = environment.sleep ?? ((ms) => sleep(ms));
  }

  async put(key: Bytes, value: Bytes, options: PutOptions = {}): Promise<PutResult> {
    const command = putRequest({
      key: toBytes(key),
      value: toBytes(value),
      lease: options.lease ?? 0n,
      prevKv: options.prevKv ?? false,
    });
    const result = await this.write(command);
    return { revision: result.revision, prevKv: responseOf(result, "put").prevKv };
  }

  /** The key's value at the read revision, or null when it does not exist there. */
  async get(key: Bytes, options: ReadOptions = {}): Promise<KeyValue | null> {
    const result = await this.range(key, options);
    return result.kvs[0] ?? null;
  }

  async range(key: Bytes, options: RangeOptions = {}): Promise<RangeResult> {
    const start = toBytes(key);
    const request = rangeRequest({
      key: start,
      rangeEnd: rangeEndOf(start, options),
      revision: options.revision ?? 0n,
      limit: options.limit ?? 0,
      keysOnly: options.keysOnly ?? false,
      countOnly: options.countOnly ?? false,
      ...(options.sortOrder === undefined ? {} : { sortOrder: options.sortOrder }),
      ...(options.sortTarget === undefined ? {} : { sortTarget: options.sortTarget }),
    });
    const consistency = options.serializable === true ? "serializable" : "linearizable";
    this.checkOpen();
    return this.withRetries(() => this.backend.read(this.rangeOf(start), request, consistency));
  }

  async delete(key: Bytes, options: DeleteOptions = {}): Promise<DeleteResult> {
    const start = toBytes(key);
    const command = deleteRangeRequest({
      key: start,
      rangeEnd: rangeEndOf(start, options),
      prevKv: options.prevKv ?? false,
    });
    const result = await this.write(command);
    const response = responseOf(result, "deleteRange");
    return { revision: result.revision, deleted: response.deleted, prevKvs: response.prevKvs };
  }

  /** etcd's txn: if every compare holds, the success ops run, otherwise the failure ops; atomically. */
  async txn(spec: TxnSpec): Promise<TxnResult> {
    const command = txnRequest({
      compares: spec.compares ?? [],
      success: spec.success ?? [],
      failure: spec.failure ?? [],
    });
    const result = await this.write(command);
    const response = responseOf(result, "txn");
    return { revision: result.revision, succeeded: response.succeeded, responses: response.responses };
  }

  /** Forgets versions at or below `revision` that later ones replaced. */
  async compact(revision: bigint): Promise<{ revision: bigint }> {
    const result = await this.write(compactRequest(revision));
    responseOf(result, "compact");
    return { revision: result.revision };
  }

  /** Grants a lease of `ttlSeconds` (id 0: the store picks one). */
  async leaseGrant(ttlSeconds: number, id = 0n): Promise<LeaseGrantResult> {
    const result = await this.write(leaseGrantRequest(ttlSeconds, id));
    const response = responseOf(result, "leaseGrant");
    return { revision: result.revision, id: response.id, ttlSeconds: response.ttlSeconds };
  }

  /** Revokes a lease, deleting every key attached to it at one revision. */
  async leaseRevoke(id: bigint): Promise<{ revision: bigint }> {
    const result = await this.write(leaseRevokeRequest(id));
    responseOf(result, "leaseRevoke");
    return { revision: result.revision };
  }

  /**
   * Renews a lease on the range's leader; resolves with its TTL in seconds, or null when the
   * lease does not exist or has already expired. A remote handle finds the leader by trying
   * the endpoints in turn; an embedded member that does not lead fails with NotLeaderError.
   */
  async leaseKeepAlive(id: bigint): Promise<number | null> {
    this.checkOpen();
    const rangeId = this.rangeOf(new Uint8Array(0));
    return this.withRetries(() => this.backend.leaseKeepAlive(rangeId, id));
  }

  /** A lease's granted and remaining TTL (and its keys when asked), from the range's leader; null when unknown. */
  async leaseTimeToLive(id: bigint, options: { keys?: boolean } = {}): Promise<TimeToLive | null> {
    this.checkOpen();
    const rangeId = this.rangeOf(new Uint8Array(0));
    return this.withRetries(() => this.backend.leaseTimeToLive(rangeId, id, options.keys ?? false));
  }

  /** Every live lease. */
  async leases(): Promise<readonly LeaseSummary[]> {
    this.checkOpen();
    const rangeId = this.rangeOf(new Uint8Array(0));
    return this.withRetries(() => this.backend.leases(rangeId));
  }

  /**
   * Watches a key or range: an async iterable of responses in revision order (see
   * ConcordWatch for how it ends). Call `cancel()` or leave the loop to stop it.
   */
  async watch(key: Bytes, options: WatchOptions = {}): Promise<ConcordWatch> {
    this.checkOpen();
    const start = toBytes(key);
    const request: WatchRequest = {
      key: start,
      rangeEnd: rangeEndOf(start, options),
      startRevision: options.startRevision ?? 0n,
      prevKv: options.prevKv ?? false,
      filters: options.filters ?? [],
      progressNotify: options.progressNotify ?? false,
    };
    return this.withRetries(() => this.backend.watch(this.rangeOf(start), request));
  }

  /**
   * Sends a write whose outcome was unknown again, with its original client id and sequence:
   * the store answers it with the original result if it had applied, and applies it otherwise.
   */
  async retry(error: AmbiguousWriteError): Promise<CommandResult> {
    return this.runWrite(error.write);
  }

  /** The serving member's view of a range (default: range 1). */
  async status(rangeId = 1): Promise<RangeStatus> {
    this.checkOpen();
    return this.withRetries(() => this.backend.status(rangeId));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backend.close();
  }

  private write(command: KvCommand): Promise<CommandResult> {
    this.checkOpen();
    const request = { clientId: this.clientId, sequence: ++this.sequence };
    return this.runWrite({ rangeId: this.rangeOf(this.keyOf(command)), request, command });
  }

  private runWrite(write: PendingWrite): Promise<CommandResult> {
    this.checkOpen();
    const run = async (): Promise<CommandResult> => {
      try {
        return await this.withRetries(() => this.backend.write(write.rangeId, write.command, write.request));
      } catch (error) {
        if (error instanceof AmbiguousResultError && !(error instanceof AmbiguousWriteError)) {
          throw new AmbiguousWriteError(write, ambiguityReason(write.rangeId, error.message), {
            cause: error,
          });
        }
        throw error;
      }
    };
    const result = this.writeChain.then(run, run);
    this.writeChain = result.catch(() => undefined);
    return result;
  }

  private async withRetries<T>(attempt: () => Promise<T>): Promise<T> {
    const { maxAttempts, initialBackoffMs, maxBackoffMs } = this.retryPolicy;
    for (let failures = 1; ; failures++) {
      try {
        return await attempt();
      } catch (error) {
        if (!isRetryable(error) || failures >= maxAttempts || this.closed) throw error;
        await this.sleep(Math.min(maxBackoffMs, initialBackoffMs * 2 ** (failures - 1)));
      }
    }
  }

  /** The key a command is routed by (commands that name no key go to the first range). */
  private keyOf(command: KvCommand): Uint8Array {
    return "key" in command ? command.key : new Uint8Array(0);
  }

  private checkOpen(): void {
    if (this.closed) throw new ClientClosedError();
  }
}
