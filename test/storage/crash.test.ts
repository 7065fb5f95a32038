// A real crash: a child process writes to a durable engine (lmdb, and the write-ahead log),
// says which rounds it has synced,
// and is SIGKILLed, either as soon as it has synced the first rounds or later, while it writes
// and commits continuously. Reopening must show every write of every round it reported synced,
// and the rest must be a prefix of what it wrote, in write order across groups.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { isDeepStrictEqual } from "node:util";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { NO_LIMIT, plainEntries } from "../../src/storage/conformance-model.js";
import { CRASH_GROUPS, crashEntry, openCrashEngine, type CrashEngineKind } from "./crash-data.js";
import { RecordingLogger, withDir } from "./support.js";

const CHILD = fileURLToPath(new URL("./crash-child.ts", import.meta.url));

/**
 * Runs the child (which syncs `syncedRounds` rounds first) until it reports round
 * `killAfter` synced, SIGKILLs it, and resolves with the highest round it reported synced.
 */
function runAndKill(
  kind: CrashEngineKind,
  dir: string,
  syncedRounds: number,
  killAfter: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, kind, dir, String(syncedRounds)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    let reported = 0;
    let killed = false;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      output += chunk;
      for (const match of output.matchAll(/^synced (\d+)$/gm))
        reported = Math.max(reported, Number(match[1]));
      if (!killed && reported >= killAfter) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (killed && signal === "SIGKILL") resolve(reported);
      else
        reject(
          new Error(`child ended by itself (code ${code}, signal ${signal}) before it was killed: ${output}`),
        );
    });
  });
}

/** Last index and commit of each group after the first `writes` writes of the child's sequence. */
function stateAfter(writes: number): number[] {
  const rounds = Math.floor(writes / (2 * CRASH_GROUPS.length));
  const extra = writes % (2 * CRASH_GROUPS.length);
  return CRASH_GROUPS.flatMap((_, position) => [
    rounds + (extra > 2 * position ? 1 : 0),
    rounds + (extra > 2 * position + 1 ? 1 : 0),
  ]);
}

describe("crash of a process writing to a durable engine", () => {
  for (const [kind, syncedRounds, killAfter] of [
    ["lmdb", 1, 1],
    ["lmdb", 20, 20],
    ["lmdb", 5, 60],
    ["lmdb", 50, 300],
    ["wal", 1, 1],
    ["wal", 20, 20],
    ["wal", 5, 60],
    ["wal", 50, 300],
  ] as const) {
    it(`${kind}: killed once round ${killAfter} is reported synced (${syncedRounds} synced one by one first)`, () =>
      withDir(async (dir) => {
        const reported = await runAndKill(kind, dir, syncedRounds, killAfter);
        const logger = new RecordingLogger();
        const engine = await openCrashEngine(kind, dir, logger);
        // A process killed inside a write may leave the write-ahead log's last frame torn
        // (Linux stops a long write between pages on SIGKILL); that frame was never synced.
        assert.deepEqual(
          logger.warnings.filter((warning) => !(kind === "wal" && /torn write/.test(warning))),
          [],
          "a crash leaves nothing to repair but, in the write-ahead log, a torn last frame",
        );
        assert.deepEqual(engine.groups(), [...CRASH_GROUPS]);

        const seen = CRASH_GROUPS.flatMap((groupId) => {
          const replica = engine.replica(groupId);
          return [replica.lastIndex(), replica.hardState().commit];
        });
        for (const [position, groupId] of CRASH_GROUPS.entries()) {
          const replica = engine.replica(groupId);
          const last = replica.lastIndex();
          assert.ok(
            last >= reported,
            `group ${groupId} lost synced rounds: last index ${last} < ${reported}`,
          );
          assert.ok(seen[2 * position + 1]! >= reported, `group ${groupId} lost its synced commit index`);
          const expected = Array.from({ length: last }, (_, i) => crashEntry(groupId, i + 1));
          assert.deepEqual(plainEntries(replica.entries(1, last + 1, NO_LIMIT)), plainEntries(expected));
        }
        const writesSeen = Array.from({ length: 6 * (Math.max(...seen) + 1) }, (_, writes) => writes).find(
          (writes) => isDeepStrictEqual(stateAfter(writes), seen),
        );
        assert.ok(
          writesSeen !== undefined,
          `[last, commit] per group ${JSON.stringify(seen)} is no prefix of the writes`,
        );

        const next = Math.max(...seen) + 1;
        for (const groupId of CRASH_GROUPS) {
          const replica = engine.replica(groupId);
          for (let round = replica.lastIndex() + 1; round <= next; round++)
            replica.append([crashEntry(groupId, round)]);
        }
        await engine.close();
        const reopened = await openCrashEngine(kind, dir);
        assert.deepEqual(
          CRASH_GROUPS.map((groupId) => reopened.replica(groupId).lastIndex()),
          CRASH_GROUPS.map(() => next),
          "the recovered store keeps working",
        );
        await reopened.close();
      }));
  }
});
