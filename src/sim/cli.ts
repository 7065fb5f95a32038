/**
 * `npm run sim -- --seeds N [--seed S] [--profile NAME|all] [--steps K] [--verbose] [--bug NAMES]`
 * `npm run sim -- --runtime [--seeds N] [--seed S] [--profile NAME|all] [--steps K] [--duration MS]
 *   [--crash-interval MS] [--freeze-interval MS] [--clock-jump-interval MS] [--ack-before-sync]
 *   [--disk-full-interval MS (with --wal)]
 *   [--wal] [--nodes 3|5] [--splits [--split-interval MS]
 *   [--split-loses-key] [--concurrent-splits] [--merges [--merge-interval MS] [--merge-loses-key]]]`
 *
 * Runs simulation seeds, prints progress and a summary table of the stats summed over the
 * seeds; on a failure prints the replay command and the trace of each failing seed, and exits
 * with code 1. (This file is the simulator's only contact with the real process: argv, stdout,
 * exit code. Everything it runs is virtual and deterministic.)
 */
import { Command, InvalidArgumentError } from "commander";
import type { InjectedBugs } from "../raft/index.js";
import { isProfileName, PROFILE_NAMES, type ProfileName } from "./profiles.js";
import { describeFailure, formatStatsTable, sweep } from "./sweep.js";
import { formatTraceLine } from "./trace.js";
import { RUNTIME_PROFILES, SPLIT_PROFILES, isRuntimeProfile } from "./runtime/runtime-run.js";
import { DEFAULT_SPLIT_MEAN_INTERVAL_MS } from "./runtime/split-run.js";
import { DEFAULT_MERGE_MEAN_INTERVAL_MS } from "./runtime/merge-run.js";
import { describeRuntimeFailure, sweepRuntime } from "./runtime/runtime-sweep.js";
import { electionMain } from "./election/cli.js";

interface CliOptions {
  seeds?: number;
  seed?: number;
  profile: ProfileName | "all";
  steps?: number;
  verbose: boolean;
  bug?: InjectedBugs;
  runtime: boolean;
  duration?: number;
  crashInterval?: number;
  freezeInterval?: number;
  clockJumpInterval?: number;
  diskFullInterval?: number;
  ackBeforeSync: boolean;
  wal: boolean;
  nodes?: 3 | 5;
  splits: boolean;
  splitInterval?: number;
  splitLosesKey: boolean;
  concurrentSplits: boolean;
  merges: boolean;
  mergeInterval?: number;
  mergeLosesKey: boolean;
  autoCompaction?: number;
  election: boolean;
  electionBug?: string;
  electionPinned: boolean;
  electionCheckQuorumOff: boolean;
}

const BUG_NAMES: readonly (keyof InjectedBugs)[] = [
  "countStaleVotes",
  "commitPreviousTermByCounting",
  "grantVoteIgnoringLog",
];

function isBugName(name: string): name is keyof InjectedBugs {
  return (BUG_NAMES as readonly string[]).includes(name);
}

function bugsOption(text: string): InjectedBugs {
  const bugs: Record<string, boolean> = {};
  for (const name of text.split(",")) {
    if (!isBugName(name)) throw new InvalidArgumentError(`expected bug names among: ${BUG_NAMES.join(", ")}`);
    bugs[name] = true;
  }
  return bugs;
}

function nonNegativeInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new InvalidArgumentError("expected a non-negative integer");
  return value;
}

function positiveInteger(text: string): number {
  const value = nonNegativeInteger(text);
  if (value === 0) throw new InvalidArgumentError("expected a positive integer");
  return value;
}

function clusterSizeOption(text: string): 3 | 5 {
  if (text === "3") return 3;
  if (text === "5") return 5;
  throw new InvalidArgumentError("expected 3 or 5");
}

function profileOption(text: string): ProfileName | "all" {
  if (text === "all" || isProfileName(text)) return text;
  throw new InvalidArgumentError(`expected "all" or one of: ${PROFILE_NAMES.join(", ")}`);
}

