/**
 * `HeldLeadership`: one tenure of one candidate, from election to loss. It owns the `lost`
 * signal and the monitors that fire it: the session's loss (its local deadline or a keep-alive
 * saying the lease is gone), a watch of the subspace (the leader record or the term moving away
 * from this tenure), and a read at each renewal boundary (the same check, plus preemption by a
 * strictly higher registered priority when the config allows it).
 */
import type { Compare } from "../../kv/commands.js";
import type { RecipeClient, RecipeRuntime } from "../client.js";
import { LeadershipLostError, type LeadershipLossReason, type SessionLostError } from "../errors.js";
import { decodeTerm, guard } from "../fencing.js";
import type { Session } from "../session.js";
import { DEFAULT_ELECTION_CONFIG } from "./config.js";
import { decodeLeaderRecord } from "./records.js";
import { readElectionState, type ElectionKeys, type ElectionState } from "./state.js";
import { WatchWaiter } from "./waiter.js";

/** What a successful campaign gives its holder. */
export interface Leadership {
  /** The fencing token: strictly greater than every earlier holder's. */
  readonly term: bigint;
  /** The holder's candidate key (`<subspace>/candidates/<id>`). */
  readonly leaderKey: Uint8Array;
  /** The session lease the leader record is attached to. */
  readonly lease: bigint;
  /** The revision at which this holder was seen elected. */
  readonly revision: bigint;
  /** Fires (reason: LeadershipLostError) when the holder must stop acting as leader. */
  readonly lost: AbortSignal;
  /** Compares that make a txn fail unless this term is still the current, held term. */
  guard(): Compare[];
}

/** What a tenure needs from the election handle that won it. */
export interface HolderContext {
  readonly client: RecipeClient;
  readonly keys: ElectionKeys;
  readonly runtime: RecipeRuntime;
  readonly candidateId: string;
  /** Deletes the tenure's leader record (if still its own) and its candidate record. */
  release(held: HeldLeadership): Promise<void>;
  /** Called once, when the tenure ends. */
  ended(held: HeldLeadership): void;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

export class HeldLeadership {
  readonly leadership: Leadership;
  private readonly controller = new AbortController();
  private readonly stops: (() => void)[] = [];

  constructor(
    private readonly context: HolderContext,
    readonly session: Session,
    term: bigint,
    revision: bigint,
  ) {
    const subspace = context.keys.subspace;
    this.leadership = {
      term,
      leaderKey: context.keys.candidate(context.candidateId),
      lease: session.leaseId,
      revision,
      lost: this.controller.signal,
      guard: () => guard(subspace, term),
    };
  }

  get isLost(): boolean {
    return this.controller.signal.aborted;
  }

  /** Starts the monitors; the session must not be lost yet. */
  start(): void {
    const session = this.session;
    const onSessionLost = (): void => this.lose((session.lost.reason as SessionLostError).reason, false);
    session.lost.addEventListener("abort", onSessionLost, { once: true });
    this.stops.push(() => session.lost.removeEventListener("abort", onSessionLost));
    this.stops.push(session.onRenewed(() => void this.checkAtRenewal().catch(() => undefined)));
    const watchStop = new AbortController();
    this.stops.push(() => watchStop.abort());
    void this.watch(watchStop.signal).catch(() => undefined);
  }

  /** Whether the state's leader record is this tenure's (same term, same lease). */
  holds(state: ElectionState): boolean {
    return state.leader?.term === this.leadership.term && state.leader.lease === this.leadership.lease;
  }

  /**
   * Ends the tenure: `lost` fires with `reason`, the monitors stop; with `cleanUp` (and a live
   * session) its records are deleted in the background — guarded, so a newer holder's never are.
   */
  lose(reason: LeadershipLossReason, cleanUp: boolean): void {
    if (this.controller.signal.aborted) return;
    for (const stop of this.stops.splice(0)) stop();
    this.controller.abort(new LeadershipLostError(reason, this.leadership.term));
    this.context.ended(this);
    if (cleanUp && !this.session.isLost) void this.context.release(this).catch(() => undefined);
  }

  /** At each renewal boundary: is the record still ours, and must we yield to a higher priority? */
  private async checkAtRenewal(): Promise<void> {
    const state = await readElectionState(this.context.client, this.context.keys);
    if (this.isLost) return;
    if (!this.holds(state)) {
      this.lose(state.term !== this.leadership.term ? "term-changed" : "leader-changed", true);
      return;
    }
    const config = state.config ?? DEFAULT_ELECTION_CONFIG;
    const holderPriority = state.leader!.priority;
    const higher = state.candidates.some(
      (c) => c.record.id !== this.context.candidateId && c.record.priority > holderPriority,
    );
    if (config.preemptionAllowed && higher) this.lose("preempted", true);
  }

  /** Follows the subspace for any change of the leader record or the term away from this tenure. */
  private async watch(stop: AbortSignal): Promise<void> {
    const { client, keys, runtime } = this.context;
    const waiter = new WatchWaiter(client, keys.all, runtime);
    await waiter.follow(this.leadership.revision + 1n, stop, (event) => {
      if (this.isLost) return false;
      const key = event.kv.key;
      if (sameKey(key, keys.term)) {
        if (event.type === "delete" || decodeTerm(event.kv.value) !== this.leadership.term) {
          this.lose("term-changed", true);
          return false;
        }
      } else if (sameKey(key, keys.leader)) {
        const record =
          event.type === "put" ? decodeLeaderRecord(event.kv.value, `${keys.subspace}/leader`) : null;
        if (record?.term !== this.leadership.term || record.lease !== this.leadership.lease) {
          this.lose("leader-changed", true);
          return false;
        }
      }
      return true;
    });
  }
}
