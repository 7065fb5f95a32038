/**
 * RangeRouter: a node's entry point for requests over a keyspace split into many ranges. It
 * has the Replica's request API (`propose`, `range`), finds which range(s) a request names
 * in the route table, sends it to this node's replica of each, and retries (after reloading
 * the routes, with capped backoff, a bounded number of times) when a range answers that the
 * routes moved (KeyOutsideRange, RangeFenced, RangeMovedError) or this node hosts no replica
 * of the group yet. A refused command wrote nothing, so a retry reuses the same request id.
 *
 * Writes over several ranges: a transaction whose keys (ops, compares, nested transactions,
 * both branches) live in more than one range fails with CrossRangeTxn and writes nothing; a
 * delete-range becomes one delete per range, in key order — atomic per range only; compact
 * goes to every range; leases and members live in range 1 (LEASE_HOME_RANGE), and a lease
 * revocation also goes to every other range (splits copy the lease table), as does the
 * gathering of a lease's keys. Reads over several ranges are cross-range reads at one
 * revision (cross-range-read.ts).
 *
 * With `userKeysOnly` (the default) the system keyspace (system-keys.ts) is invisible: reads
 * and deletes skip it, a count leaves it out, and a write naming a system key fails with
 * SystemKeyError before anything is sent.
 */
import { compareBytes } from "../../kv/bytes.js";
import { FULL_BOUNDS, boundsEqual, firstKey, spanOfRequest, type KeySpan } from "../../kv/bounds.js";
import {
  deleteRangeRequest,
  leaseGrantRequest,
  rangeRequest,
  txnRequest,
  type CompactRequest,
  type DeleteRangeRequest,
  type KvCommand,
  type LeaseRevokeRequest,
  type RangeRequest,
  type TxnOp,
  type TxnRequest,
} from "../../kv/commands.js";
import { KvError, KvErrorCode } from "../../kv/errors.js";
import { errorResponse, type CommandResult, type KeyValue, type RangeResult } from "../../kv/results.js";
import type { ReadConsistency, RequestId } from "../../node/types.js";
import type { RouteDescriptor } from "../catalog/descriptor.js";
import { RoutesUnavailableError, routeFor } from "../routes/moved.js";
import type { RouteTable } from "../routes/table.js";
import { txnSpans } from "./command-spans.js";
import { crossRangeRead, rangeEndOf, type ReadPart } from "./cross-range-read.js";
import {
  RefusedResult,
  ReplicaNotHostedError,
  backoffDelay,
  isRoutingError,
  isRoutingRefusal,
  retryPolicy,
  type RetryPolicy,
} from "./retry.js";
import type { ReplicaDirectory, RoutedReplica } from "./routed-replica.js";
import { SystemKeyError, isSystemKey, spanMeetsSystem, userSpans } from "./system-keys.js";

/** The range that holds every lease and the member table. */
export const LEASE_HOME_RANGE = 1;

export interface RangeRouterOptions {
  readonly table: RouteTable;
  readonly replicas: ReplicaDirectory;
  /** Brings the table up to date (e.g. `() => watcher.refresh()`); awaited before each retry. */
  readonly reload: () => Promise<void>;
  readonly retry?: Partial<RetryPolicy>;
  /** Waits between attempts (default: a timer); tests pass virtual time. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Hide the system keyspace from requests (default true; false for Concord's own use). */
  readonly userKeysOnly?: boolean;
}

/** One range's share of a multi-range delete: its spans, in key order. */
interface DeletePart {
  readonly groupId: number;
  readonly spans: readonly KeySpan[];
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `span` cut to the keys of `route`. */
function clip(span: KeySpan, route: RouteDescriptor): KeySpan {
  const start = compareBytes(span.start, route.start) >= 0 ? span.start : route.start;
  let end = span.end;
  if (route.end !== null && (end === null || compareBytes(route.end, end) < 0)) end = route.end;
  return { start, end };
}

function maxRevision(results: readonly CommandResult[]): bigint {
  return results.reduce((max, result) => (result.revision > max ? result.revision : max), 0n);
}

export class RangeRouter {
  readonly policy: RetryPolicy;
  readonly userKeysOnly: boolean;
  private readonly table: RouteTable;
  private readonly replicas: ReplicaDirectory;
  private readonly reload: () => Promise<void>;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: RangeRouterOptions) {
    this.table = options.table;
    this.replicas = options.replicas;
    this.reload = options.reload;
    this.policy = retryPolicy(options.retry);
    this.sleep = options.sleep ?? defaultSleep;
    this.userKeysOnly = options.userKeysOnly ?? true;
  }

