/**
 * Fenced locks: a lock named N is an election in subspace N whose candidates are sessions, all
 * of priority 0, so waiters are served in registration order (FIFO) and each holder's fencing
 * token is the election's term, which only grows. The lock is held while the holder's session
 * is; `lost` fires on the same conservative local deadline as a leader's.
 */
import type { Compare } from "../../kv/commands.js";
import type { RecipeClient, RecipeRuntime } from "../client.js";
import { Election } from "../election/election.js";
import { Session } from "../session.js";

export interface LockOptions {
  readonly runtime?: RecipeRuntime;
  /** TTL of the session this call grants when no `session` is given (default 10 s). */
  readonly ttlSeconds?: number;
  /** Aborting it while waiting gives up: the waiter withdraws and the call rejects. */
  readonly signal?: AbortSignal;
  /** Hold the lock under this session (e.g. an etcd client's lease); release() leaves it alone. */
  readonly session?: Session;
  /** Safety margin of a granted session's local deadline. */
  readonly marginMs?: number;
}

export interface HeldLock {
  /** Strictly greater than every earlier holder's token of this lock name. */
  readonly fencingToken: bigint;
  /** The holder's waiter key (`<name>/candidates/<lease id in hex>`). */
  readonly key: Uint8Array;
  readonly lease: bigint;
  /** Fires (reason: LeadershipLostError) when the lock must be considered lost. */
  readonly lost: AbortSignal;
  /** Compares that make a txn fail unless this holder still holds the lock. */
  guard(): Compare[];
  /** Releases the lock; a session this call granted is revoked. */
  release(): Promise<void>;
}

/** Waits for the lock `name` and holds it. */
export async function acquireLock(
  client: RecipeClient,
  name: string,
  options: LockOptions = {},
): Promise<HeldLock> {
  const session =
    options.session ??
    (await Session.create(client, {
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
      ...(options.runtime === undefined ? {} : { runtime: options.runtime }),
      ...(options.marginMs === undefined ? {} : { marginMs: options.marginMs }),
    }));
  const ownsSession = options.session === undefined;
  const election = new Election(client, {
    subspace: name,
    candidateId: session.leaseId.toString(16),
    session,
    ...(options.runtime === undefined ? {} : { runtime: options.runtime }),
  });
  let leadership;
  try {
    leadership = await election.campaign(new Uint8Array(0), {
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (error) {
    if (ownsSession) await session.close().catch(() => undefined);
    throw error;
  }
  let released = false;
  return {
    fencingToken: leadership.term,
    key: leadership.leaderKey,
    lease: leadership.lease,
    lost: leadership.lost,
    guard: () => leadership.guard(),
    async release() {
      if (released) return;
      released = true;
      await election.close();
      if (ownsSession) await session.close();
    },
  };
}
