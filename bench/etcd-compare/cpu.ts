/**
 * CPU accounting for the etcd comparison: the CPU time of a whole process tree, read from
 * /proc/<pid>/stat (a member and every process it started), and of the bench process itself;
 * and signalling a whole process tree (to pause the cluster that is not being measured).
 * The parsing is pure (tested in test/bench/etcd-compare-cpu.test.ts); the readers are thin.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** The fields of one /proc/<pid>/stat line that CPU accounting needs, in clock ticks. */
export interface ProcStat {
  readonly pid: number;
  readonly parentPid: number;
  /** utime + stime: CPU the process itself used. */
  readonly ownTicks: number;
  /** cutime + cstime: CPU of children it has already waited for (reaped). */
  readonly reapedChildTicks: number;
}

/**
 * Parses one /proc/<pid>/stat line. The command name (field 2) is in parentheses and may
 * itself hold spaces and parentheses, so fields are counted from the last ")".
 */
export function parseProcStat(line: string): ProcStat {
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  if (open < 1 || close < open) throw new Error(`not a /proc/<pid>/stat line: "${line.slice(0, 80)}"`);
  const pid = Number(line.slice(0, open).trim());
  // After ")" come fields 3 (state), 4 (ppid) ... 14 utime, 15 stime, 16 cutime, 17 cstime.
  const rest = line
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const field = (n: number): number => {
    const text = rest[n - 3];
    const value = Number(text);
    if (text === undefined || !Number.isInteger(value))
      throw new Error(`field ${n} of the stat line of ${pid} is "${text}", not an integer`);
    return value;
  };
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`bad pid in stat line: "${line.slice(0, 80)}"`);
  return {
    pid,
    parentPid: field(4),
    ownTicks: field(14) + field(15),
    reapedChildTicks: field(16) + field(17),
  };
}

/** `rootPid`'s stat and those of all its live descendants among `stats`; empty if the root is gone. */
export function processTree(stats: readonly ProcStat[], rootPid: number): ProcStat[] {
  const childrenOf = new Map<number, ProcStat[]>();
  let root: ProcStat | undefined;
  for (const stat of stats) {
    if (stat.pid === rootPid) root = stat;
    const siblings = childrenOf.get(stat.parentPid) ?? [];
    siblings.push(stat);
    childrenOf.set(stat.parentPid, siblings);
  }
  if (root === undefined) return [];
  const tree: ProcStat[] = [];
  const pending: ProcStat[] = [root];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    tree.push(next);
    pending.push(...(childrenOf.get(next.pid) ?? []));
  }
  return tree;
}

/**
 * The CPU ticks of `rootPid` and all its descendants among `stats`: each one's own time plus
 * the time of the children it has reaped (a live child is counted by its own entry; a reaped
 * one only in its parent's cutime/cstime, so nothing is counted twice). 0 if the root is gone.
 */
export function treeTicks(stats: readonly ProcStat[], rootPid: number): number {
  return processTree(stats, rootPid).reduce(
    (ticks, stat) => ticks + stat.ownTicks + stat.reapedChildTicks,
    0,
  );
}

/** Every process's stat line that could be read (processes may exit while we list them). */
export function readAllProcStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let line: string;
    try {
      line = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    stats.push(parseProcStat(line));
  }
  return stats;
}

let cachedTicksPerSecond: number | undefined;

/** The kernel's clock ticks per second (USER_HZ), as `getconf CLK_TCK` reports it. */
export function ticksPerSecond(): number {
  if (cachedTicksPerSecond === undefined) {
    const value = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    if (!Number.isInteger(value) || value <= 0) throw new Error(`getconf CLK_TCK answered "${value}"`);
    cachedTicksPerSecond = value;
  }
  return cachedTicksPerSecond;
}

/** The summed CPU time, in microseconds, of the process trees rooted at `rootPids`. */
export function serverCpuMicros(rootPids: readonly number[]): number {
  const stats = readAllProcStats();
  const ticks = rootPids.reduce((sum, pid) => sum + treeTicks(stats, pid), 0);
  return (ticks * 1_000_000) / ticksPerSecond();
}

/**
 * Sends `signal` to every process of the trees rooted at `rootPids` (a process that exits
 * meanwhile is skipped). SIGSTOP and SIGCONT freeze and thaw a whole cluster.
 */
export function signalTrees(rootPids: readonly number[], signal: NodeJS.Signals): void {
  const stats = readAllProcStats();
  for (const rootPid of rootPids)
    for (const { pid } of processTree(stats, rootPid)) {
      try {
        process.kill(pid, signal);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    }
}

/** The bench process's own CPU time (user + system, every thread), in microseconds. */
export function clientCpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}
