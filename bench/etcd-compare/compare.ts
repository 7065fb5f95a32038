/**
 * The `etcd-compare` workload: a 3-member Concord cluster and (when `etcd` is on PATH) a
 * 3-member etcd cluster side by side on loopback, fsync on, the same rows run through the
 * same client against each, alternating which system goes first, repeated, medians and
 * Concord/etcd ratios reported; then `etcdctl check perf` against each. While one system is
 * measured (or warmed up) the other's cluster is paused, so that neither's idle work lands
 * on the other's figures. Also the result
 * file's shape and the SVG chart it is drawn as.
 */
import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { describeMachine, type Machine } from "../embedded.js";
import { formatCheckPerf, runCheckPerf, type CheckPerfRun } from "./check-perf.js";
import {
  binaryVersion,
  concordRangeCount,
  startServerCluster,
  type ServerCluster,
  type ServerKind,
} from "./servers.js";
import { rowGroup, summarizeRow, SYSTEMS, type Measurement, type RowSpec, type RowSummary } from "./stats.js";
import {
  closeTarget,
  KEY_COUNT,
  measureRow,
  openTarget,
  VALUE_BYTES,
  WATCH_PUTS_PER_SECOND,
  WATCHERS,
  type Target,
} from "./workloads.js";

export const ROW_GROUPS = ["put", "get", "txn", "watch", "perf"] as const;
export type RowGroup = (typeof ROW_GROUPS)[number];

export const DEFAULT_SECONDS = 4;
export const DEFAULT_REPS = 3;
const CONCURRENCIES = [1, 16, 64, 256] as const;
const OFFERED_RATES = [1_000, 2_000] as const;
const CAS_CONCURRENCY = 16;
/**
 * How long a paused cluster runs after it is resumed before it is measured: its overdue
 * timers fire, leaders renew what lapsed (Concord's read lease, etcd's check-quorum), and
 * the clients' connections see traffic again. Both systems wait the same.
 */
const RESUME_SETTLE_MS = 500;
/**
 * Unmeasured closed-loop traffic per system before the first row, so JIT and connections are
 * warm: every kind of request the rows make (puts, gets, txns, watches) runs first. V8
 * optimizes a function after enough calls, not enough seconds, and the single-client path has
 * shapes of its own: measured on 3 members, put c=1 cost 6,028 µs of server CPU per put after
 * 5 s of warm-up at c=1, 5,166 after 10 s of puts at c=16, 4,472 after the puts and gets here
 * (and 4,121 after 30 s at c=1), with V8's compiler threads busy all along the shorter ones.
 * Txns have code of their own: txn cas c=16 cost 1,468 µs per txn after puts alone, 902 after
 * 15 s of txns (etcd: 629 either way).
 */
const WARM_UP: readonly { readonly spec: RowSpec; readonly seconds: number }[] = [
  { spec: { id: "warm-up", workload: "closed-put", concurrency: 16 }, seconds: 20 },
  { spec: { id: "warm-up", workload: "closed-put", concurrency: 1 }, seconds: 10 },
  { spec: { id: "warm-up", workload: "closed-get", concurrency: 16 }, seconds: 10 },
  { spec: { id: "warm-up", workload: "cas", concurrency: CAS_CONCURRENCY }, seconds: 10 },
  { spec: { id: "warm-up", workload: "watch" }, seconds: 5 },
];

/** Every row, in the order they run within a repetition. */
export const ROWS: readonly RowSpec[] = [
  ...CONCURRENCIES.map((c): RowSpec => ({ id: `put c=${c}`, workload: "closed-put", concurrency: c })),
  ...CONCURRENCIES.map((c): RowSpec => ({ id: `get c=${c}`, workload: "closed-get", concurrency: c })),
  ...OFFERED_RATES.map((r): RowSpec => ({ id: `put @${r}/s`, workload: "open-put", offeredPerSecond: r })),
  ...OFFERED_RATES.map((r): RowSpec => ({ id: `get @${r}/s`, workload: "open-get", offeredPerSecond: r })),
  { id: `txn cas c=${CAS_CONCURRENCY}`, workload: "cas", concurrency: CAS_CONCURRENCY },
  { id: `watch 1w/${WATCHERS}r`, workload: "watch" },
];

export interface CompareOptions {
  readonly seconds: number;
  readonly reps: number;
  readonly only: ReadonlySet<RowGroup>;
  readonly systems: ReadonlySet<ServerKind>;
  /**
   * Keep every cluster running while one is measured, instead of pausing the others
   * (SIGSTOP). Idle clusters then take CPU and wake-ups from the measured one.
   */
  readonly bothRunning: boolean;
  readonly progress: (line: string) => void;
}

