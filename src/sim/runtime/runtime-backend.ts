/**
 * A client process of the runtime simulation and the `Backend` that lets a real `ConcordDb`
 * run in it, so code built on the client API (the recipes) runs unchanged on virtual time.
 *
 * `SimClientProcess` is what a client process owns of time: timers on the Scheduler, a
 * monotonic clock, and three faults. `freeze(ms)` is SIGSTOP: nothing of the process runs
 * until it thaws — its timers that come due are held back, and answers from the cluster are
 * delivered only at the thaw (the clock keeps running, as it would). `isolate(ms)` cuts the
 * process off the network while it keeps running: requests and answers are lost (requests
 * time out, open watches break). `crash()` is SIGKILL: nothing of it ever runs again (a
 * restarted client is a new process).
 *
 * `RuntimeBackend` sends requests to the replicas of the simulated nodes the way a real
 * client reaches a cluster: to one chosen node, failing over when that node is down, knows no
 * leader, is not the leader (lease keep-alives go to the leader the node names), or gives no
 * answer in time (a crashed node never answers: the process's own timeout turns that into a
 * read timeout, or an ambiguous result for a write).
 */
import { ConcordDb, type Backend, type ClientEnvironment, type RetryPolicy } from "../../api/db.js";
import { rangeStatus } from "../../api/native/server.js";
import type { RangeStatus } from "../../api/native/protocol.js";
import type { ConcordWatch } from "../../api/watch.js";
import type { KvCommand, RangeRequest } from "../../kv/commands.js";
import type { TimeToLive } from "../../kv/lease-clock.js";
import type { LeaseSummary } from "../../kv/leases.js";
import type { CommandResult, RangeResult } from "../../kv/results.js";
import type { WatchRequest, WatchResponse } from "../../kv/watch.js";
import {
  AmbiguousResultError,
  ReadTimeoutError,
  ReplicaRequestError,
  ReplicaStoppedError,
} from "../../node/errors.js";
import type { Replica } from "../../node/replica.js";
import type { ReadConsistency, RequestId } from "../../node/types.js";
import { NONE, type NodeId } from "../../raft/types.js";
import type { TimerHandle, Timers } from "../../transport/timers.js";
import type { ScheduledEvent, Scheduler } from "../scheduler.js";
import type { TraceText } from "../trace.js";

/** One client process's virtual time, freezes and death (see the file header). */
export class SimClientProcess implements Timers {
  private readonly pending = new Set<ScheduledEvent>();
  /** Callbacks that came due while frozen, in the order they came due. */
  private held: (() => void)[] = [];
  private frozenUntil = -1;
  private isolatedUntil = -1;
  private thaw: ScheduledEvent | null = null;
  private dead = false;

  constructor(
    readonly name: string,
    private readonly scheduler: Scheduler,
  ) {}

  get crashed(): boolean {
    return this.dead;
  }

  get frozen(): boolean {
    return this.frozenUntil > this.scheduler.now || this.thaw !== null;
  }

  /** Cut off the network: nothing it sends arrives, nothing sent to it arrives. */
  get isolated(): boolean {
    return this.isolatedUntil > this.scheduler.now;
  }

  /** Cuts the process off the network for `ms` of virtual time (a cut while cut extends it). */
  isolate(ms: number): void {
    this.isolatedUntil = Math.max(this.isolatedUntil, this.scheduler.now + ms);
  }

