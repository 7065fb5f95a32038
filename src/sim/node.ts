/**
 * One simulated node: a real Raft core (RawNode) over the node's MemoryStorageEngine, the KV
 * state machine, and the Ready loop that ties them together on virtual time.
 *
 * Ready handling follows the core's contract: write snapshot, entries, hard state; when the
 * Ready must be synced, wait a random virtual disk latency and sync before anything else;
 * then send the messages, install the snapshot into the KV, apply committed entries, serve
 * read states once applied, and advance. A crash drops everything volatile (core, KV, pending
 * client requests, an in-flight Ready) and keeps a random prefix of the unsynced writes; a
 * restart rebuilds the core from storage and the KV from the stored snapshot, and the core
 * hands the committed entries after it out again.
 */
import {
  EntryType,
  RawNode,
  decodeConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  type InjectedBugs,
  type Message,
  type NodeId,
  type RaftStatus,
  type ReadOnlyOption,
  type Ready,
} from "../raft/index.js";
import type { ReplicaStorage } from "../storage/contracts.js";
import type { MemoryStorageEngine } from "../storage/memory.js";
import type { InvariantMonitor } from "./invariants.js";
import {
  KvStateMachine,
  decodeCommand,
  decodeRequestIdText,
  encodeCommand,
  encodeRequestId,
  requestIdText,
  type KvCommand,
  type KvResult,
  type RequestId,
} from "./kv.js";
import type { SeededRandom } from "./random.js";
import type { Scheduler } from "./scheduler.js";

/** The simulator runs a single Raft group; its id in every node's storage engine. */
export const GROUP_ID = 1;

export interface NodeSettings {
  /** Virtual milliseconds per Raft tick. */
  readonly tickMs: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  readonly maxSizePerMsg: number;
  /** A leader defers commit notices (RaftConfig.deferCommitNotices) until its next tick. */
  readonly deferCommitNotices: boolean;
  readonly maxInflightMsgs: number;
  readonly bugs: InjectedBugs;
  /** Inclusive range of virtual milliseconds a sync takes. */
  readonly diskLatency: readonly [number, number];
  /** Take a snapshot (which compacts the log) after this many entries applied since the last. */
  readonly snapshotEvery: number;
}

/** How a node reaches the rest of the simulation. */
export interface NodeEnvironment {
  readonly scheduler: Scheduler;
  readonly monitor: InvariantMonitor;
  /** Put `message` on the wire from `sender` (its `from` may name the originator instead). */
  send(sender: SimNode, message: Message): void;
  /** The node did something; the cluster observes its role and commit after the event. */
  touched(node: SimNode): void;
  trace(text: string): void;
  confChangeApplied(node: SimNode, index: number, change: ConfChange, confState: ConfState): void;
  snapshotInstalled(node: SimNode, index: number): void;
  snapshotTaken(node: SimNode, index: number): void;
  /** On restart the durable commit index was below the durable snapshot's and was raised. */
}

export type ProposalCallback = (result: KvResult, index: number) => void;
export type ReadCallback = (value: string | null) => void;

interface PendingRead {
  readonly key: string;
  readonly done: ReadCallback;
  /** Set once the ReadState arrived: serve when applied reaches it. */
  index: number | null;
}

/** The state a running incarnation holds; all of it is lost in a crash. */
interface Incarnation {
  readonly number: number;
  readonly raw: RawNode;
  readonly storage: ReplicaStorage;
  kv: KvStateMachine;
  applied: number;
  appliedConfState: ConfState;
  snapshotIndex: number;
  /** Snapshot as soon as the current Ready is done, whatever the entry count. */
  snapshotDue: boolean;
  /** A Ready was taken and is waiting for its sync. */
  readyInFlight: boolean;
  readonly proposals: Map<string, ProposalCallback>;
  readonly reads: Map<string, PendingRead>;
}

export class SimNode {
  private current: Incarnation | null = null;
  private incarnations = 0;
  /** Set once the node is decommissioned (removed from the group); it never runs again. */
  private retired = false;

  constructor(
    readonly id: NodeId,
    private readonly settings: NodeSettings,
    private readonly env: NodeEnvironment,
    private readonly random: SeededRandom,
    /** The node's disk: it outlives crashes (only its unsynced writes may be lost). */
    private readonly engine: MemoryStorageEngine,
  ) {}

  get running(): boolean {
    return this.current !== null;
  }

  get isRetired(): boolean {
    return this.retired;
  }

  /** The node's stored log, for invariant checks (only while running). */
  get log(): ReplicaStorage {
    return this.live().storage;
  }

  get applied(): number {
    return this.live().applied;
  }

  /** A digest of the KV state, equal across nodes that applied the same entries. */
  kvDigest(): string {
    return this.live().kv.digest();
  }

  /** The highest request sequence number of `client` this node's state machine applied. */
  lastAppliedRequest(client: number): number {
    return this.live().kv.lastApplied(client);
  }

  status(): RaftStatus {
    return this.live().raw.status();
  }

  hasPendingWork(): boolean {
    const c = this.live();
    return c.readyInFlight || c.raw.hasReady();
  }

