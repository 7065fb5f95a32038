/**
 * The `concord` command line: commander definitions of `start` (etcd's flag names, help with
 * examples), `version` and the etcdctl-style client commands (src/cli/client), and `runCli`,
 * which parses argv, runs the chosen command with injected I/O and returns the exit code
 * (0 ok, 1 runtime error, 2 usage error, 3 no endpoint answered in time).
 */
import { Command, CommanderError } from "commander";
import { ClientContext, resolveGlobals, type ClientIo } from "./client/context.js";
import { CommandError, UnavailableError } from "./client/errors.js";
import { processClientIo } from "./client/process-io.js";
import { GLOBAL_FLAG_NAMES, registerClientCommands, type ClientChoice } from "./client/register.js";
import { EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, RuntimeError, UsageError } from "./errors.js";
import {
  resolveStartConfig,
  SPLIT_FLAG_NAMES,
  SPLIT_OPTIONS,
  START_DEFAULTS,
  type StartFlags,
} from "./start-config.js";
import { runStart, type NodeStarter, type SignalWaiter } from "./start.js";
import { concordVersion } from "./version.js";

export interface CliDeps {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Resolves a relative --data-dir. */
  readonly cwd: string;
  readonly startNode: NodeStarter;
  readonly waitForSignal: () => SignalWaiter;
  /** Client commands' stdin, environment, interrupt and TTY check (default: the process's). */
  readonly client?: Partial<Pick<ClientIo, "stdinLines" | "env" | "interrupt" | "stderrIsTTY">>;
}

const START_FLAGS = [
  "name",
  "data-dir",
  "listen-client-urls",
  "advertise-client-urls",
  "listen-peer-urls",
  "initial-advertise-peer-urls",
  "initial-cluster",
  "initial-cluster-state",
  "initial-cluster-token",
  ...SPLIT_FLAG_NAMES,
  "linearizable-reads",
  "commit-notice-delay",
  "auto-compaction-retention",
  "auto-compaction-mode",
] as const;

const START_EXAMPLES = `
Examples:
  # one durable node: client port 2379, peer port 2380 on 127.0.0.1, data in ./default.concord
  $ concord start

  # the same on other ports and another data dir
  $ concord start --name n1 --data-dir /var/lib/concord/n1 \\
      --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \\
      --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380

  # member n2 of a static three-member cluster (start n1 and n3 the same way)
  $ concord start --name n2 --data-dir n2.concord \\
      --listen-client-urls http://127.0.0.1:22379 --advertise-client-urls http://127.0.0.1:22379 \\
      --listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 \\
      --initial-cluster n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380 \\
      --initial-cluster-token my-cluster --initial-cluster-state new

The flags are etcd's, with etcd's defaults; a script that starts etcd starts Concord when
"etcd" is replaced by "concord start" (or just "concord": flags with no command mean start;
-flag works like --flag). A URL flag takes http://host:port; listen URLs name an IP address or
localhost (bound as 127.0.0.1). The data dir remembers its cluster and member in cluster.json;
starting it with another --initial-cluster-token, --initial-cluster or --name fails, and
changes nothing. SIGINT or SIGTERM closes the node and exits 0.

Exit codes: 0 stopped cleanly, 1 runtime error (data dir, node), 2 usage error (flags).`;

const PROGRAM_EXAMPLES = `
Examples:
  $ concord start                                   # a one-node store in ./default.concord
  $ concord start --name n1 --data-dir n1.concord   # see: concord start --help
  $ concord put greeting hello                      # etcdctl's commands, against 127.0.0.1:2379
  $ concord get greeting -w json --endpoints 127.0.0.1:2379,127.0.0.1:22379
  $ concord status
  $ concord version

Exit codes of the client commands: 0 ok, 1 the server or the operation refused, 2 usage
error, 3 unavailable (no endpoint answered in time). See concord <command> --help.`;

/** Commands whose subcommand is the second word (global flags go after both). */
const COMMAND_GROUPS = ["lease", "member", "endpoint", "snapshot"];

/**
 * etcdctl takes its global flags anywhere (`etcdctl --endpoints x get k`, `etcdctl lease
 * --endpoints x grant 10`); commander takes them only on the leaf command, so global flags
 * that come before the command words move behind them.
 */
