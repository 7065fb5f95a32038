/**
 * `npm run sim -- --election [--seeds N] [--seed S] [--duration MS] [--election-bug NAME]
 * [--election-pinned] [--election-check-quorum-off] [--verbose]`: sweeps of the election simulation, with progress lines, the stats summed over
 * the seeds, and each failing seed's violations, replay command and trace. Exit code 1 on any
 * violation. (Wired into src/sim/cli.ts; the only real I/O is stdout.)
 */
import { formatStatsTable } from "../sweep.js";
import { formatTraceLine } from "../trace.js";
import { describeElectionFailure, sweepElection } from "./run.js";
import { ELECTION_BUGS, type ElectionBug } from "./workload.js";

export interface ElectionCliOptions {
  readonly seeds?: number;
  readonly seed?: number;
  readonly duration?: number;
  readonly electionBug?: string;
  readonly electionPinned?: boolean;
  readonly electionCheckQuorumOff?: boolean;
  readonly verbose: boolean;
}

export function isElectionBug(name: string): name is ElectionBug {
  return (ELECTION_BUGS as readonly string[]).includes(name);
}

function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function electionMain(options: ElectionCliOptions): Promise<number> {
  const bugName = options.electionBug;
  if (bugName !== undefined && !isElectionBug(bugName)) {
    process.stderr.write(`--election-bug must be one of: ${ELECTION_BUGS.join(", ")}\n`);
    return 2;
  }
  const bug = bugName ?? null;
  const firstSeed = options.seed ?? 1;
  const seeds = options.seeds ?? (options.seed !== undefined ? 1 : 100);
  const progressEvery = Math.max(1, Math.floor(seeds / 20));
  process.stdout.write(
    `simulating the election recipe: ${seeds} seed(s) from ${firstSeed}${bug === null ? "" : `, bug ${bug}`}\n`,
  );
  const summary = await sweepElection({
    firstSeed,
    seeds,
    bug,
    pinnedClients: options.electionPinned === true,
    checkQuorumOff: options.electionCheckQuorumOff === true,
    durationMs: options.duration,
    settleMicrotasks,
    onTrace: options.verbose ? (line) => process.stdout.write(`${formatTraceLine(line)}\n`) : undefined,
    onResult: (result, done) => {
      const failed = result.violations.length > 0;
      if (failed || done % progressEvery === 0 || done === seeds) {
        process.stdout.write(
          `[${String(done).padStart(String(seeds).length)}/${seeds}] seed ${result.seed} (${result.shape}): ` +
            `${failed ? `FAIL (${result.violations[0]!.check})` : "ok"}, ` +
            `${result.stats.elections} elections, ${result.stats.events} events\n`,
        );
      }
    },
  });
  process.stdout.write(`\nstats summed over ${summary.runs} run(s):\n${formatStatsTable(summary.stats)}\n`);
  process.stdout.write(`\n${summary.failures.length} failing seed(s)\n`);
  for (const failure of summary.failures) {
    const replay = {
      durationMs: options.duration,
      bug,
      pinnedClients: options.electionPinned === true,
      checkQuorumOff: options.electionCheckQuorumOff === true,
    };
    process.stdout.write(`\n${describeElectionFailure(failure, replay)}\n`);
  }
  return summary.failures.length > 0 ? 1 : 0;
}
