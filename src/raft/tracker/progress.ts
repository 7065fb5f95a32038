/**
 * What the leader knows about one follower's log (match, next) and how it currently feeds it:
 * probing one message at a time, streaming optimistically within an inflight window, or waiting
 * for a snapshot to land. The leader's step code drives the transitions; this class keeps the
 * bookkeeping and its invariant `match < next` consistent.
 */
import { Inflights } from "./inflights.js";
import { RaftInvariantError, invariant } from "../assert.js";

export enum ProgressState {
  /** Where the follower's log diverges is unknown: send one append, then wait for its answer. */
  Probe = "probe",
  /** The follower is known to match up to `match`: stream appends within the inflight window. */
  Replicate = "replicate",
  /** The follower needs entries the leader has compacted: a snapshot is on its way. */
  Snapshot = "snapshot",
}

export interface ProgressInit {
  next: number;
  match?: number;
  maxInflight: number;
  maxInflightBytes: number;
  isLearner?: boolean;
  recentActive?: boolean;
}

export class Progress {
  /** Highest index known to be in the follower's log. */
  match: number;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** Index of the snapshot being sent while in Snapshot state; 0 otherwise. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round; the leader clears it each round. */
  recentActive: boolean;
  /**
   * In Probe: an append has been sent and the leader waits for its answer (or for a heartbeat
   * response, on which the leader clears it) before sending another.
   */
  msgAppFlowPaused = false;
  /**
   * The commit index the last append sent to the follower carried. A follower with entries in
   * flight is told of a new commit index when it acknowledges them, not by an empty append of
   * its own (whose answer would tell the leader nothing new).
   */
  sentCommit = 0;
  /**
   * The follower's last acknowledgement asked to hear of commits at once (something on its
   * node waits for what it applies); only such a follower's commit notices are not deferred
   * (RaftConfig.deferCommitNotices). Until it says otherwise, it does.
   */
  wantsCommitNotices = true;
  inflights: Inflights;
  isLearner: boolean;

  constructor(init: ProgressInit) {
    const match = init.match ?? 0;
    invariant(
      Number.isSafeInteger(init.next) && Number.isSafeInteger(match) && match >= 0 && match < init.next,
      () => `progress: need 0 <= match < next, got match=${match} next=${init.next}`,
    );
    this.match = match;
    this.next = init.next;
    this.inflights = new Inflights(init.maxInflight, init.maxInflightBytes);
    this.isLearner = init.isLearner ?? false;
    this.recentActive = init.recentActive ?? false;
  }

  /** Sending resumes by probing from just after the last known match. */
  becomeProbe(): void {
    // Coming back from Snapshot, the follower is expected to hold the snapshot unless it
    // acknowledged more already; probing from before it would just trigger another snapshot.
    const floor = this.state === ProgressState.Snapshot ? this.pendingSnapshot + 1 : 0;
    this.resetState(ProgressState.Probe);
    this.next = Math.max(this.match + 1, floor);
  }

  /** The follower acknowledged a match: stream from just after it. */
  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  /**
   * A snapshot at `snapshotIndex` is being sent. Appends are paused until the leader learns it
   * was applied (or failed) and moves the follower back to Probe.
   */
  becomeSnapshot(snapshotIndex: number): void {
    invariant(
      snapshotIndex >= this.match,
      () => `progress: snapshot at ${snapshotIndex} is behind match ${this.match}`,
    );
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /**
   * The follower acknowledged its log up to `n`. Returns true if that advanced `match`. Any
   * acknowledgement answers an outstanding probe, so sending resumes.
   */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * The leader sent an append carrying `entries` entries (`bytes` of payload) starting at
   * `next`. In Replicate the leader assumes it will be accepted: `next` moves past it and the
   * message occupies a slot of the inflight window. In Probe the leader waits for the answer
   * before sending again — even when the message carried no entries, since an empty append
   * probes the follower's log just the same. Nothing may be sent in Snapshot state.
   */
  sentEntries(entries: number, bytes: number): void {
    invariant(
      Number.isSafeInteger(entries) && entries >= 0,
      () => `progress: entries must be a non-negative integer, got ${entries}`,
    );
    switch (this.state) {
      case ProgressState.Replicate:
        if (entries > 0) {
          this.next += entries;
          this.inflights.add(this.next - 1, bytes);
        }
        return;
      case ProgressState.Probe:
        this.msgAppFlowPaused = true;
        return;
      case ProgressState.Snapshot:
        throw new RaftInvariantError(
          `progress: sent entries to a follower in Snapshot state (${this.toString()})`,
        );
    }
  }

  /**
   * The follower rejected an append whose previous entry was at `rejected`, hinting that its
   * log may match up to `matchHint`. Returns false if the rejection is stale (answers an
   * append sent before a newer decision about `next`), true if `next` was moved back.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // Everything up to match is known to be accepted, so a rejection at or below it is old.
      if (rejected <= this.match) return false;
      // Appends were pipelined past the rejection; resume right after the known match.
      this.next = this.match + 1;
      return true;
    }
    // Outside Replicate only one append is outstanding, and it was sent at next - 1; a
    // rejection of any other index answers an older message.
    if (rejected !== this.next - 1) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Whether the leader must hold off sending appends to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.msgAppFlowPaused;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  /** A copy that shares nothing mutable with this one. */
  clone(): Progress {
    const copy = new Progress({
      next: this.next,
      match: this.match,
      maxInflight: this.inflights.maxCount,
      maxInflightBytes: this.inflights.maxBytes,
      isLearner: this.isLearner,
      recentActive: this.recentActive,
    });
    copy.state = this.state;
    copy.pendingSnapshot = this.pendingSnapshot;
    copy.msgAppFlowPaused = this.msgAppFlowPaused;
    copy.sentCommit = this.sentCommit;
    copy.wantsCommitNotices = this.wantsCommitNotices;
    copy.inflights = this.inflights.clone();
    return copy;
  }

  toString(): string {
    let text = `${this.state} match=${this.match} next=${this.next}`;
    if (this.isLearner) text += " learner";
    if (this.isPaused()) text += " paused";
    if (this.pendingSnapshot > 0) text += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) text += " inactive";
    const inflight = this.inflights.count;
    if (inflight > 0) text += ` inflight=${inflight}${this.inflights.full() ? "[full]" : ""}`;
    return text;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }
}