  /** The route holding `key`; RoutesUnavailableError while no routes are loaded. */
  rangeForKey(key: Uint8Array): RouteDescriptor {
    return routeFor(this.table, key);
  }

  /** The routes meeting `span`, in key order; RoutesUnavailableError while no routes are loaded. */
  routesFor(span: KeySpan): RouteDescriptor[] {
    if (this.table.version === 0) throw new RoutesUnavailableError();
    return this.table.intersecting(span.start, span.end);
  }

  /**
   * Proposes a write on the range(s) its keys live in; resolves with its result. Refusals
   * because of stale routing are retried; when attempts run out the last refusal is the
   * result (or the last routing error is thrown). Throws SystemKeyError for a write naming a
   * system key (with `userKeysOnly`), RangeError for a command addressed to one range
   * (fence, split, revision floor: propose those on the replica).
   */
  async propose(command: KvCommand, request?: RequestId): Promise<CommandResult> {
    try {
      return await this.dispatch(command, request);
    } catch (error) {
      if (error instanceof RefusedResult) return error.result;
      throw error;
    }
  }

  /**
   * etcd's Range over however many ranges the span meets: one range is asked directly, more
   * are read at one revision (cross-range-read.ts). System keys are left out (`userKeysOnly`).
   * Throws KvError as a replica's range does.
   */
  async range(request: RangeRequest, consistency: ReadConsistency = "linearizable"): Promise<RangeResult> {
    if (request.key.length === 0) throw new KvError(KvErrorCode.EmptyKey);
    const whole = spanOfRequest(request.key, request.rangeEnd);
    const spans = this.userKeysOnly ? userSpans(whole) : [whole];
    return this.retrying(1, async () => {
      const parts = this.readParts(spans);
      const only = parts[0];
      if (parts.length === 1 && only !== undefined && boundsEqual(only.span, whole)) {
        return this.singleRangeRead(only.groupId, request, consistency);
      }
      return crossRangeRead(request, consistency, parts, {
        replica: (groupId) => this.hosted(groupId),
        knownRevision: () => this.knownRevision(),
        catchUp: () => this.catchUp(),
      });
    });
  }

  /**
   * The keys attached to lease `id` in every range, in key order (system keys left out with
   * `userKeysOnly`): a split moves attached keys into the new range's copy of the lease. Each
   * range's share is read linearizably and must come from a range that still holds exactly its
   * route's span, so the shares cover the keyspace once; otherwise the routes are reloaded and
   * every share read again.
   */
  async leaseKeys(id: bigint): Promise<Uint8Array[]> {
    return this.retrying(1, async () => {
      const keys: Uint8Array[] = [];
      for (const route of this.routesFor(FULL_BOUNDS)) {
        const span = { start: route.start, end: route.end };
        keys.push(...(await this.hosted(route.groupId).leaseKeys(id, span)));
      }
      return this.userKeysOnly ? keys.filter((key) => !isSystemKey(key)) : keys;
    });
  }

  // ------------------------------------------------------------------ writes

  private dispatch(command: KvCommand, request: RequestId | undefined): Promise<CommandResult> {
    switch (command.kind) {
      case "put": {
        if (this.userKeysOnly && isSystemKey(command.key)) throw new SystemKeyError(command.key);
        return this.retrying(1, () =>
          this.proposeOn(this.rangeForKey(command.key).groupId, command, request),
        );
      }
      case "deleteRange":
        return this.deleteRange(command, request);
      case "txn":
        return this.txn(command, request);
      case "compact":
        return this.compact(command, request);
      case "leaseRevoke":
        return this.leaseRevoke(command, request);
      case "leaseGrant":
      case "memberSet":
      case "memberRemove":
        return this.retrying(1, () => this.proposeOn(LEASE_HOME_RANGE, command, request));
      default:
        throw new RangeError(
          `a ${command.kind} command is addressed to one range: propose it on that range's replica`,
        );
    }
  }

