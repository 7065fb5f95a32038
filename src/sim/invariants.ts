/**
 * The Raft safety properties, checked as the simulation runs. Nodes report what they do
 * (roles and commit indexes after every event, entries written, commits persisted, entries
 * applied, syncs, restarts) and the monitor compares it against a global record:
 *
 * - election safety: at most one leader per term, ever; a node grants its vote to at most one
 *   candidate per term; a leader holds granted votes of a quorum of its configuration;
 * - log matching: two entries with the same index and term carry the same payload (checked on
 *   every write against a global (index, term) → payload-hash map), and two logs that agree at
 *   an index agree on everything before it (checked pairwise at leader changes and at the end);
 * - leader completeness: every entry committed in a term before a leader's term is in that
 *   leader's log (checked when the new leader first writes its log);
 * - the commit rule: a leader advances its commit index only onto an entry of its own term
 *   (older entries commit indirectly, never by counting replicas);
 * - state-machine safety: no two nodes apply different entries at one index;
 * - a node's commit index never decreases within one incarnation, and the durable commit index
 *   never decreases across crashes.
 *
 * Everything here is bookkeeping over plain numbers; the monitor never touches a node itself.
 */
import {
  EntryType,
  StateRole,
  type ConfState,
  type Entry,
  type HardState,
  type NodeId,
} from "../raft/types.js";

export type InvariantName =
  | "election-safety"
  | "log-matching"
  | "leader-completeness"
  | "commit-rule"
  | "state-machine-safety"
  | "commit-monotonic"
  | "durable-commit-monotonic"
  | "acknowledged-write-lost"
  | "linearizability"
  | "liveness"
  | "internal-error";

export interface Violation {
  readonly invariant: InvariantName;
  /** Virtual time at which it was detected. */
  readonly time: number;
  readonly message: string;
}

/** The read side of one node's stored log. */
export interface LogReader {
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number;
}

/** What the monitor counts while it watches; folded into the run's stats. */
export interface MonitorCounters {
  /** Elections won: a new term got a leader. */
  leadersElected: number;
  /** Of those, elections won by a node other than the previous term's leader. */
  leaderChanges: number;
  /** Transitions into the candidate role (real elections, not pre-votes). */
  campaigns: number;
  maxTerm: number;
}

/** Observed after an event: the new leader, if this observation is the first for its term. */
export interface NewLeader {
  readonly id: NodeId;
  readonly term: number;
}

interface NodeWatch {
  incarnation: number;
  role: StateRole;
  commit: number;
  /** Highest commit index known to be on disk (synced) for this node. */
  durableCommit: number;
}

interface PendingCompletenessCheck {
  readonly term: number;
  readonly incarnation: number;
}

/** FNV-1a over an entry's type and payload: equal payloads hash equally. */
export function entryFingerprint(entry: Entry): number {
  let h = 0x811c9dc5 ^ (entry.type === EntryType.ConfChange ? 0x5a : 0xa5);
  const data = entry.data;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return Math.imul(h ^ data.length, 0x01000193) >>> 0;
}

export class InvariantMonitor {
  readonly counters: MonitorCounters = { leadersElected: 0, leaderChanges: 0, campaigns: 0, maxTerm: 0 };
  /** Per term: its leader, and that leader's commit index when it was first seen leading. */
  private readonly leaderOfTerm = new Map<
    number,
    { readonly id: NodeId; readonly commitAtElection: number }
  >();
  /** Per term, per voter: the candidates it sent a granted vote to (should be at most one). */
  private readonly votesGranted = new Map<number, Map<NodeId, Set<NodeId>>>();
  private lastLeader: { id: NodeId; term: number } | null = null;
  private readonly nodes = new Map<NodeId, NodeWatch>();
  /** Payload fingerprint of every (index, term) ever written by any node. */
  private readonly written = new Map<string, number>();
  /** Term of each index known to be committed (from persisted commits and applied entries). */
  private readonly committedTerm = new Map<number, number>();
  /** Fingerprint of the entry applied at each index (by whichever node applied it first). */
  private readonly appliedFingerprint = new Map<number, number>();
  /**
   * Per term, the highest commit index persisted by a node in that term. A node in term t only
   * learns commits made by leaders of terms up to t, so the entries up to the highest such
   * index over all t < T were committed before term T and must be in T's leader's log.
   */
  private readonly highestCommitInTerm = new Map<number, number>();
  private readonly pendingCompleteness = new Map<NodeId, PendingCompletenessCheck>();

  constructor(
    private readonly now: () => number,
    private readonly report: (violation: Violation) => void,
  ) {}

