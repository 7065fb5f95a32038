/**
 * One seeded run of the election simulation, and sweeps of many: a simulated cluster
 * (cluster.ts) with its faults, the candidate workload (workload.ts) with the client faults,
 * a recorded history (recorder.ts) and the oracle's verdict on it (oracle.ts), plus the
 * cluster-level checks (state-machine safety, one Raft leader per term, no host failure).
 *
 * The seed picks the cluster size, pre-vote, check-quorum (only with `checkQuorumOff`; on
 * otherwise), preemption, the candidate count and
 * the cluster fault mix (`seed mod 4`: partitions, crashes, leadership transfers, all three);
 * every run also freezes and crashes candidate processes. A run is a pure function of its
 * options, so a failing seed replays exactly (`npm run sim -- --election --seed N`).
 */
import { PROFILES, type PartitionFaults } from "../profiles.js";
import { SeededRandom } from "../random.js";
import { Scheduler } from "../scheduler.js";
import { TraceBuffer, formatTraceLine, type TraceLine, type TraceText } from "../trace.js";
import { ElectionCluster, runUntil, type ClusterCounters, type ClusterFaults } from "./cluster.js";
import { checkElectionHistory, type ElectionHistory } from "./oracle.js";
import { ElectionRecorder } from "./recorder.js";
import {
  Candidate,
  newWorkloadCounters,
  startClientFaults,
  type ElectionBug,
  type WorkloadContext,
  type WorkloadCounters,
} from "./workload.js";

export const ELECTION_FAULT_MIXES = ["partitions", "crashes", "transfers", "all"] as const;
export type ElectionFaultMix = (typeof ELECTION_FAULT_MIXES)[number];

export interface ElectionRunOptions {
  readonly seed: number;
  /** Virtual duration of the faulty phase, after the first Raft leader (default 3000 ms). */
  readonly durationMs?: number;
  readonly bug?: ElectionBug | null;
  /** Every candidate process talks to one node only, as a client given a single endpoint. */
  readonly pinnedClients?: boolean;
  /**
   * Let half the seeds run Raft without check-quorum. Off by default: a leader cut off from its
   * majority then never steps down and keeps answering lease keep-alives (a node-layer bug, see
   * README), which the oracle reports as `lost before successor`.
   */
  readonly checkQuorumOff?: boolean;
  /** Resolves once every queued microtask has run (see src/sim/runtime/README.md). */
  readonly settleMicrotasks: () => Promise<void>;
  readonly traceCapacity?: number;
  readonly onTrace?: (line: TraceLine) => void;
}

export interface ElectionViolationReport {
  readonly check: string;
  readonly detail: string;
  readonly time: number;
}

export type ElectionRunStats = WorkloadCounters & ClusterCounters & { events: number; virtualMs: number };

export interface ElectionRunResult {
  readonly seed: number;
  readonly mix: ElectionFaultMix;
  readonly shape: string;
  readonly violations: readonly ElectionViolationReport[];
  readonly stats: ElectionRunStats;
  readonly history: ElectionHistory;
  readonly trace: readonly TraceLine[];
}

const DEFAULT_DURATION_MS = 3_000;
const START_LIMIT_MS = 20_000;
/** After the faulty phase: client faults stop and the cluster heals; the candidates run on. */
const CALM_MS = 600;
/** After every candidate process is stopped: what was in flight gets applied. */
const DRAIN_MS = 300;
const SUBSPACE = "svc/leader";
const RESOURCE_KEY = "svc/resource";

export function faultMixForSeed(seed: number): ElectionFaultMix {
  return ELECTION_FAULT_MIXES[seed % ELECTION_FAULT_MIXES.length]!;
}

function clusterFaults(mix: ElectionFaultMix): ClusterFaults {
  const { crashes } = PROFILES.chaos;
  // Some partitions must outlast a 1 s lease plus an election for a cut-off holder to lose.
  const partitions: PartitionFaults = { meanIntervalMs: 700, durationMs: [200, 2_500], oneWayChance: 0.4 };
  const transfers = PROFILES.membership.transfers;
  return {
    partitions: mix === "partitions" || mix === "all" ? partitions : null,
    crashes: mix === "crashes" || mix === "all" ? crashes : null,
    transfers: mix === "transfers" || mix === "all" ? transfers : null,
  };
}