  private async deleteRange(
    command: DeleteRangeRequest,
    request: RequestId | undefined,
  ): Promise<CommandResult> {
    if (this.userKeysOnly && isSystemKey(command.key)) throw new SystemKeyError(command.key);
    const whole = spanOfRequest(command.key, command.rangeEnd);
    const spans = this.userKeysOnly ? userSpans(whole) : [whole];
    const results = await this.deleteSpans(command, whole, spans, request, 1);
    const failed = results.find((result) => result.response.kind === "error");
    if (failed !== undefined) return failed;
    let deleted = 0;
    const prevKvs: KeyValue[] = [];
    for (const { response } of results) {
      if (response.kind === "deleteRange") {
        deleted += response.deleted;
        prevKvs.push(...response.prevKvs);
      } else if (response.kind === "txn") {
        for (const op of response.responses) {
          if (op.kind !== "deleteRange") continue;
          deleted += op.deleted;
          prevKvs.push(...op.prevKvs);
        }
      }
    }
    if (results.length === 0) {
      // Nothing but absent or system keys: nothing to delete anywhere.
      return { revision: this.knownRevision(), response: { kind: "deleteRange", deleted: 0, prevKvs: [] } };
    }
    return { revision: maxRevision(results), response: { kind: "deleteRange", deleted, prevKvs } };
  }

  /**
   * Deletes `spans` range by range in key order; a part refused for stale routing is split
   * again over the reloaded routes and retried (attempt counts per part).
   */
  private async deleteSpans(
    command: DeleteRangeRequest,
    whole: KeySpan,
    spans: readonly KeySpan[],
    request: RequestId | undefined,
    attempt: number,
  ): Promise<CommandResult[]> {
    let parts: DeletePart[];
    try {
      parts = this.deleteParts(spans);
    } catch (error) {
      return this.again(error, attempt, () => this.deleteSpans(command, whole, spans, request, attempt + 1));
    }
    const results: CommandResult[] = [];
    for (const part of parts) {
      const only = part.spans[0]!;
      const partCommand =
        part.spans.length === 1 && boundsEqual(only, whole)
          ? command
          : deleteCommandFor(part.spans, command.prevKv);
      try {
        results.push(await this.proposeOn(part.groupId, partCommand, request));
      } catch (error) {
        results.push(
          ...(await this.again(error, attempt, () =>
            this.deleteSpans(command, whole, part.spans, request, attempt + 1),
          )),
        );
      }
      if (results[results.length - 1]?.response.kind === "error") break;
    }
    return results;
  }

  /** Groups `spans` (key order) by range: one part per range, spans clipped to its routes. */
  private deleteParts(spans: readonly KeySpan[]): DeletePart[] {
    const byGroup = new Map<number, KeySpan[]>();
    for (const part of this.readParts(spans)) {
      const list = byGroup.get(part.groupId);
      if (list === undefined) byGroup.set(part.groupId, [part.span]);
      else list.push(part.span);
    }
    return [...byGroup].map(([groupId, groupSpans]) => ({ groupId, spans: groupSpans }));
  }

  private async txn(command: TxnRequest, request: RequestId | undefined): Promise<CommandResult> {
    const spans = txnSpans(command);
    if (this.userKeysOnly) {
      const system = spans.find(spanMeetsSystem);
      if (system !== undefined) throw new SystemKeyError(system.start);
    }
    return this.retrying(1, () => {
      const groups = new Set<number>();
      for (const span of spans) for (const route of this.routesFor(span)) groups.add(route.groupId);
      if (groups.size > 1) {
        return Promise.resolve({
          revision: this.knownRevision(),
          response: errorResponse(KvErrorCode.CrossRangeTxn),
        });
      }
      const [groupId] = groups;
      return this.proposeOn(groupId ?? LEASE_HOME_RANGE, command, request);
    });
  }

