/**
 * Many seeds of the runtime simulation (`--runtime` on the sim command line): runs them in
 * order, sums their stats, keeps the failures, and renders a failure with its replay command
 * and trace.
 */
import { formatTraceLine } from "../trace.js";
import {
  RUNTIME_PROFILES,
  SPLIT_PROFILES,
  runRuntimeSimulation,
  type RuntimeProfileName,
  type RuntimeSimulationOptions,
  type RuntimeSimulationResult,
  type RuntimeStats,
} from "./runtime-run.js";

export interface RuntimeSweepOptions {
  readonly firstSeed: number;
  readonly seeds: number;
  /**
   * One profile, or "all": seed `s` runs profile number `s mod n` of RUNTIME_PROFILES (of
   * SPLIT_PROFILES with splits).
   */
  readonly profile: RuntimeProfileName | "all";
  readonly steps?: number;
  readonly durationMs?: number;
  readonly ackBeforeSync?: boolean;
  readonly walDisks?: boolean;
  readonly crashMeanIntervalMs?: number;
  /** Freeze nodes (runtime-run.ts `freezeMeanIntervalMs`). */
  readonly freezeMeanIntervalMs?: number;
  /** Step nodes' wall clocks (runtime-run.ts `clockJumpMeanIntervalMs`). */
  readonly clockJumpMeanIntervalMs?: number;
  /** Fill write-ahead log disks (runtime-run.ts `diskFullMeanIntervalMs`; needs walDisks). */
  readonly diskFullMeanIntervalMs?: number;
  readonly clusterSize?: 3 | 5;
  /** Split the keyspace under load (runtime-run.ts `splitMeanIntervalMs`). */
  readonly splitMeanIntervalMs?: number;
  readonly splitLosesKey?: boolean;
  readonly concurrentSplits?: boolean;
  /** Merge ranges back under load (runtime-run.ts `mergeMeanIntervalMs`; needs splits). */
  readonly mergeMeanIntervalMs?: number;
  readonly mergeLosesKey?: boolean;
  /** Auto-compaction on the split keyspace (runtime-run.ts `autoCompactionRetentionMs`). */
  readonly autoCompactionRetentionMs?: number;
  readonly settleMicrotasks: RuntimeSimulationOptions["settleMicrotasks"];
  readonly onTrace?: RuntimeSimulationOptions["onTrace"];
  /** Called after every run with the number of runs so far. */
  readonly onResult?: (result: RuntimeSimulationResult, done: number) => void;
}

export interface RuntimeSweepSummary {
  readonly runs: number;
  readonly stats: RuntimeStats;
  readonly failures: readonly RuntimeSimulationResult[];
}

export function runtimeProfileForSeed(
  profile: RuntimeProfileName | "all",
  seed: number,
  splits = false,
): RuntimeProfileName {
  if (profile !== "all") return profile;
  const profiles: readonly RuntimeProfileName[] = splits ? SPLIT_PROFILES : RUNTIME_PROFILES;
  const name = profiles[seed % profiles.length];
  if (name === undefined) throw new Error(`no runtime profile for seed ${seed}`);
  return name;
}

export async function sweepRuntime(options: RuntimeSweepOptions): Promise<RuntimeSweepSummary> {
  if (!Number.isSafeInteger(options.firstSeed) || options.firstSeed < 0) {
    throw new Error(`first seed must be a non-negative integer, got ${options.firstSeed}`);
  }
  if (!Number.isSafeInteger(options.seeds) || options.seeds < 1) {
    throw new Error(`seed count must be a positive integer, got ${options.seeds}`);
  }
  let stats: RuntimeStats | null = null;
  const failures: RuntimeSimulationResult[] = [];
  for (let i = 0; i < options.seeds; i++) {
    const seed = options.firstSeed + i;
    const result = await runRuntimeSimulation({
      seed,
      profile: runtimeProfileForSeed(options.profile, seed, options.splitMeanIntervalMs !== undefined),
      steps: options.steps,
      durationMs: options.durationMs,
      ackBeforeSync: options.ackBeforeSync,
      walDisks: options.walDisks,
      crashMeanIntervalMs: options.crashMeanIntervalMs,
      freezeMeanIntervalMs: options.freezeMeanIntervalMs,
      clockJumpMeanIntervalMs: options.clockJumpMeanIntervalMs,
      diskFullMeanIntervalMs: options.diskFullMeanIntervalMs,
      clusterSize: options.clusterSize,
      splitMeanIntervalMs: options.splitMeanIntervalMs,
      splitLosesKey: options.splitLosesKey,
      concurrentSplits: options.concurrentSplits,
      mergeMeanIntervalMs: options.mergeMeanIntervalMs,
      mergeLosesKey: options.mergeLosesKey,
      autoCompactionRetentionMs: options.autoCompactionRetentionMs,
      settleMicrotasks: options.settleMicrotasks,
      onTrace: options.onTrace,
    });
    stats = stats === null ? { ...result.stats } : addStats(stats, result.stats);
    if (result.violations.length > 0) failures.push(result);
    options.onResult?.(result, i + 1);
  }
  if (stats === null) throw new Error("a sweep ran no seed");
  return { runs: options.seeds, stats, failures };
}

