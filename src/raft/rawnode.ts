/**
 * The caller's handle on one Raft core: feed it ticks, messages and requests; take a Ready,
 * act on it in the documented order, and `advance()`. Only one Ready may be outstanding.
 */
import { invariant } from "./assert.js";
import type { RaftConfig } from "./config.js";
import { encodeConfChange } from "./confchange/codec.js";
import { Raft } from "./raft.js";
import { entriesSize } from "./storage.js";
import {
  EntryType,
  hardStateEqual,
  message,
  MessageType,
  type ConfChange,
  type ConfState,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type SoftState,
} from "./types.js";

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: string;
  /** Heard from within the last election timeout (check-quorum resets it each timeout). */
  readonly recentActive: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly lastIndex: number;
  readonly leadTransferee: NodeId;
  readonly confState: ConfState;
  /** Followers' replication progress; filled in on the leader only. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>;
}

export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private readyOutstanding = false;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Moves the lease clock on without the election and heartbeat timers (Raft.advanceLeaseClock). */
  advanceLeaseClock(ticks: number): void {
    this.raft.advanceLeaseClock(ticks);
  }

  /** Campaign now instead of waiting for the election timeout. */
  campaign(): void {
    this.raft.campaign();
  }

  /** Propose `data` for the log; throws ProposalDroppedError if it cannot be accepted now. */
  propose(data: Uint8Array): void {
    this.raft.step(
      message({
        type: MessageType.Prop,
        to: this.raft.id,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
      true,
    );
  }

  /**
   * Proposes several entries in one step, so a leader sends each follower one append for all
   * of them; all are accepted or none (ProposalDroppedError).
   */
  proposeAll(data: readonly Uint8Array[]): void {
    this.raft.step(
      message({
        type: MessageType.Prop,
        to: this.raft.id,
        from: this.raft.id,
        entries: data.map((d) => ({ term: 0, index: 0, type: EntryType.Normal, data: d })),
      }),
      true,
    );
  }

  proposeConfChange(cc: ConfChange): void {
    this.raft.step(
      message({
        type: MessageType.Prop,
        to: this.raft.id,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }],
      }),
      true,
    );
  }

  /** Call when a committed ConfChange entry is applied; persist the returned membership. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  step(m: Message): void {
    invariant(m.to === this.raft.id, () => `message for ${m.to} stepped into node ${this.raft.id}`);
    this.raft.step(m);
  }

  /** Ask for a linearizable read point; the answer is a ReadState with the same context. */
  readIndex(context: Uint8Array): void {
    this.raft.readIndex(context);
  }

  transferLeader(transferee: NodeId): void {
    this.raft.transferLeader(transferee);
  }

  /**
   * Leader only: quiesce if nothing is in flight (see Raft.quiesce), queueing the quiesce
   * heartbeats; returns whether the group is quiesced. A quiesced core ignores ticks; any
   * other input wakes it.
   */
  quiesce(): boolean {
    return this.raft.quiesce();
  }

  /** Wakes a quiesced core: its ticks count again. */
  unquiesce(): void {
    this.raft.unquiesce();
  }

  /** True while ticks are ignored: a leader that quiesced, or a follower its leader quiesced. */
  get quiesced(): boolean {
    return this.raft.quiesced;
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  /**
   * Leader with `deferCommitNotices`: a follower is still owed the commit index. The caller
   * calls `flushCommitNotices()` within a bounded delay while this holds.
   */
  hasCommitNoticesPending(): boolean {
    return this.raft.hasCommitNoticesPending();
  }

  /**
   * Whether this node's acknowledgements ask the leader for commit notices at once (its
   * `deferCommitNotices` does not hold them back): while something here waits for what
   * commits. Default: only when this core does not defer notices itself.
   */
  setWantsCommitNotices(wanted: boolean): void {
    this.raft.setWantsCommitNotices(wanted);
  }

  /** Sends the deferred commit notices still owed (they appear in the next Ready). */
  flushCommitNotices(): void {
    this.raft.flushCommitNotices();
  }

  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    const r = this.raft;
    const soft = r.softState();
    return (
      soft.lead !== this.prevSoftState.lead ||
      soft.role !== this.prevSoftState.role ||
      !hardStateEqual(r.hardState(), this.prevHardState) ||
      r.hasReadBroadcastPending() ||
      r.messages.length > 0 ||
      r.readStates.length > 0 ||
      r.log.entriesToWrite().length > 0 ||
      r.log.hasPendingSnapshot() ||
      r.log.hasNextCommittedEntries()
    );
  }

  ready(): Ready {
    invariant(!this.readyOutstanding, "ready() called again before advance()");
    const r = this.raft;
    r.flushReadIndexBroadcast();
    const soft = r.softState();
    const hard = r.hardState();
    const softChanged = soft.lead !== this.prevSoftState.lead || soft.role !== this.prevSoftState.role;
    const hardChanged = !hardStateEqual(hard, this.prevHardState);
    const entries = r.log.entriesToWrite().slice();
    const rd: Ready = {
      softState: softChanged ? soft : null,
      hardState: hardChanged ? hard : null,
      readStates: r.readStates,
      entries,
      snapshot: r.log.unstable.snapshot,
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.messages,
      mustSync:
        entries.length > 0 ||
        r.log.unstable.snapshot !== null ||
        hard.term !== this.prevHardState.term ||
        hard.vote !== this.prevHardState.vote,
    };
    r.messages = [];
    r.readStates = [];
    if (softChanged) this.prevSoftState = soft;
    this.readyOutstanding = true;
    return rd;
  }

  /**
   * The caller has persisted, sent and applied everything in `rd`. With `durable` false it has
   * written `rd`'s entries and hard state but not made them durable yet (no snapshot then):
   * the core goes on, and counts those entries toward a quorum only once `persisted()` says so.
   */
  advance(rd: Ready, durable = true): void {
    invariant(this.readyOutstanding, "advance() without an outstanding ready()");
    invariant(durable || rd.snapshot === null, "a snapshot must be durable before advance()");
    this.readyOutstanding = false;
    const r = this.raft;
    if (rd.hardState) this.prevHardState = rd.hardState;
    if (rd.snapshot) r.log.stableSnapTo(rd.snapshot.metadata.index);
    const last = rd.entries[rd.entries.length - 1];
    if (last && durable) r.onPersisted(last.index, last.term);
    else if (last) r.log.writtenUpTo(last.index);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    const applied = Math.max(lastCommitted?.index ?? 0, rd.snapshot?.metadata.index ?? 0);
    if (applied > r.log.applied) r.appliedTo(applied);
    if (rd.committedEntries.length > 0) r.reduceUncommittedSize(entriesSize(rd.committedEntries));
  }

  /** Index of the last entry of the log, without building a whole status. */
  lastIndex(): number {
    return this.raft.log.lastIndex();
  }

  /** Entries up to `index` (of `term`), handed out by an advance() without `durable`, are durable now. */
  persisted(index: number, term: number): void {
    this.raft.onPersisted(index, term);
  }

  /** Term, vote and commit now, without building a whole status. */
  hardState(): HardState {
    return this.raft.hardState();
  }

  /** Leader and role now, without building a whole status. */
  softState(): SoftState {
    return this.raft.softState();
  }

  /** The current membership, without building a whole status. */
  confState(): ConfState {
    return this.raft.tracker.confState();
  }

  status(): RaftStatus {
    const r = this.raft;
    const progress = new Map<NodeId, ProgressStatus>();
    if (r.lead === r.id) {
      r.tracker.visit((id, pr) =>
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive }),
      );
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      leadTransferee: r.leadTransferee,
      confState: r.tracker.confState(),
      progress,
    };
  }
}
