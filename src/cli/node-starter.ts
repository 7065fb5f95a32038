/**
 * The production NodeStarter: a member opened with `Concord.open` (lmdb storage under the
 * data dir, a peer transport, and the native-protocol server on the client URL, automatic
 * splits as the flags set them), with warnings logged to stderr.
 */
import { Concord } from "../api/concord.js";
import type { Logger } from "../transport/transport.js";
import type { NodeLaunch, RunningNode } from "./start.js";
import type { HostPort } from "./urls.js";

/** "host:port" as the embedded API takes addresses (IPv6 hosts in brackets). */
export function hostPortText(address: HostPort): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Warnings (unreachable peers, damaged storage) go to stderr, one JSON line each. */
export function stderrLogger(write: (text: string) => void): Logger {
  return {
    warn: (fields, message) => write(`${JSON.stringify({ level: "warn", message, ...fields })}\n`),
    info: () => {},
  };
}

export async function startEmbeddedNode(launch: NodeLaunch, logger: Logger): Promise<RunningNode> {
  let reportFailure: (error: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => {
    reportFailure = resolve;
  });
  let reportRemoval: () => void = () => {};
  const removed = new Promise<void>((resolve) => {
    reportRemoval = resolve;
  });
  const db = await Concord.open({
    dataDir: launch.dataDir,
    nodeId: launch.memberId,
    clusterId: launch.clusterId,
    join: launch.join,
    member: {
      name: launch.name,
      peerUrls: launch.advertisePeerUrls,
      clientUrls: launch.advertiseClientUrls,
    },
    peers: new Map([...launch.peers].map(([id, address]) => [id, hostPortText(address)])),
    listenPeer: hostPortText(launch.listenPeer),
    listenClient: hostPortText(launch.listenClient),
    listenMetrics: launch.listenMetrics.map(hostPortText),
    logger,
    onFailure: (error) => reportFailure(error),
    onRemoved: () => reportRemoval(),
    autoSplit: launch.split.autoSplit,
    autoMerge: launch.split.autoMerge,
    splitPolicy: launch.split.policy,
    linearizableReads: launch.linearizableReads,
    commitNoticeDelayMs: launch.commitNoticeDelayMs,
    autoCompactionRetentionMs: launch.autoCompactionRetentionMs,
  });
  const clientAddress = db.clientAddress();
  const peerAddress = db.peerAddress();
  if (clientAddress === null || peerAddress === null) {
    await db.close();
    throw new Error("the member opened without a client or peer port although both were asked for");
  }
  return {
    clientAddress,
    peerAddress,
    metricsAddresses: db.metricsAddresses(),
    failed,
    removed,
    close: () => db.close(),
  };
}