/** Lets every queued promise reaction of the node runtime run: the runtime simulation's pause between events. */
function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `--runtime`: the node runtime (NodeHost) on simulated disks, network and clocks. */
async function runtimeMain(options: CliOptions): Promise<number> {
  const profile = options.profile;
  if (profile !== "all" && !isRuntimeProfile(profile)) {
    process.stderr.write(`--runtime supports the profiles ${RUNTIME_PROFILES.join(", ")} or all\n`);
    return 2;
  }
  const splits = options.splits || options.splitInterval !== undefined;
  if (!splits && (options.splitLosesKey || options.concurrentSplits)) {
    process.stderr.write("--split-loses-key and --concurrent-splits need --splits\n");
    return 2;
  }
  const merges = options.merges || options.mergeInterval !== undefined;
  if (!merges && options.mergeLosesKey) {
    process.stderr.write("--merge-loses-key needs --merges\n");
    return 2;
  }
  if (options.autoCompaction !== undefined && !splits) {
    process.stderr.write("--auto-compaction needs --splits (it runs in the placement layer)\n");
    return 2;
  }
  if (options.diskFullInterval !== undefined && !options.wal) {
    process.stderr.write("--disk-full-interval needs --wal (disks fill under the write-ahead log)\n");
    return 2;
  }
  if (merges && !splits) {
    process.stderr.write("--merges needs --splits (merges run on a split keyspace)\n");
    return 2;
  }
  if (splits && profile !== "all" && !(SPLIT_PROFILES as readonly string[]).includes(profile)) {
    process.stderr.write(`--splits supports the profiles ${SPLIT_PROFILES.join(", ")} or all\n`);
    return 2;
  }
  const splitSettings = {
    clusterSize: options.nodes,
    splitMeanIntervalMs: splits ? (options.splitInterval ?? DEFAULT_SPLIT_MEAN_INTERVAL_MS) : undefined,
    splitLosesKey: options.splitLosesKey,
    concurrentSplits: options.concurrentSplits,
    mergeMeanIntervalMs: merges ? (options.mergeInterval ?? DEFAULT_MERGE_MEAN_INTERVAL_MS) : undefined,
    mergeLosesKey: options.mergeLosesKey,
    autoCompactionRetentionMs: options.autoCompaction,
  };
  const firstSeed = options.seed ?? 1;
  const seeds = options.seeds ?? (options.seed !== undefined ? 1 : 100);
  const progressEvery = Math.max(1, Math.floor(seeds / 20));
  process.stdout.write(
    `simulating the node runtime: ${seeds} seed(s) from ${firstSeed}, profile ${profile}` +
      `${splits ? ", splitting the keyspace" : ""}${merges ? " and merging it back" : ""}\n`,
  );
  const summary = await sweepRuntime({
    firstSeed,
    seeds,
    profile,
    steps: options.steps,
    durationMs: options.duration,
    crashMeanIntervalMs: options.crashInterval,
    freezeMeanIntervalMs: options.freezeInterval,
    clockJumpMeanIntervalMs: options.clockJumpInterval,
    diskFullMeanIntervalMs: options.diskFullInterval,
    ackBeforeSync: options.ackBeforeSync,
    walDisks: options.wal,
    ...splitSettings,
    settleMicrotasks,
    onTrace: options.verbose ? (line) => process.stdout.write(`${formatTraceLine(line)}\n`) : undefined,
    onResult: (result, done) => {
      const failed = result.violations.length > 0;
      if (failed || done % progressEvery === 0 || done === seeds) {
        process.stdout.write(
          `[${String(done).padStart(String(seeds).length)}/${seeds}] seed ${result.seed} ${result.profile}: ` +
            `${failed ? `FAIL (${result.violations[0]!.invariant})` : "ok"}, ` +
            `${result.stats.events} events, ${result.stats.virtualMs} virtual ms\n`,
        );
      }
    },
  });
  process.stdout.write(`\nstats summed over ${summary.runs} run(s):\n${formatStatsTable(summary.stats)}\n`);
  process.stdout.write(`\n${summary.failures.length} failing seed(s)\n`);
  for (const failure of summary.failures) {
    const replay = {
      steps: options.steps,
      durationMs: options.duration,
      crashMeanIntervalMs: options.crashInterval,
      freezeMeanIntervalMs: options.freezeInterval,
      clockJumpMeanIntervalMs: options.clockJumpInterval,
      diskFullMeanIntervalMs: options.diskFullInterval,
      ackBeforeSync: options.ackBeforeSync,
      walDisks: options.wal,
      ...splitSettings,
    };
    process.stdout.write(`\n${describeRuntimeFailure(failure, replay)}\n`);
  }
  return summary.failures.length > 0 ? 1 : 0;
}

