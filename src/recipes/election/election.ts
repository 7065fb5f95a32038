/**
 * `Election`: one candidate's handle on a fenced leader election stored under a subspace
 * (layout and records: state.ts, records.ts, config.ts; a won tenure: holder.ts). It registers the candidate under its
 * session's lease, acquires leadership with one transaction that increments the term and is
 * refused if anything it decided on changed (leader, term, config, any registration), keeps the
 * holder informed (`lost` fires on the session's deadline or on any sign of loss, and on
 * preemption before the holder resigns), and offers the admin operations that move the term
 * (transfer, evict, fence-all, disable). Every write whose outcome is unknown is settled by
 * reading the state again, never by assuming.
 */
import type { TxnOp, TxnRequest } from "../../kv/commands.js";
import { deleteRangeRequest, putRequest, txnRequest } from "../../kv/commands.js";
import { KvError, KvErrorCode } from "../../kv/errors.js";
import {
  bytesOf,
  isAmbiguousWrite,
  systemRuntime,
  type RecipeBytes,
  type RecipeClient,
  type RecipeRuntime,
} from "../client.js";
import {
  CampaignAbortedError,
  ElectionClosedError,
  NotLeaderError,
  RecipeConfigError,
  SessionLostError,
} from "../errors.js";
import { encodeTerm, guard } from "../fencing.js";
import { Session } from "../session.js";
import {
  DEFAULT_ELECTION_CONFIG,
  encodeElectionConfig,
  mergeElectionConfig,
  type ElectionConfig,
} from "./config.js";
import { HeldLeadership, type HolderContext, type Leadership } from "./holder.js";
import { observeLeader, type LeaderChange, type ObserveOptions } from "./observe.js";
import {
  checkCandidateId,
  checkPriority,
  checkSubspace,
  decodeLeaderRecord,
  encodeCandidateRecord,
  encodeLeaderRecord,
  type LeaderRecord,
} from "./records.js";
import {
  ElectionKeys,
  keyAbsent,
  leaseIs,
  modRevisionIs,
  readElectionState,
  unchangedSince,
  type ElectionState,
} from "./state.js";
import { WatchWaiter } from "./waiter.js";

export type { Leadership } from "./holder.js";

export interface ElectionOptions {
  /** The key prefix the election lives under (`<subspace>/leader` ...). */
  readonly subspace: string;
  /** This candidate's id, unique among the processes campaigning in the subspace. */
  readonly candidateId: string;
  readonly runtime?: RecipeRuntime;
  /** Safety margin of the session's local deadline (default: TTL / 5, at most 1 s). */
  readonly marginMs?: number;
  /**
   * A session to register under instead of one this handle grants from the config (an etcd
   * client's lease). `close()` leaves a given session alone.
   */
  readonly session?: Session;
}

export interface CampaignOptions {
  /** Registered with the candidate record; the election reads it from there (default 0). */
  readonly priority?: number;
  /** Aborting it gives up the campaign: the candidate withdraws and the campaign rejects. */
  readonly signal?: AbortSignal;
}

/** The current holder as one read of the leader key shows it. */
export interface LeaderInfo {
  readonly holder: string;
  readonly term: bigint;
  readonly priority: number;
  readonly value: Uint8Array;
  readonly lease: bigint;
  /** The leader key's mod revision. */
  readonly revision: bigint;
}

/** Ambiguous writes re-sent (idempotent ones) or re-decided (after a re-read) at most this often. */
const MAX_WRITE_ATTEMPTS = 20;

export class Election {
  readonly subspace: string;
  readonly candidateId: string;
  private readonly keys: ElectionKeys;
  private readonly runtime: RecipeRuntime;
  private session: Session | null;
  private readonly ownsSession: boolean;
  private held: HeldLeadership | null = null;
  private readonly holderContext: HolderContext;
  private campaigning = false;
  private readonly closing = new AbortController();

  constructor(
    private readonly client: RecipeClient,
    private readonly options: ElectionOptions,
  ) {
    this.subspace = checkSubspace(options.subspace);
    this.candidateId = checkCandidateId(options.candidateId);
    this.keys = new ElectionKeys(this.subspace);
    this.runtime = options.runtime ?? systemRuntime;
    this.session = options.session ?? null;
    this.ownsSession = options.session === undefined;
    this.holderContext = {
      client,
      keys: this.keys,
      runtime: this.runtime,
      candidateId: this.candidateId,
      release: (held) => this.release(held),
      ended: (held) => {
        if (this.held === held) this.held = null;
      },
    };
  }