function hoistGlobalFlags(argv: readonly string[]): string[] {
  const globals: string[] = [];
  const path: string[] = [];
  let wanted = 1;
  let at = 0;
  while (at < argv.length && path.length < wanted) {
    const arg = argv[at]!;
    if ((GLOBAL_FLAG_NAMES as readonly string[]).includes(arg.split("=")[0]!)) {
      const takesNext = !arg.includes("=") && at + 1 < argv.length;
      globals.push(...argv.slice(at, takesNext ? at + 2 : at + 1));
      at += takesNext ? 2 : 1;
      continue;
    }
    if (arg.startsWith("-")) break;
    path.push(arg);
    if (path.length === 1 && COMMAND_GROUPS.includes(arg)) wanted = 2;
    at += 1;
  }
  if (globals.length === 0) return [...argv];
  return [...path, ...globals, ...argv.slice(at)];
}

/**
 * etcd's flag parser (Go's) also takes `-flag` and `-flag=value`; commander takes only
 * `--flag`. Rewriting the start flags makes etcd command lines work unchanged.
 */
export function normalizeArgv(argv: readonly string[]): string[] {
  const rewritten = hoistGlobalFlags(argv).map((arg) => {
    const match = /^-([a-z][a-z-]+)(=.*)?$/.exec(arg);
    const flag = match?.[1];
    if (flag === undefined || !(START_FLAGS as readonly string[]).includes(flag)) return arg;
    return `-${arg}`;
  });
  const first = rewritten[0];
  const topLevel = ["-h", "--help", "--version"];
  if (first !== undefined && first.startsWith("-") && !topLevel.includes(first)) {
    return ["start", ...rewritten];
  }
  return rewritten;
}

interface StartOptions {
  name: string;
  dataDir?: string;
  listenClientUrls: string;
  listenMetricsUrls?: string;
  advertiseClientUrls: string;
  listenPeerUrls: string;
  initialAdvertisePeerUrls: string;
  initialCluster?: string;
  initialClusterState: string;
  initialClusterToken: string;
  autoSplit?: string | boolean;
  splitLoadOps?: string;
  splitLoadWindows?: string;
  splitMaxRangeBytes?: string;
  splitCooldown?: string;
  autoMerge?: string | boolean;
  mergeMaxBytes?: string;
  mergeMaxOps?: string;
  mergeWindows?: string;
  mergeDelayAfterSplit?: string;
  linearizableReads?: string;
  commitNoticeDelay?: string;
  autoCompactionRetention?: string;
  autoCompactionMode?: string;
}

type Chosen =
  | { readonly kind: "start"; readonly flags: StartFlags }
  | { readonly kind: "version" }
  | { readonly kind: "client"; readonly choice: ClientChoice };

