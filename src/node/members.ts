/**
 * Membership requests of a replica beyond adding and removing nodes: the member list (Raft's
 * configuration joined with the replicated member table), the checks of a learner's promotion,
 * leadership transfers awaiting their outcome, the publishing of this member's own name and
 * URLs (retried on ticks until applied), and keeping a peer transport's address book in step
 * with the member table. The errors these requests fail with live here too.
 */
import { memberSetRequest, type MemberAttributes } from "../kv/members.js";
import type { KvCommand } from "../kv/commands.js";
import type { ProgressStatus, RaftStatus } from "../raft/rawnode.js";
import { NONE, StateRole, type ConfState, type NodeId } from "../raft/types.js";
import { NotLeaderError, ReplicaRequestError } from "./errors.js";
import type { ApplyListener, LocalMemberAttributes, MemberRecord } from "./types.js";

/** etcd promotes a learner only when its log matches at least this share of the leader's. */
export const LEARNER_READY_SHARE = 0.9;

/** The member to promote is not a learner of the group (a voter, or not a member at all). */
export class MemberNotLearnerError extends ReplicaRequestError {
  readonly retryable = false;

  constructor(
    rangeId: number,
    readonly memberId: NodeId,
    readonly isMember: boolean,
  ) {
    super(
      rangeId,
      isMember
        ? `range ${rangeId}: member ${memberId} is not a learner`
        : `range ${rangeId}: member ${memberId} is not a member`,
    );
  }
}

/** The learner's log is too far behind the leader's to promote it (etcd: not in sync). */
export class LearnerNotReadyError extends ReplicaRequestError {
  readonly retryable = true;

  constructor(rangeId: number, memberId: NodeId, match: number, leaderMatch: number) {
    super(
      rangeId,
      `range ${rangeId}: learner ${memberId} has the log up to ${match}, the leader up to ${leaderMatch}: not in sync yet`,
    );
  }
}

/**
 * A leadership transfer that did not happen: the target is not a voter, a third node took
 * over, or the target did not take over in time.
 */
export class LeaderTransferError extends ReplicaRequestError {
  readonly retryable = true;

  constructor(
    rangeId: number,
    readonly reason: "not-voter" | "superseded" | "timeout",
    detail: string,
  ) {
    super(rangeId, `range ${rangeId}: leadership transfer failed: ${detail}`);
  }
}

/** The member list: every voter and learner of `conf`, by id, with its record if there is one. */
export function joinMembers(conf: ConfState, records: readonly MemberAttributes[]): MemberRecord[] {
  const byId = new Map(records.map((record) => [record.id, record]));
  const learners = new Set([...conf.learners, ...conf.learnersNext]);
  const ids = [...new Set([...conf.voters, ...conf.votersOutgoing, ...learners])].sort((a, b) => a - b);
  return ids.map((id) => {
    const record = byId.get(id);
    return {
      id,
      name: record?.name ?? "",
      peerUrls: record?.peerUrls ?? [],
      clientUrls: record?.clientUrls ?? [],
      isLearner: learners.has(id) && !conf.voters.includes(id),
    };
  });
}

/**
 * Throws unless `learnerId` may be promoted now, judged by the leader's replication `progress`
 * (the leader's own entry included): it must be a learner whose log matches at least
 * LEARNER_READY_SHARE of the leader's.
 */
export function checkPromotable(
  rangeId: number,
  leaderId: NodeId,
  conf: ConfState,
  progress: ReadonlyMap<NodeId, ProgressStatus>,
  learnerId: NodeId,
): void {
  if (!conf.learners.includes(learnerId)) {
    const isMember = conf.voters.includes(learnerId) || conf.votersOutgoing.includes(learnerId);
    throw new MemberNotLearnerError(rangeId, learnerId, isMember);
  }
  const leaderMatch = progress.get(leaderId)?.match ?? 0;
  const match = progress.get(learnerId)?.match ?? 0;
  if (match < leaderMatch * LEARNER_READY_SHARE) {
    throw new LearnerNotReadyError(rangeId, learnerId, match, leaderMatch);
  }
}