  /** The key this candidate registers under. */
  get candidateKey(): Uint8Array {
    return this.keys.candidate(this.candidateId);
  }

  /** The current leadership, if this handle holds one that has not been lost. */
  get leadership(): Leadership | null {
    return this.held?.leadership ?? null;
  }

  /** Reads the config, creating it with the defaults when missing. */
  async config(): Promise<ElectionConfig> {
    return this.configure({});
  }

  /**
   * Changes the config (fields not given keep their stored or default value), validated as a
   * whole before anything is written; creates it when missing. Sessions already granted keep
   * their lease TTL and renew interval.
   */
  async configure(changes: Partial<ElectionConfig>): Promise<ElectionConfig> {
    this.checkOpen();
    for (let attempt = 0; ; attempt++) {
      const state = await this.read();
      const wanted = mergeElectionConfig(state.config ?? DEFAULT_ELECTION_CONFIG, changes);
      if (state.config !== null && sameConfig(state.config, wanted)) return wanted;
      try {
        const result = await this.client.txn({
          compares: [modRevisionIs(this.keys.config, state.configModRevision)],
          success: [putRequest({ key: this.keys.config, value: encodeElectionConfig(wanted) })],
        });
        if (result.succeeded) return wanted;
      } catch (error) {
        // The next read shows whether it applied.
        if (!isAmbiguousWrite(error) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
      }
      if (attempt >= MAX_WRITE_ATTEMPTS) throw new Error("election config kept changing; gave up");
    }
  }

  /**
   * Registers this candidate with `priority` and waits until it is elected. Rejects with
   * CampaignAbortedError when `signal` aborts, the session is lost, the candidate is evicted,
   * or the handle closes; the candidate has withdrawn by then (or its lease is gone).
   */
  async campaign(value: RecipeBytes, options: CampaignOptions = {}): Promise<Leadership> {
    this.checkOpen();
    const priority = checkPriority(options.priority ?? 0);
    const valueBytes = bytesOf(value);
    if (this.held !== null) throw new RecipeConfigError("this candidate already leads; resign first");
    if (this.campaigning) throw new RecipeConfigError("this candidate is already campaigning");
    this.campaigning = true;
    try {
      if (options.signal?.aborted === true) throw new CampaignAbortedError("signal");
      const config = await this.config();
      const session = await this.ensureSession(config);
      try {
        await this.register(session, priority, valueBytes);
        return await this.waitUntilElected(session, options.signal);
      } catch (error) {
        if (!session.isLost) await this.withdraw(session).catch(() => undefined);
        throw error;
      }
    } finally {
      this.campaigning = false;
    }
  }

  /** Replaces the holder's value; the term stays. Throws NotLeaderError unless this handle holds. */
  async proclaim(value: RecipeBytes): Promise<void> {
    const held = this.requireHeld();
    const { term, lease } = held.leadership;
    for (let attempt = 0; ; attempt++) {
      const state = await this.read();
      if (!held.holds(state)) throw new NotLeaderError("the leader record is no longer this holder's");
      const record: LeaderRecord = { ...state.leader!, value: bytesOf(value) };
      try {
        const result = await this.client.txn({
          compares: [...guard(this.subspace, term), leaseIs(this.keys.leader, lease)],
          success: [putRequest({ key: this.keys.leader, value: encodeLeaderRecord(record), lease })],
        });
        if (!result.succeeded) throw new NotLeaderError("the term moved on");
        return;
      } catch (error) {
        if (!isAmbiguousWrite(error) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Gives up leadership: `lost` fires first ("resigned"), then the leader record and the
   * candidate record are deleted. The term is kept, so the next holder's is higher. Without
   * a leadership, withdraws a lingering registration.
   */
  async resign(): Promise<void> {
    this.checkOpen();
    const held = this.held;
    if (held === null) {
      if (this.session !== null && !this.session.isLost) await this.withdraw(this.session);
      return;
    }
    held.lose("resigned", false);
    await this.release(held);
  }

  /** The current holder (one read of the leader key), or null when nobody leads. */
  async leader(): Promise<LeaderInfo | null> {
    const kv = await this.client.get(this.keys.leader);
    if (kv === null) return null;
    const record = decodeLeaderRecord(kv.value, `${this.subspace}/leader`);
    return { ...record, revision: kv.modRevision };
  }

  /**
   * The leader changes, in revision order: first the current state (unless `fromRevision` is
   * given), then every change. Resume after a break with `fromRevision: last.revision + 1`.
   */
  observe(options: ObserveOptions = {}): AsyncGenerator<LeaderChange> {
    return observeLeader(this.client, this.keys, { runtime: this.runtime, ...options });
  }

  /**
   * Hands leadership to the registered candidate `candidateId`: in one transaction the term
   * grows by one and the leader record names the target, attached to the target's lease. This
   * holder's `lost` fires first ("transferred"). If the target is not registered, nothing
   * changes and RecipeConfigError is thrown; if the hand-off transaction loses a race, the
   * leadership is released for a normal election and NotLeaderError is thrown.
   * Resolves with the new term.
   */
  async transferTo(candidateId: string): Promise<bigint> {
    const target = checkCandidateId(candidateId);
    const held = this.requireHeld();
    const { term, lease } = held.leadership;
    const state = await this.read();
    if (!held.holds(state)) {
      held.lose("leader-changed", true);
      throw new NotLeaderError("the leader record is no longer this holder's");
    }
    const candidate = state.candidates.find((c) => c.record.id === target);
    if (candidate === undefined)
      throw new RecipeConfigError(`no candidate ${JSON.stringify(target)} is registered`);
    if (target === this.candidateId) return term;
    held.lose("transferred", false);
    const next = term + 1n;
    const record: LeaderRecord = {
      holder: target,
      term: next,
      priority: candidate.record.priority,
      lease: candidate.lease,
      value: candidate.record.value,
    };
    const handOff = {
      compares: [
        ...guard(this.subspace, term),
        leaseIs(this.keys.leader, lease),
        modRevisionIs(this.keys.candidate(target), candidate.modRevision),
      ],
      success: [
        putRequest({ key: this.keys.term, value: encodeTerm(next) }),
        putRequest({ key: this.keys.leader, value: encodeLeaderRecord(record), lease: candidate.lease }),
        deleteRangeRequest({ key: this.candidateKey }),
      ],
    };
    let succeeded: boolean;
    try {
      succeeded = (await this.client.txn(handOff)).succeeded;
    } catch (error) {
      if (!isAmbiguousWrite(error)) throw error;
      const after = await this.read();
      succeeded = after.leader?.holder === target && after.leader.term === next;
    }
    if (succeeded) return next;
    await this.release(held);
    throw new NotLeaderError(`hand-off to ${target} lost a race; leadership released`);
  }

  /**
   * Removes candidate `candidateId`: its registration, and when it holds, its leadership too
   * (the term grows, fencing its writes). Resolves false when it was not registered or leading.
   */
  async evict(candidateId: string): Promise<boolean> {
    const id = checkCandidateId(candidateId);
    this.checkOpen();
    let outcomeUnknown = false;
    for (let attempt = 0; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const state = await this.read();
      const candidate = state.candidates.find((c) => c.record.id === id);
      let spec: TxnRequest;
      if (state.leader?.holder === id) {
        spec = this.fenceTxn(state, []);
      } else if (candidate !== undefined) {
        spec = txnRequest({
          compares: [modRevisionIs(this.keys.candidate(id), candidate.modRevision)],
          success: [deleteRangeRequest({ key: this.keys.candidate(id) })],
        });
      } else {
        // Gone: by our own write whose answer was lost, or by someone else's.
        return outcomeUnknown;
      }
      try {
        if ((await this.client.txn(spec)).succeeded) return true;
      } catch (error) {
        if (!isAmbiguousWrite(error)) throw error;
        outcomeUnknown = true;
      }
    }
    throw new Error(`evicting ${id}: the election kept changing; gave up`);
  }

  /**
   * Makes every fencing token issued so far stale: the term grows by one and the holder, if
   * any, is removed (with its registration). Resolves with the new term.
   */
  async fenceAll(): Promise<bigint> {
    this.checkOpen();
    return this.fence([]);
  }

  /** Stops elections (stored in the config) and removes the current holder, fencing its term. */
  async disable(): Promise<void> {
    await this.configure({ electionEnabled: false });
    await this.fence([]);
  }

  async enable(): Promise<void> {
    await this.configure({ electionEnabled: true });
  }

  /**
   * Ends this handle: a running campaign rejects, a held leadership's `lost` fires ("closed"),
   * and the session this handle granted is revoked (its records vanish at one revision). With
   * a given session, this candidate's records are deleted instead and the session is left alone.
   */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort(new CampaignAbortedError("closed"));
    const held = this.held;
    if (held !== null) held.lose("closed", false);
    const session = this.session;
    if (session === null || session.isLost) return;
    if (this.ownsSession) {
      await session.close();
    } else if (held !== null) {
      await this.release(held);
    } else {
      await this.withdraw(session);
    }
  }

  private checkOpen(): void {
    if (this.closing.signal.aborted) throw new ElectionClosedError();
  }

  private requireHeld(): HeldLeadership {
    this.checkOpen();
    if (this.held === null) throw new NotLeaderError();
    return this.held;
  }

  private read(): Promise<ElectionState> {
    return readElectionState(this.client, this.keys);
  }

  private async ensureSession(config: ElectionConfig): Promise<Session> {
    if (this.session !== null && !this.session.isLost) return this.session;
    if (!this.ownsSession)
      throw new CampaignAbortedError((this.session!.lost.reason as SessionLostError).reason);
    this.session = await Session.create(this.client, {
      ttlSeconds: config.leaseSeconds,
      renewIntervalMs: config.renewIntervalMs,
      runtime: this.runtime,
      ...(this.options.marginMs === undefined ? {} : { marginMs: this.options.marginMs }),
    });
    return this.session;
  }

  /**
   * Writes (or rewrites) this candidate's record, attached to the session's lease. A lease the
   * store no longer has (it expired, e.g. while the write was retried) loses the session.
   */
  private async register(session: Session, priority: number, value: Uint8Array): Promise<void> {
    const record = encodeCandidateRecord({ id: this.candidateId, priority, lease: session.leaseId, value });
    try {
      await this.writeIdempotent({
        success: [putRequest({ key: this.candidateKey, value: record, lease: session.leaseId })],
      });
    } catch (error) {
      if (!(error instanceof KvError) || error.code !== KvErrorCode.LeaseNotFound) throw error;
      session.markLost("lease-gone");
      throw new CampaignAbortedError("lease-gone", { cause: error });
    }
  }

  /** Deletes this candidate's record if it is still attached to `session`. */
  private async withdraw(session: Session): Promise<void> {
    await this.writeIdempotent({
      compares: [leaseIs(this.candidateKey, session.leaseId)],
      success: [deleteRangeRequest({ key: this.candidateKey })],
    });
  }

  /** Deletes the leader record if it is still `held`'s, and this candidate's record. */
  private async release(held: HeldLeadership): Promise<void> {
    const { term, lease } = held.leadership;
    const withdraw = txnRequest({
      compares: [leaseIs(this.candidateKey, lease)],
      success: [deleteRangeRequest({ key: this.candidateKey })],
    });
    await this.writeIdempotent({
      compares: [...guard(this.subspace, term), leaseIs(this.keys.leader, lease)],
      success: [deleteRangeRequest({ key: this.keys.leader }), withdraw],
      failure: [withdraw],
    });
  }

  /** Sends a txn that may be applied twice without harm, again while its outcome is unknown. */
  private async writeIdempotent(spec: Partial<Omit<TxnRequest, "kind">>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.client.txn(spec)).succeeded;
      } catch (error) {
        if (!isAmbiguousWrite(error) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
      }
    }
  }

  /** Deletes the holder (and its record) and bumps the term, plus `extra` ops, if the term did not move since `state`. */
  private fenceTxn(state: ElectionState, extra: TxnOp[]): TxnRequest {
    const success: TxnOp[] = [
      putRequest({ key: this.keys.term, value: encodeTerm(state.term + 1n) }),
      ...extra,
    ];
    if (state.leader !== null) {
      success.push(deleteRangeRequest({ key: this.keys.leader }));
      success.push(deleteRangeRequest({ key: this.keys.candidate(state.leader.holder) }));
    }
    return txnRequest({ compares: [modRevisionIs(this.keys.term, state.termModRevision)], success });
  }

  private async fence(extra: TxnOp[]): Promise<bigint> {
    let floor: bigint | null = null;
    for (let attempt = 0; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const state = await this.read();
      // After an unknown outcome, any term above the one we meant to leave behind will do:
      // every token up to it is stale either way.
      if (floor !== null && state.term > floor) return state.term;
      try {
        if ((await this.client.txn(this.fenceTxn(state, extra))).succeeded) return state.term + 1n;
      } catch (error) {
        if (!isAmbiguousWrite(error)) throw error;
        floor = state.term;
      }
    }
    throw new Error("fencing: the term kept changing; gave up");
  }

  private async waitUntilElected(session: Session, signal: AbortSignal | undefined): Promise<Leadership> {
    const waiter = new WatchWaiter(this.client, this.keys.all, this.runtime);
    for (;;) {
      if (signal?.aborted === true) throw new CampaignAbortedError("signal");
      if (this.closing.signal.aborted) throw new CampaignAbortedError("closed");
      if (session.isLost) throw new CampaignAbortedError((session.lost.reason as SessionLostError).reason);
      const state = await this.read();
      const config = state.config ?? DEFAULT_ELECTION_CONFIG;
      if (state.leader?.holder === this.candidateId && state.leader.lease === session.leaseId) {
        return this.becomeLeader(session, state.leader.term, state.leaderKv!.modRevision);
      }
      const mine = state.candidates.find((c) => c.record.id === this.candidateId);
      if (mine?.lease !== session.leaseId) {
        // Our record vanished: we are closing, our lease is gone, or an admin evicted us.
        if (this.closing.signal.aborted) throw new CampaignAbortedError("closed");
        if (session.isLost) throw new CampaignAbortedError((session.lost.reason as SessionLostError).reason);
        const ttl = await this.client.leaseKeepAlive(session.leaseId).catch(() => undefined);
        if (ttl === null) session.markLost("lease-gone");
        throw new CampaignAbortedError(ttl === null ? "lease-gone" : "evicted");
      }
      const electable = config.electionEnabled && state.leader === null && state.candidates[0] === mine;
      if (electable) {
        const elected = await this.tryAcquire(state, session, mine.record.priority, mine.record.value);
        if (elected !== null) return this.becomeLeader(session, elected.term, elected.revision);
        continue;
      }
      await waiter.waitForChange(state.revision, config.candidateTimeoutMs, [
        signal,
        session.lost,
        this.closing.signal,
      ]);
    }
  }

  /** The acquire transaction; null when it was refused or its outcome is unknown (re-read decides). */
  private async tryAcquire(
    state: ElectionState,
    session: Session,
    priority: number,
    value: Uint8Array,
  ): Promise<{ term: bigint; revision: bigint } | null> {
    const term = state.term + 1n;
    const record: LeaderRecord = { holder: this.candidateId, term, priority, lease: session.leaseId, value };
    try {
      const result = await this.client.txn({
        compares: [
          keyAbsent(this.keys.leader),
          modRevisionIs(this.keys.term, state.termModRevision),
          modRevisionIs(this.keys.config, state.configModRevision),
          unchangedSince(this.keys.candidatesPrefix, state.revision),
          leaseIs(this.candidateKey, session.leaseId),
        ],
        success: [
          putRequest({ key: this.keys.term, value: encodeTerm(term) }),
          putRequest({ key: this.keys.leader, value: encodeLeaderRecord(record), lease: session.leaseId }),
        ],
      });
      return result.succeeded ? { term, revision: result.revision } : null;
    } catch (error) {
      if (isAmbiguousWrite(error)) return null;
      throw error;
    }
  }

  /** Starts a tenure; a session lost meanwhile makes the campaign reject instead (no phantom leader). */
  private becomeLeader(session: Session, term: bigint, revision: bigint): Leadership {
    if (session.isLost) throw new CampaignAbortedError((session.lost.reason as SessionLostError).reason);
    const held = new HeldLeadership(this.holderContext, session, term, revision);
    this.held = held;
    held.start();
    return held.leadership;
  }
}

function sameConfig(a: ElectionConfig, b: ElectionConfig): boolean {
  return (Object.keys(a) as (keyof ElectionConfig)[]).every((field) => a[field] === b[field]);
}