function buildProgram(deps: CliDeps, version: string, choose: (chosen: Chosen) => void): Command {
  const program = new Command("concord")
    .description("Concord: a strongly consistent, sharded key-value and coordination store.")
    .exitOverride()
    .configureOutput({ writeOut: deps.stdout, writeErr: deps.stderr })
    .showHelpAfterError("(concord --help or concord <command> --help for usage)")
    .version(version, "--version", "print the version and exit")
    .addHelpText("after", PROGRAM_EXAMPLES);
  const start = program
    .command("start")
    .description("Start a durable member (one node by default) and serve until SIGINT/SIGTERM.")
    .allowExcessArguments(false)
    .option("--name <name>", "this member's name, unique in --initial-cluster", START_DEFAULTS.name)
    .option("--data-dir <path>", "where the member keeps its data (default: <name>.concord)")
    .option(
      "--listen-client-urls <url>",
      "where clients connect: http://ip:port (port 0 = any free port)",
      START_DEFAULTS.listenClientUrls,
    )
    .option(
      "--listen-metrics-urls <urls>",
      "comma-separated http://ip:port URLs of extra plain HTTP ports serving /metrics, /health and /version (the client port serves them too)",
    )
    .option(
      "--advertise-client-urls <urls>",
      "comma-separated client URLs to tell others",
      START_DEFAULTS.advertiseClientUrls,
    )
    .option(
      "--listen-peer-urls <url>",
      "where other members connect: http://ip:port (port 0 = any free port)",
      START_DEFAULTS.listenPeerUrls,
    )
    .option(
      "--initial-advertise-peer-urls <url>",
      "this member's peer URL as others dial it; must match its --initial-cluster entry",
      START_DEFAULTS.initialAdvertisePeerUrls,
    )
    .option(
      "--initial-cluster <members>",
      "founding members, name=http://host:port,... (default: <name>=<initial-advertise-peer-urls>)",
    )
    .option("--initial-cluster-state <state>", "new or existing", START_DEFAULTS.initialClusterState)
    .option(
      "--initial-cluster-token <token>",
      "cluster identity; members of one cluster share it",
      START_DEFAULTS.initialClusterToken,
    );
  for (const option of SPLIT_OPTIONS) start.option(option.flags, option.description);
  start.option(
    "--linearizable-reads <mode>",
    "how a range's leader confirms a linearizable read: lease (served at once while a quorum answered a heartbeat within the election timeout, judged on the leader's monotonic clock) or read-index (a heartbeat round per batch of reads, as etcd; assumes nothing about clocks) (default: lease)",
  );
  start.option(
    "--commit-notice-delay <ms>",
    "longest a follower with nothing waiting on it may wait to hear that writes committed (serializable reads and background watches there may lag by this much); 0 tells every commit at once, as etcd (default: 20)",
  );
  start.option(
    "--auto-compaction-retention <duration>",
    "keep this much history and compact the rest every min(duration, 1h): a duration like 1h, 30m, 1h30m, or hours (default 0: off)",
  );
  start.option(
    "--auto-compaction-mode <mode>",
    "periodic (the only mode: revisions are timestamps, so etcd's revision mode does not apply)",
  );
  start
    .addHelpText("after", START_EXAMPLES)
    .action((options: StartOptions) => choose({ kind: "start", flags: options }));
  program
    .command("version")
    .description("print the version and exit")
    .allowExcessArguments(false)
    .action(() => choose({ kind: "version" }));
  registerClientCommands(program, (choice) => choose({ kind: "client", choice }));
  return program;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs one `concord` invocation; resolves with its exit code. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  let chosen: Chosen | null = null;
  const version = concordVersion();
  const program = buildProgram(deps, version, (choice) => {
    chosen = choice;
  });
  if (argv.length === 0) {
    deps.stderr(program.helpInformation());
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(normalizeArgv(argv), { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    throw error;
  }
  // Assigned by the action callback during parseAsync, which control flow analysis cannot see.
  const command = chosen as Chosen | null;
  if (command === null) throw new Error("commander parsed argv without running a command");
  if (command.kind === "version") {
    deps.stdout(`concord Version: ${version}\nNode.js Version: ${process.version}\n`);
    return EXIT_OK;
  }
  if (command.kind === "client") return runClient(command.choice, deps);
  try {
    const config = resolveStartConfig(command.flags, deps.cwd);
    await runStart(config, {
      startNode: deps.startNode,
      waitForSignal: deps.waitForSignal,
      out: (line) => deps.stdout(`${line}\n`),
      err: (line) => deps.stderr(`${line}\n`),
    });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) {
      deps.stderr(`concord start: ${errorText(error)}\n(concord start --help for usage)\n`);
      return error.exitCode;
    }
    if (error instanceof RuntimeError) {
      deps.stderr(`concord start: ${errorText(error)}\n`);
      return error.exitCode;
    }
    throw error;
  }
}

/** Runs a client command; its errors print as etcdctl prints them, `Error: <reason>`. */
async function runClient(choice: ClientChoice, deps: CliDeps): Promise<number> {
  let context: ClientContext | null = null;
  try {
    const io: ClientIo = {
      ...processClientIo(),
      ...deps.client,
      stdout: deps.stdout,
      stderr: deps.stderr,
      cwd: deps.cwd,
    };
    context = new ClientContext(io, resolveGlobals(choice.globals, io.env));
    await choice.run(context);
    return EXIT_OK;
  } catch (error) {
    deps.stderr(`Error: ${errorText(error)}\n`);
    if (
      error instanceof UsageError ||
      error instanceof RuntimeError ||
      error instanceof CommandError ||
      error instanceof UnavailableError
    ) {
      return error.exitCode;
    }
    return EXIT_RUNTIME;
  } finally {
    context?.close();
  }
}
