/**
 * Splits in the runtime simulation (`--splits`): the split fault loop, the settled condition
 * of a split keyspace, and the final checks that only a split keyspace needs.
 *
 * The loop asks a random running node to split the range holding a random key of the
 * workload's keyspace, through that node's real split coordinator (NodeRanges.split); the
 * partitions and crashes of the profile go on meanwhile, so splits fail half-way and are left
 * to the meta leader's split loop (`recover()`) to finish or roll back.
 *
 * Final checks, once every range settled: the catalog is valid and no route is left fenced;
 * every node's route table equals the catalog; every node's replica of every range has the
 * bounds of its route and is active; every node's state of every range equals that range's
 * leader's; every acknowledged write is readable at its revision through every node's router;
 * a cross-range scan through the router equals the union of single-key reads.
 */
import { firstKey } from "../../kv/bounds.js";
import { rangeRequest } from "../../kv/commands.js";
import { KvError, KvErrorCode } from "../../kv/errors.js";
import type { KeyValue } from "../../kv/results.js";
import { describeRoute, sameDescriptor, validateCatalog } from "../../placement/catalog/descriptor.js";
import type { RouteDescriptor } from "../../placement/catalog/descriptor.js";
import { StateRole } from "../../raft/types.js";
import type { SeededRandom } from "../random.js";
import type { Scheduler } from "../scheduler.js";
import type { AcknowledgedPut } from "./runtime-client.js";
import { SIM_RANGE_ID, type RangedNodeSettings, type RuntimeNode } from "./runtime-node.js";

/** The workload's keys on a split keyspace: more of them than one range's, so splits fall between. */
export const SPLIT_KEYS = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"] as const;

/** Placement settings of the simulated nodes: short intervals, so splits recover within a run. */
export const SPLIT_NODE_SETTINGS: Omit<
  RangedNodeSettings,
  "splitLosesKey" | "mergeLosesKey" | "autoCompactionRetentionMs"
> = {
  splitIntervalMs: 200,
  routePollIntervalMs: 300,
  reconcileIntervalMs: 400,
  routerAttempts: 6,
};

/** Mean virtual milliseconds between two split requests, unless a run says otherwise. */
export const DEFAULT_SPLIT_MEAN_INTERVAL_MS = 40;

export interface SplitStats {
  splitsRequested: number;
  splitsDone: number;
  splitsFailed: number;
}

/** What the split loop and checks need of the run. */
export interface SplitCluster {
  readonly scheduler: Scheduler;
  faultsActive(): boolean;
  /** Nodes not retired. */
  live(): readonly RuntimeNode[];
  readonly stats: SplitStats;
  trace(text: string): void;
  violation(invariant: string, detail: string): void;
  /**
   * Runs the simulation until `pending` settles and returns its outcome; rejects when it does
   * not settle within a bounded stretch of virtual time (final checks only).
   */
  drive<T>(pending: Promise<T>): Promise<T>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A split key: a workload key, or (half the time) one just above it, between two keys. */
function pickSplitKey(random: SeededRandom, keys: readonly string[]): string {
  const key = random.pick(keys);
  return random.chance(0.5) ? `${key}~` : key;
}

export interface SplitLoopHandle {
  /** Whether a split asked for is still in flight on a node that did not crash since (a crash ends it). */
  busy(): boolean;
}

/**
 * Every so often a random running node splits the range holding a random key at that key.
 * Unless `concurrent`, a split is asked for only when the previous one ended or its node
 * crashed: two splits of one route at once can wedge it (see the module README, "Known").
 */
export function startSplitLoop(
  cluster: SplitCluster,
  options: { readonly meanIntervalMs: number; readonly concurrent: boolean },
  random: SeededRandom,
  keys: readonly string[],
): SplitLoopHandle {
  const requests = new NodeRequests();
  const next = (): void => {
    cluster.scheduler.after(random.exponential(options.meanIntervalMs), () => {
      if (!cluster.faultsActive()) return;
      const running = cluster.live().filter((n) => n.ranges() !== undefined);
      const key = pickSplitKey(random, keys);
      const ranges = running.length > 0 ? random.pick(running) : undefined;
      if (ranges !== undefined && (options.concurrent || !requests.busy())) split(ranges, key);
      next();
    });
  };
  const split = (node: RuntimeNode, key: string): void => {
    cluster.stats.splitsRequested++;
    requests.track(
      node,
      node.ranges()?.split(encoder.encode(key)),
      ({ right }) => {
        cluster.stats.splitsDone++;
        cluster.trace(`n${node.id} split at ${key}: range ${right.groupId}`);
      },
      (error) => {
        cluster.stats.splitsFailed++;
        cluster.trace(`n${node.id} split at ${key} failed: ${String(error)}`);
      },
    );
  };
  next();
  return { busy: () => requests.busy() };
}

/**
 * Requests the split and merge loops asked of nodes and that have not answered: a request
 * counts until it settles or its node crashes (a crash ends it, whatever it did).
 */
export class NodeRequests {
  private readonly inFlight = new Set<{ readonly node: RuntimeNode; readonly incarnation: number }>();

