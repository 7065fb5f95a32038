/**
 * Test support for the node runtime: virtual time (a clock and timers only the test moves), a
 * seeded random source, a storage engine that records which groups each sync covered, and a
 * cluster of NodeHosts over one MemoryNetwork whose "disks" (storage engine and state-machine
 * engines) outlive the hosts, so a node can be restarted from them.
 */
import { putRequest, rangeRequest } from "../../src/kv/commands.js";
import { rangeNamespace } from "../../src/kv/keys.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import type { CommandResult } from "../../src/kv/results.js";
import { NodeHost } from "../../src/node/host.js";
import type { NodeHostOptions } from "../../src/node/options.js";
import type { Replica } from "../../src/node/replica.js";
import type { ReadConsistency } from "../../src/node/types.js";
import { EMPTY_CONF_STATE, StateRole, type NodeId, type RandomSource } from "../../src/raft/types.js";
import type { ReplicaStorage, StorageEngine } from "../../src/storage/contracts.js";
import { MemoryStorageEngine } from "../../src/storage/memory.js";
import { MemoryNetwork, type MemoryTransport } from "../../src/transport/memory.js";
import type { TimerHandle, Timers } from "../../src/transport/timers.js";
import type { Logger } from "../../src/transport/transport.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function b(text: string): Uint8Array {
  return encoder.encode(text);
}

export function s(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function put(key: string, value: string) {
  return putRequest({ key: b(key), value: b(value) });
}

/** The value of `key` read through `replica`, or null when absent. */
export async function get(
  replica: Replica,
  key: string,
  consistency: ReadConsistency = "serializable",
): Promise<string | null> {
  const result = await replica.range(rangeRequest({ key: b(key) }), consistency);
  const kv = result.kvs[0];
  return kv === undefined ? null : s(kv.value);
}

/** A settled-or-not view of a promise, for tests that step time while it is pending. */
export interface Tracked<T> {
  readonly settled: boolean;
  readonly value: T | undefined;
  readonly error: unknown;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const state: { settled: boolean; value: T | undefined; error: unknown } = {
    settled: false,
    value: undefined,
    error: undefined,
  };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

export function putRevision(result: CommandResult | undefined): bigint {
  if (result?.response.kind !== "put") throw new Error(`not a put result: ${JSON.stringify(result)}`);
  return result.revision;
}

/** Timers and a clock that move only when the test calls `advance`. */
export class VirtualTime {
  static readonly EPOCH_MS = 1_700_000_000_000;
  private nowMs = 0;
  private sequence = 0;
  private pending: { due: number; order: number; callback: () => void; cancelled: boolean }[] = [];

  readonly timers: Timers = {
    setTimeout: (callback, delayMs): TimerHandle => {
      const timer = { due: this.nowMs + delayMs, order: this.sequence++, callback, cancelled: false };
      this.pending.push(timer);
      return { cancel: () => (timer.cancelled = true) };
    },
  };

  readonly monotonic = (): number => this.nowMs;
  readonly wall = (): number => VirtualTime.EPOCH_MS + this.nowMs;

  get pendingTimers(): number {
    return this.pending.filter((t) => !t.cancelled).length;
  }

  /** Runs, in due order, every timer due within the next `ms` milliseconds. */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      this.pending = this.pending.filter((t) => !t.cancelled);
      let next: (typeof this.pending)[number] | undefined;
      for (const t of this.pending) {
        if (
          t.due <= target &&
          (next === undefined || t.due < next.due || (t.due === next.due && t.order < next.order))
        )
          next = t;
      }
      if (next === undefined) break;
      next.cancelled = true;
      this.nowMs = Math.max(this.nowMs, next.due);
      next.callback();
    }
    this.nowMs = target;
  }

  /**
   * `ms` pass inside one synchronous step (a slow apply): the clocks move on, and the timers
   * that fell due wait until the step is over and the test advances time again.
   */
  elapse(ms: number): void {
    this.nowMs += ms;
  }

  /**
   * Every process stopped for `ms` (SIGSTOP, a VM pause): the clocks jump, and each timer that
   * fell due meanwhile fires once, late, at the resumption, as Node's timers do.
   */
  stall(ms: number): void {
    this.nowMs += ms;
    this.advance(0);
  }
}

