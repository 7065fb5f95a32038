/**
 * Clients of the simulated node runtime: each runs one operation at a time (put, get, or
 * compare-and-set on a small key set) through `replica.propose` / `replica.range` on a random
 * node, and records it for the linearizability checker:
 * - answered: recorded with its response time; acknowledged writes are remembered with their
 *   revision for the no-lost-write check;
 * - refused (no leader, dropped proposal, node down or stopping; on a split keyspace also a
 *   route that moved under the router's last retry): surely without effect, so not
 *   recorded, only counted;
 * - AmbiguousResultError, a read timeout, or no answer within the client's own timeout (the
 *   node crashed): recorded as pending, for the write may or may not have happened.
 */
import { EMPTY } from "../../kv/bytes.js";
import {
  CompareResult,
  CompareTarget,
  putRequest,
  rangeRequest,
  txnRequest,
  type Compare,
} from "../../kv/commands.js";
import { KvErrorCode } from "../../kv/errors.js";
import type { CommandResult } from "../../kv/results.js";
import {
  AmbiguousResultError,
  NotLeaderError,
  ProposalDroppedError,
  ReadTimeoutError,
  ReplicaStoppedError,
} from "../../node/errors.js";
import { isRoutingError, isRoutingRefusal } from "../../placement/router/retry.js";
import type { NodeId } from "../../raft/types.js";
import type { ClientSettings } from "../client.js";
import { PENDING, formatOperation, type Operation, type RegisterValue } from "../linearizability/index.js";
import type { SeededRandom } from "../random.js";
import type { ScheduledEvent, Scheduler } from "../scheduler.js";
import type { TraceText } from "../trace.js";
import type { ClientKv } from "./runtime-node.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface RuntimeClientCounters {
  acked: number;
  failed: number;
  ambiguous: number;
  readsServed: number;
  readsTimedOut: number;
}

/** A write the cluster acknowledged: `value` must be what `key` holds at `revision`, forever. */
export interface AcknowledgedPut {
  readonly key: string;
  readonly value: string;
  readonly revision: bigint;
}

export interface RuntimeClientContext {
  readonly scheduler: Scheduler;
  readonly settings: ClientSettings;
  /** A random node's id and what a client reaches there, or the id alone when that node is down. */
  pickReplica(random: SeededRandom): { readonly id: NodeId; readonly replica: ClientKv | undefined };
  record(operation: Operation): void;
  allocateId(): number;
  acknowledged(write: AcknowledgedPut): void;
  readonly counters: RuntimeClientCounters;
  trace(text: TraceText): void;
  /** A client saw something no correct runtime does (an unexpected error or answer). */
  fail(text: string): void;
}

/** How an operation ended, as far as its client can tell. */
type Ending<T> = { readonly kind: "answer"; readonly value: T } | { readonly kind: "refused" | "unknown" };

/**
 * Answers that say the request had no effect: StaleSequence (the node's request reached the
 * log behind a newer one of the same node) and, on a split keyspace, the routing refusal the
 * router returns when its retries ran out (KeyOutsideRange, RangeFenced).
 */
function isStale(result: CommandResult): boolean {
  return (
    (result.response.kind === "error" && result.response.code === KvErrorCode.StaleSequence) ||
    isRoutingRefusal(result)
  );
}

function isRefusal(error: unknown): boolean {
  return (
    error instanceof NotLeaderError ||
    error instanceof ProposalDroppedError ||
    error instanceof ReplicaStoppedError ||
    isRoutingError(error)
  );
}

/** The compare that makes a txn a compare-and-set: the key holds `expected` (absent: version 0). */
function expectation(key: Uint8Array, expected: RegisterValue): Compare {
  if (expected === null) {
    return { target: CompareTarget.Version, result: CompareResult.Equal, key, rangeEnd: EMPTY, operand: 0n };
  }
  return {
    target: CompareTarget.Value,
    result: CompareResult.Equal,
    key,
    rangeEnd: EMPTY,
    value: encoder.encode(expected),
  };
}

export class RuntimeClient {
  private sequence = 0;
  private stopped = true;
  private current: { readonly historyId: number; readonly timer: ScheduledEvent } | null = null;
  private nextOperation: ScheduledEvent | null = null;
  private readonly lastSeen = new Map<string, RegisterValue>();

  constructor(
    readonly id: number,
    private readonly random: SeededRandom,
    private readonly context: RuntimeClientContext,
  ) {}

  get busy(): boolean {
    return this.current !== null;
  }

  start(): void {
    this.stopped = false;
    this.scheduleNext(0);
  }

  stop(): void {
    this.stopped = true;
    this.nextOperation?.cancel();
    this.nextOperation = null;
  }

  /** A linearizable read of `key` through `replica`, recorded like any other (the final reads). */
  readThrough(nodeId: NodeId, replica: ClientKv, key: string): void {
    if (this.current !== null) throw new Error(`client ${this.id}: read while an operation is in flight`);
    this.issueGet(nodeId, replica, key);
  }

  private scheduleNext(backoffMs: number): void {
    if (this.stopped) return;
    const [low, high] = this.context.settings.thinkMs;
    this.nextOperation = this.context.scheduler.after(backoffMs + this.random.intBetween(low, high), () => {
      this.nextOperation = null;
      this.issueRandom();
    });
  }

