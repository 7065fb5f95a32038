// Child process of crash.test.ts: writes rounds to a durable engine until it is SIGKILLed.
// Usage: crash-child.ts <lmdb|wal> <dir> <rounds to sync first>
// Round r appends entry r to groups 1, 2 and 3, in that order, each followed by a hard state
// committing it. The child syncs the first rounds one by one, writes one more round without
// syncing and prints "synced <n>". Then it keeps writing a round per event-loop turn, with a
// sync per round that it does not wait for (so commits overlap writes and coalesce), printing
// "synced <r>" whenever the sync issued after round r resolves, until it is killed.
import { setImmediate as nextTurn } from "node:timers/promises";
import { CRASH_GROUPS, crashEntry, openCrashEngine } from "./crash-data.js";

/** A bound so that a child nobody kills still ends. */
const MAX_ROUNDS = 1_000_000;

const [kind, dir, syncedArg] = process.argv.slice(2);
if ((kind !== "lmdb" && kind !== "wal") || dir === undefined || syncedArg === undefined)
  throw new Error("usage: crash-child.ts <lmdb|wal> <dir> <rounds>");
const syncedRounds = Number(syncedArg);
const engine = await openCrashEngine(kind, dir);

function writeRound(round: number): void {
  for (const groupId of CRASH_GROUPS) {
    const replica = engine.replica(groupId);
    replica.append([crashEntry(groupId, round)]);
    replica.setHardState({ term: 1, vote: 1, commit: round });
  }
}

function fail(error: unknown): never {
  console.error(error);
  process.exit(1);
}

for (let round = 1; round <= syncedRounds; round++) {
  writeRound(round);
  await engine.sync();
}
writeRound(syncedRounds + 1);
process.stdout.write(`synced ${syncedRounds}\n`);
for (let round = syncedRounds + 2; round <= MAX_ROUNDS; round++) {
  writeRound(round);
  engine.sync().then(() => process.stdout.write(`synced ${round}\n`), fail);
  await nextTurn();
}
await engine.close();