  /**
   * Compacts every range at the revision. A range whose local revision is below it is first
   * floored to it (revisions are per range: the revision came from another range), unless no
   * range has reached it (FutureRevision, nothing done). This node's replicas may not have
   * applied the revision yet when the write that made it went through another member: then
   * a linearizable read of every range catches them up before that check. A range's error
   * answer is returned (ranges compacted before it stay compacted).
   */
  private async compact(command: CompactRequest, request: RequestId | undefined): Promise<CommandResult> {
    const groups = await this.retrying(1, () => Promise.resolve(this.allGroups()));
    if (command.revision > this.knownRevision()) await this.catchUp();
    if (command.revision > this.knownRevision()) {
      return { revision: this.knownRevision(), response: errorResponse(KvErrorCode.FutureRevision) };
    }
    const results: CommandResult[] = [];
    for (const groupId of groups) {
      const result = await this.retrying(1, async () => {
        const replica = this.hosted(groupId);
        if (replica.revision < command.revision) await replica.floorRevision(command.revision);
        return this.proposeOn(groupId, command, request);
      });
      if (result.response.kind === "error") return result;
      results.push(result);
    }
    return { revision: maxRevision(results), response: { kind: "compact" } };
  }

  /**
   * Revokes a lease in range 1, then in every other range: a split copies the lease table, and
   * each range deletes only its own attached keys when the revocation applies there. Range
   * 1's answer is the answer (the others answer LeaseNotFound when they never had the lease);
   * the header revision is the newest of all.
   */
  private async leaseRevoke(
    command: LeaseRevokeRequest,
    request: RequestId | undefined,
  ): Promise<CommandResult> {
    const home = await this.retrying(1, () => this.proposeOn(LEASE_HOME_RANGE, command, request));
    const groups = await this.retrying(1, () => Promise.resolve(this.allGroups()));
    let revision = home.revision;
    for (const groupId of groups) {
      if (groupId === LEASE_HOME_RANGE) continue;
      const result = await this.retrying(1, () => this.proposeOn(groupId, command, request));
      if (result.revision > revision) revision = result.revision;
    }
    return { revision, response: home.response };
  }

  // ------------------------------------------------------------------ reads

  /** Waits until this node's replica of every range has applied what its leader had committed. */
  private catchUp(): Promise<unknown> {
    return this.retrying(1, () =>
      Promise.all(
        this.routesFor(FULL_BOUNDS).map((route) =>
          this.hosted(route.groupId).range(barrierRead(route), "linearizable"),
        ),
      ),
    );
  }

  private async singleRangeRead(
    groupId: number,
    request: RangeRequest,
    consistency: ReadConsistency,
  ): Promise<RangeResult> {
    const replica = this.hosted(groupId);
    try {
      return await replica.range(request, consistency);
    } catch (error) {
      // A revision another range reached and this one has not: floor it, then it is readable.
      // This node may not have applied that revision yet (the write went through another
      // member): a linearizable read catches up with every range before judging it.
      const future = error instanceof KvError && error.code === KvErrorCode.FutureRevision;
      if (!future || request.revision === 0n) throw error;
      if (request.revision > this.knownRevision() && consistency === "linearizable") await this.catchUp();
      if (request.revision > this.knownRevision()) throw error;
      await replica.floorRevision(request.revision);
      return replica.range(request, consistency);
    }
  }

  /** The pieces of `spans` (key order) per route, each clipped to its route. */
  private readParts(spans: readonly KeySpan[]): ReadPart[] {
    const parts: ReadPart[] = [];
    for (const span of spans) {
      for (const route of this.routesFor(span))
        parts.push({ groupId: route.groupId, span: clip(span, route) });
    }
    return parts;
  }

  // ------------------------------------------------------------------ plumbing

  /** Every range's group id, in key order; RoutesUnavailableError while no routes are loaded. */
  private allGroups(): number[] {
    return [...new Set(this.routesFor(FULL_BOUNDS).map((route) => route.groupId))];
  }

