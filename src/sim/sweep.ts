/**
 * Many seeds at once: runs a range of seeds (profiles round-robin when asked for several), sums
 * their stats, keeps the failures, and renders what a person needs to act on one: the
 * violations, the exact command that replays the seed, and the trace leading up to it.
 * Shared by the CLI and the test suites.
 */
import type { InjectedBugs } from "../raft/index.js";
import { PROFILE_NAMES, type ProfileName } from "./profiles.js";
import { runSimulation, type SimStats, type SimulationResult } from "./run.js";
import { formatTraceLine, type TraceLine } from "./trace.js";

export interface SweepOptions {
  /** First seed; seeds run are firstSeed, firstSeed + 1, ... */
  readonly firstSeed: number;
  readonly seeds: number;
  /** One profile for every seed, or "all": seed s runs PROFILE_NAMES[s mod 5]. */
  readonly profile: ProfileName | "all";
  readonly steps?: number;
  readonly bugs?: InjectedBugs;
  /** Receives every trace line of every run as it happens. */
  readonly onTrace?: ((line: TraceLine) => void) | undefined;
  /** Called after each seed, e.g. for a progress line. */
  readonly onResult?: (result: SimulationResult, done: number) => void;
  /** Stop after the first seed whose result satisfies this. */
  readonly until?: (result: SimulationResult) => boolean;
}

export interface SweepSummary {
  readonly runs: number;
  readonly stats: SimStats;
  readonly failures: SimulationResult[];
}

/** The profile a seed runs under; with "all", a fixed function of the seed so replays match. */
export function profileForSeed(profile: ProfileName | "all", seed: number): ProfileName {
  return profile === "all" ? PROFILE_NAMES[seed % PROFILE_NAMES.length]! : profile;
}

export function emptyStats(): SimStats {
  return {
    events: 0,
    virtualMs: 0,
    leadersElected: 0,
    leaderChanges: 0,
    elections: 0,
    maxTerm: 0,
    crashes: 0,
    restarts: 0,
    unsyncedWritesLost: 0,
    partitions: 0,
    oneWayPartitions: 0,
    messagesSent: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    messagesReordered: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    nodesAdded: 0,
    nodesRetired: 0,
    confChangesProposed: 0,
    confChangesRefused: 0,
    confChangesApplied: 0,
    transfersRequested: 0,
    transfersCompleted: 0,
    opsAcked: 0,
    opsFailed: 0,
    opsAmbiguous: 0,
    readsServed: 0,
    readsTimedOut: 0,
    linearizabilityUnknown: 0,
  };
}

/** Adds `stats` into `total` (maxTerm takes the maximum, everything else the sum). */
export function addStats(total: SimStats, stats: SimStats): void {
  for (const key of Object.keys(total) as (keyof SimStats)[]) {
    total[key] = key === "maxTerm" ? Math.max(total[key], stats[key]) : total[key] + stats[key];
  }
}

export function sweep(options: SweepOptions): SweepSummary {
  if (!Number.isSafeInteger(options.firstSeed) || options.firstSeed < 0) {
    throw new Error(`first seed must be a non-negative integer, got ${options.firstSeed}`);
  }
  if (!Number.isSafeInteger(options.seeds) || options.seeds < 1) {
    throw new Error(`seed count must be a positive integer, got ${options.seeds}`);
  }
  const stats = emptyStats();
  const failures: SimulationResult[] = [];
  let runs = 0;
  for (let i = 0; i < options.seeds; i++) {
    const seed = options.firstSeed + i;
    const result = runSimulation({
      seed,
      profile: profileForSeed(options.profile, seed),
      steps: options.steps,
      bugs: options.bugs,
      onTrace: options.onTrace,
    });
    runs++;
    addStats(stats, result.stats);
    if (result.violations.length > 0) failures.push(result);
    options.onResult?.(result, runs);
    if (options.until?.(result) === true) break;
  }
  return { runs, stats, failures };
}

/** The command that reruns exactly this seed. */
export function replayCommand(result: SimulationResult, steps?: number): string {
  const stepsFlag = steps !== undefined ? ` --steps ${steps}` : "";
  const bugs = Object.entries(result.bugs)
    .filter(([, on]) => on === true)
    .map(([name]) => name);
  const bugFlag = bugs.length > 0 ? ` --bug ${bugs.join(",")}` : "";
  return `npm run sim -- --seed ${result.seed} --profile ${result.profile}${stepsFlag}${bugFlag}`;
}

/** Everything about a failed seed: violations, replay command, shape, and the trace. */
export function describeFailure(result: SimulationResult, steps?: number): string {
  const lines = [
    `seed ${result.seed} (${result.profile}) failed: ${result.violations.length} violation(s)`,
    ...result.violations.map((v) => `  [${v.invariant}] at ${v.time}ms: ${v.message}`),
    `replay: ${replayCommand(result, steps)}`,
    `shape: ${JSON.stringify(result.shape)}`,
    `last ${result.trace.length} trace lines:`,
    ...result.trace.map((line) => `  ${formatTraceLine(line)}`),
  ];
  return lines.join("\n");
}

/** A two-column table of a run's stats (any sweep's counters), in declaration order. */
export function formatStatsTable(stats: object): string {
  const entries = Object.entries(stats);
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `  ${k.padEnd(width)}  ${String(v).padStart(12)}`).join("\n");
}