  /** Write the initial membership as a snapshot at index 1, term 1 (before the first start). */
  bootstrap(confState: ConfState): void {
    if (this.incarnations !== 0) throw new Error(`node ${this.id}: bootstrap after it has started`);
    const storage = this.engine.replica(GROUP_ID);
    storage.saveSnapshot({
      metadata: { index: 1, term: 1, confState },
      data: new KvStateMachine().encodeSnapshot(),
    });
    storage.setHardState({ term: 1, vote: 0, commit: 1 });
    this.engine.syncNow();
  }

  /** Start (or restart after a crash) from whatever the storage engine holds. */
  start(): void {
    if (this.current !== null) throw new Error(`node ${this.id}: start while running`);
    if (this.retired) throw new Error(`node ${this.id}: start after retirement`);
    const number = ++this.incarnations;
    const storage = this.engine.replica(GROUP_ID);
    const snapshot = storage.snapshot();
    this.env.monitor.onStart(this.id, number, storage.hardState().commit);
    const applied = storage.appliedIndex();
    if (applied !== snapshot.metadata.index) {
      throw new Error(
        `node ${this.id}: applied index ${applied} differs from snapshot ${snapshot.metadata.index}`,
      );
    }
    const raw = new RawNode({
      id: this.id,
      electionTick: this.settings.electionTick,
      heartbeatTick: this.settings.heartbeatTick,
      storage,
      random: this.random.fork(`raft/${number}`),
      applied,
      preVote: this.settings.preVote,
      checkQuorum: this.settings.checkQuorum,
      readOnlyOption: this.settings.readOnlyOption,
      maxSizePerMsg: this.settings.maxSizePerMsg,
      deferCommitNotices: this.settings.deferCommitNotices,
      maxInflightMsgs: this.settings.maxInflightMsgs,
      restarted: number > 1,
      bugs: this.settings.bugs,
    });
    this.current = {
      number,
      raw,
      storage,
      kv: KvStateMachine.fromSnapshot(snapshot.data),
      applied,
      appliedConfState: storage.confState(),
      snapshotIndex: snapshot.metadata.index,
      snapshotDue: false,
      readyInFlight: false,
      proposals: new Map(),
      reads: new Map(),
    };
    this.env.trace(`n${this.id} start #${number}: applied ${applied}, commit ${storage.hardState().commit}`);
    const phase = 1 + this.random.fork(`tick-phase/${number}`).nextInt(this.settings.tickMs);
    this.scheduleTick(number, phase);
    this.env.touched(this);
  }

  /**
   * Power loss: volatile state is gone, and of the writes not yet synced only a random prefix
   * reaches the disk. Returns how many of the pending writes survived.
   */
  crash(random: Pick<SeededRandom, "intBetween">): { kept: number; pending: number } {
    if (this.current === null) throw new Error(`node ${this.id}: crash while not running`);
    this.current = null;
    const pending = this.engine.pendingWriteCount();
    const kept = random.intBetween(0, pending);
    this.engine.crash(kept);
    this.env.trace(`n${this.id} crash: kept ${kept} of ${pending} unsynced writes`);
    return { kept, pending };
  }

  /** Removed from the group: stop for good. */
  retire(): void {
    this.current = null;
    this.retired = true;
    this.env.trace(`n${this.id} retired`);
  }

  receive(message: Message): void {
    const c = this.current;
    if (c === null) return;
    c.raw.step(message);
    this.afterInput(c);
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    const c = this.current;
    if (c === null) return;
    c.raw.reportSnapshot(to, ok);
    this.afterInput(c);
  }

  reportUnreachable(to: NodeId): void {
    const c = this.current;
    if (c === null) return;
    c.raw.reportUnreachable(to);
    this.afterInput(c);
  }

  /**
   * Propose a KV command; `done` runs when this node applies it. Throws ProposalDroppedError
   * when the core refuses it at once (then it surely never takes effect).
   */
  propose(command: KvCommand, done: ProposalCallback): void {
    const c = this.live();
    c.raw.propose(encodeCommand(command));
    c.proposals.set(requestIdText(command.id), done);
    this.afterInput(c);
  }

  /** A linearizable read via ReadIndex; `done` runs once the read point is applied here. */
  read(key: string, id: RequestId, done: ReadCallback): void {
    const c = this.live();
    c.reads.set(requestIdText(id), { key, done, index: null });
    c.raw.readIndex(encodeRequestId(id));
    this.afterInput(c);
  }

  /** The client gave up on a request: forget its callback. */
  forget(id: RequestId): void {
    const c = this.current;
    if (c === null) return;
    c.proposals.delete(requestIdText(id));
    c.reads.delete(requestIdText(id));
  }

  proposeConfChange(change: ConfChange): void {
    const c = this.live();
    c.raw.proposeConfChange(change);
    this.afterInput(c);
  }

  transferLeader(transferee: NodeId): void {
    const c = this.live();
    c.raw.transferLeader(transferee);
    this.afterInput(c);
  }