function addStats(total: RuntimeStats, more: RuntimeStats): RuntimeStats {
  const sum = { ...total };
  for (const name of Object.keys(more) as (keyof RuntimeStats)[]) sum[name] += more[name];
  return sum;
}

/** The settings a failing seed needs to replay exactly, besides its seed and profile. */
export interface RuntimeReplaySettings {
  readonly steps?: number;
  readonly durationMs?: number;
  readonly crashMeanIntervalMs?: number;
  readonly freezeMeanIntervalMs?: number;
  readonly clockJumpMeanIntervalMs?: number;
  readonly diskFullMeanIntervalMs?: number;
  readonly ackBeforeSync?: boolean;
  readonly walDisks?: boolean;
  readonly clusterSize?: 3 | 5;
  readonly splitMeanIntervalMs?: number;
  readonly splitLosesKey?: boolean;
  readonly concurrentSplits?: boolean;
  readonly mergeMeanIntervalMs?: number;
  readonly mergeLosesKey?: boolean;
  readonly autoCompactionRetentionMs?: number;
}

/** Violations, the exact replay command and the trace of a failed seed. */
export function describeRuntimeFailure(
  result: RuntimeSimulationResult,
  settings: RuntimeReplaySettings = {},
): string {
  const flags = [
    `--runtime --seed ${result.seed} --profile ${result.profile}`,
    settings.steps !== undefined ? `--steps ${settings.steps}` : "",
    settings.durationMs !== undefined ? `--duration ${settings.durationMs}` : "",
    settings.crashMeanIntervalMs !== undefined ? `--crash-interval ${settings.crashMeanIntervalMs}` : "",
    settings.freezeMeanIntervalMs !== undefined ? `--freeze-interval ${settings.freezeMeanIntervalMs}` : "",
    settings.clockJumpMeanIntervalMs !== undefined
      ? `--clock-jump-interval ${settings.clockJumpMeanIntervalMs}`
      : "",
    settings.ackBeforeSync === true ? "--ack-before-sync" : "",
    settings.walDisks === true ? "--wal" : "",
    settings.diskFullMeanIntervalMs !== undefined
      ? `--disk-full-interval ${settings.diskFullMeanIntervalMs}`
      : "",
    settings.clusterSize !== undefined ? `--nodes ${settings.clusterSize}` : "",
    settings.splitMeanIntervalMs !== undefined
      ? `--splits --split-interval ${settings.splitMeanIntervalMs}`
      : "",
    settings.splitLosesKey === true ? "--split-loses-key" : "",
    settings.concurrentSplits === true ? "--concurrent-splits" : "",
    settings.mergeMeanIntervalMs !== undefined
      ? `--merges --merge-interval ${settings.mergeMeanIntervalMs}`
      : "",
    settings.mergeLosesKey === true ? "--merge-loses-key" : "",
    settings.autoCompactionRetentionMs !== undefined
      ? `--auto-compaction ${settings.autoCompactionRetentionMs}`
      : "",
  ].filter((flag) => flag !== "");
  return [
    `seed ${result.seed} (${result.profile}, ${result.clusterSize} nodes) failed: ${result.violations.length} violation(s)`,
    ...result.violations.map((v) => `  [${v.invariant}] at ${v.time}ms: ${v.detail}`),
    `replay: npm run sim -- ${flags.join(" ")}`,
    `last ${result.trace.length} trace lines:`,
    ...result.trace.map((line) => `  ${formatTraceLine(line)}`),
  ].join("\n");
}
