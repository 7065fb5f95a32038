/**
 * Fault profiles: named bundles of network conditions, disk latency, fault rates, client load
 * and cluster shape. A run picks one profile; its seed picks everything else (cluster size
 * among the allowed ones, pre-vote and check-quorum, and every fault's timing).
 */
import type { ClientSettings } from "./client.js";
import type { NetworkConditions } from "./network.js";

export const PROFILE_NAMES = ["calm-with-loss", "partitions", "crashes", "membership", "chaos"] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** Inclusive range of virtual milliseconds. */
export type MsRange = readonly [number, number];

export interface PartitionFaults {
  /** Mean virtual time between the end of one partition and the start of the next. */
  readonly meanIntervalMs: number;
  readonly durationMs: MsRange;
  /** Probability that a partition is a set of one-way cuts rather than a symmetric split. */
  readonly oneWayChance: number;
}

export interface CrashFaults {
  readonly meanIntervalMs: number;
  readonly downtimeMs: MsRange;
  /** Probability that the victim is the current leader (otherwise any running member). */
  readonly leaderBias: number;
}

export interface MembershipFaults {
  readonly meanIntervalMs: number;
}

export interface TransferFaults {
  readonly meanIntervalMs: number;
}

export interface FaultProfile {
  readonly name: ProfileName;
  readonly description: string;
  readonly clusterSizes: readonly (3 | 5)[];
  /** Virtual duration of the faulty phase (before everything heals and settles). */
  readonly durationMs: number;
  readonly network: NetworkConditions;
  readonly diskLatencyMs: MsRange;
  readonly snapshotEvery: number;
  readonly partitions: PartitionFaults | null;
  readonly crashes: CrashFaults | null;
  readonly membership: MembershipFaults | null;
  readonly transfers: TransferFaults | null;
  readonly clients: ClientSettings;
}

const KEYS = ["k0", "k1", "k2"] as const;

const CLIENTS: ClientSettings = {
  count: 6,
  keys: KEYS,
  timeoutMs: 400,
  thinkMs: [0, 15],
  refusalBackoffMs: 40,
  mix: { put: 4, get: 4, cas: 2 },
};

const CALM_NETWORK: NetworkConditions = {
  minDelay: 1,
  maxDelay: 8,
  lossRate: 0.02,
  duplicateRate: 0.02,
  slowRate: 0.01,
  slowMaxDelay: 300,
};
const ROUGH_NETWORK: NetworkConditions = {
  minDelay: 1,
  maxDelay: 20,
  lossRate: 0.05,
  duplicateRate: 0.03,
  slowRate: 0.1,
  slowMaxDelay: 400,
};

const PARTITIONS: PartitionFaults = { meanIntervalMs: 400, durationMs: [100, 900], oneWayChance: 0.4 };
const CRASHES: CrashFaults = { meanIntervalMs: 500, downtimeMs: [20, 800], leaderBias: 0.4 };
const MEMBERSHIP: MembershipFaults = { meanIntervalMs: 250 };
const TRANSFERS: TransferFaults = { meanIntervalMs: 600 };

export const PROFILES: Readonly<Record<ProfileName, FaultProfile>> = {
  "calm-with-loss": {
    name: "calm-with-loss",
    description: "light message loss, duplication and delay; no other faults",
    clusterSizes: [3, 5],
    durationMs: 2500,
    network: CALM_NETWORK,
    diskLatencyMs: [1, 4],
    snapshotEvery: 40,
    partitions: null,
    crashes: null,
    membership: null,
    transfers: null,
    clients: CLIENTS,
  },
  partitions: {
    name: "partitions",
    description: "symmetric splits and one-way cuts that heal, over a lossy network",
    clusterSizes: [3, 5],
    durationMs: 3000,
    network: CALM_NETWORK,
    diskLatencyMs: [1, 4],
    snapshotEvery: 40,
    partitions: PARTITIONS,
    crashes: null,
    membership: null,
    transfers: null,
    clients: CLIENTS,
  },
  crashes: {
    name: "crashes",
    description: "crash and restart (leader included) losing unsynced writes, over a lossy network",
    clusterSizes: [3, 5],
    durationMs: 3000,
    network: CALM_NETWORK,
    diskLatencyMs: [1, 6],
    snapshotEvery: 40,
    partitions: null,
    crashes: CRASHES,
    membership: null,
    transfers: null,
    clients: CLIENTS,
  },
  membership: {
    name: "membership",
    description: "learners added and promoted, voters demoted and removed, joint changes, transfers",
    clusterSizes: [3, 5],
    durationMs: 3000,
    network: CALM_NETWORK,
    diskLatencyMs: [1, 4],
    snapshotEvery: 40,
    partitions: null,
    crashes: null,
    membership: MEMBERSHIP,
    transfers: TRANSFERS,
    clients: CLIENTS,
  },
  chaos: {
    name: "chaos",
    description: "everything at once over a rough network",
    clusterSizes: [3, 5],
    durationMs: 3500,
    network: ROUGH_NETWORK,
    diskLatencyMs: [1, 8],
    snapshotEvery: 30,
    partitions: { ...PARTITIONS, meanIntervalMs: 700 },
    crashes: { ...CRASHES, meanIntervalMs: 800 },
    membership: { meanIntervalMs: 400 },
    transfers: TRANSFERS,
    clients: CLIENTS,
  },
};

export function isProfileName(name: string): name is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(name);
}

export function profileByName(name: string): FaultProfile {
  if (!isProfileName(name)) {
    throw new Error(`unknown profile "${name}" (known: ${PROFILE_NAMES.join(", ")})`);
  }
  return PROFILES[name];
}