export interface CompareReport {
  readonly workload: "etcd-compare";
  readonly date: string;
  readonly machine: Machine;
  readonly client: string;
  /** The first line each etcd binary prints about its version. */
  readonly versions: Readonly<Record<string, string>>;
  /** The 1-minute load average before and after the run: other work on the machine skews every figure. */
  readonly loadAverage: { readonly before: number; readonly after: number };
  readonly settings: {
    readonly seconds: number;
    readonly reps: number;
    readonly valueBytes: number;
    readonly keys: number;
    readonly watchers: number;
    readonly watchPutsPerSecond: number;
    /** Comma-separated, as the flags take them (and a one-line JSON value, as prettier writes it). */
    readonly systems: string;
    readonly only: string;
    /** Whether the clusters not being measured were paused (SIGSTOP) during each measurement. */
    readonly othersPaused: boolean;
  };
  /** Systems that were asked for and could not run, and why. */
  readonly skipped: Readonly<Partial<Record<ServerKind, string>>>;
  readonly rows: readonly RowSummary[];
  readonly checkPerf: Readonly<Partial<Record<ServerKind, CheckPerfRun>>>;
  /**
   * How many ranges the Concord cluster served after the warm-up, after each repetition and
   * after check perf (null: not run, or the listing failed). Loads over the split threshold
   * (1,000 requests/s for 15 s by default) split its keyspace during a run, as they would in
   * production; etcd serves one Raft group throughout.
   */
  readonly concordRanges: {
    readonly afterWarmUp: number | null;
    /** One object per repetition (an array of numbers is not laid out as prettier lays it out). */
    readonly afterReps: readonly { readonly repetition: number; readonly ranges: number | null }[];
    readonly afterCheckPerf: number | null;
  };
}

export const CLIENT_DESCRIPTION =
  "etcd3 npm client (grpc-js), one connection to the leader for load, one for watchers; " +
  "linearizable gets (the client's default)";

/** The systems that can run (etcd only when its binary is on PATH) and the etcd binaries' versions. */
async function availableSystems(wanted: ReadonlySet<ServerKind>): Promise<{
  systems: ServerKind[];
  skipped: Partial<Record<ServerKind, string>>;
  versions: Record<string, string>;
}> {
  const skipped: Partial<Record<ServerKind, string>> = {};
  const etcdctlVersion = await binaryVersion("etcdctl", ["version"]);
  if (etcdctlVersion === undefined)
    throw new Error("etcdctl is not on PATH: it is needed to probe both clusters (Debian etcd-client)");
  const versions: Record<string, string> = { etcdctl: etcdctlVersion };
  const systems = SYSTEMS.filter((system) => wanted.has(system));
  const etcdVersion = systems.includes("etcd") ? await binaryVersion("etcd", ["--version"]) : undefined;
  if (etcdVersion !== undefined) versions.etcd = etcdVersion;
  else if (systems.includes("etcd")) {
    skipped.etcd = "no etcd binary on PATH (Debian etcd-server)";
    systems.splice(systems.indexOf("etcd"), 1);
  }
  return { systems, skipped, versions };
}

