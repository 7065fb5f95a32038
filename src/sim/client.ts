/**
 * Simulated clients and the history they record for the linearizability checker.
 *
 * Each client runs one operation at a time (put, get, or compare-and-set on a small key set)
 * against a randomly chosen node. Writes are proposed to that node (a follower forwards them
 * to the leader); reads use ReadIndex. Outcomes:
 * - answered: recorded with its response time;
 * - refused at once (node down, ProposalDroppedError): surely without effect, so not recorded
 *   at all, only counted as failed;
 * - no answer within the timeout: recorded as pending (ret = Infinity) — the write may or may
 *   not have happened, and the checker must allow both.
 */
import { ProposalDroppedError } from "../raft/index.js";
import { PENDING, formatOperation, type Operation, type RegisterValue } from "./linearizability/index.js";
import type { KvCommand, KvResult, RequestId } from "./kv.js";
import type { SimNode } from "./node.js";
import type { SeededRandom } from "./random.js";
import type { ScheduledEvent, Scheduler } from "./scheduler.js";

export interface ClientSettings {
  readonly count: number;
  readonly keys: readonly string[];
  /** Virtual milliseconds without an answer after which an operation counts as ambiguous. */
  readonly timeoutMs: number;
  /** Inclusive range of the pause between one operation's end and the next one's start. */
  readonly thinkMs: readonly [number, number];
  /** Extra pause after a refusal (node down, no leader), as a real client backs off. */
  readonly refusalBackoffMs: number;
  /** Relative weights of the operation kinds. */
  readonly mix: { readonly put: number; readonly get: number; readonly cas: number };
}

export interface ClientCounters {
  /** Writes (put, cas) answered. */
  acked: number;
  /** Operations refused before they could take effect (not in the history). */
  failed: number;
  /** Writes that timed out: recorded as pending. */
  ambiguous: number;
  readsServed: number;
  readsTimedOut: number;
}

/** A write the cluster acknowledged, and the log index it was applied at. */
export interface AcknowledgedWrite {
  readonly request: RequestId;
  readonly index: number;
}

/** Collects the history: operation ids are assigned in invocation order. */
export class HistoryRecorder {
  private readonly operations: Operation[] = [];
  private nextId = 0;

  allocateId(): number {
    return this.nextId++;
  }

  record(operation: Operation): void {
    this.operations.push(operation);
  }

  /** The recorded operations, ordered by id. */
  history(): Operation[] {
    return this.operations.slice().sort((a, b) => a.id - b.id);
  }
}

/** How a client finds a node to talk to. */
export interface ClientDirectory {
  /** A random node of the cluster (it may be down). */
  pickNode(random: SeededRandom): SimNode | undefined;
  trace(text: string): void;
}

interface InFlight {
  readonly historyId: number;
  readonly request: RequestId;
  readonly node: SimNode;
  readonly timer: ScheduledEvent;
  /** Builds the operation as it will be recorded, from its response time and output. */
  readonly settle: (ret: number, output: KvResult | { value: RegisterValue } | null) => Operation;
}

export class SimClient {
  private seq = 0;
  private stopped = true;
  private inFlight: InFlight | null = null;
  private nextOperation: ScheduledEvent | null = null;
  /** The last value this client saw per key, to give compare-and-set a fair chance. */
  private readonly lastSeen = new Map<string, RegisterValue>();

  constructor(
    readonly id: number,
    private readonly settings: ClientSettings,
    private readonly random: SeededRandom,
    private readonly scheduler: Scheduler,
    private readonly directory: ClientDirectory,
    private readonly recorder: HistoryRecorder,
    private readonly counters: ClientCounters,
    private readonly acknowledged: AcknowledgedWrite[],
  ) {}

  get busy(): boolean {
    return this.inFlight !== null;
  }

  start(): void {
    this.stopped = false;
    this.scheduleNext();
  }

  /** Issue no new operation; the one in flight still completes or times out. */
  stop(): void {
    this.stopped = true;
    this.nextOperation?.cancel();
    this.nextOperation = null;
  }

  /** A linearizable read of `key` through `node`, recorded like any other (used at the end). */
  readThrough(node: SimNode, key: string): void {
    if (this.inFlight !== null) throw new Error(`client ${this.id}: read while an operation is in flight`);
    this.issueGet(node, key);
  }

  /** End of the run: whatever is still unanswered is recorded as pending. */
  abandon(): void {
    const op = this.inFlight;
    if (op === null) return;
    this.giveUp(op, "abandoned at the end of the run");
  }

  private scheduleNext(backoffMs = 0): void {
    if (this.stopped) return;
    const [low, high] = this.settings.thinkMs;
    this.nextOperation = this.scheduler.after(backoffMs + this.random.intBetween(low, high), () => {
      this.nextOperation = null;
      this.issueRandom();
    });
  }