/** mulberry32: small, seeded, good enough for election timeouts. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return {
    nextInt(bound: number): number {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * bound);
    },
  };
}

export class RecordingLogger implements Logger {
  readonly warnings: string[] = [];
  warn(fields: object, message: string): void {
    this.warnings.push(`${message} ${JSON.stringify(fields)}`);
  }
  info(): void {}
}

const WRITES = new Set([
  "append",
  "compact",
  "setHardState",
  "setConfState",
  "setAppliedIndex",
  "saveSnapshot",
]);

/** A MemoryStorageEngine that records, for every sync, the groups written since the previous one. */
export class RecordingEngine implements StorageEngine {
  readonly inner = new MemoryStorageEngine();
  /** One entry per sync() call: the ids of the groups it covered writes of. */
  readonly syncs: number[][] = [];
  /** When set and true for a write, the write throws instead (a crash at that point). */
  failWrite: ((groupId: number, method: string) => boolean) | null = null;
  /** Whether syncNow makes writes durable at once, as a write-ahead log's inline write does. */
  syncsAtOnce = false;
  private written = new Set<number>();

  replica(groupId: number): ReplicaStorage {
    const storage = this.inner.replica(groupId);
    return new Proxy(storage, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]): unknown => {
          if (typeof property === "string" && WRITES.has(property)) {
            if (this.failWrite?.(groupId, property) === true)
              throw new Error(`injected crash at ${property}`);
            this.written.add(groupId);
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }

  groups(): number[] {
    return this.inner.groups();
  }

  dropGroup(groupId: number): void {
    this.inner.dropGroup(groupId);
  }

  sync(): Promise<void> {
    this.recordSync();
    return this.inner.sync();
  }

  /** Like a disk that must wait, unless `syncsAtOnce`; one with nothing to write is durable now. */
  syncNow(): boolean {
    if (!this.syncsAtOnce) return this.inner.pendingWriteCount() === 0;
    this.recordSync();
    return this.inner.syncNow();
  }

  private recordSync(): void {
    this.syncs.push([...this.written].sort((x, y) => x - y));
    this.written = new Set();
  }
}

/** What survives a node's restart: its storage engine and its ranges' state-machine engines. */
export interface Disk {
  readonly engine: RecordingEngine;
  readonly kvs: Map<number, MemoryOrderedKv>;
}

export type HostOverrides = Partial<Omit<NodeHostOptions, "nodeId" | "engine" | "transport">>;

export interface ClusterOptions {
  /**
   * Every range of a node keeps its state machine in ONE engine (kvs key 0), each under
   * rangeNamespace(rangeId), as a real node does — what splits need. Default: one engine per range.
   */
  readonly sharedStateMachine?: boolean;
}

export class TestCluster {
  readonly time = new VirtualTime();
  readonly network = new MemoryNetwork();
  readonly logger = new RecordingLogger();
  readonly disks = new Map<NodeId, Disk>();
  readonly hosts = new Map<NodeId, NodeHost>();
  /** Milliseconds a node's wall clock is ahead of virtual time (set before starting it). */
  readonly wallSkewMs = new Map<NodeId, number>();
  private readonly transports = new Map<NodeId, MemoryTransport>();
  private starts = 0;

  constructor(
    readonly ids: readonly NodeId[],
    private readonly overrides: HostOverrides = {},
    private readonly clusterOptions: ClusterOptions = {},
  ) {
    for (const id of ids) this.disks.set(id, { engine: new RecordingEngine(), kvs: new Map() });
  }

  get tickMs(): number {
    return this.overrides.tickMs ?? 100;
  }

  /** Starts (or restarts) node `id` on its disk; its earlier host must be stopped. */
  async startNode(id: NodeId): Promise<NodeHost> {
    let disk = this.disks.get(id);
    if (disk === undefined) {
      disk = { engine: new RecordingEngine(), kvs: new Map() };
      this.disks.set(id, disk);
    }
    const { kvs } = disk;
    const transport = this.network.createTransport(id);
    const host = new NodeHost({
      nodeId: id,
      engine: disk.engine,
      transport,
      timers: this.time.timers,
      monotonicClock: this.time.monotonic,
      wallClock: () => this.time.wall() + (this.wallSkewMs.get(id) ?? 0),
      random: seededRandom(id * 1000 + ++this.starts),
      logger: this.logger,
      stateMachine: (rangeId) => {
        const shared = this.clusterOptions.sharedStateMachine === true;
        const engineId = shared ? 0 : rangeId;
        let kv = kvs.get(engineId);
        if (kv === undefined) {
          kv = new MemoryOrderedKv();
          kvs.set(engineId, kv);
        }
        const storeOptions = shared ? { storeOptions: { namespace: rangeNamespace(rangeId) } } : {};
        return { kv, sync: () => Promise.resolve(), ...storeOptions };
      },
      ...this.overrides,
    });
    await transport.start();
    host.start();
    this.hosts.set(id, host);
    this.transports.set(id, transport);
    return host;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.startNode(id);
  }