export async function runEtcdCompare(options: CompareOptions): Promise<CompareReport> {
  const { seconds, reps, only, progress } = options;
  const loadBefore = loadavg()[0] ?? NaN;
  const { systems, skipped, versions } = await availableSystems(options.systems);
  if (systems.length === 0) throw new Error(`nothing to run: ${JSON.stringify(skipped)}`);
  const rows = ROWS.filter((spec) => only.has(rowGroup(spec)));
  const clusters: ServerCluster[] = [];
  const targets = new Map<ServerKind, Target>();
  const measured = new Map<string, Partial<Record<ServerKind, Measurement[]>>>();
  const checkPerf: Partial<Record<ServerKind, CheckPerfRun>> = {};
  const concordRanges = {
    afterWarmUp: null as number | null,
    afterReps: [] as { repetition: number; ranges: number | null }[],
    afterCheckPerf: null as number | null,
  };
  const paused = new Set<ServerKind>();
  /** Resumes `system`'s cluster and, unless both are to keep running, pauses every other one. */
  const runAlone = async (system: ServerKind): Promise<void> => {
    if (options.bothRunning) return;
    for (const cluster of clusters)
      if (cluster.kind !== system && !paused.has(cluster.kind)) {
        cluster.pause();
        paused.add(cluster.kind);
      }
    const cluster = clusters.find((candidate) => candidate.kind === system);
    if (cluster === undefined || !paused.has(system)) return;
    cluster.resume();
    paused.delete(system);
    await sleep(RESUME_SETTLE_MS);
  };
  const countRanges = async (when: string): Promise<number | null> => {
    const cluster = clusters.find((candidate) => candidate.kind === "concord");
    if (cluster === undefined) return null;
    await runAlone("concord");
    const count = (await concordRangeCount(cluster)) ?? null;
    progress(`  concord serves ${count ?? "an unknown number of"} range(s) ${when}`);
    return count;
  };
  // Ctrl-C or a kill still stops the members and removes their data dirs before exiting.
  const stopOnSignal = (signal: NodeJS.Signals): void => {
    progress(`${signal}: stopping the clusters`);
    void Promise.all(clusters.map((cluster) => cluster.close())).finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  try {
    for (const system of systems) {
      progress(`starting 3-member ${system} cluster`);
      const cluster = await startServerCluster(system);
      clusters.push(cluster);
      await runAlone(system);
      const leader = cluster.leaderKnown ? `leader at ${cluster.leaderEndpoint}` : "leader unknown";
      progress(`  ${system} ready, ${leader}`);
      if (rows.length === 0) continue;
      progress(`  writing ${KEY_COUNT} keys, warming up`);
      const target = await openTarget(cluster);
      targets.set(system, target);
      for (const { spec, seconds } of WARM_UP) await measureRow(target, spec, seconds);
    }
    if (rows.length > 0) concordRanges.afterWarmUp = await countRanges("after the warm-up");
    for (let rep = 0; rep < reps; rep++) {
      for (const [rowIndex, spec] of rows.entries()) {
        // Alternate who goes first, row by row and repetition by repetition.
        const order = (rep + rowIndex) % 2 === 0 ? systems : [...systems].reverse();
        for (const system of order) {
          const target = targets.get(system);
          if (target === undefined) throw new Error(`no client for ${system}`);
          await runAlone(system);
          const measurement = await measureRow(target, spec, seconds);
          const perSystem = measured.get(spec.id) ?? {};
          (perSystem[system] ??= []).push(measurement);
          measured.set(spec.id, perSystem);
          progress(
            `  rep ${rep + 1}/${reps} ${spec.id} ${system}: ${measurement.opsPerSecond.toFixed(0)} ops/s, ` +
              `p99 ${measurement.p99Ms.toFixed(1)} ms, server ${measurement.serverCpuUsPerOp.toFixed(0)} µs/op`,
          );
        }
      }
      if (rows.length > 0) {
        const ranges = await countRanges(`after repetition ${rep + 1}`);
        concordRanges.afterReps.push({ repetition: rep + 1, ranges });
      }
    }
    if (only.has("perf")) {
      for (const target of targets.values()) closeTarget(target);
      targets.clear();
      for (const cluster of clusters) {
        progress(`etcdctl check perf --load=s against ${cluster.kind} (60 s)`);
        await runAlone(cluster.kind);
        checkPerf[cluster.kind] = await runCheckPerf(cluster);
        progress(`  ${formatCheckPerf(cluster.kind, checkPerf[cluster.kind] ?? { load: "s" })}`);
      }
      concordRanges.afterCheckPerf = await countRanges("after check perf");
    }
  } finally {
    for (const target of targets.values()) closeTarget(target);
    await Promise.all(clusters.map((cluster) => cluster.close()));
    process.off("SIGINT", stopOnSignal);
    process.off("SIGTERM", stopOnSignal);
  }
  return {
    workload: "etcd-compare",
    date: new Date().toISOString(),
    machine: describeMachine(),
    client: CLIENT_DESCRIPTION,
    versions,
    loadAverage: { before: loadBefore, after: loadavg()[0] ?? NaN },
    settings: {
      seconds,
      reps,
      valueBytes: VALUE_BYTES,
      keys: KEY_COUNT,
      watchers: WATCHERS,
      watchPutsPerSecond: WATCH_PUTS_PER_SECOND,
      systems: systems.join(","),
      only: ROW_GROUPS.filter((group) => only.has(group)).join(","),
      othersPaused: !options.bothRunning,
    },
    skipped,
    rows: rows.map((spec) => summarizeRow(spec, measured.get(spec.id) ?? {})),
    checkPerf,
    concordRanges,
  };
}