  private issueRandom(): void {
    const { put, get, cas } = this.settings.mix;
    const roll = this.random.nextInt(put + get + cas);
    const key = this.random.pick(this.settings.keys);
    const node = this.directory.pickNode(this.random);
    if (node === undefined || !node.running) {
      this.counters.failed++;
      this.scheduleNext(this.settings.refusalBackoffMs);
      return;
    }
    if (roll < get) this.issueGet(node, key);
    else this.issueWrite(node, key, roll < get + put ? "put" : "cas");
  }

  private nextRequest(): RequestId {
    return { client: this.id, seq: ++this.seq };
  }

  private issueGet(node: SimNode, key: string): void {
    const request = this.nextRequest();
    const historyId = this.recorder.allocateId();
    const call = this.scheduler.now;
    const settle = (ret: number, output: KvResult | { value: RegisterValue } | null): Operation => {
      if (output === null) return { id: historyId, clientId: this.id, key, call, ret, kind: "get" };
      if (!("value" in output)) throw new Error(`client ${this.id}: a read answered with ${output.kind}`);
      return {
        id: historyId,
        clientId: this.id,
        key,
        call,
        ret,
        kind: "get",
        output: { value: output.value },
      };
    };
    this.begin(historyId, request, node, settle);
    this.submit(node, request, `get ${key}`, () =>
      node.read(key, request, (value) => {
        this.lastSeen.set(key, value);
        this.counters.readsServed++;
        this.complete(historyId, { value });
      }),
    );
  }

  private issueWrite(node: SimNode, key: string, kind: "put" | "cas"): void {
    const request = this.nextRequest();
    const value = `c${this.id}.${request.seq}`;
    const expected = this.lastSeen.get(key) ?? null;
    const command: KvCommand =
      kind === "put" ? { kind, id: request, key, value } : { kind, id: request, key, expected, value };
    const historyId = this.recorder.allocateId();
    const call = this.scheduler.now;
    const settle = (ret: number, output: KvResult | { value: RegisterValue } | null): Operation => {
      const base = { id: historyId, clientId: this.id, key, call, ret };
      if (command.kind === "put") {
        if (output === null) return { ...base, kind: "put", value };
        return { ...base, kind: "put", value, output: { ok: true } };
      }
      if (output === null) return { ...base, kind: "cas", expected, next: value };
      if (!("kind" in output) || output.kind !== "cas")
        throw new Error(`client ${this.id}: cas got a wrong answer`);
      return { ...base, kind: "cas", expected, next: value, output: { swapped: output.swapped } };
    };
    this.begin(historyId, request, node, settle);
    this.submit(node, request, `${kind} ${key}`, () =>
      node.propose(command, (result, index) => {
        this.counters.acked++;
        this.acknowledged.push({ request, index });
        if (result.kind === "put" || result.swapped) this.lastSeen.set(key, value);
        this.complete(historyId, result);
      }),
    );
  }

  /**
   * Hand the request to the node. The answer may come back synchronously, so the operation is
   * in flight before the call; a ProposalDroppedError means it never entered the log, so it is
   * dropped from the history (its id stays unused).
   */
  private submit(node: SimNode, request: RequestId, what: string, call: () => void): void {
    try {
      call();
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      const op = this.inFlight;
      if (op !== null && op.request === request) {
        op.timer.cancel();
        this.inFlight = null;
      }
      node.forget(request);
      this.counters.failed++;
      this.directory.trace(`client ${this.id} ${what} refused by n${node.id}: ${e.message}`);
      this.scheduleNext(this.settings.refusalBackoffMs);
    }
  }

  private begin(historyId: number, request: RequestId, node: SimNode, settle: InFlight["settle"]): void {
    const timer = this.scheduler.after(this.settings.timeoutMs, () => {
      const op = this.inFlight;
      if (op === null || op.historyId !== historyId) return;
      this.giveUp(op, "timed out");
      this.scheduleNext();
    });
    this.inFlight = { historyId, request, node, timer, settle };
  }

  private complete(historyId: number, output: KvResult | { value: RegisterValue }): void {
    const op = this.inFlight;
    if (op === null || op.historyId !== historyId) {
      throw new Error(`client ${this.id}: answer for operation ${historyId}, which is not in flight`);
    }
    op.timer.cancel();
    this.inFlight = null;
    const operation = op.settle(this.scheduler.now, output);
    this.recorder.record(operation);
    this.directory.trace(`client ${this.id} ${formatOperation(operation)} via n${op.node.id}`);
    this.scheduleNext();
  }

  private giveUp(op: InFlight, why: string): void {
    op.timer.cancel();
    op.node.forget(op.request);
    this.inFlight = null;
    const operation = op.settle(PENDING, null);
    if (operation.kind === "get") this.counters.readsTimedOut++;
    else this.counters.ambiguous++;
    this.recorder.record(operation);
    this.directory.trace(`client ${this.id} ${formatOperation(operation)} via n${op.node.id} ${why}`);
  }
}
