/**
 * The commander definitions of the client commands (etcdctl's names, flags and habits): put,
 * get, del, txn, watch, compaction, lease, member, endpoint, move-leader, snapshot, status,
 * and Concord's own range list / split.
 * Each leaf command takes the global flags (--endpoints, --dial-timeout, --command-timeout,
 * -w/--write-out) and hands `register`'s caller the function that runs it; help texts carry
 * examples and the exit codes.
 */
import type { Command } from "commander";
import {
  runEndpointHealth,
  runEndpointStatus,
  runMemberAdd,
  runMemberList,
  runMemberPromote,
} from "./cluster-commands.js";
import { runMemberRemove, runMemberUpdate, runMoveLeader, runStatus } from "./cluster-commands.js";
import { GLOBAL_DEFAULTS, type ClientContext, type GlobalFlags } from "./context.js";
import { EXIT_CODES_HELP } from "./errors.js";
import { runCompaction, runDel, runGet, runPut, runTxn, type GetCommandFlags } from "./kv-commands.js";
import {
  runLeaseGrant,
  runLeaseKeepAlive,
  runLeaseList,
  runLeaseRevoke,
  runLeaseTimeToLive,
} from "./lease-commands.js";
import { runRangeList, runRangeMerge, runRangeSplit } from "./range-commands.js";
import type { DelFlags, PutFlags } from "./requests.js";
import { runSnapshotSave } from "./snapshot-save.js";
import type { RestoreFlags } from "./snapshot-restore.js";
import { runWatch, type WatchFlags } from "./watch-command.js";

export type ClientRun = (ctx: ClientContext) => Promise<void>;

/** What a parsed client command line chose: its global flags and what to run. */
export interface ClientChoice {
  readonly globals: GlobalFlags;
  readonly run: ClientRun;
}

/** The global flags: their names, for argv rewriting, and their definitions. */
export const GLOBAL_FLAG_NAMES = [
  "--endpoints",
  "--dial-timeout",
  "--command-timeout",
  "--write-out",
  "-w",
] as const;

const GLOBALS_HELP = `
Global flags (every client command): --endpoints host:port,... (default ${GLOBAL_DEFAULTS.endpoints}, or
$ETCDCTL_ENDPOINTS), --dial-timeout (${GLOBAL_DEFAULTS.dialTimeout}), --command-timeout (${GLOBAL_DEFAULTS.commandTimeout}),
-w/--write-out simple|table|json. Reads fail over to the next endpoint; a write only when it
certainly never reached a server.
${EXIT_CODES_HELP}`;

function withGlobals(command: Command): Command {
  return command
    .allowExcessArguments(false)
    .option(
      "--endpoints <list>",
      "comma-separated gRPC endpoints (default: $ETCDCTL_ENDPOINTS or 127.0.0.1:2379)",
    )
    .option(
      "--dial-timeout <duration>",
      "how long to wait to connect to an endpoint",
      GLOBAL_DEFAULTS.dialTimeout,
    )
    .option("--command-timeout <duration>", "deadline of one request", GLOBAL_DEFAULTS.commandTimeout)
    .option("-w, --write-out <format>", "output format: simple, table or json", GLOBAL_DEFAULTS.writeOut);
}

function examples(lines: string): string {
  return `\nExamples:\n${lines}\n${GLOBALS_HELP}`;
}