  /** A node (re)started: a fresh incarnation whose durable commit must not have gone back. */
  onStart(id: NodeId, incarnation: number, durableCommit: number): void {
    const watch = this.nodes.get(id);
    if (watch !== undefined && durableCommit < watch.durableCommit) {
      this.violate(
        "durable-commit-monotonic",
        `node ${id} restarted with commit ${durableCommit}, below its synced commit ${watch.durableCommit}`,
      );
    }
    this.nodes.set(id, {
      incarnation,
      role: StateRole.Follower,
      commit: durableCommit,
      durableCommit: Math.max(durableCommit, watch?.durableCommit ?? 0),
    });
    this.pendingCompleteness.delete(id);
  }

  /** A node put a granted vote for `candidate` in term `term` on the wire. */
  onVoteGranted(voter: NodeId, candidate: NodeId, term: number): void {
    let byVoter = this.votesGranted.get(term);
    if (byVoter === undefined) {
      byVoter = new Map();
      this.votesGranted.set(term, byVoter);
    }
    let candidates = byVoter.get(voter);
    if (candidates === undefined) {
      candidates = new Set();
      byVoter.set(voter, candidates);
    }
    candidates.add(candidate);
    if (candidates.size > 1) {
      this.violate(
        "election-safety",
        `node ${voter} granted votes to ${[...candidates].join(" and ")} in term ${term}`,
      );
    }
  }

  /**
   * The state of one node right after an event that touched it; `confState` is its current
   * membership, against which a new leader's votes are counted.
   */
  observe(id: NodeId, term: number, role: StateRole, commit: number, confState: ConfState): NewLeader | null {
    const watch = this.requireWatch(id);
    if (commit < watch.commit) {
      this.violate("commit-monotonic", `node ${id} commit went from ${watch.commit} back to ${commit}`);
    }
    watch.commit = commit;
    if (term > this.counters.maxTerm) this.counters.maxTerm = term;
    const previousRole = watch.role;
    watch.role = role;
    if (role === StateRole.Candidate && previousRole !== StateRole.Candidate) this.counters.campaigns++;
    if (role !== StateRole.Leader) return null;
    const holder = this.leaderOfTerm.get(term);
    if (holder !== undefined) {
      if (holder.id !== id) {
        this.violate("election-safety", `nodes ${holder.id} and ${id} were both leader in term ${term}`);
      }
      return null;
    }
    this.leaderOfTerm.set(term, { id, commitAtElection: commit });
    this.checkVoteQuorum(id, term, confState);
    this.counters.leadersElected++;
    if (this.lastLeader === null || this.lastLeader.id !== id) this.counters.leaderChanges++;
    if (this.lastLeader === null || term > this.lastLeader.term) this.lastLeader = { id, term };
    // The leader's log may still be partly in its core's memory; judge it once it is written.
    this.pendingCompleteness.set(id, { term, incarnation: watch.incarnation });
    return { id, term };
  }

  /** A node wrote entries to its log: same (index, term) must mean same payload, everywhere. */
  onEntriesWritten(id: NodeId, entries: readonly Entry[]): void {
    for (const entry of entries) {
      const key = `${entry.index}/${entry.term}`;
      const fingerprint = entryFingerprint(entry);
      const known = this.written.get(key);
      if (known === undefined) this.written.set(key, fingerprint);
      else if (known !== fingerprint) {
        this.violate(
          "log-matching",
          `node ${id} wrote entry ${entry.index} of term ${entry.term} with a payload different from another copy`,
        );
      }
    }
  }

  /**
   * A node wrote a Ready to its log (and, if non-null, the hard state `hardState`); also runs
   * the leader-completeness check owed since the node became leader.
   */
  onWritten(id: NodeId, incarnation: number, log: LogReader, hardState: HardState | null): void {
    if (hardState !== null) this.checkCommitRule(id, log, hardState);
    if (hardState !== null && hardState.commit > 0) {
      this.recordCommitted(id, hardState.commit, log.term(hardState.commit));
      const known = this.highestCommitInTerm.get(hardState.term) ?? 0;
      if (hardState.commit > known) this.highestCommitInTerm.set(hardState.term, hardState.commit);
    }
    const pending = this.pendingCompleteness.get(id);
    if (pending === undefined || pending.incarnation !== incarnation) return;
    this.pendingCompleteness.delete(id);
    this.checkCompleteness(id, pending, log);
  }

  /** A node applied a committed entry. */
  onApplied(id: NodeId, entry: Entry): void {
    const fingerprint = entryFingerprint(entry);
    const known = this.appliedFingerprint.get(entry.index);
    if (known === undefined) this.appliedFingerprint.set(entry.index, fingerprint);
    else if (known !== fingerprint) {
      this.violate(
        "state-machine-safety",
        `node ${id} applied entry ${entry.index} (term ${entry.term}) different from another node's entry ${entry.index}`,
      );
    }
    this.recordCommitted(id, entry.index, entry.term);
  }