export async function runElectionSimulation(options: ElectionRunOptions): Promise<ElectionRunResult> {
  const scheduler = new Scheduler();
  const random = new SeededRandom(options.seed);
  const trace = new TraceBuffer(options.traceCapacity ?? 200, options.onTrace);
  const addTrace = (text: TraceText): void => trace.add(scheduler.now, text);
  const violations: ElectionViolationReport[] = [];
  const violation = (check: string, detail: string): void => {
    if (violations.length >= 20) return;
    violations.push({ check, detail, time: scheduler.now });
    addTrace(`VIOLATION ${check}: ${detail}`);
  };
  const mix = faultMixForSeed(options.seed);
  const shapeRandom = random.fork("shape");
  const size = shapeRandom.chance(0.25) ? 5 : 3;
  const preVote = shapeRandom.chance(0.5);
  const checkQuorum = shapeRandom.chance(0.5) || options.checkQuorumOff !== true;
  const preemptionAllowed = shapeRandom.chance(0.5);
  const candidateCount = shapeRandom.intBetween(3, 6);
  const shape =
    `${size} nodes, preVote ${preVote}, checkQuorum ${checkQuorum}, ${candidateCount} candidates, ` +
    `preemption ${preemptionAllowed}, faults ${mix}`;
  addTrace(shape);

  const recorder = new ElectionRecorder(SUBSPACE, RESOURCE_KEY, () => scheduler.now);
  const { network, diskLatencyMs, snapshotEvery } = PROFILES.partitions;
  const cluster = new ElectionCluster(
    scheduler,
    random.fork("cluster"),
    { size, preVote, checkQuorum, network, diskLatencyMs, snapshotEvery },
    (first) => recorder.applied(first),
    violation,
    addTrace,
  );
  const counters = newWorkloadCounters();
  const context: WorkloadContext = {
    scheduler,
    settings: {
      subspace: SUBSPACE,
      resourceKey: RESOURCE_KEY,
      candidates: candidateCount,
      leaseSeconds: 1,
      renewIntervalMs: 250,
      candidateTimeoutMs: 1_000,
      preemptionAllowed,
      clientFaultMeanMs: 1_500,
      bug: options.bug ?? null,
      pinnedClients: options.pinnedClients ?? false,
    },
    recorder,
    counters,
    endpoints: () => cluster.endpoints(),
    trace: addTrace,
    fail: (detail) => violation("client exception", detail),
  };
  const afterEvent = (): void => cluster.checkAfterEvent();
  const run = (limitMs: number, done: () => boolean = () => false): Promise<boolean> =>
    runUntil(scheduler, options.settleMicrotasks, afterEvent, done, limitMs);

  cluster.start();
  if (!(await run(START_LIMIT_MS, () => cluster.leader() !== undefined))) {
    violation("liveness", `no Raft leader within ${START_LIMIT_MS} ms of the start`);
  }
  const candidateRandom = random.fork("candidates");
  const candidates = Array.from(
    { length: candidateCount },
    (_, i) => new Candidate(`c${i + 1}`, candidateRandom.fork(`c${i + 1}`), context),
  );
  for (const candidate of candidates) candidate.start();
  let clientFaultsActive = true;
  startClientFaults(context, candidates, random.fork("client faults"), () => clientFaultsActive);
  cluster.startFaults(clusterFaults(mix));
  await run(options.durationMs ?? DEFAULT_DURATION_MS, () => violations.length > 0);
  clientFaultsActive = false;
  cluster.heal();
  await run(CALM_MS, () => violations.length > 0);
  for (const candidate of candidates) candidate.stop();
  await run(DRAIN_MS, () => violations.length > 0);

  for (const record of recorder.undecodable) violation("record format", record);
  const history = recorder.history();
  for (const found of checkElectionHistory(history)) violation(found.check, found.detail);
  return {
    seed: options.seed,
    mix,
    shape,
    violations,
    stats: { ...counters, ...cluster.counters, events: scheduler.eventsRun, virtualMs: scheduler.now },
    history,
    trace: trace.lines(),
  };
}

export interface ElectionSweepOptions extends Omit<ElectionRunOptions, "seed"> {
  readonly firstSeed: number;
  readonly seeds: number;
  readonly onResult?: (result: ElectionRunResult, done: number) => void;
}

export interface ElectionSweepSummary {
  readonly runs: number;
  readonly stats: ElectionRunStats;
  readonly failures: readonly ElectionRunResult[];
}

export async function sweepElection(options: ElectionSweepOptions): Promise<ElectionSweepSummary> {
  if (!Number.isSafeInteger(options.firstSeed) || options.firstSeed < 0) {
    throw new Error(`first seed must be a non-negative integer, got ${options.firstSeed}`);
  }
  if (!Number.isSafeInteger(options.seeds) || options.seeds < 1) {
    throw new Error(`seed count must be a positive integer, got ${options.seeds}`);
  }
  let stats: ElectionRunStats | null = null;
  const failures: ElectionRunResult[] = [];
  for (let i = 0; i < options.seeds; i++) {
    const result = await runElectionSimulation({ ...options, seed: options.firstSeed + i });
    if (stats === null) stats = { ...result.stats };
    else for (const key of Object.keys(stats) as (keyof ElectionRunStats)[]) stats[key] += result.stats[key];
    if (result.violations.length > 0) failures.push(result);
    options.onResult?.(result, i + 1);
  }
  return { runs: options.seeds, stats: stats!, failures };
}

/** A failing run: its violations, the replay command and its trace. */
export function describeElectionFailure(
  result: ElectionRunResult,
  options: {
    durationMs?: number;
    bug?: ElectionBug | null;
    pinnedClients?: boolean;
    checkQuorumOff?: boolean;
  },
): string {
  const flags = [
    `--election --seed ${result.seed}`,
    options.durationMs === undefined ? "" : `--duration ${options.durationMs}`,
    options.bug === undefined || options.bug === null ? "" : `--election-bug ${options.bug}`,
    options.pinnedClients === true ? "--election-pinned" : "",
    options.checkQuorumOff === true ? "--election-check-quorum-off" : "",
  ].filter((f) => f !== "");
  return [
    `seed ${result.seed} (${result.shape}): ${result.violations.length} violation(s)`,
    ...result.violations.map((v) => `  [${v.time} ms] ${v.check}: ${v.detail}`),
    `  replay: npm run sim -- ${flags.join(" ")} --verbose`,
    "  trace:",
    ...result.trace.map((line) => `    ${formatTraceLine(line)}`),
  ].join("\n");
}
