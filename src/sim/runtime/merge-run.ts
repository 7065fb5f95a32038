/**
 * Merges in the runtime simulation (`--merges`, with `--splits`): the merge fault loop, the
 * settled condition that merged replicas are gone, and the final check of it.
 *
 * The loop asks a random running node to merge a random non-first route of that node's table
 * into its left neighbour, through the node's real merge coordinator (NodeRanges.merge). The
 * more routes there are, the likelier a merge is asked for (with one route, never), so splits
 * and merges interleave and the run never merges everything away. The profile's partitions
 * and crashes go on meanwhile, so merges break half-way and are left to the meta leader's
 * split loop (`recover()`) to roll forward, as splits are.
 *
 * Settled and checked at the end: no node hosts a replica of, or keeps Raft storage for, a
 * range the catalog does not list (every node destroyed the replicas merged away).
 */
import type { RouteDescriptor } from "../../placement/catalog/descriptor.js";
import type { SeededRandom } from "../random.js";
import { SIM_RANGE_ID, type RuntimeNode } from "./runtime-node.js";
import { NodeRequests, rangeLeader, type SplitCluster } from "./split-run.js";

/** Mean virtual milliseconds between two merge draws, unless a run says otherwise. */
export const DEFAULT_MERGE_MEAN_INTERVAL_MS = 30;

export interface MergeStats {
  mergesRequested: number;
  mergesDone: number;
  mergesFailed: number;
}

/** What the merge loop needs of the run (the split loop's view, with merge counters). */
export interface MergeCluster extends Pick<SplitCluster, "scheduler" | "faultsActive" | "live" | "trace"> {
  readonly stats: MergeStats;
}

export interface MergeLoopHandle {
  /** Whether a merge asked for is still in flight on a node that did not crash since (a crash ends it). */
  busy(): boolean;
}

/**
 * Every so often, with a chance of (routes - 1) / routes by the asking node's table, a
 * random running node merges a random non-first route into its left neighbour. One merge is
 * asked for at a time; splits go on meanwhile.
 */
export function startMergeLoop(
  cluster: MergeCluster,
  options: { readonly meanIntervalMs: number },
  random: SeededRandom,
): MergeLoopHandle {
  const requests = new NodeRequests();
  const next = (): void => {
    cluster.scheduler.after(random.exponential(options.meanIntervalMs), () => {
      if (!cluster.faultsActive()) return;
      const running = cluster.live().filter((n) => n.ranges() !== undefined);
      const node = running.length > 0 ? random.pick(running) : undefined;
      const routes = node?.ranges()?.table.routes ?? [];
      const wanted = random.chance((routes.length - 1) / routes.length);
      if (node !== undefined && routes.length > 1 && wanted && !requests.busy()) {
        merge(node, random.pick(routes.slice(1)).routeId);
      }
      next();
    });
  };
  const merge = (node: RuntimeNode, routeId: number): void => {
    cluster.stats.mergesRequested++;
    requests.track(
      node,
      node.ranges()?.merge(routeId),
      ({ merged }) => {
        cluster.stats.mergesDone++;
        cluster.trace(`n${node.id} merged route ${routeId} into range ${merged.groupId}`);
      },
      (error) => {
        cluster.stats.mergesFailed++;
        cluster.trace(`n${node.id} merge of route ${routeId} failed: ${String(error)}`);
      },
    );
  };
  next();
  return { busy: () => requests.busy() };
}

/** The groups the meta leader's table lists, or null without a meta leader. */
function listedGroups(members: readonly RuntimeNode[]): Set<number> | null {
  const table = rangeLeader(members, SIM_RANGE_ID)?.ranges()?.table;
  return table === undefined ? null : new Set(table.routes.map((route) => route.groupId));
}

/** Ranges `node` hosts a replica of, or keeps Raft storage for, that `listed` does not name. */
function strayRanges(node: RuntimeNode, listed: ReadonlySet<number>): number[] {
  const held = new Set([...node.replicas().map((replica) => replica.rangeId), ...node.raftLog.groups()]);
  return [...held].filter((rangeId) => !listed.has(rangeId)).sort((a, b) => a - b);
}

/**
 * Whether every member destroyed the replicas of ranges merged away: none hosts a replica of
 * a range the meta leader's table does not list (reconciliation destroys them, a pass later).
 */
export function mergedReplicasGone(members: readonly RuntimeNode[]): boolean {
  const listed = listedGroups(members);
  return listed !== null && members.every((node) => strayRanges(node, listed).length === 0);
}

/** Each member's stray ranges, for liveness reports. */
export function describeStrayRanges(members: readonly RuntimeNode[]): string {
  const listed = listedGroups(members);
  if (listed === null) return "no meta leader";
  return members.map((node) => `n${node.id} [${strayRanges(node, listed).join(",")}]`).join(" ");
}

/**
 * The final merge check on `members` (settled, faults healed): no member hosts a replica of,
 * or keeps Raft storage for, a range the catalog does not list. `routes` is the final catalog.
 */
export function finalMergeChecks(
  cluster: Pick<SplitCluster, "violation">,
  members: readonly RuntimeNode[],
  routes: readonly RouteDescriptor[],
): void {
  const listed = new Set(routes.map((route) => route.groupId));
  for (const node of members) {
    const stray = strayRanges(node, listed);
    if (stray.length > 0) {
      cluster.violation(
        "merged replica left",
        `n${node.id} still holds range(s) ${stray.join(", ")}, which the catalog does not list`,
      );
    }
  }
}
