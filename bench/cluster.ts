/**
 * What a benchmarked cluster offers the workloads, and the helpers both kinds of cluster
 * share: free loopback ports, bounded polling, bounded waits, a temporary root directory.
 */
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ConcordDb } from "../src/api/index.js";

/** A running 3-replica cluster under test. */
export interface BenchCluster {
  /** How the cluster runs and how clients reach it, as printed in the table. */
  readonly setup: string;
  /** `count` new client handles, each with its own client id and write sequence. */
  handles(count: number): ConcordDb[];
  /** Stops every member and removes every file the cluster wrote. */
  close(): Promise<void>;
}

/** A loopback port that was free a moment ago: bound on port 0 and released. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port was bound");
  return address.port;
}

/** Polls `condition` every 50 ms until it holds; fails after `limitMs` rather than hang. */
export async function waitFor(
  condition: () => Promise<boolean>,
  what: string,
  limitMs = 60_000,
): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (performance.now() < deadline) {
    if (await condition()) return;
    await sleep(50);
  }
  throw new Error(`gave up waiting for ${what} after ${limitMs} ms`);
}

/** A fresh directory under the system's temp dir for one cluster's data. */
export function makeTempRoot(): string {
  return mkdtempSync(join(tmpdir(), "concord-bench-"));
}

/** `promise`, or a rejection naming `what` once `ms` have passed (the timer is cleared either way). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
