// The real-process crash test: three `bin/concord` members on 127.0.0.1, a few remote clients
// issuing puts, linearizable gets and cas transactions, while the leader and a follower are
// SIGKILLed in turn (one member down at a time) and restarted on their data dirs. Then the
// load stops, the whole cluster is stopped with SIGTERM and started again, every key is read,
// and the history — final reads included — must be linearizable: no acknowledged write lost,
// no stale or invented read. On failure the history and the members' logs are kept in a file
// whose path the assertion names. Every wait is bounded; nothing asserts on durations.
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Concord } from "../../src/api/concord.js";
import { checkLinearizability, type Operation } from "../../src/sim/linearizability/index.js";
import { SeededRandom } from "../../src/sim/random.js";
import { ProcessCluster, sleep } from "./process-cluster.js";
import { HistoryRecorder, runClientLoop } from "./workload.js";

const NAMES = ["n1", "n2", "n3"] as const;
const KEYS = ["k0", "k1", "k2", "k3", "k4", "k5"] as const;
const CLIENTS = 4;
const KILLS = 20;
const CLIENT_PAUSE_MS = 40;
/** Down time of a killed member before its restart: at least the first, plus up to the second. */
const MIN_DOWN_MS = 200;
const MAX_EXTRA_DOWN_MS = 1_300;
/** Load on the healed cluster between one kill's restart and the next kill. */
const SETTLE_MS = 1_000;
/** The kill phase must finish within this (it fails the test instead of hanging). */
const KILL_PHASE_CAP_MS = 400_000;

/**
 * One kill: even kills hit the leader, odd ones a follower chosen at random; the victim stays
 * down a random moment, restarts on its data dir, and the cluster agrees on a leader again
 * (so at most one member is ever down) before the load runs on for a while.
 */
async function killAndRestart(run: CrashRun): Promise<void> {
  const { cluster, random } = run;
  const leader = await cluster.waitForLeader();
  const followers = NAMES.filter((n) => n !== leader.name);
  const victim = run.kills % 2 === 0 ? leader.name : followers[random.nextInt(followers.length)];
  if (victim === undefined) throw new Error("no follower to kill");
  await cluster.kill(victim);
  run.kills += 1;
  const role = victim === leader.name ? "leader" : "follower";
  note(run, `kill ${run.kills}: SIGKILL ${victim} (${role}, term ${leader.term})`);
  await sleep(MIN_DOWN_MS + random.nextInt(MAX_EXTRA_DOWN_MS));
  await cluster.start(victim);
  run.restarts += 1;
  await cluster.waitForLeader();
  await sleep(SETTLE_MS);
}

/** Writes what a failure needs to be studied (history, kill notes, member logs) to a file. */
function keepEvidence(run: CrashRun, failure: string): string {
  const path = join(tmpdir(), `concord-cluster-kill-${run.seed}-${process.pid}.json`);
  const logs = Object.fromEntries(NAMES.map((n) => [n, run.cluster.member(n).log]));
  const evidence = { seed: run.seed, failure, notes: run.notes, history: run.recorder.operations, logs };
  writeFileSync(path, JSON.stringify(evidence, null, 1));
  return path;
}

interface CrashRun {
  readonly seed: number;
  readonly random: SeededRandom;
  readonly cluster: ProcessCluster;
  readonly recorder: HistoryRecorder;
  readonly notes: string[];
  kills: number;
  restarts: number;
}

function note(run: CrashRun, line: string): void {
  run.notes.push(`${run.recorder.now().toFixed(0)} ms: ${line}`);
}

/** Starts the cluster, runs the load through the kills, stops the load. */
async function killUnderLoad(run: CrashRun): Promise<void> {
  const { cluster, recorder, seed } = run;
  await Promise.all(NAMES.map((name) => cluster.start(name)));
  await cluster.waitForLeader();
  let loadStopped = false;
  const clients = Array.from({ length: CLIENTS }, (_, index) =>
    runClientLoop({
      clientId: index + 1,
      endpoints: cluster.clientEndpoints,
      keys: KEYS,
      random: new SeededRandom(seed + index + 1),
      recorder,
      shouldStop: () => loadStopped,
      pauseMs: CLIENT_PAUSE_MS,
    }),
  );
  try {
    const capAt = recorder.now() + KILL_PHASE_CAP_MS;
    while (run.kills < KILLS) {
      assert.ok(recorder.now() < capAt, `only ${run.kills} kills within ${KILL_PHASE_CAP_MS} ms`);
      await killAndRestart(run);
    }
  } finally {
    loadStopped = true;
    await Promise.all(clients);
  }
}