  busy(): boolean {
    return [...this.inFlight].some(
      ({ node, incarnation }) => node.running && node.incarnation === incarnation,
    );
  }

  /** Counts `request` of `node` in flight until it settles, then calls `done` or `failed`. */
  track<T>(
    node: RuntimeNode,
    request: Promise<T> | undefined,
    done: (value: T) => void,
    failed: (error: unknown) => void,
  ): void {
    const mine = { node, incarnation: node.incarnation };
    this.inFlight.add(mine);
    request?.then(
      (value) => {
        this.inFlight.delete(mine);
        done(value);
      },
      (error: unknown) => {
        this.inFlight.delete(mine);
        failed(error);
      },
    );
  }
}

/**
 * Steps the simulation (`runUntil`) until `pending` settles, for at most `limitMs` of virtual
 * time, and returns its outcome. The outcome is taken at once, so a rejection is never left
 * unhandled while the simulation runs.
 */
export async function driveUntilSettled<T>(
  pending: Promise<T>,
  runUntil: (done: () => boolean, limitMs: number) => Promise<boolean>,
  limitMs: number,
): Promise<T> {
  type Outcome = { readonly value: T } | { readonly error: unknown };
  let outcome: Outcome | null = null;
  pending.then(
    (value) => (outcome = { value }),
    (error: unknown) => (outcome = { error }),
  );
  await runUntil(() => outcome !== null, limitMs);
  const settled = outcome as Outcome | null;
  if (settled === null) throw new Error(`no answer within ${limitMs} virtual ms`);
  if ("error" in settled) throw settled.error;
  return settled.value;
}

/** The running node that leads range `rangeId` at the highest term, if any. */
export function rangeLeader(nodes: readonly RuntimeNode[], rangeId: number): RuntimeNode | undefined {
  let best: { node: RuntimeNode; term: number } | undefined;
  for (const node of nodes) {
    const status = node.replicaOf(rangeId)?.status();
    if (status?.role === StateRole.Leader && (best === undefined || status.term > best.term)) {
      best = { node, term: status.term };
    }
  }
  return best?.node;
}

/**
 * Whether the split keyspace settled on `members` (the meta range's members, all running):
 * the meta leader's routes all active, every member's table at its version, and every range
 * with a leader whose whole log is committed, that every member follows and has applied up
 * to, active, with its route's bounds (a range fenced by a split the catalog does not show
 * yet is finished by recovery).
 */
export function splitsSettled(members: readonly RuntimeNode[]): boolean {
  const meta = rangeLeader(members, SIM_RANGE_ID)?.ranges();
  if (meta === undefined) return false;
  const { table } = meta;
  if (table.routes.some((route) => route.state !== "active")) return false;
  if (members.some((n) => n.ranges()?.table.version !== table.version)) return false;
  return table.routes.every((route) => {
    const leader = rangeLeader(members, route.groupId)?.replicaOf(route.groupId)?.status();
    // An entry still uncommitted in the leader's log may yet apply, e.g. an ambiguous merge
    // fence (seed 373, partitions, with freezes: it applied after the final checks began).
    if (leader === undefined || leader.commit < leader.lastIndex) return false;
    return members.every((n) => {
      const replica = n.replicaOf(route.groupId);
      const status = replica?.status();
      return (
        replica !== undefined &&
        status !== undefined &&
        status.leader === leader.nodeId &&
        status.applied >= leader.commit &&
        replica.rangeState === "active" &&
        sameBytes(replica.bounds.start, route.start) &&
        sameBytes(replica.bounds.end, route.end)
      );
    });
  });
}

/** Each route with its leader and applied index, for liveness reports. */
export function describeSplits(members: readonly RuntimeNode[]): string {
  const meta = rangeLeader(members, SIM_RANGE_ID)?.ranges();
  if (meta === undefined) return "no meta leader";
  const versions = members.map((n) => `n${n.id} v${n.ranges()?.table.version ?? "-"}`).join(" ");
  const fences = members.map((n) => `n${n.id} ${n.replica()?.rangeState ?? "-"}`).join(" ");
  return `tables ${versions}; range 1 ${fences}; ${meta.table.routes
    .map((route) => {
      const leader = rangeLeader(members, route.groupId);
      const applied = members.map((n) => n.replicaOf(route.groupId)?.status().applied ?? "-").join("/");
      return `${describeRoute(route)} ${route.state} leader ${leader?.id ?? "none"} applied ${applied}`;
    })
    .join("; ")}`;
}

function renderKvs(kvs: readonly KeyValue[]): string {
  return JSON.stringify(
    kvs.map((kv) => [decoder.decode(kv.key), decoder.decode(kv.value), String(kv.modRevision)]),
  );
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.compare(a, b) === 0;
}

/**
 * The final checks of a split keyspace on `members` (settled, faults healed). Returns the
 * final catalog's routes, or null when it could not be read (a violation says why).
 */
export async function finalSplitChecks(
  cluster: SplitCluster,
  members: readonly RuntimeNode[],
  acknowledged: readonly AcknowledgedPut[],
  keys: readonly string[],
): Promise<readonly RouteDescriptor[] | null> {
  const metaNode = rangeLeader(members, SIM_RANGE_ID);
  const meta = metaNode?.ranges();
  if (metaNode === undefined || meta === undefined) {
    cluster.violation("split checks", "no meta range leader at the end");
    return null;
  }
  let routes: readonly RouteDescriptor[];
  try {
    const snapshot = await cluster.drive(meta.catalog.snapshot());
    validateCatalog(snapshot.routes);
    routes = snapshot.routes;
    for (const node of members) {
      const table = node.ranges()?.table;
      const same =
        table !== undefined &&
        table.version === snapshot.version &&
        table.routes.length === routes.length &&
        table.routes.every((route, i) => sameDescriptor(route, routes[i]!));
      if (!same)
        cluster.violation("route table", `n${node.id}'s routes differ from catalog v${snapshot.version}`);
    }
  } catch (error) {
    cluster.violation("catalog", `the final catalog is unreadable or invalid: ${String(error)}`);
    return null;
  }
  for (const route of routes) {
    if (route.state !== "active")
      cluster.violation("catalog", `${describeRoute(route)} is left ${route.state}`);
    await checkRange(cluster, members, route);
  }
  await checkAcknowledged(cluster, members, acknowledged);
  await checkCrossRangeScan(cluster, metaNode, keys);
  return routes;
}

/** Every member's replica of `route`'s range: the route's bounds, active, the leader's state. */
async function checkRange(
  cluster: SplitCluster,
  members: readonly RuntimeNode[],
  route: RouteDescriptor,
): Promise<void> {
  const leader = rangeLeader(members, route.groupId)?.replicaOf(route.groupId);
  const scan = rangeRequest({
    key: firstKey(route),
    rangeEnd: route.end ?? Uint8Array.of(0),
  });
  const expected = leader === undefined ? null : await cluster.drive(leader.range(scan, "serializable"));
  for (const node of members) {
    const replica = node.replicaOf(route.groupId);
    if (replica === undefined) {
      cluster.violation("range bounds", `n${node.id} hosts no replica of ${describeRoute(route)}`);
      continue;
    }
    const { bounds } = replica;
    if (!sameBytes(bounds.start, route.start) || !sameBytes(bounds.end, route.end)) {
      cluster.violation(
        "range bounds",
        `n${node.id}'s range ${route.groupId} bounds differ from ${describeRoute(route)}`,
      );
    }
    if (replica.rangeState !== "active") {
      cluster.violation("range bounds", `n${node.id}'s range ${route.groupId} is ${replica.rangeState}`);
    }
    if (expected === null) continue;
    const state = await cluster.drive(replica.range(scan, "serializable"));
    if (renderKvs(state.kvs) !== renderKvs(expected.kvs) || state.revision !== expected.revision) {
      cluster.violation("final state", `n${node.id}'s range ${route.groupId} differs from its leader's`);
    } else if (
      replica.appliedIndex === leader!.appliedIndex &&
      replica.hashKv(0n, 0).hash !== leader!.hashKv(0n, 0).hash
    ) {
      // The history every read may still ask for, whatever each member removed already (a
      // member one compaction behind hashes differently: a compaction makes no revision).
      cluster.violation("final state", `n${node.id}'s range ${route.groupId} hashes unlike its leader's`);
    }
  }
}

/**
 * Every acknowledged write, read at its revision through every member's router. A write whose
 * revision was compacted away (auto-compaction) cannot be read there: the key's current
 * version must then be that write or a later one (the clients never delete).
 */
async function checkAcknowledged(
  cluster: SplitCluster,
  members: readonly RuntimeNode[],
  acknowledged: readonly AcknowledgedPut[],
): Promise<void> {
  for (const node of members) {
    const kv = node.clientKv();
    if (kv === undefined) continue;
    for (const write of acknowledged) {
      let found: KeyValue | undefined;
      try {
        const read = await cluster.drive(
          kv.range(
            rangeRequest({ key: encoder.encode(write.key), revision: write.revision }),
            "serializable",
          ),
        );
        found = read.kvs[0];
      } catch (error) {
        if (error instanceof KvError && error.code === KvErrorCode.Compacted) {
          const current = await cluster.drive(
            kv.range(rangeRequest({ key: encoder.encode(write.key) }), "serializable"),
          );
          const now = current.kvs[0];
          if (now === undefined || now.modRevision < write.revision) {
            cluster.violation(
              "acknowledged write lost",
              `n${node.id}: ${write.key}@${write.revision} is compacted and the key is now at ${now?.modRevision ?? "nothing"}`,
            );
          }
          continue;
        }
        cluster.violation(
          "acknowledged write lost",
          `n${node.id}: reading ${write.key}@${write.revision}: ${String(error)}`,
        );
        continue;
      }
      if (
        found === undefined ||
        decoder.decode(found.value) !== write.value ||
        found.modRevision !== write.revision
      ) {
        cluster.violation(
          "acknowledged write lost",
          `n${node.id}: ${write.key}=${write.value} acknowledged at revision ${write.revision} is not there`,
        );
      }
    }
  }
}

/** A linearizable scan of every user key equals the linearizable reads of each key alone. */
async function checkCrossRangeScan(
  cluster: SplitCluster,
  node: RuntimeNode,
  keys: readonly string[],
): Promise<void> {
  const kv = node.clientKv();
  if (kv === undefined) return;
  try {
    const scan = await cluster.drive(
      kv.range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0) })),
    );
    const single: KeyValue[] = [];
    for (const key of [...keys].sort()) {
      const read = await cluster.drive(kv.range(rangeRequest({ key: encoder.encode(key) })));
      single.push(...read.kvs);
    }
    if (renderKvs(scan.kvs) !== renderKvs(single)) {
      cluster.violation(
        "cross-range scan",
        `n${node.id}: the scan gives ${renderKvs(scan.kvs)}, single-key reads ${renderKvs(single)}`,
      );
    }
  } catch (error) {
    cluster.violation("cross-range scan", `n${node.id}: ${String(error)}`);
  }
}
