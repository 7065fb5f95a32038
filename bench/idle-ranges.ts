/**
 * The `idle-ranges` workload: what 1,000 ranges that nobody uses cost. Three NodeHosts in this
 * process (write-ahead-log Raft storage and lmdb state machines in a temp dir, TcpTransport on
 * 127.0.0.1) host the same N ranges; once every range has a leader (and, with quiescence on, every
 * replica has gone dormant) the process's CPU time and the Raft and liveness messages sent
 * are measured over an idle window — with quiescence on, then with it off.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { rangeNamespace } from "../src/kv/keys.js";
import { LmdbOrderedKv } from "../src/kv/lmdb-engine.js";
import { NodeHost } from "../src/node/host.js";
import { EMPTY_CONF_STATE, NONE, StateRole, type NodeId } from "../src/raft/types.js";
import { WalStorageEngine } from "../src/storage/wal/engine.js";
import { TcpTransport } from "../src/transport/tcp.js";
import { systemRandom, systemTimers } from "../src/transport/timers.js";
import type { Logger } from "../src/transport/transport.js";
import { makeTempRoot } from "./cluster.js";
import { describeMachine, type Machine } from "./embedded.js";

const NODE_IDS: readonly NodeId[] = [1, 2, 3];
/** Bounds on getting ready: elections of every range, then dormancy. */
const ELECTION_LIMIT_MS = 180_000;
const DORMANCY_LIMIT_MS = 60_000;
/** Without quiescence there is nothing to wait for: let the elections' aftermath pass. */
const SETTLE_MS = 3_000;

export interface IdleRangesOptions {
  readonly ranges: number;
  /** Length of the measured idle window. */
  readonly seconds: number;
}

export interface IdleRangesRow {
  readonly quiesce: boolean;
  readonly ranges: number;
  /** Seconds from creating the ranges until every one had a leader all three nodes knew. */
  readonly electedAfterS: number;
  readonly windowS: number;
  /** Process CPU (user + system) per wall-clock second, all three nodes together. */
  readonly cpuMsPerS: number;
  readonly cpuMsPerSPerNode: number;
  readonly raftMessagesPerS: number;
  readonly livenessMessagesPerS: number;
  /** Replicas dormant at the end of the window, all nodes together (of ranges x 3). */
  readonly dormantReplicas: number;
  readonly wakeUps: number;
  /** Ticks the hosts' timers fired per second, per node (10 at the default 100 ms tick). */
  readonly ticksPerSPerNode: number;
}

export interface IdleRangesReport {
  readonly workload: "idle-ranges";
  readonly date: string;
  readonly machine: Machine;
  readonly rows: readonly IdleRangesRow[];
}

const silentLogger: Logger = { warn: () => {}, info: () => {} };

interface Member {
  readonly host: NodeHost;
  readonly transport: TcpTransport;
  readonly engine: WalStorageEngine;
  readonly kv: LmdbOrderedKv;
}

async function startMembers(root: string, quiesce: boolean): Promise<Member[]> {
  const members: Member[] = [];
  for (const nodeId of NODE_IDS) {
    const dir = join(root, `node-${nodeId}`);
    mkdirSync(dir, { recursive: true });
    const engine = await WalStorageEngine.open({ path: join(dir, "raft-log"), logger: { warn: () => {} } });
    const kv = LmdbOrderedKv.open({
      path: join(dir, "state"),
      commitTimer: (commit, delayMs) => systemTimers.setTimeout(commit, delayMs),
    });
    const transport = new TcpTransport({
      clusterId: "idle-ranges",
      nodeId,
      listen: { host: "127.0.0.1", port: 0 },
      logger: silentLogger,
    });
    const host = new NodeHost({
      nodeId,
      engine,
      transport,
      timers: systemTimers,
      monotonicClock: () => performance.now(),
      wallClock: () => Date.now(),
      random: systemRandom,
      logger: silentLogger,
      stateMachine: (rangeId) => ({
        kv,
        sync: () => kv.sync(),
        storeOptions: { namespace: rangeNamespace(rangeId) },
      }),
      quiesce,
    });
    members.push({ host, transport, engine, kv });
  }
  for (const { transport } of members) await transport.start();
  for (const { transport } of members) {
    for (const peer of members) {
      if (peer.transport !== transport) transport.addPeer(peer.transport.nodeId, peer.transport.address());
    }
  }
  return members;
}

