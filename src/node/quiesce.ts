/**
 * The node-level liveness rule that keeps quiesced ranges live.
 *
 * A quiesced follower's election timer stands still, so it cannot notice on its own that its
 * leader died or was cut off. Instead the host makes sure every peer hears from it once per
 * liveness interval (a quarter of an election timeout): a peer it sent no Raft message to
 * since the last interval gets one small liveness message (on group LIVENESS_GROUP, never a
 * range's group: range ids are positive). Every host remembers when it last heard anything
 * from each peer — a liveness message or any Raft message. When a peer has been silent for an
 * election timeout, every replica here that its leader on that peer quiesced is woken: its
 * core ticks again, times out and elects a new leader, exactly as an unquiesced follower
 * would have. This file owns that bookkeeping.
 *
 * Silence is counted in this node's ticks, as Raft's election timers are, not in
 * milliseconds: a process stopped for a minute (SIGSTOP, a VM pause, a long GC) gets one
 * late tick when it resumes, so it does not blame peers for the time it was not listening.
 * Counted in milliseconds, a whole cluster stopped and resumed woke every quiesced follower
 * at once, and their elections left ranges without a leader for a second or more.
 *
 * Why not every tick: an idle member's liveness messages were a third of its CPU, each one
 * an event-loop wake-up on both ends. Four chances per election timeout still ride out a lost
 * message or a stalled event loop, and a spurious wake-up costs a few messages, not safety.
 */
import { message, MessageType, type Message, type NodeId } from "../raft/types.js";

/** The envelope group of liveness messages; ranges are numbered from 1. */
export const LIVENESS_GROUP = 0;

/** Ticks between liveness messages: four per election timeout, at least one per tick. */
export function livenessIntervalTicks(electionTicks: number): number {
  return Math.max(1, Math.floor(electionTicks / 4));
}

/** One liveness message (a term-0 heartbeat on LIVENESS_GROUP, never stepped into a core). */
export function livenessMessage(from: NodeId, to: NodeId): Message {
  return message({ type: MessageType.Heartbeat, from, to });
}

/** Who this node talks to, when it last heard from each, and which quiesced followers wait on whom. */
export class PeerLiveness<Follower = unknown> {
  private readonly knownPeers = new Set<NodeId>();
  /** Peers sent a Raft message since the last `owedLiveness`: they heard from this node. */
  private readonly spokenTo = new Set<NodeId>();
  private readonly lastHeard = new Map<NodeId, number>();
  private readonly followersOf = new Map<NodeId, Set<Follower>>();
  private readonly leaderOf = new Map<Follower, NodeId>();

  /** @param silenceTicks how many of this node's ticks a leader's node may stay silent before its followers wake */
  constructor(private readonly silenceTicks: number) {
    if (!Number.isSafeInteger(silenceTicks) || silenceTicks <= 0) {
      throw new RangeError(`liveness silence must be a positive number of ticks, got ${silenceTicks}`);
    }
  }

  /** A peer this node sent Raft messages to: it gets liveness messages from now on. */
  addPeer(peer: NodeId): void {
    this.knownPeers.add(peer);
  }

  /** A Raft message went to `peer`: it needs no liveness message this interval. */
  spokeTo(peer: NodeId): void {
    this.knownPeers.add(peer);
    this.spokenTo.add(peer);
  }

  /** The peers sent nothing since the last call: each is owed a liveness message now. */
  owedLiveness(): NodeId[] {
    const owed = [...this.knownPeers].filter((peer) => !this.spokenTo.has(peer));
    this.spokenTo.clear();
    return owed;
  }

  /** Anything arrived from `peer` when this node had counted `tick` ticks. */
  heard(peer: NodeId, tick: number): void {
    this.knownPeers.add(peer);
    this.lastHeard.set(peer, tick);
  }

  /** `follower` was quiesced by its leader on node `leader`. */
  follows(follower: Follower, leader: NodeId): void {
    this.forget(follower);
    this.leaderOf.set(follower, leader);
    let followers = this.followersOf.get(leader);
    if (followers === undefined) this.followersOf.set(leader, (followers = new Set()));
    followers.add(follower);
  }

  /** `follower` is awake again (or gone): no longer waits on anyone. */
  forget(follower: Follower): void {
    const leader = this.leaderOf.get(follower);
    if (leader === undefined) return;
    this.leaderOf.delete(follower);
    const followers = this.followersOf.get(leader)!;
    followers.delete(follower);
    if (followers.size === 0) this.followersOf.delete(leader);
  }

  /** Whether anything arrived from `peer` within the last `silenceTicks` ticks before `tick`. */
  recentlyHeard(peer: NodeId, tick: number): boolean {
    const last = this.lastHeard.get(peer);
    return last !== undefined && tick - last < this.silenceTicks;
  }

  /**
   * The followers whose leader's node has been silent for `silenceTicks` up to `tick` (or was
   * never heard from); they stop waiting on it. The caller wakes them.
   */
  silentLeaderFollowers(tick: number): Follower[] {
    const woken: Follower[] = [];
    for (const [leader, followers] of this.followersOf) {
      if (this.recentlyHeard(leader, tick)) continue;
      for (const follower of followers) {
        woken.push(follower);
        this.leaderOf.delete(follower);
      }
      this.followersOf.delete(leader);
    }
    return woken;
  }
}
