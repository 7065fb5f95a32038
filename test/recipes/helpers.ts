// Shared pieces of the recipe tests: an embedded store in a temporary directory, bounded
// waits, and a promise that settles within a bound (or says what it was waiting for).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Concord, type ConcordDb } from "../../src/api/index.js";

export { text, waitFor } from "../api/helpers.js";

/** Opens a one-node store, runs `body` with it, closes and deletes it. */
export async function withStore(body: (db: ConcordDb) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-recipes-"));
  const db = await Concord.open({ dataDir, tickMs: 10 });
  try {
    await body(db);
  } finally {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** `promise`'s outcome, or a rejection naming `what` if it does not settle within `ms` (a hang guard, not a timing check). */
export async function within<T>(promise: Promise<T>, what: string, ms = 30_000): Promise<T> {
  const guard = new AbortController();
  const timeout = sleep(ms, undefined, { signal: guard.signal }).then(
    () => Promise.reject(new Error(`gave up waiting for ${what}`)),
    () => undefined as never,
  );
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    guard.abort();
  }
}

/** Whether `promise` is still pending after the event loop had a chance to settle it. */
export async function isPending(promise: Promise<unknown>, settleMs = 200): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(settleMs);
  return !settled;
}
