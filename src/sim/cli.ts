/**
 * `npm run sim -- --seeds N [--seed S] [--profile NAME|all] [--steps K] [--verbose] [--bug NAMES]`
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

interface CliOptions {
  seeds?: number;
  seed?: number;
  profile: ProfileName | "all";
  steps?: number;
  verbose: boolean;
  bug?: InjectedBugs;
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

function profileOption(text: string): ProfileName | "all" {
  if (text === "all" || isProfileName(text)) return text;
  throw new InvalidArgumentError(`expected "all" or one of: ${PROFILE_NAMES.join(", ")}`);
}

function main(argv: readonly string[]): number {
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
    .parse(argv, { from: "user" });
  const options = program.opts<CliOptions>();
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

process.exitCode = main(process.argv.slice(2));