  private issueRandom(): void {
    const { settings, counters } = this.context;
    const { put, get, cas } = settings.mix;
    const roll = this.random.nextInt(put + get + cas);
    const key = this.random.pick(settings.keys);
    const { id, replica } = this.context.pickReplica(this.random);
    if (replica === undefined) {
      counters.failed++;
      this.scheduleNext(settings.refusalBackoffMs);
      return;
    }
    if (roll < get) this.issueGet(id, replica, key);
    else if (roll < get + put) this.issuePut(id, replica, key);
    else this.issueCas(id, replica, key);
  }

  private issueGet(nodeId: NodeId, replica: ClientKv, key: string): void {
    const call = this.context.scheduler.now;
    const base = { id: this.context.allocateId(), clientId: this.id, key, call };
    this.run(
      nodeId,
      base.id,
      replica.range(rangeRequest({ key: encoder.encode(key) })),
      (result) => {
        const kv = result.kvs[0];
        const value = kv === undefined ? null : decoder.decode(kv.value);
        this.lastSeen.set(key, value);
        this.context.counters.readsServed++;
        return { ...base, kind: "get", ret: this.context.scheduler.now, output: { value } };
      },
      () => {
        this.context.counters.readsTimedOut++;
        return { ...base, kind: "get", ret: PENDING };
      },
    );
  }

  private issuePut(nodeId: NodeId, replica: ClientKv, key: string): void {
    const value = `c${this.id}.${++this.sequence}`;
    const call = this.context.scheduler.now;
    const base = { id: this.context.allocateId(), clientId: this.id, key, call, kind: "put", value } as const;
    const command = putRequest({ key: encoder.encode(key), value: encoder.encode(value) });
    this.run(
      nodeId,
      base.id,
      replica.propose(command),
      (result) => {
        if (isStale(result)) return null;
        this.acknowledge(key, value, result, "put");
        return { ...base, ret: this.context.scheduler.now, output: { ok: true } };
      },
      () => {
        this.context.counters.ambiguous++;
        return { ...base, ret: PENDING };
      },
    );
  }

  private issueCas(nodeId: NodeId, replica: ClientKv, key: string): void {
    const next = `c${this.id}.${++this.sequence}`;
    const expected = this.lastSeen.get(key) ?? null;
    const call = this.context.scheduler.now;
    const base = {
      id: this.context.allocateId(),
      clientId: this.id,
      key,
      call,
      kind: "cas",
      expected,
      next,
    } as const;
    const keyBytes = encoder.encode(key);
    const command = txnRequest({
      compares: [expectation(keyBytes, expected)],
      success: [putRequest({ key: keyBytes, value: encoder.encode(next) })],
    });
    this.run(
      nodeId,
      base.id,
      replica.propose(command),
      (result) => {
        if (isStale(result)) return null;
        if (result.response.kind !== "txn") {
          throw new Error(`client ${this.id}: cas answered with ${result.response.kind}`);
        }
        const swapped = result.response.succeeded;
        if (swapped) this.acknowledge(key, next, result, "cas");
        return { ...base, ret: this.context.scheduler.now, output: { swapped } };
      },
      () => {
        this.context.counters.ambiguous++;
        return { ...base, ret: PENDING };
      },
    );
  }

  private acknowledge(key: string, value: string, result: CommandResult, kind: string): void {
    if (result.response.kind === "error") {
      throw new Error(`client ${this.id}: ${kind} failed in the store: ${result.response.message}`);
    }
    this.context.counters.acked++;
    this.lastSeen.set(key, value);
    this.context.acknowledged({ key, value, revision: result.revision });
  }

  /**
   * Waits for `answer` or the client's own timeout, whichever comes first, and records the
   * operation; a late answer after the timeout is ignored (the operation stays pending).
   * `answered` returns null for an answer that says the request had no effect.
   */
  private run<T>(
    nodeId: NodeId,
    historyId: number,
    answer: Promise<T>,
    answered: (value: T) => Operation | null,
    unknown: () => Operation,
  ): void {
    const timer = this.context.scheduler.after(this.context.settings.timeoutMs, () =>
      this.finish(nodeId, historyId, { kind: "unknown" }, answered, unknown),
    );
    this.current = { historyId, timer };
    answer
      .then(
        (value) => this.finish(nodeId, historyId, { kind: "answer", value }, answered, unknown),
        (error: unknown) => {
          const ambiguous = error instanceof AmbiguousResultError || error instanceof ReadTimeoutError;
          if (!ambiguous && !isRefusal(error)) this.context.fail(`client ${this.id}: ${String(error)}`);
          const kind = isRefusal(error) ? "refused" : "unknown";
          this.finish(nodeId, historyId, { kind }, answered, unknown);
        },
      )
      .catch((error: unknown) => this.context.fail(`client ${this.id}: ${String(error)}`));
  }

  private finish<T>(
    nodeId: NodeId,
    historyId: number,
    ending: Ending<T>,
    answered: (value: T) => Operation | null,
    unknown: () => Operation,
  ): void {
    if (this.current?.historyId !== historyId) return;
    this.current.timer.cancel();
    this.current = null;
    const operation =
      ending.kind === "answer" ? answered(ending.value) : ending.kind === "unknown" ? unknown() : null;
    if (operation === null) {
      this.context.counters.failed++;
      this.context.trace(`client ${this.id} operation ${historyId} refused by n${nodeId}`);
      this.scheduleNext(this.context.settings.refusalBackoffMs);
      return;
    }
    this.context.record(operation);
    this.context.trace(() => `client ${this.id} ${formatOperation(operation)} via n${nodeId}`);
    this.scheduleNext(0);
  }
}
