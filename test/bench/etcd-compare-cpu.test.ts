// CPU accounting of the etcd comparison: /proc/<pid>/stat parsing (command names with spaces
// and parentheses, malformed lines refused), process-tree sums that count a reaped child once,
// the live readers against this very process, and pausing a real process tree.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import {
  clientCpuMicros,
  parseProcStat,
  processTree,
  readAllProcStats,
  serverCpuMicros,
  signalTrees,
  treeTicks,
  type ProcStat,
} from "../../bench/etcd-compare/cpu.js";

/** A stat line with the given fields and zeros elsewhere (52 fields, as Linux prints). */
function statLine(pid: number, comm: string, ppid: number, ticks: [number, number, number, number]): string {
  const fields = Array.from({ length: 52 }, () => "0");
  fields[0] = String(pid);
  fields[1] = `(${comm})`;
  fields[2] = "S";
  fields[3] = String(ppid);
  ticks.forEach((value, i) => (fields[13 + i] = String(value)));
  return fields.join(" ");
}

test("parseProcStat reads ppid, own and reaped-children ticks", () => {
  assert.deepEqual(parseProcStat(statLine(42, "etcd", 7, [100, 20, 3, 4])), {
    pid: 42,
    parentPid: 7,
    ownTicks: 120,
    reapedChildTicks: 7,
  });
});

test("parseProcStat counts fields from the last parenthesis, whatever the command name holds", () => {
  const stat = parseProcStat(statLine(9, "node (main) 1 2 3", 1, [5, 6, 0, 0]));
  assert.equal(stat.parentPid, 1);
  assert.equal(stat.ownTicks, 11);
});

test("parseProcStat refuses lines that are not stat lines", () => {
  assert.throws(() => parseProcStat(""), /not a \/proc/);
  assert.throws(() => parseProcStat("12 etcd S 1 2 3"), /not a \/proc/);
  assert.throws(() => parseProcStat("12 (etcd) S 1"), /field 14/);
  assert.throws(
    () => parseProcStat(statLine(1, "x", 0, [1, 2, 3, 4]).replace(" 1 2 3 4 ", " 1 x 3 4 ")),
    /field/,
  );
});

test("treeTicks sums a process and all its descendants, and nothing else", () => {
  const stats: ProcStat[] = [
    { pid: 10, parentPid: 1, ownTicks: 100, reapedChildTicks: 5 },
    { pid: 11, parentPid: 10, ownTicks: 20, reapedChildTicks: 0 },
    { pid: 12, parentPid: 11, ownTicks: 3, reapedChildTicks: 1 },
    { pid: 20, parentPid: 1, ownTicks: 1000, reapedChildTicks: 0 },
    { pid: 21, parentPid: 20, ownTicks: 7, reapedChildTicks: 0 },
  ];
  assert.equal(treeTicks(stats, 10), 100 + 5 + 20 + 3 + 1);
  assert.equal(treeTicks(stats, 11), 24);
  assert.equal(treeTicks(stats, 20), 1007);
  assert.equal(treeTicks(stats, 99), 0, "a process that is gone counts nothing");
  assert.deepEqual(
    processTree(stats, 11).map((stat) => stat.pid),
    [11, 12],
  );
});

/** The state letter of /proc/<pid>/stat (R, S, T for stopped...). */
function processState(pid: number): string {
  const line = readFileSync(`/proc/${pid}/stat`, "utf8");
  return line.slice(line.lastIndexOf(")") + 2, line.lastIndexOf(")") + 3);
}

test("signalTrees stops and continues a process and its children", async () => {
  const shell = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore" });
  const rootPid = shell.pid;
  assert.ok(rootPid !== undefined);
  try {
    let tree = processTree(readAllProcStats(), rootPid);
    for (let tries = 0; tree.length < 2 && tries < 200; tries++) {
      await sleep(25);
      tree = processTree(readAllProcStats(), rootPid);
    }
    assert.equal(tree.length, 2, "the shell and its sleep");
    // A signal takes effect when its target next runs: on a loaded machine, not at once.
    const states = async (done: (state: string) => boolean): Promise<string[]> => {
      for (let tries = 0; tries < 200; tries++) {
        const now = tree.map((stat) => processState(stat.pid));
        if (now.every(done)) return now;
        await sleep(25);
      }
      return tree.map((stat) => processState(stat.pid));
    };
    signalTrees([rootPid], "SIGSTOP");
    assert.deepEqual(await states((state) => state === "T"), ["T", "T"]);
    signalTrees([rootPid], "SIGCONT");
    assert.ok((await states((state) => state !== "T")).every((state) => state !== "T"));
  } finally {
    signalTrees([rootPid], "SIGKILL");
  }
});

test("the live readers see this process and its CPU only grows", () => {
  const stats = readAllProcStats();
  assert.ok(stats.some((stat) => stat.pid === process.pid));
  const serverBefore = serverCpuMicros([process.pid]);
  const clientBefore = clientCpuMicros();
  const until = performance.now() + 50;
  let spins = 0;
  while (performance.now() < until) spins++;
  assert.ok(spins > 0);
  assert.ok(serverCpuMicros([process.pid]) >= serverBefore);
  assert.ok(clientCpuMicros() > clientBefore);
});