/** SIGTERMs every member (each must exit 0), starts them all again, reads every key. */
async function restartAllAndReadBack(run: CrashRun): Promise<Operation[]> {
  const { cluster, recorder } = run;
  note(run, "full-cluster restart: SIGTERM all three");
  const exitCodes = await Promise.all(NAMES.map((name) => cluster.terminate(name)));
  assert.deepEqual(
    exitCodes,
    NAMES.map(() => 0),
    "every member exits 0 after SIGTERM",
  );
  await Promise.all(NAMES.map((name) => cluster.start(name)));
  run.restarts += NAMES.length;
  await cluster.waitForLeader();
  const reader = Concord.connect({ endpoints: cluster.clientEndpoints });
  const finalReads: Operation[] = [];
  try {
    for (const key of KEYS) {
      const outcome = await recorder.get(reader, 0, key);
      const why = outcome.kind === "error" ? String(outcome.error) : outcome.kind;
      assert.equal(outcome.kind, "ok", `the final read of ${key} failed: ${why}`);
      const recorded = recorder.operations.at(-1);
      assert.ok(recorded?.kind === "get" && recorded.key === key, `the final read of ${key} is recorded`);
      finalReads.push(recorded);
    }
  } finally {
    await reader.close();
  }
  return finalReads;
}

test("three concord processes survive 20 SIGKILLs of leader and followers with a linearizable history", async (t) => {
  const seed = randomInt(2 ** 31);
  const root = mkdtempSync(join(tmpdir(), "concord-kill-"));
  const run: CrashRun = {
    seed,
    random: new SeededRandom(seed),
    cluster: await ProcessCluster.create(root, NAMES, "kill-test"),
    recorder: new HistoryRecorder(),
    notes: [],
    kills: 0,
    restarts: 0,
  };
  const started = run.recorder.now();
  try {
    await killUnderLoad(run);
    const finalReads = await restartAllAndReadBack(run);

    const history = run.recorder.operations;
    const { acked, failed, ambiguous, timedOut, errors } = run.recorder.counts;
    const finalValues = finalReads.map(
      (op) => `${op.key}=${op.kind === "get" ? JSON.stringify(op.output?.value) : "?"}`,
    );
    t.diagnostic(
      `seed ${seed}; ${run.kills} SIGKILLs, ${run.restarts} restarts (full-cluster restart included)`,
    );
    t.diagnostic(
      `ops: ${history.length} recorded, ${acked} acked, ${failed} failed without effect, ` +
        `${ambiguous} ambiguous (${timedOut} client timeouts)`,
    );
    t.diagnostic(`errors: ${[...errors].map(([name, count]) => `${name} ×${count}`).join(", ") || "none"}`);
    t.diagnostic(`final values: ${finalValues.join(" ")}`);
    t.diagnostic(`time: ${((run.recorder.now() - started) / 1000).toFixed(1)} s`);

    assert.ok(acked > 0, "the clients got some operations acknowledged");
    const verdict = checkLinearizability(history);
    if (verdict.outcome !== "ok") {
      const why = verdict.outcome === "violation" ? verdict.explanation : verdict.reason;
      assert.fail(`the history is not linearizable (${verdict.outcome} on key ${verdict.key}):\n${why}`);
    }
  } catch (error) {
    const failure = error instanceof Error ? error.message : String(error);
    const path = keepEvidence(run, failure);
    throw new Error(`${failure}\n(history, kill notes and member logs kept in ${path})`, { cause: error });
  } finally {
    run.cluster.killAll();
    rmSync(root, { recursive: true, force: true });
  }
});