  async stopNode(id: NodeId): Promise<void> {
    await this.host(id).stop();
    await this.transports.get(id)?.close();
    this.hosts.delete(id);
  }

  host(id: NodeId): NodeHost {
    const host = this.hosts.get(id);
    if (host === undefined) throw new Error(`node ${id} is not running`);
    return host;
  }

  /** The running transport of node `id`. */
  transport(id: NodeId): MemoryTransport {
    const transport = this.transports.get(id);
    if (transport === undefined) throw new Error(`node ${id} has no transport`);
    return transport;
  }

  replica(id: NodeId, rangeId: number): Replica {
    const replica = this.host(id).replica(rangeId);
    if (replica === undefined) throw new Error(`node ${id} has no replica of range ${rangeId}`);
    return replica;
  }

  /** Creates range `rangeId` on `members` (default: every node), all founding voters. */
  bootstrap(rangeId: number, members: readonly NodeId[] = this.ids): void {
    const confState = { ...EMPTY_CONF_STATE, voters: [...members] };
    for (const id of members) this.host(id).createReplica(rangeId, { bootstrap: confState });
  }

  /** The node whose replica of `rangeId` leads in the highest term, if any. */
  leader(rangeId: number): NodeId | null {
    let best: { id: NodeId; term: number } | null = null;
    for (const [id, host] of this.hosts) {
      const status = host.replica(rangeId)?.status();
      if (status?.role === StateRole.Leader && (best === null || status.term > best.term)) {
        best = { id, term: status.term };
      }
    }
    return best?.id ?? null;
  }

  /**
   * Delivers messages and lets hosts run their turns until nothing moves (or `stopWhen` holds,
   * checked after every round). Time does not pass.
   */
  async settle(stopWhen?: () => boolean): Promise<void> {
    for (let round = 0; round < 100_000; round++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (stopWhen?.() === true) return;
      const delivered = this.network.deliver();
      if (delivered === 0 && [...this.hosts.values()].every((h) => h.isIdle())) return;
    }
    throw new Error("the cluster did not settle");
  }

  /** Lets `ticks` ticks of virtual time pass, settling after each. */
  async tick(ticks = 1, stopWhen?: () => boolean): Promise<void> {
    for (let i = 0; i < ticks; i++) {
      this.time.advance(this.tickMs);
      await this.settle(stopWhen);
      if (stopWhen?.() === true) return;
    }
  }

  /** Moves virtual time tick by tick until `predicate` holds; fails after `maxTicks`. */
  async runUntil(predicate: () => boolean, what: string, maxTicks = 300): Promise<void> {
    await this.settle(predicate);
    for (let i = 0; i < maxTicks && !predicate(); i++) await this.tick(1, predicate);
    if (!predicate()) throw new Error(`not reached within ${maxTicks} ticks: ${what}`);
  }

  /** Runs until range `rangeId` has a leader that every running replica of it knows. */
  async elect(rangeId: number): Promise<NodeId> {
    const agreed = () => {
      const leader = this.leader(rangeId);
      return (
        leader !== null &&
        [...this.hosts.values()].every((h) => (h.replica(rangeId)?.status().leader ?? leader) === leader)
      );
    };
    await this.runUntil(agreed, `a leader of range ${rangeId} known to all`);
    return this.leader(rangeId)!;
  }

  /** Runs until every running replica of `rangeId` has applied at least `index`. */
  async waitApplied(rangeId: number, index: number): Promise<void> {
    await this.runUntil(
      () => [...this.hosts.values()].every((h) => (h.replica(rangeId)?.appliedIndex ?? index) >= index),
      `every replica of range ${rangeId} applied ${index}`,
    );
  }

  /** Fails if any host stopped on an error. */
  assertHealthy(): void {
    for (const [id, host] of this.hosts) {
      if (host.failure !== null) throw new Error(`node ${id} failed: ${host.failure.stack}`);
    }
  }

  async shutdown(): Promise<void> {
    for (const id of [...this.hosts.keys()]) await this.stopNode(id);
  }
}