async function stopMembers(members: readonly Member[]): Promise<void> {
  for (const { host } of members) await host.stop();
  for (const { transport } of members) await transport.close();
  for (const { engine, kv } of members) {
    await engine.close();
    await kv.close();
  }
}

async function waitUntil(condition: () => boolean, what: string, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what} after ${limitMs} ms`);
    await sleep(200);
  }
}

function everyRangeLed(members: readonly Member[], ranges: number): boolean {
  for (let rangeId = 1; rangeId <= ranges; rangeId++) {
    let leader = NONE;
    let leaders = 0;
    for (const { host } of members) {
      const replica = host.replica(rangeId)!;
      const known = replica.termLeaderRevision().leader;
      if (known === NONE || (leader !== NONE && known !== leader)) return false;
      leader = known;
      if (replica.status().role === StateRole.Leader) leaders++;
    }
    if (leaders !== 1) return false;
  }
  return true;
}

function totals(members: readonly Member[]): {
  raft: number;
  liveness: number;
  wakeUps: number;
  ticks: number;
} {
  let raft = 0;
  let liveness = 0;
  let wakeUps = 0;
  let ticks = 0;
  for (const { host } of members) {
    raft += host.counters.messagesSent;
    liveness += host.counters.livenessSent;
    wakeUps += host.counters.wakeUps;
    ticks += host.counters.ticks;
  }
  return { raft, liveness, wakeUps, ticks };
}

async function measureMode(
  quiesce: boolean,
  options: IdleRangesOptions,
  progress: (line: string) => void,
): Promise<IdleRangesRow> {
  const root = makeTempRoot();
  let members: Member[] = [];
  try {
    members = await startMembers(root, quiesce);
    const confState = { ...EMPTY_CONF_STATE, voters: [...NODE_IDS] };
    for (const { host } of members) {
      for (let rangeId = 1; rangeId <= options.ranges; rangeId++) {
        host.createReplica(rangeId, { bootstrap: confState });
      }
    }
    const created = performance.now();
    for (const { host } of members) host.start();
    await waitUntil(
      () => everyRangeLed(members, options.ranges),
      "a leader for every range",
      ELECTION_LIMIT_MS,
    );
    const electedAfterS = (performance.now() - created) / 1000;
    progress(
      `quiesce ${quiesce ? "on" : "off"}: ${options.ranges} ranges led after ${electedAfterS.toFixed(1)} s`,
    );
    if (quiesce) {
      const all = options.ranges * members.length;
      await waitUntil(
        () => members.reduce((n, { host }) => n + host.dormantReplicas, 0) === all,
        "every replica dormant",
        DORMANCY_LIMIT_MS,
      );
    } else {
      await sleep(SETTLE_MS);
    }
    const before = totals(members);
    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    await sleep(options.seconds * 1000);
    const cpu = process.cpuUsage(cpuBefore);
    const windowS = (performance.now() - wallBefore) / 1000;
    const after = totals(members);
    for (const { host } of members) {
      if (host.failure !== null) throw new Error(`node ${host.nodeId} failed: ${host.failure.message}`);
    }
    const cpuMsPerS = (cpu.user + cpu.system) / 1000 / windowS;
    return {
      quiesce,
      ranges: options.ranges,
      electedAfterS,
      windowS,
      cpuMsPerS,
      cpuMsPerSPerNode: cpuMsPerS / members.length,
      raftMessagesPerS: (after.raft - before.raft) / windowS,
      livenessMessagesPerS: (after.liveness - before.liveness) / windowS,
      dormantReplicas: members.reduce((n, { host }) => n + host.dormantReplicas, 0),
      wakeUps: after.wakeUps - before.wakeUps,
      ticksPerSPerNode: (after.ticks - before.ticks) / windowS / members.length,
    };
  } finally {
    await stopMembers(members);
    rmSync(root, { recursive: true, force: true });
  }
}

/** Quiescence on, then off, each on a fresh cluster in a fresh temp dir. */
export async function runIdleRangesBench(
  options: IdleRangesOptions,
  progress: (line: string) => void,
): Promise<IdleRangesReport> {
  const rows: IdleRangesRow[] = [];
  for (const quiesce of [true, false]) {
    const row = await measureMode(quiesce, options, progress);
    progress(`quiesce ${quiesce ? "on" : "off"}: ${row.cpuMsPerS.toFixed(1)} ms CPU per second`);
    rows.push(row);
  }
  return { workload: "idle-ranges", date: new Date().toISOString(), machine: describeMachine(), rows };
}