  private live(): Incarnation {
    if (this.current === null) throw new Error(`node ${this.id} is not running`);
    return this.current;
  }

  private isCurrent(c: Incarnation): boolean {
    return this.current === c;
  }

  private scheduleTick(number: number, delay: number): void {
    this.env.scheduler.after(delay, () => {
      const c = this.current;
      if (c === null || c.number !== number) return;
      c.raw.tick();
      c.raw.flushCommitNotices();
      this.afterInput(c);
      this.scheduleTick(number, this.settings.tickMs);
    });
  }

  private afterInput(c: Incarnation): void {
    this.pump(c);
    this.env.touched(this);
  }

  /** Take and handle Readys until none is left or one waits for its sync. */
  private pump(c: Incarnation): void {
    while (this.isCurrent(c) && !c.readyInFlight && c.raw.hasReady()) {
      const rd = c.raw.ready();
      this.write(c, rd);
      if (rd.mustSync) {
        c.readyInFlight = true;
        const [low, high] = this.settings.diskLatency;
        this.env.scheduler.after(this.random.intBetween(low, high), () => {
          if (!this.isCurrent(c)) return;
          this.engine.syncNow();
          this.env.monitor.onSynced(this.id, c.storage.hardState().commit);
          c.readyInFlight = false;
          this.finish(c, rd);
          this.pump(c);
          this.env.touched(this);
        });
        return;
      }
      this.finish(c, rd);
    }
  }

  /** Step 1 of a Ready: write snapshot, entries, hard state (not yet durable). */
  private write(c: Incarnation, rd: Ready): void {
    if (rd.snapshot !== null) c.storage.saveSnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      c.storage.append(rd.entries);
      this.env.monitor.onEntriesWritten(this.id, rd.entries);
    }
    if (rd.hardState !== null) c.storage.setHardState(rd.hardState);
    this.env.monitor.onWritten(this.id, c.number, c.storage, rd.hardState);
  }

  /** Steps 2–4 of a Ready, once it is durable: send, apply, serve reads, advance. */
  private finish(c: Incarnation, rd: Ready): void {
    for (const m of rd.messages) this.env.send(this, m);
    if (rd.snapshot !== null) this.installSnapshot(c, rd);
    for (const entry of rd.committedEntries) this.apply(c, entry);
    for (const rs of rd.readStates) {
      const read = c.reads.get(decodeRequestIdText(rs.context));
      if (read !== undefined) read.index = rs.index;
    }
    this.serveReads(c);
    c.raw.advance(rd);
    this.maybeTakeSnapshot(c);
  }

  private installSnapshot(c: Incarnation, rd: Ready): void {
    const snapshot = rd.snapshot!;
    const index = snapshot.metadata.index;
    if (index <= c.applied) {
      throw new Error(`node ${this.id}: snapshot at ${index} is not ahead of applied ${c.applied}`);
    }
    c.kv = KvStateMachine.fromSnapshot(snapshot.data);
    c.applied = index;
    c.appliedConfState = snapshot.metadata.confState;
    c.snapshotIndex = index;
    this.env.trace(`n${this.id} installed snapshot at ${index} (term ${snapshot.metadata.term})`);
    this.env.snapshotInstalled(this, index);
  }

  private apply(c: Incarnation, entry: Entry): void {
    if (entry.index !== c.applied + 1) {
      throw new Error(`node ${this.id}: applying entry ${entry.index} after ${c.applied}`);
    }
    this.env.monitor.onApplied(this.id, entry);
    if (entry.type === EntryType.ConfChange) {
      const change = decodeConfChange(entry.data);
      const confState = c.raw.applyConfChange(change);
      c.appliedConfState = confState;
      // A node joining later is caught up by this node's snapshot only if the snapshot's
      // membership includes it (the core refuses one that does not): keep it current.
      c.snapshotDue = true;
      this.env.confChangeApplied(this, entry.index, change, confState);
    } else if (entry.data.length > 0) {
      const command = decodeCommand(entry.data);
      const result = c.kv.apply(command);
      const key = requestIdText(command.id);
      const done = c.proposals.get(key);
      if (result !== null && done !== undefined) {
        c.proposals.delete(key);
        done(result, entry.index);
      }
    }
    c.applied = entry.index;
  }

  private serveReads(c: Incarnation): void {
    for (const [key, read] of c.reads) {
      if (read.index !== null && read.index <= c.applied) {
        c.reads.delete(key);
        read.done(c.kv.get(read.key));
      }
    }
  }

  /** Snapshot the applied state; saving it compacts the log, so laggards need a snapshot. */
  private maybeTakeSnapshot(c: Incarnation): void {
    const index = c.applied;
    if (index <= c.snapshotIndex) return;
    if (!c.snapshotDue && index - c.snapshotIndex < this.settings.snapshotEvery) return;
    c.snapshotDue = false;
    c.storage.saveSnapshot({
      metadata: { index, term: c.storage.term(index), confState: c.appliedConfState },
      data: c.kv.encodeSnapshot(),
    });
    c.snapshotIndex = index;
    this.env.snapshotTaken(this, index);
  }
}
