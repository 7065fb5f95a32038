// The client side of the crash test: a history recorder on the wall clock (process.hrtime)
// and client loops issuing put / linearizable get / cas (a txn comparing the value) through
// remote handles, each outcome classified for the linearizability checker: acknowledged →
// completed, unknown (AmbiguousWriteError, a client-side timeout, any non-retryable error of
// a write) → pending, certainly without effect (a retryable error surfacing after the
// handle's retries) → not recorded.
import { Concord } from "../../src/api/concord.js";
import type { ConcordDb } from "../../src/api/db.js";
import { AmbiguousResultError, isRetryable } from "../../src/api/errors.js";
import { PENDING, type Operation } from "../../src/sim/linearizability/index.js";
import type { SeededRandom } from "../../src/sim/random.js";
import { sleep } from "./process-cluster.js";

/** Longer than the node's proposal timeout (10 s) plus the handle's retries below. */
const OP_TIMEOUT_MS = 30_000;
const CLIENT_RETRY = { maxAttempts: 8, initialBackoffMs: 50, maxBackoffMs: 500 } as const;

export interface OutcomeCounts {
  acked: number;
  /** Certainly without effect (not recorded). */
  failed: number;
  /** Outcome unknown (recorded as pending). */
  ambiguous: number;
  /** Client-side timeouts among the ambiguous and failed ones. */
  timedOut: number;
  /** Error names seen, with how often. */
  readonly errors: Map<string, number>;
}

export type Outcome<T> = { kind: "ok"; value: T } | { kind: "error"; error: unknown } | { kind: "timeout" };

const TIMED_OUT = Symbol("timed out");

export class HistoryRecorder {
  readonly operations: Operation[] = [];
  readonly counts: OutcomeCounts = { acked: 0, failed: 0, ambiguous: 0, timedOut: 0, errors: new Map() };
  private readonly origin = process.hrtime.bigint();
  private nextId = 1;

  /** `opTimeoutMs`: how long an operation may run before the client gives up on its answer. */
  constructor(private readonly opTimeoutMs = OP_TIMEOUT_MS) {}

  /** Milliseconds since the recorder was made, from the monotonic high-resolution clock. */
  now(): number {
    return Number(process.hrtime.bigint() - this.origin) / 1e6;
  }

  /**
   * Runs `body` and records the operation `describe` builds from its call time, return time
   * and output (undefined output: pending). Returns the outcome so the caller can react.
   */
  async record<T>(
    isWrite: boolean,
    body: () => Promise<T>,
    describe: (id: number, call: number, ret: number, value: T | undefined) => Operation,
  ): Promise<Outcome<T>> {
    const call = this.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), this.opTimeoutMs);
    });
    let outcome: Outcome<T>;
    try {
      const value = await Promise.race([body(), timeout]);
      outcome = value === TIMED_OUT ? { kind: "timeout" } : { kind: "ok", value };
    } catch (error) {
      outcome = { kind: "error", error };
    } finally {
      clearTimeout(timer);
    }
    const ret = this.now();
    if (outcome.kind === "ok") {
      this.counts.acked += 1;
      this.operations.push(describe(this.nextId++, call, ret, outcome.value));
      return outcome;
    }
    const name = outcome.kind === "timeout" ? "client timeout" : errorName(outcome.error);
    this.counts.errors.set(name, (this.counts.errors.get(name) ?? 0) + 1);
    if (outcome.kind === "timeout") this.counts.timedOut += 1;
    const unknown =
      isWrite &&
      (outcome.kind === "timeout" ||
        outcome.error instanceof AmbiguousResultError ||
        !isRetryable(outcome.error));
    if (unknown) {
      this.counts.ambiguous += 1;
      this.operations.push(describe(this.nextId++, call, PENDING, undefined));
    } else {
      // A read that failed returned nothing to anyone; a write refused as retryable had no effect.
      this.counts.failed += 1;
    }
    return outcome;
  }

  /** A linearizable read of `key` on `db`, recorded like any other get. */
  async get(db: ConcordDb, clientId: number, key: string): Promise<Outcome<string | null>> {
    return this.record(
      false,
      async () => {
        const kv = await db.get(key);
        return kv === null ? null : Buffer.from(kv.value).toString();
      },
      (id, call, ret, value) => ({
        id,
        clientId,
        key,
        kind: "get",
        call,
        ret,
        ...(value === undefined ? {} : { output: { value } }),
      }),
    );
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

export interface ClientLoopOptions {
  readonly clientId: number;
  readonly endpoints: readonly string[];
  readonly keys: readonly string[];
  readonly random: SeededRandom;
  readonly recorder: HistoryRecorder;
  readonly shouldStop: () => boolean;
  /** Pause between operations, keeping the load modest. */
  readonly pauseMs: number;
}

function connect(options: ClientLoopOptions): ConcordDb {
  // Each client starts at another member, so requests reach leader and followers alike.
  const shift = options.clientId % options.endpoints.length;
  const endpoints = [...options.endpoints.slice(shift), ...options.endpoints.slice(0, shift)];
  return Concord.connect({ endpoints, retry: CLIENT_RETRY, connectTimeoutMs: 3_000 });
}

/**
 * Issues one operation at a time until told to stop: puts of values unique to this client,
 * linearizable gets, and cas from the last value this client read (a get when it has none).
 * A timed-out handle is abandoned for a new one: its write queue may be stuck behind the
 * operation that never answered.
 */
export async function runClientLoop(options: ClientLoopOptions): Promise<void> {
  const { clientId, keys, random, recorder } = options;
  let db = connect(options);
  const lastRead = new Map<string, string>();
  let written = 0;
  try {
    while (!options.shouldStop()) {
      const key = keys[random.nextInt(keys.length)];
      if (key === undefined) throw new Error("the client loop needs at least one key");
      const roll = random.nextInt(10);
      const expected = lastRead.get(key);
      let outcome: Outcome<unknown>;
      if (roll < 4) {
        const value = `c${clientId}-${++written}`;
        outcome = await recorder.record(
          true,
          () => db.put(key, value),
          (id, call, ret, result) => ({
            id,
            clientId,
            key,
            kind: "put",
            value,
            call,
            ret,
            ...(result === undefined ? {} : { output: { ok: true } }),
          }),
        );
      } else if (roll < 7 || expected === undefined) {
        const read = await recorder.get(db, clientId, key);
        if (read.kind === "ok" && read.value !== null) lastRead.set(key, read.value);
        outcome = read;
      } else {
        const next = `c${clientId}-${++written}`;
        outcome = await recorder.record(
          true,
          () =>
            db.txn({
              compares: [Concord.compareValue(key, "=", expected)],
              success: [Concord.put(key, next)],
            }),
          (id, call, ret, result) => ({
            id,
            clientId,
            key,
            kind: "cas",
            expected,
            next,
            call,
            ret,
            ...(result === undefined ? {} : { output: { swapped: result.succeeded } }),
          }),
        );
      }
      if (outcome.kind === "timeout") {
        void db.close();
        db = connect(options);
      }
      await sleep(options.pauseMs);
    }
  } finally {
    await db.close();
  }
}
