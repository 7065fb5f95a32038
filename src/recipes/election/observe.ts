/**
 * `observeLeader`: the election's leader changes as an async iterator, one item per revision
 * that changed the leader record or the term, resumable from a revision. Built on a prefix
 * watch of the subspace with previous values (a deleted leader record still tells its term).
 */
import type { KvEvent } from "../../kv/results.js";
import { sleep, type RecipeClient, type RecipeRuntime, systemRuntime } from "../client.js";
import { decodeTerm } from "../fencing.js";
import { decodeLeaderRecord } from "./records.js";
import { readElectionState, type ElectionKeys } from "./state.js";

export interface ObserveOptions {
  /**
   * Report changes from this revision on (resume with the last change's revision + 1).
   * Without it, the current state is reported first, then every later change.
   */
  readonly fromRevision?: bigint;
  /** Aborting it ends the iteration. */
  readonly signal?: AbortSignal;
  readonly runtime?: RecipeRuntime;
}

export interface LeaderChange {
  /** The holder's candidate id, or null when nobody leads. */
  readonly leader: string | null;
  /** The holder's term, or with no holder the last term issued. */
  readonly term: bigint;
  /** The holder's value (null with no holder). */
  readonly value: Uint8Array | null;
  readonly priority: number | null;
  /** The revision of the change (of the read, for the initial state). */
  readonly revision: bigint;
}

const RETRY_PAUSE_MS = 50;

/** Read through a call so the compiler does not assume the signal stayed as last checked. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
const MAX_CONSECUTIVE_FAILURES = 20;

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The change one revision's events make, or null when they touch neither leader nor term. */
function changeOf(keys: ElectionKeys, events: readonly KvEvent[], revision: bigint): LeaderChange | null {
  let leaderEvent: KvEvent | undefined;
  let termEvent: KvEvent | undefined;
  for (const event of events) {
    if (sameKey(event.kv.key, keys.leader)) leaderEvent = event;
    else if (sameKey(event.kv.key, keys.term)) termEvent = event;
  }
  const newTerm = termEvent?.type === "put" ? decodeTerm(termEvent.kv.value) : undefined;
  if (leaderEvent?.type === "put") {
    const record = decodeLeaderRecord(leaderEvent.kv.value, `${keys.subspace}/leader`);
    return {
      leader: record.holder,
      term: record.term,
      value: record.value,
      priority: record.priority,
      revision,
    };
  }
  if (leaderEvent !== undefined) {
    const previous =
      leaderEvent.prevKv === null
        ? undefined
        : decodeLeaderRecord(leaderEvent.prevKv.value, `${keys.subspace}/leader`);
    const term = newTerm ?? previous?.term ?? 0n;
    return { leader: null, term, value: null, priority: null, revision };
  }
  if (newTerm !== undefined) return { leader: null, term: newTerm, value: null, priority: null, revision };
  return null;
}

export async function* observeLeader(
  client: RecipeClient,
  keys: ElectionKeys,
  options: ObserveOptions,
): AsyncGenerator<LeaderChange> {
  const runtime = options.runtime ?? systemRuntime;
  const signal = options.signal;
  let next: bigint;
  if (options.fromRevision === undefined) {
    const state = await readElectionState(client, keys);
    const leader = state.leader;
    yield {
      leader: leader?.holder ?? null,
      term: leader?.term ?? state.term,
      value: leader?.value ?? null,
      priority: leader?.priority ?? null,
      revision: state.revision,
    };
    next = state.revision + 1n;
  } else {
    if (options.fromRevision < 1n)
      throw new RangeError(`fromRevision must be >= 1, got ${options.fromRevision}`);
    next = options.fromRevision;
  }
  let failures = 0;
  while (!isAborted(signal)) {
    let watch;
    try {
      watch = await client.watch(keys.all, { prefix: true, startRevision: next, prevKv: true });
    } catch (error) {
      if (++failures > MAX_CONSECUTIVE_FAILURES) throw error;
      await sleep(runtime, RETRY_PAUSE_MS);
      continue;
    }
    const cancel = (): void => void watch.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const response of watch) {
        failures = 0;
        if (response.canceled) {
          throw new Error(
            `observing ${keys.subspace}: watch cancelled at revision ${response.revision}: ${response.cancelReason}` +
              (response.compactRevision > 0n ? ` (history starts at ${response.compactRevision})` : ""),
          );
        }
        const byRevision = new Map<bigint, KvEvent[]>();
        for (const event of response.events) {
          const list = byRevision.get(event.kv.modRevision) ?? [];
          list.push(event);
          byRevision.set(event.kv.modRevision, list);
        }
        for (const [revision, events] of byRevision) {
          const change = changeOf(keys, events, revision);
          if (change !== null) yield change;
          next = revision + 1n;
        }
        next = response.revision + 1n;
      }
    } catch (error) {
      if (isAborted(signal)) return;
      if (error instanceof Error && error.message.startsWith(`observing ${keys.subspace}:`)) throw error;
      if (++failures > MAX_CONSECUTIVE_FAILURES) throw error;
      await sleep(runtime, RETRY_PAUSE_MS);
    } finally {
      signal?.removeEventListener("abort", cancel);
      await watch.cancel();
    }
  }
}