/** Registers every client command on `program`; `choose` receives the one the argv selects. */
export function registerClientCommands(program: Command, choose: (choice: ClientChoice) => void): void {
  const leaf = (parent: Command, name: string, description: string, help: string) =>
    withGlobals(parent.command(name).description(description)).addHelpText("after", examples(help));
  const pick = (options: GlobalFlags, run: ClientRun) => choose({ globals: options, run });

  leaf(
    program,
    "put",
    "Put a key-value pair",
    `  $ concord put greeting hello\n  $ concord put session/a 1 --lease 694d7a3d9b7f9e0a --prev-kv`,
  )
    .argument("<key>")
    .argument("<value>")
    .option("--lease <id>", "attach the key to this lease (hex id)")
    .option("--prev-kv", "print the previous key-value pair")
    .action((key: string, value: string, options: PutFlags & GlobalFlags) =>
      pick(options, (ctx) => runPut(ctx, key, value, options)),
    );

  leaf(
    program,
    "get",
    "Get a key or a range of keys",
    `  $ concord get greeting
  $ concord get config/ --prefix --keys-only
  $ concord get a z --sort-by MODIFY --order DESCEND --limit 10 -w json
  $ concord get greeting --rev 42 --consistency s`,
  )
    .argument("<key>")
    .argument("[range_end]", "end of the range [key, range_end)")
    .option("--prefix", "get keys with matching prefix")
    .option("--from-key", "get keys that are greater than or equal to the given key")
    .option("--limit <n>", "maximum number of results")
    .option("--rev <revision>", "read the keyspace as of this revision")
    .option("--sort-by <target>", "CREATE, KEY, MODIFY, VALUE or VERSION")
    .option("--order <order>", "ASCEND or DESCEND")
    .option("--keys-only", "get only the keys")
    .option("--count-only", "get only the count")
    .option("--print-value-only", "only write values (simple format)")
    .option("--consistency <level>", "l (linearizable) or s (serializable)", "l")
    .action((key: string, rangeEnd: string | undefined, options: GetCommandFlags & GlobalFlags) =>
      pick(options, (ctx) => runGet(ctx, key, rangeEnd, options)),
    );

  leaf(
    program,
    "del",
    "Delete a key or a range of keys",
    `  $ concord del greeting\n  $ concord del config/ --prefix --prev-kv`,
  )
    .alias("delete")
    .argument("<key>")
    .argument("[range_end]", "end of the range [key, range_end)")
    .option("--prefix", "delete keys with matching prefix")
    .option("--from-key", "delete keys that are greater than or equal to the given key")
    .option("--prev-kv", "print the deleted key-value pairs")
    .action((key: string, rangeEnd: string | undefined, options: DelFlags & GlobalFlags) =>
      pick(options, (ctx) => runDel(ctx, key, rangeEnd, options)),
    );

  leaf(
    program,
    "txn",
    "Run a transaction read from stdin: compares, blank line, success ops, blank line, failure ops",
    `  $ printf 'mod("counter") > "0"\\n\\nput counter 2\\n\\nput counter 1\\n\\n' | concord txn
  $ concord txn -i        # prompts for each section; a blank line ends it

Script lines: compares target("key") op "value" (targets c/create, m/mod, ver/version, val/value,
lease; ops = != < >); ops put <key> <value> [--lease=<hex>], get <key> [end] [--prefix ...],
del <key> [end] [--prefix] [--prev-kv]. Quote words with spaces: put k "a value".`,
  )
    .option("-i, --interactive", "prompt for each section")
    .action((options: { interactive?: boolean } & GlobalFlags) =>
      pick(options, (ctx) => runTxn(ctx, options.interactive === true)),
    );

  leaf(
    program,
    "watch",
    "Watch a key or a range for changes until SIGINT (or --max-events)",
    `  $ concord watch greeting
  $ concord watch config/ --prefix --prev-kv
  $ concord watch config/ --prefix --rev 1 --max-events 10 -w json`,
  )
    .argument("[key]")
    .argument("[range_end]")
    .option("--prefix", "watch on a prefix")
    .option("--rev <revision>", "revision to start watching from")
    .option("--prev-kv", "print the previous key-value pair of each event")
    .option("--max-events <n>", "exit 0 after this many events")
    .action((key: string | undefined, rangeEnd: string | undefined, options: WatchFlags & GlobalFlags) =>
      pick(options, (ctx) => runWatch(ctx, key, rangeEnd, options)),
    );

  leaf(program, "compaction", "Compact the event history up to a revision", `  $ concord compaction 1234`)
    .argument("<revision>")
    .option("--physical", "wait for the compaction to be physically applied")
    .action((revision: string, options: { physical?: boolean } & GlobalFlags) =>
      pick(options, (ctx) => runCompaction(ctx, revision, options.physical === true)),
    );

  const lease = program
    .command("lease")
    .description("Lease commands: grant, revoke, timetolive, list, keep-alive");
  leaf(lease, "grant", "Grant a lease with a TTL in seconds", `  $ concord lease grant 60`)
    .argument("<ttl>")
    .action((ttl: string, options: GlobalFlags) => pick(options, (ctx) => runLeaseGrant(ctx, ttl)));
  leaf(lease, "revoke", "Revoke a lease (its keys are deleted)", `  $ concord lease revoke 694d7a3d9b7f9e0a`)
    .argument("<leaseID>")
    .action((id: string, options: GlobalFlags) => pick(options, (ctx) => runLeaseRevoke(ctx, id)));
  leaf(lease, "timetolive", "Show a lease's TTL", `  $ concord lease timetolive 694d7a3d9b7f9e0a --keys`)
    .argument("<leaseID>")
    .option("--keys", "list the keys attached to the lease")
    .action((id: string, options: { keys?: boolean } & GlobalFlags) =>
      pick(options, (ctx) => runLeaseTimeToLive(ctx, id, options.keys === true)),
    );
  leaf(lease, "list", "List all active leases", `  $ concord lease list`).action((options: GlobalFlags) =>
    pick(options, (ctx) => runLeaseList(ctx)),
  );
  leaf(
    lease,
    "keep-alive",
    "Keep a lease alive until SIGINT (or once)",
    `  $ concord lease keep-alive 694d7a3d9b7f9e0a\n  $ concord lease keep-alive --once 694d7a3d9b7f9e0a`,
  )
    .argument("<leaseID>")
    .option("--once", "renew once and exit")
    .action((id: string, options: { once?: boolean } & GlobalFlags) =>
      pick(options, (ctx) => runLeaseKeepAlive(ctx, id, options.once === true)),
    );

  const member = program
    .command("member")
    .description("Membership commands: list, add, remove, update, promote");
  leaf(member, "list", "List the cluster's members", `  $ concord member list -w table`).action(
    (options: GlobalFlags) => pick(options, (ctx) => runMemberList(ctx)),
  );
  leaf(
    member,
    "add",
    "Add a member (then start it with --initial-cluster-state existing)",
    `  $ concord member add n4 --peer-urls http://10.0.0.4:2380\n  $ concord member add n4 --peer-urls http://10.0.0.4:2380 --learner`,
  )
    .argument("<name>")
    .option("--peer-urls <urls>", "comma-separated peer URLs of the new member")
    .option("--learner", "add as a learner (non-voting)")
    .action((name: string, options: { peerUrls?: string; learner?: boolean } & GlobalFlags) =>
      pick(options, (ctx) => runMemberAdd(ctx, name, options)),
    );
  leaf(
    member,
    "remove",
    "Remove a member (hex id, as member list prints it)",
    `  $ concord member remove 8e9e05c52164694d`,
  )
    .argument("<memberID>")
    .action((id: string, options: GlobalFlags) => pick(options, (ctx) => runMemberRemove(ctx, id)));
  leaf(
    member,
    "update",
    "Update a member's peer URLs",
    `  $ concord member update 8e9e05c52164694d --peer-urls http://10.0.0.9:2380`,
  )
    .argument("<memberID>")
    .option("--peer-urls <urls>", "comma-separated new peer URLs")
    .action((id: string, options: { peerUrls?: string } & GlobalFlags) =>
      pick(options, (ctx) => runMemberUpdate(ctx, id, options.peerUrls)),
    );
  leaf(
    member,
    "promote",
    "Promote a learner to a voting member",
    `  $ concord member promote 8e9e05c52164694d`,
  )
    .argument("<memberID>")
    .action((id: string, options: GlobalFlags) => pick(options, (ctx) => runMemberPromote(ctx, id)));

  const endpoint = program.command("endpoint").description("Endpoint commands: status, health");
  leaf(
    endpoint,
    "status",
    "Status of each endpoint",
    `  $ concord endpoint status -w table\n  $ concord endpoint status --cluster`,
  )
    .option("--cluster", "every member's client URLs instead of --endpoints")
    .action((options: { cluster?: boolean } & GlobalFlags) =>
      pick(options, (ctx) => runEndpointStatus(ctx, options.cluster === true)),
    );
  leaf(
    endpoint,
    "health",
    "Whether each endpoint serves linearizable reads",
    `  $ concord endpoint health --cluster -w table`,
  )
    .option("--cluster", "every member's client URLs instead of --endpoints")
    .action((options: { cluster?: boolean } & GlobalFlags) =>
      pick(options, (ctx) => runEndpointHealth(ctx, options.cluster === true)),
    );

  leaf(
    program,
    "move-leader",
    "Transfer leadership to another member (--endpoints must include the leader)",
    `  $ concord move-leader c89feb932daef420 --endpoints 10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379`,
  )
    .argument("<memberID>")
    .action((id: string, options: GlobalFlags) => pick(options, (ctx) => runMoveLeader(ctx, id)));

  leaf(
    program,
    "status",
    "A readable view of the cluster: members, leader, term, revision, indexes, db size",
    `  $ concord status\n  $ concord status -w table --endpoints 10.0.0.1:2379`,
  ).action((options: GlobalFlags) => pick(options, (ctx) => runStatus(ctx)));

  const range = program
    .command("range")
    .description(
      "Range commands (Concord only): list the keyspace's ranges, split one at a key, merge one into its neighbour",
    );
  leaf(
    range,
    "list",
    "List every range: id, start and end keys, Raft group, state, replicas, leader, size, load",
    `  $ concord range list
  $ concord range list -w table
  $ concord range list -w json --endpoints 10.0.0.1:2379,10.0.0.2:2379

Keys print as text when they are printable ASCII, else double-quoted with \\xNN escapes
("\\x00\\x00concord/"); an unbounded end prints as +inf. Replica and leader ids are hex, as
member list prints them (leader - while unknown); LOAD is requests per second.`,
  ).action((options: GlobalFlags) => pick(options, (ctx) => runRangeList(ctx)));
  leaf(
    range,
    "split",
    "Split the range holding <key> at <key> (the new right-hand range starts at it); prints both sides",
    `  $ concord range split user/m
  $ concord range split 757365722f6d --hex -w table

Refused with exit 1 when the key is already a range boundary or lies in the system span;
exit 3 while the range is busy (fenced by another split or merge): try again.`,
  )
    .argument("<key>")
    .option("--hex", "the key is given as hex digits")
    .action((key: string, options: { hex?: boolean } & GlobalFlags) =>
      pick(options, (ctx) => runRangeSplit(ctx, key, options.hex === true)),
    );
  leaf(
    range,
    "merge",
    "Merge range <id> into its left neighbour, which grows to cover both; prints the merged range",
    `  $ concord range list
  $ concord range merge 7
  $ concord range merge 7 -w table

<id> is the ID column of range list. Refused with exit 1 for an unknown id, the first range
(it has no left neighbour) or a range too large to merge; exit 3 while either range is busy
(fenced by a split or another merge): try again.`,
  )
    .argument("<id>")
    .action((id: string, options: GlobalFlags) => pick(options, (ctx) => runRangeMerge(ctx, id)));

  const snapshot = program.command("snapshot").description("Snapshot commands: save, restore");
  leaf(
    snapshot,
    "save",
    "Stream a member's snapshot to a file (written atomically)",
    `  $ concord snapshot save backup.db --endpoints 127.0.0.1:2379`,
  )
    .argument("<filename>")
    .action((file: string, options: GlobalFlags) => pick(options, (ctx) => runSnapshotSave(ctx, file)));
  leaf(
    snapshot,
    "restore",
    "Build a new member's data dir from a snapshot file",
    `  $ concord snapshot restore backup.db --data-dir n1.concord
  $ concord snapshot restore backup.db --name n1 --data-dir n1.concord \\
      --initial-cluster n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380 \\
      --initial-advertise-peer-urls http://10.0.0.1:2380 --initial-cluster-token restored
  then: concord start with the same --name, --data-dir, --initial-cluster and token`,
  )
    .argument("<filename>")
    .option("--data-dir <dir>", "the data dir to create (must be absent or empty)")
    .option("--name <name>", "this member's name", "default")
    .option("--initial-cluster <members>", "the new cluster's members, name=http://host:port,...")
    .option("--initial-cluster-token <token>", "the new cluster's token", "concord-cluster")
    .option("--initial-advertise-peer-urls <url>", "this member's peer URL", "http://localhost:2380")
    .action((file: string, options: RestoreFlags & GlobalFlags) =>
      pick(options, async (ctx) => {
        // Loaded on use: the restore opens the store (lmdb's native module).
        const { runSnapshotRestore } = await import("./snapshot-restore.js");
        await runSnapshotRestore(ctx, file, options);
      }),
    );
}
