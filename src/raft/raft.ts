/**
 * The Raft state machine: roles, elections (pre-vote, check-quorum, leader stickiness),
 * replication driven by per-follower progress, the commit rule, ReadIndex and lease reads,
 * leadership transfer, membership changes and snapshots. Pure and deterministic: inputs are
 * `tick()`, `step(message)` and a few local requests; outputs accumulate in `messages` and
 * `readStates` and are handed out by RawNode as a Ready.
 */
import { checkedIncrement, invariant } from "./assert.js";
import { resolveConfig, ReadOnlyOption, type RaftConfig, type ResolvedRaftConfig } from "./config.js";
import { Changer, confChangeEntersJoint, confChangeLeavesJoint } from "./confchange/changer.js";
import { decodeConfChange, encodeConfChange } from "./confchange/codec.js";
import { restoreConfState } from "./confchange/restore.js";
import { RaftLog } from "./log.js";
import { jointCommittedIndex, jointVoteResult, VoteResult } from "./quorum.js";
import { ReadOnlyQueue } from "./readonly.js";
import { entriesSize, SnapshotTemporarilyUnavailableError } from "./storage.js";
import { Progress, ProgressState } from "./tracker/progress.js";
import { ProgressTracker, type ProgressMap, type TrackerConfig } from "./tracker/tracker.js";
import {
  ConfChangeTransition,
  EMPTY_BYTES,
  EntryType,
  message,
  MessageType,
  NONE,
  StateRole,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SoftState,
} from "./types.js";