interface PendingTransfer {
  readonly target: NodeId;
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** Leadership transfers this replica started as leader, each waiting to see the target lead. */
export class LeaderTransfers {
  private pending: PendingTransfer[] = [];
  /** Targets not yet handed to the core (inputs reach it only in a turn). */
  private targets: NodeId[] = [];

  get hasTargets(): boolean {
    return this.targets.length > 0;
  }

  takeTargets(): NodeId[] {
    return this.targets.splice(0);
  }

  /**
   * Starts a transfer to `to` from a replica whose core reports `status`: NotLeaderError unless
   * it leads, LeaderTransferError unless `to` is a voter; settles as `observe` decides.
   */
  start(rangeId: number, self: NodeId, status: RaftStatus, to: NodeId, deadline: number): Promise<void> {
    if (status.softState.role !== StateRole.Leader) return Promise.reject(new NotLeaderError(rangeId));
    if (to === self) return Promise.resolve();
    if (!status.confState.voters.includes(to)) {
      return Promise.reject(new LeaderTransferError(rangeId, "not-voter", `node ${to} is not a voter`));
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ target: to, deadline, resolve, reject });
      this.targets.push(to);
    });
  }

  /**
   * Settles the transfers the current leader `lead` decides: the target leads (done), a third
   * node leads (failed), or the deadline passed at monotonic time `now` (failed).
   */
  observe(rangeId: number, self: NodeId, lead: NodeId, now: number): void {
    this.pending = this.pending.filter((transfer) => {
      if (lead === transfer.target) transfer.resolve();
      else if (lead !== NONE && lead !== self)
        transfer.reject(new LeaderTransferError(rangeId, "superseded", `node ${lead} leads instead`));
      else if (now >= transfer.deadline)
        transfer.reject(
          new LeaderTransferError(rangeId, "timeout", `node ${transfer.target} did not take over in time`),
        );
      else return true;
      return false;
    });
  }

  failAll(error: () => Error): void {
    this.targets = [];
    for (const transfer of this.pending.splice(0)) transfer.reject(error());
  }
}

/**
 * This member's own attributes, published (a MemberSet proposal) when the member table's
 * record differs from them, once per run of the replica: a later MemberUpdate by an operator
 * is not undone until the member restarts with other flags. Retried on ticks until applied.
 */
export class MemberPublisher {
  private wanted: LocalMemberAttributes | null = null;
  private inFlight = false;

  constructor(private readonly memberId: NodeId) {}

  set(attributes: LocalMemberAttributes): void {
    this.wanted = attributes;
  }