function main(argv: readonly string[]): number | Promise<number> {
  const program = new Command()
    .name("npm run sim --")
    .description("Run the deterministic Raft cluster simulator over a range of seeds.")
    .option("--seeds <n>", "how many seeds to run (default 1 with --seed, else 100)", positiveInteger)
    .option("--seed <s>", "first seed (default 1); with no --seeds, run just this one", nonNegativeInteger)
    .option(
      "--profile <name>",
      `fault profile: ${PROFILE_NAMES.join(", ")} or all (round-robin)`,
      profileOption,
      "all",
    )
    .option("--steps <k>", "at most this many events in the faulty phase of each run", positiveInteger)
    .option("--verbose", "print every trace line as it happens", false)
    .option(
      "--bug <names>",
      "switch on deliberate Raft bugs (comma-separated), to watch the checks fire",
      bugsOption,
    )
    .option("--runtime", "simulate the node runtime (NodeHost) instead of raw Raft cores", false)
    .option(
      "--duration <ms>",
      "with --runtime or --election: virtual milliseconds of the faulty phase",
      positiveInteger,
    )
    .option(
      "--crash-interval <ms>",
      "with --runtime: mean virtual milliseconds between crashes (crashes profile)",
      positiveInteger,
    )
    .option(
      "--freeze-interval <ms>",
      "with --runtime: freeze nodes (SIGSTOP, one or all, 20 ms to 3 s) this often, in mean virtual milliseconds, on top of the profile's faults",
      positiveInteger,
    )
    .option(
      "--clock-jump-interval <ms>",
      "with --runtime: step one node's wall clock (up to 10 minutes, either way) this often, in mean virtual milliseconds",
      positiveInteger,
    )
    .option(
      "--disk-full-interval <ms>",
      "with --runtime --wal: fill one node's write-ahead log disk (100 ms to 2 s; its host stops, then restarts) this often, in mean virtual milliseconds",
      positiveInteger,
    )
    .option("--ack-before-sync", "with --runtime: disks acknowledge syncs early (a deliberate bug)", false)
    .option(
      "--wal",
      "with --runtime: Raft logs in the production write-ahead log on simulated disks (crashes tear writes in flight)",
      false,
    )
    .option(
      "--nodes <n>",
      "with --runtime: cluster size 3 or 5 (default: the profile picks)",
      clusterSizeOption,
    )
    .option("--splits", "with --runtime: split the keyspace under load and faults", false)
    .option(
      "--split-interval <ms>",
      `with --runtime: mean virtual milliseconds between splits (implies --splits; default ${DEFAULT_SPLIT_MEAN_INTERVAL_MS})`,
      positiveInteger,
    )
    .option("--split-loses-key", "with --splits: a split forgets to copy one key (a deliberate bug)", false)
    .option("--concurrent-splits", "with --splits: ask for splits while another is in flight", false)
    .option("--merges", "with --splits: merge ranges back under load and faults", false)
    .option(
      "--merge-interval <ms>",
      `with --splits: mean virtual milliseconds between merge draws (implies --merges; default ${DEFAULT_MERGE_MEAN_INTERVAL_MS})`,
      positiveInteger,
    )
    .option(
      "--merge-loses-key",
      "with --merges: a merge's import drops one version (a deliberate bug)",
      false,
    )
    .option(
      "--auto-compaction <ms>",
      "with --splits: every node runs periodic auto-compaction keeping this many virtual ms of history, until the faults heal",
      positiveInteger,
    )
    .option("--election", "simulate the leader-election recipe against the node runtime", false)
    .option(
      "--election-bug <name>",
      "with --election: a deliberately broken candidate (term-reset, grab, slow-clock)",
    )
    .option("--election-pinned", "with --election: each client talks to one node only (no fail-over)", false)
    .option(
      "--election-check-quorum-off",
      "with --election: half the seeds run Raft without check-quorum",
      false,
    )
    .parse(argv, { from: "user" });
  const options = program.opts<CliOptions>();
  if (options.election) return electionMain(options);
  if (options.runtime) return runtimeMain(options);
  const firstSeed = options.seed ?? 1;
  const seeds = options.seeds ?? (options.seed !== undefined ? 1 : 100);
  const progressEvery = Math.max(1, Math.floor(seeds / 20));
  process.stdout.write(`simulating ${seeds} seed(s) from ${firstSeed}, profile ${options.profile}\n`);
  const summary = sweep({
    firstSeed,
    seeds,
    profile: options.profile,
    steps: options.steps,
    bugs: options.bug,
    onTrace: options.verbose ? (line) => process.stdout.write(`${formatTraceLine(line)}\n`) : undefined,
    onResult: (result, done) => {
      const failed = result.violations.length > 0;
      if (failed || done % progressEvery === 0 || done === seeds) {
        process.stdout.write(
          `[${String(done).padStart(String(seeds).length)}/${seeds}] seed ${result.seed} ${result.profile}: ` +
            `${failed ? `FAIL (${result.violations[0]!.invariant})` : "ok"}, ` +
            `${result.stats.events} events, ${result.stats.virtualMs} virtual ms\n`,
        );
      }
    },
  });
  process.stdout.write(`\nstats summed over ${summary.runs} run(s):\n${formatStatsTable(summary.stats)}\n`);
  const violations = summary.failures.reduce((n, r) => n + r.violations.length, 0);
  process.stdout.write(`\n${violations} violation(s) in ${summary.failures.length} failing seed(s)\n`);
  for (const failure of summary.failures)
    process.stdout.write(`\n${describeFailure(failure, options.steps)}\n`);
  if (summary.stats.linearizabilityUnknown > 0) {
    process.stdout.write(
      `\nnote: ${summary.stats.linearizabilityUnknown} history(ies) were too large to decide linearizability\n`,
    );
  }
  return summary.failures.length > 0 ? 1 : 0;
}

void Promise.resolve(main(process.argv.slice(2))).then((code) => {
  process.exitCode = code;
});