  /** A sync completed on node `id`: its durable commit is now at least `commit`. */
  onSynced(id: NodeId, commit: number): void {
    const watch = this.requireWatch(id);
    if (commit > watch.durableCommit) watch.durableCommit = commit;
  }

  /**
   * The log prefix property between every pair: where two logs hold the same term at an index,
   * they hold the same terms at every earlier index both still store.
   */
  checkLogsAgree(logs: readonly (readonly [NodeId, LogReader])[]): void {
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const [idA, logA] = logs[a]!;
        const [idB, logB] = logs[b]!;
        this.checkPairAgrees(idA, logA, idB, logB);
      }
    }
  }

  private checkPairAgrees(idA: NodeId, logA: LogReader, idB: NodeId, logB: LogReader): void {
    const low = Math.max(logA.firstIndex(), logB.firstIndex());
    const high = Math.min(logA.lastIndex(), logB.lastIndex());
    let agreeing = high;
    while (agreeing >= low && logA.term(agreeing) !== logB.term(agreeing)) agreeing--;
    for (let i = agreeing - 1; i >= low; i--) {
      if (logA.term(i) !== logB.term(i)) {
        this.violate(
          "log-matching",
          `nodes ${idA} and ${idB} agree on the term at index ${agreeing} but not at ${i} ` +
            `(terms ${logA.term(i)} and ${logB.term(i)})`,
        );
        return;
      }
    }
  }

  /** Votes granted in `term` to `leader` must form a quorum of every half of its configuration. */
  private checkVoteQuorum(leader: NodeId, term: number, confState: ConfState): void {
    const granted = this.votesGranted.get(term);
    const hasQuorum = (voters: readonly NodeId[]): boolean => {
      const votes = voters.filter((v) => v === leader || granted?.get(v)?.has(leader) === true).length;
      return votes > voters.length / 2;
    };
    const halves =
      confState.votersOutgoing.length > 0 ? [confState.voters, confState.votersOutgoing] : [confState.voters];
    for (const voters of halves) {
      if (!hasQuorum(voters)) {
        this.violate(
          "election-safety",
          `node ${leader} became leader of term ${term} without a quorum of granted votes among ${voters.join(",")}`,
        );
        return;
      }
    }
  }

  /**
   * A leader's commit index moves only by counting replicas of an entry of its own term, so
   * every commit index it reaches past the one it was elected with holds an entry of its term.
   * (Once leader of a term, a node learns no commit in that term from anyone else.)
   */
  private checkCommitRule(id: NodeId, log: LogReader, hardState: HardState): void {
    const leader = this.leaderOfTerm.get(hardState.term);
    if (leader === undefined || leader.id !== id || hardState.commit <= leader.commitAtElection) return;
    const term = log.term(hardState.commit);
    if (term !== hardState.term) {
      this.violate(
        "commit-rule",
        `leader ${id} of term ${hardState.term} advanced its commit to ${hardState.commit}, an entry of term ${term}`,
      );
    }
  }

  private recordCommitted(id: NodeId, index: number, term: number): void {
    const known = this.committedTerm.get(index);
    if (known === undefined) this.committedTerm.set(index, term);
    else if (known !== term) {
      this.violate(
        "state-machine-safety",
        `node ${id} committed index ${index} at term ${term}, but it was committed at term ${known} elsewhere`,
      );
    }
  }

  private checkCompleteness(id: NodeId, pending: PendingCompletenessCheck, log: LogReader): void {
    let committedBefore = 0;
    for (const [term, commit] of this.highestCommitInTerm) {
      if (term < pending.term && commit > committedBefore) committedBefore = commit;
    }
    const lastIndex = log.lastIndex();
    if (lastIndex < committedBefore) {
      this.violate(
        "leader-completeness",
        `leader ${id} of term ${pending.term} has log up to ${lastIndex}, ` +
          `but ${committedBefore} was committed in an earlier term`,
      );
      return;
    }
    for (let i = Math.max(1, log.firstIndex() - 1); i <= committedBefore; i++) {
      const committed = this.committedTerm.get(i);
      if (committed === undefined) continue;
      const held = log.term(i);
      if (held !== committed) {
        this.violate(
          "leader-completeness",
          `leader ${id} of term ${pending.term} holds term ${held} at index ${i}, committed at term ${committed}`,
        );
        return;
      }
    }
  }

  private requireWatch(id: NodeId): NodeWatch {
    const watch = this.nodes.get(id);
    if (watch === undefined) throw new Error(`invariant monitor: node ${id} reported before it started`);
    return watch;
  }

  private violate(invariant: InvariantName, message: string): void {
    this.report({ invariant, time: this.now(), message });
  }
}