  /**
   * Proposes the record if it is still wanted, nothing is in flight, a leader is known and this
   * member is in the group's configuration (a joiner waits until it has been added).
   */
  tick(
    lead: NodeId,
    conf: ConfState,
    records: () => readonly MemberAttributes[],
    propose: (command: KvCommand) => Promise<unknown>,
  ): void {
    const wanted = this.wanted;
    if (wanted === null || this.inFlight || lead === NONE) return;
    const id = this.memberId;
    if (![...conf.voters, ...conf.learners].includes(id)) return;
    const member: MemberAttributes = { id, ...wanted };
    const current = records().find((record) => record.id === id);
    if (current !== undefined && sameAttributes(current, member)) {
      this.wanted = null;
      return;
    }
    this.inFlight = true;
    propose(memberSetRequest(member)).then(
      () => {
        this.inFlight = false;
        if (this.wanted === wanted) this.wanted = null;
      },
      () => {
        this.inFlight = false;
      },
    );
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

function sameAttributes(a: MemberAttributes, b: MemberAttributes): boolean {
  return a.name === b.name && sameList(a.peerUrls, b.peerUrls) && sameList(a.clientUrls, b.clientUrls);
}

/** Where a peer transport dials each peer (TcpTransport has this shape). */
export interface PeerDirectory {
  addPeer(id: NodeId, address: { readonly host: string; readonly port: number }): void;
  removePeer(id: NodeId): void;
}

/** What followMemberPeers needs of a replica. */
export interface MemberSource {
  readonly nodeId: NodeId;
  members(): MemberRecord[];
  addApplyListener(listener: ApplyListener): () => void;
}

/** host and port of an `http://host:port` URL (IPv6 without brackets), or null if it has none. */
export function peerAddressOf(url: string | undefined): { host: string; port: number } | null {
  if (url === undefined) return null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  const port = Number(parsed.port !== "" ? parsed.port : parsed.protocol === "https:" ? 443 : 80);
  const host = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname;
  return host === "" ? null : { host, port };
}

/**
 * Keeps `directory` dialing every member at the first peer URL of its record: now, whenever a
 * record is set (MemberAdd records the peer URL before the configuration change, so every
 * member knows a new one before it dials them), removed, or arrives in a snapshot. Peers
 * without a record are left as they are (founders named by flags). Returns the unsubscriber.
 */
export function followMemberPeers(source: MemberSource, directory: PeerDirectory): () => void {
  const add = (id: NodeId, peerUrls: readonly string[]) => {
    const address = peerAddressOf(peerUrls[0]);
    if (id !== source.nodeId && address !== null) directory.addPeer(id, address);
  };
  const sync = () => {
    for (const member of source.members()) add(member.id, member.peerUrls);
  };
  sync();
  return source.addApplyListener({
    onCommand: ({ envelope, outcome }) => {
      const { command } = envelope;
      if (outcome.duplicate) return;
      if (command.kind === "memberSet") add(command.member.id, command.member.peerUrls);
      else if (command.kind === "memberRemove" && command.id !== source.nodeId)
        directory.removePeer(command.id);
    },
    onRestore: sync,
  });
}

/** Whether `node` is in `conf` in any role (voter, learner, either side of a joint configuration). */
export function inConfiguration(conf: ConfState, node: NodeId): boolean {
  return (
    conf.voters.includes(node) ||
    conf.learners.includes(node) ||
    conf.votersOutgoing.includes(node) ||
    conf.learnersNext.includes(node)
  );
}

/**
 * Tells listeners, once, that this node was removed from its group: an applied membership
 * (a configuration change, or a snapshot's) no longer holds it, after one did. A joining node
 * is not yet a member, so it is not "removed" before it was added.
 */
export class RemovalWatch {
  private member: boolean;
  private removed = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly nodeId: NodeId,
    initial: ConfState,
  ) {
    this.member = inConfiguration(initial, nodeId);
  }

  onRemoved(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The membership just applied. */
  observe(conf: ConfState): void {
    if (inConfiguration(conf, this.nodeId)) {
      this.member = true;
      return;
    }
    if (!this.member || this.removed) return;
    this.removed = true;
    for (const listener of this.listeners) listener();
  }
}

/** Why etcd's strict reconfiguration check refuses a membership change. */
export type ReconfigurationRefusal = "not-enough-started" | "unhealthy";

/** A voter set of `size` needs this many to agree. */
function quorumOf(size: number): number {
  return Math.floor(size / 2) + 1;
}

/**
 * etcd's strict reconfiguration check (--strict-reconfig-check, on by default): a new voter is
 * refused unless enough voters have started (published their record) to keep a quorum of the
 * bigger group, and, where this member knows who is reachable (it leads; `reachable` is null
 * otherwise), unless every voter is reachable; a voter's removal is refused when the reachable
 * voters left would not form a quorum. Learners never endanger quorum. Returns null when the
 * change may go ahead.
 */
export function reconfigurationRefusal(
  change: { readonly kind: "addVoter" | "addLearner" | "remove"; readonly id: NodeId },
  conf: ConfState,
  records: readonly MemberAttributes[],
  reachable: ((id: NodeId) => boolean) | null,
): ReconfigurationRefusal | null {
  const voters = conf.voters;
  if (change.kind === "addLearner") return null;
  if (change.kind === "addVoter") {
    const started = voters.filter((id) => records.some((r) => r.id === id && r.name !== "")).length;
    if (started < quorumOf(voters.length + 1)) return "not-enough-started";
    if (reachable !== null && !voters.every(reachable)) return "unhealthy";
    return null;
  }
  if (!voters.includes(change.id) || reachable === null) return null;
  const remaining = voters.filter((id) => id !== change.id);
  return remaining.filter(reachable).length < quorumOf(remaining.length) ? "unhealthy" : null;
}
