// Shared pieces of the client API tests: decoding values, bounded waits, a cluster of members
// in this process.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Concord, type EmbeddedConcord } from "../../src/api/index.js";
import { freePort } from "../free-port.js";

const decoder = new TextDecoder();

export function text(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : decoder.decode(bytes);
}

/** Polls `condition` until it holds; fails (never hangs) after a bounded number of tries. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let tries = 0; tries < 3_000; tries++) {
    if (await condition()) return;
    await sleep(10);
  }
  throw new Error(`gave up waiting for ${what}`);
}

/**
 * `ids.length` Concord.open members with static peers on 127.0.0.1, client ports and 20 ms
 * ticks, each in a fresh temp dir, put into `members` by id; resolves once every member knows
 * the same leader. The returned `close` closes the members still in `members` (a test that
 * closes one itself deletes it there) and removes the dirs.
 */
export async function openLoopbackCluster(
  ids: readonly number[],
  clusterId: string,
  members: Map<number, EmbeddedConcord>,
): Promise<() => Promise<void>> {
  const peers = new Map<number, string>();
  for (const id of ids) peers.set(id, `127.0.0.1:${await freePort()}`);
  const dirs = ids.map((nodeId) => mkdtempSync(join(tmpdir(), `concord-${clusterId}-${nodeId}-`)));
  const opened = await Promise.all(
    ids.map((nodeId, i) =>
      Concord.open({ dataDir: dirs[i]!, nodeId, peers, listenClient: "127.0.0.1:0", tickMs: 20, clusterId }),
    ),
  );
  for (const member of opened) members.set(member.nodeId, member);
  await waitFor(async () => {
    const statuses = await Promise.all(opened.map((m) => m.status()));
    return statuses.every((s) => s.leader !== 0 && s.leader === statuses[0]?.leader);
  }, "a leader known to every member");
  return async () => {
    for (const member of members.values()) await member.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
}