  monotonicNow(): number {
    return this.scheduler.now;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    if (this.dead) return { cancel: () => undefined };
    let cancelled = false;
    const event = this.scheduler.after(Math.max(0, delayMs), () => {
      this.pending.delete(event);
      this.deliver(() => {
        if (!cancelled) callback();
      });
    });
    this.pending.add(event);
    return {
      cancel: () => {
        cancelled = true;
        event.cancel();
        this.pending.delete(event);
      },
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  /** Runs `run` in this process: now, at the thaw when frozen, never once crashed. */
  deliver(run: () => void): void {
    if (this.dead) return;
    if (this.frozen) this.held.push(run);
    else run();
  }

  /** SIGSTOP for `ms` of virtual time, then SIGCONT (a freeze while frozen extends it). */
  freeze(ms: number): void {
    if (this.dead) return;
    this.frozenUntil = Math.max(this.frozenUntil, this.scheduler.now + ms);
    this.thaw?.cancel();
    this.thaw = this.scheduler.at(this.frozenUntil, () => {
      this.thaw = null;
      const held = this.held;
      this.held = [];
      for (const run of held) this.deliver(run);
    });
  }

  /** SIGKILL: every timer, held callback and answer of this process is dropped for good. */
  crash(): void {
    this.dead = true;
    this.thaw?.cancel();
    this.thaw = null;
    this.held = [];
    for (const event of this.pending) event.cancel();
    this.pending.clear();
  }

  /** The ConcordDb environment of this process: a deterministic client id and virtual sleeps. */
  environment(clientId: string): ClientEnvironment {
    return { clientId, sleep: (ms) => this.sleep(ms) };
  }
}

/** A simulated node as a client sees it: its id and the running incarnation's replica, if any. */
export interface SimEndpoint {
  readonly id: NodeId;
  replica(): Replica | undefined;
}

export interface RuntimeBackendOptions {
  readonly clientProcess: SimClientProcess;
  /** The nodes a client may contact (read at every request: membership may change). */
  readonly endpoints: () => readonly SimEndpoint[];
  /** The node tried first. */
  readonly firstNode: NodeId;
  /** A request without an answer after this long fails (ambiguous for a write). */
  readonly requestTimeoutMs: number;
  /** How often an open watch checks that its node still runs the incarnation it was opened on. */
  readonly watchCheckMs?: number;
  /** A line for the run's trace per lease keep-alive answered (they decide lease deadlines). */
  readonly trace?: (text: TraceText) => void;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Whether an error says the node this client talks to cannot serve it now. */
function failsOver(error: unknown): boolean {
  return error instanceof ReplicaRequestError;
}

export class RuntimeBackend implements Backend {
  private target: NodeId;
  private closed = false;

  constructor(private readonly options: RuntimeBackendOptions) {
    this.target = options.firstNode;
  }

  /** The node requests go to now. */
  get currentNode(): NodeId {
    return this.target;
  }

  write(rangeId: number, command: KvCommand, request: RequestId): Promise<CommandResult> {
    return this.call(
      rangeId,
      (replica) => replica.propose(command, request),
      () => new AmbiguousResultError(rangeId, `no answer within ${this.options.requestTimeoutMs} ms`),
    );
  }

  read(rangeId: number, request: RangeRequest, consistency: ReadConsistency): Promise<RangeResult> {
    return this.call(
      rangeId,
      (replica) => replica.range(request, consistency),
      () => new ReadTimeoutError(rangeId),
    );
  }

  status(rangeId: number): Promise<RangeStatus> {
    return this.call(
      rangeId,
      (replica) => Promise.resolve(rangeStatus(replica)),
      () => new ReadTimeoutError(rangeId),
    );
  }

  leaseKeepAlive(rangeId: number, id: bigint): Promise<number | null> {
    return this.call(
      rangeId,
      async (replica) => {
        const ttl = await replica.leaseKeepAlive(id);
        this.options.trace?.(
          () => `${this.options.clientProcess.name} keep-alive ${id} at n${replica.nodeId}: ${ttl}`,
        );
        return ttl;
      },
      () => new ReadTimeoutError(rangeId),
    );
  }

  leaseTimeToLive(rangeId: number, id: bigint, withKeys: boolean): Promise<TimeToLive | null> {
    return this.call(
      rangeId,
      (replica) => Promise.resolve(replica.leaseTimeToLive(id, withKeys)),
      () => new ReadTimeoutError(rangeId),
    );
  }

  leases(rangeId: number): Promise<readonly LeaseSummary[]> {
    return this.call(
      rangeId,
      (replica) => Promise.resolve(replica.leases()),
      () => new ReadTimeoutError(rangeId),
    );
  }

  watch(rangeId: number, request: WatchRequest): Promise<ConcordWatch> {
    return this.call(
      rangeId,
      (replica) => Promise.resolve(this.openWatch(rangeId, replica, request)),
      () => new ReadTimeoutError(rangeId),
    );
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /**
   * One attempt on the current node. Answers reach the caller through the process (held while
   * it is frozen, dropped once it crashed); an error that says the node cannot serve moves the
   * client on to another node for the next attempt, which ConcordDb's retries make.
   */
  private call<T>(
    rangeId: number,
    attempt: (replica: Replica) => Promise<T>,
    timeoutError: () => ReplicaRequestError,
  ): Promise<T> {
    const { clientProcess } = this.options;
    return new Promise<T>((resolve, reject) => {
      if (this.closed) {
        reject(new ReplicaStoppedError(rangeId));
        return;
      }
      const endpoint = this.endpoint();
      const replica = endpoint?.replica();
      if (replica === undefined) {
        this.failOver(null);
        reject(new ReplicaStoppedError(rangeId));
        return;
      }
      let settled = false;
      const timer = clientProcess.setTimeout(() => {
        if (settled) return;
        settled = true;
        this.failOver(replica);
        reject(timeoutError());
      }, this.options.requestTimeoutMs);
      const answer = (run: () => void): void =>
        clientProcess.deliver(() => {
          if (settled) return;
          settled = true;
          timer.cancel();
          run();
        });
      // Cut off: the request is lost on the way; the timeout above ends it.
      if (clientProcess.isolated) return;
      let pending: Promise<T>;
      try {
        pending = attempt(replica);
      } catch (error) {
        pending = Promise.reject(asError(error));
      }
      pending.then(
        (value) => {
          if (!clientProcess.isolated) answer(() => resolve(value));
        },
        (error: unknown) => {
          if (clientProcess.isolated) return;
          answer(() => {
            if (failsOver(error)) this.failOver(replica);
            reject(asError(error));
          });
        },
      );
    });
  }

  private endpoint(): SimEndpoint | undefined {
    return this.options.endpoints().find((e) => e.id === this.target);
  }

  /** The next node to try: the leader `replica` names if it knows one, else the next node by id. */
  private failOver(replica: Replica | null): void {
    const endpoints = this.options.endpoints();
    if (endpoints.length === 0) return;
    const named = replica?.termLeaderRevision().leader ?? NONE;
    if (named !== NONE && named !== this.target && endpoints.some((e) => e.id === named)) {
      this.target = named;
      return;
    }
    const ids = endpoints.map((e) => e.id).sort((a, b) => a - b);
    this.target = ids.find((id) => id > this.target) ?? ids[0]!;
  }

  private openWatch(rangeId: number, replica: Replica, request: WatchRequest): ConcordWatch {
    const watch = replica.watch(request);
    const nodeId = this.target;
    const nodeAlive = (): boolean =>
      this.options
        .endpoints()
        .find((e) => e.id === nodeId)
        ?.replica() === replica;
    return new ProcessWatch(rangeId, watch, this.options, nodeAlive);
  }
}

/**
 * A replica's watch seen from a client process: responses are delivered through the process,
 * and the watch fails with ReplicaStoppedError once its node no longer runs the incarnation it
 * was opened on or the process is cut off the network (a real client would see its
 * connection break).
 */
class ProcessWatch implements ConcordWatch {
  private cancelled = false;

  constructor(
    private readonly rangeId: number,
    private readonly watch: ConcordWatch,
    private readonly options: RuntimeBackendOptions,
    private readonly nodeAlive: () => boolean,
  ) {}

  cancel(): void {
    this.cancelled = true;
    this.watch.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchResponse> {
    const source = this.watch[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await this.nextOrBroken(source);
        if (next.done === true || this.cancelled) return;
        yield next.value;
      }
    } finally {
      this.cancel();
    }
  }

  /** The next response, delivered through the process; rejects once the node is gone. */
  private nextOrBroken(source: AsyncIterator<WatchResponse>): Promise<IteratorResult<WatchResponse>> {
    const { clientProcess } = this.options;
    const checkMs = this.options.watchCheckMs ?? 250;
    return new Promise((resolve, reject) => {
      let settled = false;
      let check: TimerHandle | null = null;
      const settle = (run: () => void): void =>
        clientProcess.deliver(() => {
          if (settled) return;
          settled = true;
          check?.cancel();
          run();
        });
      const watchNode = (): void => {
        check = clientProcess.setTimeout(() => {
          if (settled) return;
          if (this.nodeAlive() && !clientProcess.isolated) watchNode();
          else settle(() => reject(new ReplicaStoppedError(this.rangeId)));
        }, checkMs);
      };
      watchNode();
      source.next().then(
        (result) =>
          settle(() =>
            clientProcess.isolated ? reject(new ReplicaStoppedError(this.rangeId)) : resolve(result),
          ),
        (error: unknown) => settle(() => reject(asError(error))),
      );
    });
  }
}

/** A ConcordDb in `backend.clientProcess`, talking to the simulated cluster through a RuntimeBackend. */
export function simConcordDb(
  clientId: string,
  backend: RuntimeBackendOptions,
  retryPolicy: Partial<RetryPolicy> = {},
): { readonly db: ConcordDb; readonly backend: RuntimeBackend } {
  const runtimeBackend = new RuntimeBackend(backend);
  const db = new ConcordDb(
    runtimeBackend,
    retryPolicy,
    undefined,
    backend.clientProcess.environment(clientId),
  );
  return { db, backend: runtimeBackend };
}