/** A proposal could not be accepted (no leader, transfer in progress, limits); safe to retry. */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`raft proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

enum CampaignKind {
  PreElection = "pre-election",
  Election = "election",
  /** Forced by a leadership transfer: skips pre-vote and overrides leader stickiness. */
  Transfer = "transfer",
}

/** Vote context marking a campaign forced by a leadership transfer. */
const TRANSFER_CONTEXT = new Uint8Array([0x74]);

function isTransferContext(context: Uint8Array): boolean {
  return context.length === 1 && context[0] === TRANSFER_CONTEXT[0];
}

/**
 * Heartbeat context of a leader's last heartbeat before it quiesces; `readIndex` refuses it as
 * a read context, so the marker cannot be mistaken for one.
 */
export const QUIESCE_CONTEXT = new Uint8Array([0x71]);

function isQuiesceContext(context: Uint8Array): boolean {
  return context.length === 1 && context[0] === QUIESCE_CONTEXT[0];
}

/**
 * Context of an append that carries no entries to a follower in replicate state whose match
 * is the append's previous index: it only moves the follower's commit index (the leader sends
 * one to every follower when its commit index advances), and its follower does not answer it
 * unless it rejects. The answer would tell the leader nothing: the entries were acknowledged
 * already, and liveness and leases come from heartbeats. At one request at a time these
 * answers were a third of the messages a write cost.
 */
export const COMMIT_NOTICE_CONTEXT = new Uint8Array([0x63]);

function isCommitNotice(m: Message): boolean {
  return m.entries.length === 0 && m.context.length === 1 && m.context[0] === COMMIT_NOTICE_CONTEXT[0];
}

/**
 * Context of a follower's acknowledgement that asks to hear of the entries' commit at once,
 * not when a deferred commit notice is due (RaftConfig.deferCommitNotices): something on its
 * node waits for what it applies.
 */
export const COMMIT_NOTICE_WANTED_CONTEXT = new Uint8Array([0x77]);

function wantsCommitNotices(m: Message): boolean {
  return m.context.length === 1 && m.context[0] === COMMIT_NOTICE_WANTED_CONTEXT[0];
}

function voteResponseType(type: MessageType): MessageType {
  return type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
}

function confStateIncludes(cs: ConfState, id: NodeId): boolean {
  return (
    cs.voters.includes(id) ||
    cs.learners.includes(id) ||
    cs.votersOutgoing.includes(id) ||
    cs.learnersNext.includes(id)
  );
}

/** The payload of the empty conf change that leaves a joint configuration. */
const LEAVE_JOINT_DATA = encodeConfChange({
  transition: ConfChangeTransition.Auto,
  changes: [],
  context: EMPTY_BYTES,
});

export class Raft {
  readonly id: NodeId;
  readonly config: ResolvedRaftConfig;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: StateRole = StateRole.Follower;
  /** This node is a learner in the current configuration (or not a member at all). */
  isLearner = false;
  readonly log: RaftLog;
  tracker: ProgressTracker;
  /** Outgoing messages, handed to the caller by RawNode. */
  messages: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee: NodeId = NONE;
  /** Index of the last conf change proposed by this leader; no second one until it applies. */
  pendingConfIndex = 0;
  private uncommittedSize = 0;
  private readOnly = new ReadOnlyQueue();
  /** ReadIndex requests received before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];
  private readBroadcastPending = false;
  /** Leader: a commit notice was deferred (`deferCommitNotices`) and may still be owed. */
  private commitNoticesPending = false;
  /** Follower: its acknowledgements ask to hear of commits at once (setWantsCommitNotices). */
  private wantsCommitNotices: boolean;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * The lease clock: ticks since this core started, plus what advanceLeaseClock added; stamps
   * heartbeats so that lease reads can be judged.
   */
  private tickCount = 0;
  /** Leader: per voter, when (tickCount + 1) the newest heartbeat it answered was sent. */
  private heartbeatAckTick = new Map<NodeId, number>();
  /**
   * Leader: a TimeoutNow went out in this term. Its target campaigns without waiting out the
   * voters' check-quorum leases whenever the message arrives (however late), so no lease of
   * this term can be trusted again: reads take a heartbeat round until the term ends.
   */
  private leaseForfeited = false;
  /** Ticks left during which a restarted core refuses votes (RaftConfig.restarted). */
  private restartedLeaseTicks = 0;
  /**
   * Quiesced: ticks are ignored (no heartbeats, no election timer) until any other input
   * arrives. A leader quiesces by `quiesce()`, a follower on its leader's quiesce heartbeat.
   */
  quiesced = false;

  constructor(config: RaftConfig) {
    this.config = resolveConfig(config);
    this.id = this.config.id;
    // A core that defers its own notices asks for them only when told to; one that does not,
    // always (a leader that defers serves a follower that does not as before).
    this.wantsCommitNotices = !this.config.deferCommitNotices;
    this.log = new RaftLog(this.config.storage, this.config.maxCommittedSizePerReady);
    this.tracker = new ProgressTracker(this.config.maxInflightMsgs, this.config.maxInflightBytes);
    const { hardState, confState } = this.config.storage.initialState();
    restoreConfState(this.tracker, this.log.lastIndex(), confState);
    this.isLearner = this.tracker.progress.get(this.id)?.isLearner ?? false;
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    if (this.config.applied > 0) this.log.appliedTo(this.config.applied);
    this.becomeFollower(this.term, NONE);
    if (this.config.restarted && this.config.checkQuorum) this.restartedLeaseTicks = this.config.electionTick;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  private loadState(hs: HardState): void {
    invariant(
      hs.commit <= this.log.lastIndex(),
      () => `persisted commit ${hs.commit} beyond the last index ${this.log.lastIndex()}`,
    );
    // A snapshot from the leader is persisted before the hard state that commits it, so after a
    // crash between the two the durable commit may lag the snapshot. The snapshot holds only
    // committed entries, so its index (log.committed here) is the better lower bound.
    this.log.committed = Math.max(hs.commit, this.log.committed);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---------------------------------------------------------------- sending

  private send(fields: Partial<Message> & Pick<Message, "type" | "to">): void {
    const m = message({ from: this.id, ...fields });
    invariant(m.to !== this.id, () => `message ${MessageType[m.type]} addressed to self`);
    if (
      m.type === MessageType.Vote ||
      m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      // Vote traffic carries the term of the campaign, which is not always ours.
      invariant(m.term !== 0, () => `${MessageType[m.type]} sent without a term`);
      this.messages.push(m);
    } else if (m.type === MessageType.Prop || m.type === MessageType.ReadIndex) {
      // Forwarded requests are not bound to a term: the leader judges them by its own.
      this.messages.push(m);
    } else {
      this.messages.push({ ...m, term: this.term });
    }
  }

  /** Send entries (or a snapshot) to `to` if its progress allows; returns whether it sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let entries: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      entries = this.log.entriesFrom(pr.next, this.config.maxSizePerMsg);
    } catch {
      // The follower needs entries that were compacted away: it needs a snapshot.
      return this.maybeSendSnapshot(to, pr);
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    // Only to a follower known to hold everything up to here: otherwise the answer is how the
    // leader learns what an answer lost on the way would have told it.
    const notice = entries.length === 0 && pr.state === ProgressState.Replicate && prevIndex === pr.match;
    this.send({
      type: MessageType.App,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
      ...(notice ? { context: COMMIT_NOTICE_CONTEXT } : {}),
    });
    pr.sentEntries(entries.length, entriesSize(entries));
    pr.sentCommit = this.log.committed;
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // An inactive follower would not take it anyway; wait until it is heard from again.
    if (!pr.recentActive) return false;
    let snapshot: Snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) return false;
      throw e;
    }
    invariant(snapshot.metadata.index !== 0, "need a non-empty snapshot to send");
    // A snapshot from before `to` joined would be refused by it: wait for a newer one (the
    // application snapshots periodically) rather than resend it forever.
    if (!confStateIncludes(snapshot.metadata.confState, to)) return false;
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send({ type: MessageType.Snap, to, snapshot });
    return true;
  }

  private sendHeartbeat(to: NodeId, context: Uint8Array): void {
    const pr = this.tracker.progress.get(to)!;
    // Never tell a follower to commit beyond what it is known to have.
    const commit = Math.min(pr.match, this.log.committed);
    pr.sentCommit = Math.max(pr.sentCommit, commit);
    // `index` carries the send time (1-based, so 0 means "never"), echoed back for lease reads.
    this.send({ type: MessageType.Heartbeat, to, commit, index: this.tickCount + 1, context });
  }

  private forEachPeer(fn: (id: NodeId, pr: Progress) => void): void {
    this.tracker.visit((id, pr) => {
      if (id !== this.id) fn(id, pr);
    });
  }

  private broadcastAppend(): void {
    this.forEachPeer((id) => this.sendAppend(id));
  }

  /**
   * The commit index advanced: every follower hears of it, with new entries if it has some to
   * get, else by a commit notice — except a follower in Replicate whose acknowledgement of
   * everything sent is still on its way. An empty append would not be a notice to it (it is not
   * known to hold the entries), so it would answer, telling the leader nothing its pending
   * acknowledgement will not; that acknowledgement brings it the notice instead
   * (handleAppendResponse). With three members and one request at a time, that answer was a
   * third of the messages the leader received per write. With `deferCommitNotices`, a notice
   * waits for the next append or heartbeat to carry it, or for flushCommitNotices.
   */
  private broadcastCommit(): void {
    const last = this.log.lastIndex();
    this.forEachPeer((id, pr) => {
      const awaitingAck = pr.state === ProgressState.Replicate && pr.next === last + 1 && pr.match < last;
      if (awaitingAck) return;
      if (this.defersCommitNotice(pr)) this.commitNoticesPending = true;
      else this.sendAppend(id);
    });
  }

  /** An append to this follower would carry nothing but the commit index: it holds every entry. */
  private isNoticeOnly(pr: Progress): boolean {
    return (
      pr.state === ProgressState.Replicate && pr.match === pr.next - 1 && pr.match === this.log.lastIndex()
    );
  }

  /**
   * A notice to this follower may wait (deferCommitNotices): nothing on its node waits for it,
   * and no configuration change is on its way to being applied (a member it removes must hear
   * of its commit before the leader, applying it, stops talking to that member).
   */
  private defersCommitNotice(pr: Progress): boolean {
    return (
      this.config.deferCommitNotices &&
      this.pendingConfIndex <= this.log.applied &&
      !pr.wantsCommitNotices &&
      this.isNoticeOnly(pr)
    );
  }

  /** A follower holding every entry has not been told the commit index (a notice is owed). */
  private owesCommitNotice(pr: Progress): boolean {
    return this.isNoticeOnly(pr) && pr.sentCommit < this.log.committed;
  }

  /** Leader: a deferred commit notice is still owed to some follower. */
  hasCommitNoticesPending(): boolean {
    if (!this.commitNoticesPending) return false;
    let owed = false;
    if (this.role === StateRole.Leader) {
      this.forEachPeer((_, pr) => {
        if (this.owesCommitNotice(pr)) owed = true;
      });
    }
    this.commitNoticesPending = owed;
    return owed;
  }

  /**
   * Follower: whether its acknowledgements ask to hear of commits at once — the caller says so
   * while something on its node waits for what this core commits (a forwarded write, a watch).
   */
  setWantsCommitNotices(wanted: boolean): void {
    this.wantsCommitNotices = wanted;
  }

  /** Send every commit notice deferred so far (`deferCommitNotices`). */
  flushCommitNotices(): void {
    if (!this.commitNoticesPending) return;
    this.commitNoticesPending = false;
    if (this.role !== StateRole.Leader) return;
    this.forEachPeer((id, pr) => {
      if (this.owesCommitNotice(pr)) this.sendAppend(id);
    });
  }

  private broadcastHeartbeat(context: Uint8Array = EMPTY_BYTES): void {
    this.forEachPeer((id) => this.sendHeartbeat(id, context));
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.quiesced = false;
    this.commitNoticesPending = false;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.tracker.resetVotes();
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.tracker.progress) {
      this.tracker.progress.set(
        id,
        new Progress({
          next,
          match: id === this.id ? this.log.persistedLastIndex() : 0,
          maxInflight: this.tracker.maxInflight,
          maxInflightBytes: this.tracker.maxInflightBytes,
          isLearner: pr.isLearner,
        }),
      );
    }
    this.heartbeatAckTick = new Map();
    this.leaseForfeited = false;
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnlyQueue();
    this.readBroadcastPending = false;
  }

  private resetRandomizedElectionTimeout(): void {
    const n = this.config.electionTick;
    this.randomizedElectionTimeout = n + this.config.random.nextInt(n);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = StateRole.Follower;
    this.lead = lead;
  }

  private becomeCandidate(): void {
    invariant(this.role !== StateRole.Leader, "leader cannot become candidate without stepping down");
    this.reset(checkedIncrement(this.term));
    this.vote = this.id;
    this.role = StateRole.Candidate;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== StateRole.Leader, "leader cannot become pre-candidate");
    // A pre-candidate changes neither its term nor its vote: it only asks whether it could win.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.role = StateRole.PreCandidate;
  }

  private becomeLeader(): void {
    invariant(this.role !== StateRole.Follower, "follower cannot become leader without an election");
    this.reset(this.term);
    this.lead = this.id;
    this.role = StateRole.Leader;
    const self = this.tracker.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // Entries of earlier terms may hold a conf change not yet applied: allow none until they are.
    this.pendingConfIndex = this.log.lastIndex();
    // A no-op of our own term lets everything before it commit (Raft §5.4.2, §8).
    invariant(
      this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }]),
      "no-op refused",
    );
  }

  /** A node may campaign if it is a voter and has no snapshot still to persist. */
  promotable(): boolean {
    const pr = this.tracker.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.log.hasPendingSnapshot();
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    // A quiesced group's clocks stand still; the caller wakes it (any input) to resume them.
    if (this.quiesced) return;
    this.tickCount++;
    if (this.restartedLeaseTicks > 0) this.restartedLeaseTicks--;
    if (this.role === StateRole.Leader) this.tickLeader();
    else this.tickElection();
  }

  /**
   * Moves the lease clock on by `ticks` without moving the election and heartbeat timers: the
   * caller's real time ran ahead of the ticks it fed (a timer delayed by a stall), and a lease
   * must be judged on real time. A quiesced core has no lease to judge.
   */
  advanceLeaseClock(ticks: number): void {
    invariant(
      Number.isSafeInteger(ticks) && ticks >= 0,
      () => `lease clock ticks must be >= 0, got ${ticks}`,
    );
    if (!this.quiesced) this.tickCount += ticks;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.config.preVote ? CampaignKind.PreElection : CampaignKind.Election);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTick) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) this.checkQuorum();
      if (this.role === StateRole.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.role !== StateRole.Leader) return;
    if (this.heartbeatElapsed >= this.config.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  /** A leader that has not heard from a quorum within an election timeout steps down. */
  private checkQuorum(): void {
    if (!this.tracker.quorumActive()) {
      this.becomeFollower(this.term, NONE);
      return;
    }
    this.tracker.visit((id, pr) => {
      if (id !== this.id) pr.recentActive = false;
    });
  }

  // ---------------------------------------------------------------- elections

  /** Start an election now (the application's "campaign", or an election timeout). */
  campaign(): void {
    this.quiesced = false;
    this.hup(this.config.preVote ? CampaignKind.PreElection : CampaignKind.Election);
  }

  private hup(kind: CampaignKind): void {
    if (this.role === StateRole.Leader || !this.promotable()) return;
    // A conf change committed but not applied could change who may vote: wait for it.
    if (this.hasUnappliedConfChanges()) return;
    this.startCampaign(kind);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    let lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    const hi = this.log.committed + 1;
    while (lo < hi) {
      const page = this.log.slice(lo, hi, this.config.maxCommittedSizePerReady);
      if (page.some((e) => e.type === EntryType.ConfChange)) return true;
      lo += page.length;
    }
    return false;
  }

  private startCampaign(kind: CampaignKind): void {
    let term: number;
    let voteType: MessageType;
    if (kind === CampaignKind.PreElection) {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      // Pre-vote asks about the term we would use, without adopting it.
      term = checkedIncrement(this.term);
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    if (this.recordVote(this.id, voteResponseType(voteType), true) === VoteResult.Won) {
      // A single-voter configuration wins at once.
      if (kind === CampaignKind.PreElection) this.startCampaign(CampaignKind.Election);
      else this.becomeLeader();
      return;
    }
    const context = kind === CampaignKind.Transfer ? TRANSFER_CONTEXT : EMPTY_BYTES;
    for (const id of this.tracker.voterIds()) {
      if (id === this.id) continue;
      this.send({
        type: voteType,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        context,
      });
    }
  }

  private recordVote(from: NodeId, type: MessageType, granted: boolean): VoteResult {
    invariant(type === MessageType.VoteResp || type === MessageType.PreVoteResp, "not a vote response");
    this.tracker.recordVote(from, granted);
    return this.tracker.tallyVotes().result;
  }

  // ---------------------------------------------------------------- step

  /**
   * Handle a message. `local` marks a request from this node's own caller (propose, readIndex),
   * who is told synchronously (ProposalDroppedError) when it cannot be accepted; a request that
   * arrived over the network is dropped quietly, even if it originated here and bounced back.
   */
  step(m: Message, local = false): void {
    // Any message wakes a quiesced node; only its leader's quiesce heartbeat quiesces it again.
    this.quiesced = false;
    if (m.term > this.term) {
      if (!this.acceptHigherTerm(m)) return;
    } else if (m.term < this.term && m.term !== 0) {
      this.handleLowerTerm(m);
      return;
    }
    switch (m.type) {
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case StateRole.Leader:
        this.stepLeader(m, local);
        return;
      case StateRole.Candidate:
      case StateRole.PreCandidate:
        this.stepCandidate(m, local);
        return;
      case StateRole.Follower:
        this.stepFollower(m, local);
        return;
    }
  }

  /** A message from a higher term; returns false if it is to be ignored. */
  private acceptHigherTerm(m: Message): boolean {
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      const forced = isTransferContext(m.context);
      const inLease =
        this.config.checkQuorum &&
        ((this.lead !== NONE && this.electionElapsed < this.config.electionTick) ||
          this.restartedLeaseTicks > 0);
      // Leader stickiness: while we hear from a leader (or may have, before a restart), a
      // disruptive candidate is ignored; lease reads rely on it.
      if (!forced && inLease) return false;
    }
    if (m.type === MessageType.PreVote) return true; // never changes our term
    if (m.type === MessageType.PreVoteResp && !m.reject) return true; // we bump the term when we win
    if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
      this.becomeFollower(m.term, m.from);
    } else {
      this.becomeFollower(m.term, NONE);
    }
    return true;
  }

  private handleLowerTerm(m: Message): void {
    if (
      this.config.bugs.countStaleVotes &&
      m.type === MessageType.VoteResp &&
      this.role === StateRole.Candidate
    ) {
      this.stepCandidate(m, false);
      return;
    }
    if (
      (this.config.checkQuorum || this.config.preVote) &&
      (m.type === MessageType.Heartbeat || m.type === MessageType.App)
    ) {
      // A leader cut off by a partition learns our newer term and steps down; without this a
      // node kept from disrupting elections by pre-vote/stickiness could wedge the cluster.
      this.send({ type: MessageType.AppResp, to: m.from });
    } else if (m.type === MessageType.PreVote) {
      this.send({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true });
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    const logOk = this.config.bugs.grantVoteIgnoringLog || this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && logOk) {
      // Answer with the campaign's term: a pre-vote grant must not look stale to the candidate.
      this.send({ type: voteResponseType(m.type), to: m.from, term: m.term });
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: voteResponseType(m.type), to: m.from, term: this.term, reject: true });
    }
  }

  private stepLeader(m: Message, local: boolean): void {
    switch (m.type) {
      case MessageType.Prop:
        this.leaderPropose(m, local);
        return;
      case MessageType.ReadIndex:
        this.leaderReadIndex(m);
        return;
      case MessageType.TransferLeader:
        this.leaderTransfer(m.from);
        return;
      default:
        break;
    }
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message, local: boolean): void {
    const myResponseType =
      this.role === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
      case MessageType.ReadIndex:
        this.dropProposal(local, "no leader (election in progress)");
        return;
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myResponseType: {
        const result = this.recordVote(m.from, m.type, !m.reject);
        if (result === VoteResult.Won) {
          if (this.role === StateRole.PreCandidate) {
            this.startCampaign(CampaignKind.Election);
          } else {
            this.becomeLeader();
            this.broadcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          // A pre-vote rejection may carry a higher term; becomeFollower already ran if so.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message, local: boolean): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) this.dropProposal(local, "no leader");
        else if (this.config.disableProposalForwarding)
          this.dropProposal(local, "proposal forwarding disabled");
        else this.send({ ...m, to: this.lead });
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead !== NONE) this.send({ ...m, to: this.lead });
        return;
      case MessageType.TimeoutNow:
        // The leader chose us: campaign at once, skipping pre-vote and others' stickiness.
        this.hup(CampaignKind.Transfer);
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) this.dropProposal(local, "no leader to confirm the read");
        else this.send({ ...m, to: this.lead });
        return;
      case MessageType.ReadIndexResp:
        if (m.from === this.lead) this.log.commitTo(m.commit);
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private dropProposal(local: boolean, reason: string): void {
    // Only a local caller can be told; a forwarded proposal's client finds out by timing out.
    if (local) throw new ProposalDroppedError(reason);
  }

  // ---------------------------------------------------------------- follower side

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      if (!isCommitNotice(m)) {
        this.send({
          type: MessageType.AppResp,
          to: m.from,
          index: lastNew,
          ...(this.wantsCommitNotices ? { context: COMMIT_NOTICE_WANTED_CONTEXT } : {}),
        });
      }
      return;
    }
    // Hint where our logs may agree so the leader can skip a whole term per round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({
      type: MessageType.AppResp,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    if (isQuiesceContext(m.context)) {
      // Quiesce only with a log that ends exactly at the leader's (committed) last entry; the
      // leader expects no answer. Otherwise answer as to any heartbeat, so it learns more.
      if (
        this.role === StateRole.Follower &&
        this.lead === m.from &&
        this.log.lastIndex() === m.commit &&
        this.log.matchTerm(m.commit, m.logTerm)
      ) {
        this.quiesced = true;
        return;
      }
      this.send({ type: MessageType.HeartbeatResp, to: m.from, index: m.index });
      return;
    }
    // Echo the heartbeat's send tick (index) and read context so the leader can match answers.
    this.send({ type: MessageType.HeartbeatResp, to: m.from, index: m.index, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    invariant(snapshot !== null, "snapshot message without a snapshot");
    if (this.restore(snapshot)) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
    }
  }

  /** Install a snapshot from the leader; false if it brings nothing new. */
  private restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.role !== StateRole.Follower) {
      // Only a follower takes snapshots; anything else is a bug somewhere, so step down safely.
      this.becomeFollower(checkedIncrement(this.term), NONE);
      return false;
    }
    if (!confStateIncludes(confState, this.id)) return false;
    if (this.log.matchTerm(index, term)) {
      // We already have the snapshot's last entry: just move the commit index forward.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.tracker = new ProgressTracker(this.config.maxInflightMsgs, this.config.maxInflightBytes);
    restoreConfState(this.tracker, this.log.lastIndex(), confState);
    this.isLearner = this.tracker.progress.get(this.id)?.isLearner ?? true;
    return true;
  }

  // ---------------------------------------------------------------- leader side

  private leaderPropose(m: Message, local: boolean): void {
    invariant(m.entries.length > 0, "empty proposal");
    if (!this.tracker.progress.has(this.id)) {
      this.dropProposal(local, "this leader was removed from the configuration");
      return;
    }
    if (this.leadTransferee !== NONE) {
      this.dropProposal(local, `leadership transfer to ${this.leadTransferee} in progress`);
      return;
    }
    const entries = m.entries.map((e) => {
      if (e.type !== EntryType.ConfChange) return e;
      const refusal = this.confChangeRefusal(decodeConfChange(e.data));
      if (refusal === undefined) return e;
      if (local) throw new ProposalDroppedError(refusal);
      // Keep the other entries of a forwarded batch; the refused change becomes a no-op.
      return { ...e, type: EntryType.Normal, data: EMPTY_BYTES };
    });
    const firstNew = this.log.lastIndex() + 1;
    if (!this.appendEntries(entries)) {
      this.dropProposal(local, "too many uncommitted entries");
      return;
    }
    entries.forEach((e, i) => {
      if (e.type === EntryType.ConfChange) this.pendingConfIndex = firstNew + i;
    });
    this.broadcastAppend();
  }

  /** Why a conf change cannot be proposed now, or undefined if it can. */
  private confChangeRefusal(cc: ConfChange): string | undefined {
    if (this.pendingConfIndex > this.log.applied) {
      return `conf change at index ${this.pendingConfIndex} is not applied yet (applied ${this.log.applied})`;
    }
    const joint = this.tracker.isJoint();
    const leaves = confChangeLeavesJoint(cc);
    if (joint && !leaves) return "must leave the joint configuration first";
    if (!joint && leaves) return "not in a joint configuration";
    try {
      // Dry run against the current configuration: an invalid change is refused now rather
      // than failing every replica when it applies.
      this.computeConfChange(cc);
    } catch (e) {
      return (e as Error).message;
    }
    return undefined;
  }

  /** Append entries of the current term to our log; false if over the uncommitted limit. */
  appendEntries(entries: readonly Entry[]): boolean {
    const size = entriesSize(entries);
    const limit = this.config.maxUncommittedEntriesSize;
    if (limit > 0 && this.uncommittedSize > 0 && this.uncommittedSize + size > limit) return false;
    this.uncommittedSize += size;
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ ...e, term: this.term, index: (index = checkedIncrement(index)) }));
    this.log.append(stamped);
    // Our own entries count toward the quorum only once persisted (see onPersisted).
    return true;
  }

  reduceUncommittedSize(size: number): void {
    this.uncommittedSize = Math.max(0, this.uncommittedSize - size);
  }

  /** The caller made our log durable up to `index` (of `term`). */
  onPersisted(index: number, term: number): void {
    this.log.stableTo(index, term);
    if (this.role !== StateRole.Leader) return;
    const self = this.tracker.progress.get(this.id);
    if (self && this.log.matchTerm(index, term) && self.maybeUpdate(index) && this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.broadcastCommit();
    }
  }

  private maybeCommit(): boolean {
    const quorumIndex = this.tracker.committed();
    // A configuration without voters acknowledges "everything": nothing can be committed by it.
    if (!Number.isFinite(quorumIndex)) return false;
    return this.log.maybeCommit(quorumIndex, this.term, this.config.bugs.commitPreviousTermByCounting);
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    pr.wantsCommitNotices = wantsCommitNotices(m);
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.log.firstIndex()) {
      // The follower caught up through the snapshot (or otherwise): replicate from here.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.broadcastCommit();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    // Fill the pipeline while the window allows.
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    // Holding everything now, it may not know the commit index yet (broadcastCommit).
    if (
      pr.state === ProgressState.Replicate &&
      pr.match === pr.next - 1 &&
      pr.sentCommit < this.log.committed
    ) {
      if (this.defersCommitNotice(pr)) this.commitNoticesPending = true;
      else this.sendAppend(m.from);
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    if (this.tracker.voterIds().includes(m.from)) {
      this.heartbeatAckTick.set(m.from, Math.max(this.heartbeatAckTick.get(m.from) ?? 0, m.index));
    }
    if (pr.match < this.log.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
    if (m.context.length === 0) return;
    const acks = this.readOnly.recordAck(m.from, m.context);
    if (!acks) return;
    const votes = new Map<NodeId, boolean>([[this.id, true]]);
    for (const id of acks) votes.set(id, true);
    if (jointVoteResult(this.tracker.config.voters, votes) !== VoteResult.Won) return;
    for (const read of this.readOnly.confirmThrough(m.context))
      this.answerReadIndex(read.request, read.index);
  }

  // ---------------------------------------------------------------- reads

  private leaderReadIndex(m: Message): void {
    if (this.tracker.isSingleton()) {
      this.answerReadIndex(m, this.log.committed);
      return;
    }
    // Until an entry of our term commits, our commit index may be behind the real one.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.queueReadIndex(m);
  }

  private queueReadIndex(m: Message): void {
    if (this.config.readOnlyOption === ReadOnlyOption.LeaseBased && this.leaseValid()) {
      this.answerReadIndex(m, this.log.committed);
      return;
    }
    this.readOnly.add(this.log.committed, m);
    this.readBroadcastPending = true;
  }

  /** True when reads queued since the last flush await their heartbeat round. */
  hasReadBroadcastPending(): boolean {
    return this.readBroadcastPending;
  }

  /**
   * Send one heartbeat round for every ReadIndex request that arrived since the last round: a
   * quorum's answers to it confirm all of them at once.
   */
  flushReadIndexBroadcast(): void {
    if (!this.readBroadcastPending) return;
    this.readBroadcastPending = false;
    const context = this.readOnly.lastContext();
    if (context !== undefined && this.role === StateRole.Leader) this.broadcastHeartbeat(context);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.queueReadIndex(m);
  }

  /**
   * The lease holds while a quorum answered heartbeats sent within the last election timeout
   * (less a safety margin): until then, no follower of that quorum will vote for anyone else.
   */
  private leaseValid(): boolean {
    if (this.leaseForfeited) return false;
    const now = this.tickCount + 1;
    const quorumSentAt = jointCommittedIndex(this.tracker.config.voters, (id) =>
      id === this.id ? now : this.heartbeatAckTick.get(id),
    );
    return quorumSentAt > 0 && now - quorumSentAt < this.config.electionTick - this.config.leaseSafetyTicks;
  }

  private answerReadIndex(request: Message, index: number): void {
    if (request.from === this.id) {
      this.readStates.push({ index, context: request.context });
    } else {
      // The reader serves the read once it has applied `index`: tell it the commit index it may
      // know (as a heartbeat would), so that a commit notice not sent yet does not hold it up.
      const pr = this.tracker.progress.get(request.from);
      const commit = pr === undefined ? 0 : Math.min(pr.match, this.log.committed);
      if (pr !== undefined) pr.sentCommit = Math.max(pr.sentCommit, commit);
      this.send({
        type: MessageType.ReadIndexResp,
        to: request.from,
        index,
        commit,
        context: request.context,
      });
    }
  }

  /** A local ReadIndex request; the answer arrives as a ReadState. */
  readIndex(context: Uint8Array): void {
    if (isQuiesceContext(context)) {
      throw new RangeError('the one-byte read context "q" is reserved for quiesce heartbeats');
    }
    this.step(message({ type: MessageType.ReadIndex, to: this.id, from: this.id, context }), true);
  }

  // ---------------------------------------------------------------- leadership transfer

  private leaderTransfer(transferee: NodeId): void {
    const pr = this.tracker.progress.get(transferee);
    if (!pr || pr.isLearner) return;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // The transfer must finish within an election timeout or it is abandoned.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.leaseForfeited = true;
    this.send({ type: MessageType.TimeoutNow, to });
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** Ask the leader (possibly ourselves) to hand leadership to `transferee`. */
  transferLeader(transferee: NodeId): void {
    this.step(message({ type: MessageType.TransferLeader, to: this.id, from: transferee }));
  }

  // ---------------------------------------------------------------- membership

  private computeConfChange(cc: ConfChange): [TrackerConfig, ProgressMap] {
    const changer = new Changer(this.tracker, this.log.lastIndex());
    if (confChangeLeavesJoint(cc)) return changer.leaveJoint();
    const { entersJoint, autoLeave } = confChangeEntersJoint(cc);
    if (entersJoint) return changer.enterJoint(autoLeave, cc.changes);
    return changer.simple(cc.changes);
  }

  /** Apply a committed conf change; returns the new membership for the caller to persist. */
  applyConfChange(cc: ConfChange): ConfState {
    const [config, progress] = this.computeConfChange(cc);
    this.tracker.config = config;
    this.tracker.progress = progress;
    const self = this.tracker.progress.get(this.id);
    this.isLearner = self?.isLearner ?? false;
    const confState = this.tracker.confState();
    if ((!self || this.isLearner) && this.role === StateRole.Leader) {
      if (this.config.stepDownOnRemoval) this.becomeFollower(this.term, NONE);
      return confState;
    }
    if (this.role !== StateRole.Leader || confState.voters.length === 0) return confState;
    // The quorum may have shrunk: something may commit now.
    if (this.maybeCommit()) this.broadcastCommit();
    else this.forEachPeer((id) => this.maybeSendAppend(id, false));
    if (this.leadTransferee !== NONE && !this.tracker.voterIds().includes(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    return confState;
  }

  /** The application applied entries up to `index`. */
  appliedTo(index: number): void {
    this.log.appliedTo(index);
    if (
      this.role === StateRole.Leader &&
      this.tracker.config.autoLeave &&
      index >= this.pendingConfIndex &&
      this.tracker.isJoint()
    ) {
      this.proposeLeaveJoint();
    }
  }

  private proposeLeaveJoint(): void {
    const entry: Entry = { term: 0, index: 0, type: EntryType.ConfChange, data: LEAVE_JOINT_DATA };
    if (this.appendEntries([entry])) {
      this.pendingConfIndex = this.log.lastIndex();
      this.broadcastAppend();
    }
  }

  /**
   * A leader with nothing in flight quiesces: no pending proposal, read, conf change or
   * transfer, its log persisted, committed and applied to the end, every follower matching it
   * (none waiting for a snapshot), and not in a joint configuration. It sends each follower a
   * last heartbeat marked QUIESCE_CONTEXT (carrying the last index as commit and its term as
   * logTerm) and ignores ticks until woken. Its lease is given up: after waking, lease reads
   * wait for a fresh heartbeat round, as tick time stood still while real time did not.
   * Returns whether it quiesced.
   */
  quiesce(): boolean {
    if (this.role !== StateRole.Leader) return false;
    if (this.quiesced) return true;
    const last = this.log.lastIndex();
    if (
      this.leadTransferee !== NONE ||
      this.readBroadcastPending ||
      this.readOnly.size > 0 ||
      this.pendingReadIndexMessages.length > 0 ||
      this.tracker.isJoint() ||
      this.pendingConfIndex > this.log.applied ||
      this.log.persistedLastIndex() !== last ||
      this.log.hasPendingSnapshot() ||
      this.log.committed !== last ||
      this.log.applied !== last
    ) {
      return false;
    }
    let caughtUp = true;
    this.tracker.visit((_, pr) => {
      if (pr.match !== last || pr.state === ProgressState.Snapshot) caughtUp = false;
    });
    if (!caughtUp) return false;
    const logTerm = this.log.term(last);
    // The quiesce heartbeat supersedes plain ones still queued (their answers would wake us).
    this.messages = this.messages.filter((m) => m.type !== MessageType.Heartbeat || m.context.length > 0);
    this.forEachPeer((to) =>
      this.send({
        type: MessageType.Heartbeat,
        to,
        commit: last,
        logTerm,
        index: this.tickCount + 1,
        context: QUIESCE_CONTEXT,
      }),
    );
    // Tick time stands still while quiesced, real time does not: move the lease clock on by
    // a whole election timeout, so that no answer to a heartbeat sent before now (even one
    // arriving after we wake) can count toward a lease again.
    this.heartbeatAckTick = new Map();
    this.tickCount += this.config.electionTick;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.quiesced = true;
    return true;
  }

  /** Resumes ticking (the caller's liveness rule: a quiesced follower's leader went silent). */
  unquiesce(): void {
    this.quiesced = false;
  }

  /**
   * Does not wake a quiesced core: with nothing in flight there is nothing to resend, and a
   * transport reports a down peer over and over (each flush); the caller's liveness rule
   * decides when a leader is gone.
   */
  reportUnreachable(id: NodeId): void {
    const pr = this.tracker.progress.get(id);
    if (this.role === StateRole.Leader && pr?.state === ProgressState.Replicate) pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.quiesced = false;
    const pr = this.tracker.progress.get(id);
    if (this.role !== StateRole.Leader || pr?.state !== ProgressState.Snapshot) return;
    if (!ok) pr.pendingSnapshot = 0;
    // Either way, probe: on success the follower's AppResp moves it on; on failure we retry.
    pr.becomeProbe();
    pr.msgAppFlowPaused = true;
  }
}