  private hosted(groupId: number): RoutedReplica {
    const replica = this.replicas.replica(groupId);
    if (replica === undefined) throw new ReplicaNotHostedError(groupId);
    return replica;
  }

  /** The newest revision of any range this node hosts a replica of (routes of the table). */
  private knownRevision(): bigint {
    let known = 0n;
    for (const route of this.table.routes) {
      const revision = this.replicas.replica(route.groupId)?.revision ?? 0n;
      if (revision > known) known = revision;
    }
    return known;
  }

  /** Proposes on the local replica of `groupId`; a routing refusal is thrown as RefusedResult. */
  private async proposeOn(
    groupId: number,
    command: KvCommand,
    request: RequestId | undefined,
  ): Promise<CommandResult> {
    let result = await this.hosted(groupId).propose(command, request);
    if (
      groupId !== LEASE_HOME_RANGE &&
      isLeaseNotFound(result) &&
      (await this.mirrorLeases(groupId, command))
    ) {
      result = await this.hosted(groupId).propose(command, request);
    }
    if (isRoutingRefusal(result)) throw new RefusedResult(result);
    return result;
  }

  /**
   * Leases live in range 1 (grants, keep-alives, expiry); another range knows a lease once a
   * write there names it: the lease is mirrored into that range (a grant of the same id and
   * TTL, which that range never expires on its own clock) if range 1 has it after a
   * linearizable barrier. Returns whether anything was mirrored (then the write is retried;
   * its LeaseNotFound answer was not recorded for dedup). NodeRanges revokes mirrors whose
   * lease range 1 no longer has.
   */
  private async mirrorLeases(groupId: number, command: KvCommand): Promise<boolean> {
    const named = leasesNamed(command);
    const home = this.replicas.replica(LEASE_HOME_RANGE);
    if (named.size === 0 || home?.leases === undefined) return false;
    await home.range(rangeRequest({ key: Uint8Array.of(0), countOnly: true }), "linearizable");
    const live = home.leases().filter((lease) => named.has(lease.id));
    for (const lease of live) {
      await this.hosted(groupId).propose(leaseGrantRequest(lease.ttlSeconds, lease.id));
    }
    return live.length > 0;
  }

  /** Runs `operation`, again after each routing failure, until `policy.attempts` in all. */
  private async retrying<T>(attempt: number, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      return this.again(error, attempt, () => this.retrying(attempt + 1, operation));
    }
  }

  /**
   * After failed attempt `attempt`: rethrows `error` unless it is a routing failure and
   * attempts remain; otherwise waits the backoff, reloads the routes and runs `next`.
   */
  private async again<T>(error: unknown, attempt: number, next: () => Promise<T>): Promise<T> {
    if (!(error instanceof RefusedResult || isRoutingError(error)) || attempt >= this.policy.attempts)
      throw error;
    await this.sleep(backoffDelay(this.policy, attempt));
    await this.reload();
    return next();
  }
}

function isLeaseNotFound(result: CommandResult): boolean {
  return result.response.kind === "error" && result.response.code === KvErrorCode.LeaseNotFound;
}

/** The lease ids a write attaches keys to (its puts', in both branches of a transaction). */
function leasesNamed(command: KvCommand | TxnOp, into = new Set<bigint>()): Set<bigint> {
  if (command.kind === "put" && command.lease !== 0n) into.add(command.lease);
  if (command.kind === "txn")
    for (const op of [...command.success, ...command.failure]) leasesNamed(op, into);
  return into;
}

/** A linearizable read of one key of `route`, for its ReadIndex round only. */
function barrierRead(route: RouteDescriptor): RangeRequest {
  return rangeRequest({ key: firstKey(route), countOnly: true });
}

/** A delete of `spans` (all in one range): one DeleteRange, or a transaction of several. */
function deleteCommandFor(spans: readonly KeySpan[], prevKv: boolean): KvCommand {
  const deletes = spans.map((span) =>
    deleteRangeRequest({ key: span.start, rangeEnd: rangeEndOf(span), prevKv }),
  );
  return deletes.length === 1 ? deletes[0]! : txnRequest({ success: deletes });
}
