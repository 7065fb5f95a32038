/**
 * What `concord start` does once its flags are valid: check the data dir, found it on a first
 * start (founding a cluster, or joining a running one), start the node through an injected NodeStarter, print its addresses, and on the first
 * SIGINT or SIGTERM close it and report success. A first start that fails is rolled back.
 */
import type { LinearizableReads } from "../api/linearizable-reads.js";
import type { NodeId } from "../raft/types.js";
import { foundDataDir, inspectDataDir, type Rollback } from "./data-dir.js";
import { RuntimeError } from "./errors.js";
import { formatMemberId } from "./member-id.js";
import type { SplitConfig, StartConfig } from "./start-config.js";
import { formatHttpUrl, type HostPort } from "./urls.js";

/** What the node is started with, in the node's terms. */
export interface NodeLaunch {
  readonly dataDir: string;
  readonly name: string;
  readonly memberId: NodeId;
  readonly clusterId: string;
  /** Join a running cluster (wait to be added) instead of founding one, when the data dir is empty. */
  readonly join: boolean;
  /** What the member publishes to the member table: where peers and clients reach it. */
  readonly advertisePeerUrls: readonly string[];
  readonly advertiseClientUrls: readonly string[];
  readonly listenClient: HostPort;
  readonly listenMetrics: readonly HostPort[];
  readonly listenPeer: HostPort;
  /** Every --initial-cluster member's id and the address it is dialed at, this member included. */
  readonly peers: ReadonlyMap<NodeId, HostPort>;
  /** Automatic splits on or off, and the thresholds the flags set. */
  readonly split: SplitConfig;
  readonly linearizableReads: LinearizableReads;
  readonly commitNoticeDelayMs: number;
  /** History kept by periodic auto-compaction, in milliseconds; 0: off. */
  readonly autoCompactionRetentionMs: number;
}

/** A started node: where it actually listens (port 0 resolved) and how to stop it. */
export interface RunningNode {
  readonly clientAddress: HostPort;
  /** Where the metrics ports listen, as `listenMetrics` asked (port 0 resolved). */
  readonly metricsAddresses: readonly HostPort[];
  readonly peerAddress: HostPort;
  /** Settles if the member stops on an unrecoverable error (e.g. a failed fsync). */
  readonly failed: Promise<Error>;
  /** Settles when the member is removed from the cluster (it then closes and exits, as etcd's do). */
  readonly removed: Promise<void>;
  close(): Promise<void>;
}

export type NodeStarter = (launch: NodeLaunch) => Promise<RunningNode>;

export type StopSignal = "SIGINT" | "SIGTERM";

/** Resolves with the first stop signal; the caller stops listening with `dispose`. */
export interface SignalWaiter {
  readonly received: Promise<StopSignal>;
  dispose(): void;
}

export interface StartDeps {
  readonly startNode: NodeStarter;
  /** Called before the node starts, so a signal during start-up is not lost. */
  readonly waitForSignal: () => SignalWaiter;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function launchOf(config: StartConfig, join: boolean): NodeLaunch {
  return {
    dataDir: config.dataDir,
    name: config.name,
    memberId: config.memberId,
    clusterId: config.clusterId,
    join,
    advertisePeerUrls: [config.advertisePeerUrl],
    advertiseClientUrls: config.advertiseClientUrls,
    listenClient: config.listenClient,
    listenMetrics: config.listenMetrics,
    listenPeer: config.listenPeer,
    peers: new Map(
      config.members.map((member) => [member.id, { host: member.peerUrl.host, port: member.peerUrl.port }]),
    ),
    split: config.split,
    linearizableReads: config.linearizableReads,
    commitNoticeDelayMs: config.commitNoticeDelayMs,
    autoCompactionRetentionMs: config.autoCompactionRetentionMs,
  };
}

/** The one line a script waits for: the member and where it listens. */
export function readyLine(config: StartConfig, node: RunningNode): string {
  return [
    `concord ready: name=${config.name}`,
    `member-id=${formatMemberId(config.memberId)}`,
    `cluster-id=${config.clusterId}`,
    `client=${formatHttpUrl(node.clientAddress)}`,
    `peer=${formatHttpUrl(node.peerAddress)}`,
    ...(node.metricsAddresses.length === 0
      ? []
      : [`metrics=${node.metricsAddresses.map(formatHttpUrl).join(",")}`]),
    `data-dir=${config.dataDir}`,
  ].join(" ");
}

/** How to reach the node, for a person reading the terminal (stderr: stdout stays parseable). */
export function connectHint(node: RunningNode): string {
  const endpoint = `${node.clientAddress.host}:${node.clientAddress.port}`;
  return [
    `concord: serving the native protocol on ${endpoint}; from Node.js (src/api):`,
    `  const db = Concord.connect({ endpoints: ["${endpoint}"] }); await db.put("k", "v");`,
    "concord: stop with Ctrl-C (SIGINT) or SIGTERM",
  ].join("\n");
}

/**
 * Runs the node until a stop signal; resolves once it is closed. Throws RuntimeError. On a
 * fresh data dir `--initial-cluster-state existing` joins a running cluster: the member must
 * have been added first (`etcdctl member add`), and the leader catches it up by snapshot.
 */
export async function runStart(flagConfig: StartConfig, deps: StartDeps): Promise<void> {
  const state = inspectDataDir(flagConfig);
  // A restart is the member cluster.json names, whatever ids today's flags derive.
  const config: StartConfig =
    state.kind === "existing"
      ? { ...flagConfig, memberId: state.record.memberId, clusterId: state.record.clusterId }
      : flagConfig;
  // A joiner never bootstraps, not even when restarted before it received anything.
  const join = state.kind === "existing" ? state.record.joined === true : config.clusterState === "existing";
  const signals = deps.waitForSignal();
  try {
    const rollback: Rollback | null = state.kind === "fresh" ? foundDataDir(config, state) : null;
    let node: RunningNode;
    try {
      node = await deps.startNode(launchOf(config, join));
    } catch (error) {
      rollback?.();
      throw new RuntimeError(`cannot start member "${config.name}": ${errorText(error)}`, { cause: error });
    }
    deps.out(readyLine(config, node));
    deps.err(connectHint(node));
    const stop = await Promise.race([
      signals.received.then((signal) => ({ signal })),
      node.failed.then((error) => ({ error })),
      node.removed.then(() => ({ removed: true as const })),
    ]);
    if ("error" in stop) {
      // The member already stopped itself; closing releases its ports and files.
      await node.close().catch(() => undefined);
      throw new RuntimeError(`member "${config.name}" stopped: ${stop.error.message}`, { cause: stop.error });
    }
    if ("removed" in stop) {
      deps.err(`concord: member "${config.name}" was removed from the cluster; closing`);
      await node.close();
      deps.err("concord: closed");
      return;
    }
    const { signal } = stop;
    deps.err(`concord: ${signal} received, closing member "${config.name}"`);
    try {
      await node.close();
    } catch (error) {
      throw new RuntimeError(`closing member "${config.name}" failed: ${errorText(error)}`, { cause: error });
    }
    deps.err("concord: closed");
  } finally {
    signals.dispose();
  }
}
