/**
 * RouteCatalog: the durable, versioned list of routes, stored in the meta range (keys and
 * encodings: codec.ts) and changed only by optimistic, validated, single-transaction saves.
 *
 * - `snapshot()` reads version, next route id and every route with one range read, so they
 *   come from one revision.
 * - `save(expectedVersion, routes)` validates the whole proposed catalog before reading or
 *   writing anything, then commits in ONE transaction guarded by compares on the version and
 *   the next route id: the changed and new routes, the removed ones deleted, the version + 1,
 *   the delta of that version, and the next route id raised above every saved id.
 * - `allocateRouteIds(n)` moves the next route id forward with a compare-and-set, so ids are
 *   never handed out twice, across restarts and failed saves.
 * - `deltasSince(version)` serves route caches that are behind; `pruneDeltas` bounds the
 *   delta records; `initialize()` bootstraps.
 */
import { EMPTY } from "../../kv/bytes.js";
import {
  CompareResult,
  CompareTarget,
  deleteRangeRequest,
  putRequest,
  rangeRequest,
  txnRequest,
  type Compare,
  type TxnOp,
} from "../../kv/commands.js";
import { KvError, KvErrorCode } from "../../kv/errors.js";
import type { KeyValue, OpResponse } from "../../kv/results.js";
import { compareBytes } from "../../kv/bytes.js";
import {
  CatalogKeys,
  decodeDelta,
  decodeDescriptor,
  decodeNextRouteId,
  decodeVersion,
  encodeDelta,
  encodeDescriptor,
  encodeNextRouteId,
  encodeVersion,
  type CatalogDelta,
} from "./codec.js";
import { sameDescriptor, validateCatalog, type RouteDescriptor } from "./descriptor.js";
import {
  CatalogConflictError,
  CatalogDecodeError,
  CatalogVersionMismatchError,
  InvalidCatalogError,
} from "./errors.js";
import type { MetaRangeKv } from "./meta-kv.js";

/** The catalog as read at one revision of the meta range. */
export interface CatalogSnapshot {
  /** 0 until the catalog is initialized. */
  readonly version: number;
  /** The lowest route id never handed out (1 before any). */
  readonly nextRouteId: number;
  /** Sorted by start key. */
  readonly routes: readonly RouteDescriptor[];
  /** The meta range revision the snapshot was read at. */
  readonly revision: bigint;
}

export interface SaveResult {
  /** expectedVersion + 1. */
  readonly version: number;
  readonly delta: CatalogDelta;
  readonly nextRouteId: number;
  /** The meta range revision of the transaction. */
  readonly revision: bigint;
}

/** What `deltasSince` found: contiguous deltas, or a gap (pruned or missing) that needs a snapshot. */
export type DeltaRead =
  | {
      readonly kind: "deltas";
      readonly currentVersion: number;
      /** Versions since + 1, since + 2, ... in order. */
      readonly deltas: readonly CatalogDelta[];
      /** More deltas exist beyond `limit`: call again from the last one's version. */
      readonly more: boolean;
    }
  | { readonly kind: "gap"; readonly currentVersion: number };

export interface RouteCatalogOptions {
  readonly keys?: CatalogKeys;
  /** Transactions tried before a CatalogConflictError when concurrent writers keep winning (default 16). */
  readonly maxAttempts?: number;
}

/** Largest `allocateRouteIds` request. */
export const MAX_ROUTE_ID_ALLOCATION = 1_000_000;
/** Default (and largest) number of deltas one `deltasSince` call returns. */
export const MAX_DELTAS_PER_READ = 1_000;

interface StoredCatalog extends CatalogSnapshot {
  readonly nextRouteIdStored: boolean;
}

/** A compare that holds while `key` has exactly the value `value` (null: while it does not exist). */
function holds(key: Uint8Array, value: Uint8Array | null): Compare {
  return value === null
    ? { target: CompareTarget.Version, result: CompareResult.Equal, key, rangeEnd: EMPTY, operand: 0n }
    : { target: CompareTarget.Value, result: CompareResult.Equal, key, rangeEnd: EMPTY, value };
}

function rangeKvs(response: OpResponse | undefined): readonly KeyValue[] {
  if (response?.kind !== "range")
    throw new Error("the meta range answered a catalog read with no range response");
  return response.kvs;
}

function checkCount(value: number, name: string, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}

export class RouteCatalog {
  readonly keys: CatalogKeys;
  private readonly maxAttempts: number;

  constructor(
    private readonly kv: MetaRangeKv,
    options: RouteCatalogOptions = {},
  ) {
    this.keys = options.keys ?? new CatalogKeys();
    this.maxAttempts = options.maxAttempts ?? 16;
    checkCount(this.maxAttempts, "maxAttempts", 1, 1_000);
  }

  /** Version, next route id and routes, read at one revision. Throws CatalogDecodeError on a corrupt record. */
  async snapshot(): Promise<CatalogSnapshot> {
    const { nextRouteIdStored: _, ...snapshot } = await this.read();
    return snapshot;
  }

  /**
   * Replaces the catalog by `routes` if its version is still `expectedVersion` (0: not yet
   * initialized). Throws InvalidCatalogError (nothing read or written) for an invalid catalog,
   * CatalogVersionMismatchError when the version moved on, CatalogConflictError when
   * concurrent id allocations kept winning the race.
   */
  async save(expectedVersion: number, routes: readonly RouteDescriptor[]): Promise<SaveResult> {
    validateCatalog(routes);
    checkCount(expectedVersion, "expectedVersion", 0, Number.MAX_SAFE_INTEGER - 1);
    const maxId = routes.reduce((max, route) => Math.max(max, route.routeId), 0);
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const current = await this.read();
      if (current.version !== expectedVersion)
        throw new CatalogVersionMismatchError(expectedVersion, current.version);
      const delta = catalogDelta(expectedVersion + 1, current.routes, routes);
      const nextRouteId = Math.max(current.nextRouteId, maxId + 1);
      const k = this.keys;
      const writes: TxnOp[] = [
        ...delta.upserts.map((route) =>
          putRequest({ key: k.route(route.routeId), value: encodeDescriptor(route) }),
        ),
        ...delta.removed.map((id) => deleteRangeRequest({ key: k.route(id) })),
        putRequest({ key: k.version, value: encodeVersion(delta.version) }),
        putRequest({ key: k.delta(delta.version), value: encodeDelta(delta) }),
      ];
      if (nextRouteId !== current.nextRouteId) {
        writes.push(putRequest({ key: k.nextRouteId, value: encodeNextRouteId(nextRouteId) }));
      }
      const result = await this.kv.txn(
        txnRequest({
          compares: [
            holds(k.version, expectedVersion === 0 ? null : encodeVersion(expectedVersion)),
            holds(k.nextRouteId, current.nextRouteIdStored ? encodeNextRouteId(current.nextRouteId) : null),
          ],
          success: writes,
          failure: [rangeRequest({ key: k.version })],
        }),
      );
      if (result.succeeded) return { version: delta.version, delta, nextRouteId, revision: result.revision };
      const [found] = rangeKvs(result.responses[0]);
      const actual = found === undefined ? 0 : decodeVersion(found.value);
      if (actual !== expectedVersion) throw new CatalogVersionMismatchError(expectedVersion, actual);
      // Only the next route id moved (a concurrent allocation): build the transaction again.
    }
    throw new CatalogConflictError("save", this.maxAttempts);
  }

  /**
   * Hands out `count` route ids never handed out before, in increasing order. The next route
   * id only moves forward, in a compare-and-set transaction retried on conflicts.
   */
  async allocateRouteIds(count: number): Promise<number[]> {
    checkCount(count, "count", 1, MAX_ROUTE_ID_ALLOCATION);
    const key = this.keys.nextRouteId;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const { kvs } = await this.kv.range(rangeRequest({ key }));
      const stored = kvs[0]?.value ?? null;
      const first = stored === null ? 1 : decodeNextRouteId(stored);
      checkCount(first + count, "the next route id", 1, Number.MAX_SAFE_INTEGER);
      const result = await this.kv.txn(
        txnRequest({
          compares: [holds(key, stored)],
          success: [putRequest({ key, value: encodeNextRouteId(first + count) })],
        }),
      );
      if (result.succeeded) return Array.from({ length: count }, (_, i) => first + i);
    }
    throw new CatalogConflictError("route id allocation", this.maxAttempts);
  }

  /**
   * The deltas after `version`, read at one revision, at most `limit` of them. A `gap` means a
   * delta that is needed is missing (pruned), or was compacted away at that revision: the
   * caller loads a snapshot instead.
   */
  async deltasSince(version: number, limit = MAX_DELTAS_PER_READ): Promise<DeltaRead> {
    checkCount(version, "version", 0, Number.MAX_SAFE_INTEGER - 1);
    checkCount(limit, "limit", 1, MAX_DELTAS_PER_READ);
    const k = this.keys;
    const head = await this.kv.range(rangeRequest({ key: k.version }));
    const stored = head.kvs[0];
    const currentVersion = stored === undefined ? 0 : decodeVersion(stored.value);
    if (currentVersion <= version) return { kind: "deltas", currentVersion, deltas: [], more: false };
    let kvs: readonly KeyValue[];
    try {
      ({ kvs } = await this.kv.range(
        rangeRequest({ key: k.delta(version + 1), rangeEnd: k.deltaEnd, limit, revision: head.revision }),
      ));
    } catch (error) {
      // A compaction past the head's revision landed in between: the deltas cannot be read
      // at it any more, so the caller loads a snapshot (read at the current revision).
      if (error instanceof KvError && error.code === KvErrorCode.Compacted)
        return { kind: "gap", currentVersion };
      throw error;
    }
    const deltas: CatalogDelta[] = [];
    for (const kv of kvs) {
      const expected = version + 1 + deltas.length;
      if (expected > currentVersion) break;
      const delta = decodeDelta(kv.value);
      if (k.deltaVersionOf(kv.key) !== delta.version) {
        throw new CatalogDecodeError(
          "catalog delta",
          "invalid-field",
          `delta ${delta.version} stored under another version's key`,
        );
      }
      if (delta.version !== expected) return { kind: "gap", currentVersion };
      deltas.push(delta);
    }
    if (deltas.length === 0) return { kind: "gap", currentVersion };
    return { kind: "deltas", currentVersion, deltas, more: version + deltas.length < currentVersion };
  }

  /**
   * Deletes the delta records of versions 1..`throughVersion` (they grow by one per save).
   * Caches behind that version then get a gap from `deltasSince` and load a snapshot instead.
   * Deleting deltas is idempotent, so no compare guards it.
   */
  async pruneDeltas(throughVersion: number): Promise<void> {
    checkCount(throughVersion, "throughVersion", 1, Number.MAX_SAFE_INTEGER - 1);
    const k = this.keys;
    await this.kv.txn(
      txnRequest({
        success: [deleteRangeRequest({ key: k.delta(1), rangeEnd: k.delta(throughVersion + 1) })],
      }),
    );
  }

  /**
   * Writes version 1 — one active route over the whole keyspace, served by group 1 — if the
   * catalog is empty; otherwise (or when another node initializes it first) changes nothing.
   * Returns the catalog as it then is.
   */
  async initialize(): Promise<CatalogSnapshot> {
    const current = await this.snapshot();
    if (current.version > 0) return current;
    const route: RouteDescriptor = {
      routeId: current.nextRouteId,
      start: EMPTY,
      end: null,
      groupId: 1,
      state: "active",
      parentRouteId: null,
      splitAt: 0n,
    };
    try {
      await this.save(0, [route]);
    } catch (error) {
      if (!(error instanceof CatalogVersionMismatchError)) throw error;
    }
    return this.snapshot();
  }

  private async read(): Promise<StoredCatalog> {
    const k = this.keys;
    const { kvs, revision } = await this.kv.range(rangeRequest({ key: k.nextRouteId, rangeEnd: k.end }));
    let version = 0;
    let nextRouteId: number | null = null;
    const routes: RouteDescriptor[] = [];
    for (const { key, value } of kvs) {
      if (compareBytes(key, k.version) === 0) version = decodeVersion(value);
      else if (compareBytes(key, k.nextRouteId) === 0) nextRouteId = decodeNextRouteId(value);
      else {
        const routeId = k.routeIdOf(key);
        if (routeId === null)
          throw new CatalogDecodeError(
            "route catalog",
            "unknown-kind",
            "an unknown key under the catalog prefix",
          );
        const route = decodeDescriptor(value);
        if (route.routeId !== routeId) {
          throw new CatalogDecodeError(
            "route catalog",
            "invalid-field",
            `route ${route.routeId} stored under the key of route ${routeId}`,
          );
        }
        routes.push(route);
      }
    }
    routes.sort((a, b) => compareBytes(a.start, b.start));
    checkStored(version, routes);
    return {
      version,
      nextRouteId: nextRouteId ?? 1,
      routes,
      revision,
      nextRouteIdStored: nextRouteId !== null,
    };
  }
}

/** A stored catalog must be empty before initialization and valid after. */
function checkStored(version: number, routes: readonly RouteDescriptor[]): void {
  if (version === 0) {
    if (routes.length > 0)
      throw new CatalogDecodeError("route catalog", "invalid-field", "routes stored without a version");
    return;
  }
  try {
    validateCatalog(routes);
  } catch (error) {
    if (error instanceof InvalidCatalogError)
      throw new CatalogDecodeError("route catalog", "invalid-field", error.message);
    throw error;
  }
}

/** The delta that turns `before` into `after`: changed and new routes, removed ids. */
export function catalogDelta(
  version: number,
  before: readonly RouteDescriptor[],
  after: readonly RouteDescriptor[],
): CatalogDelta {
  const old = new Map(before.map((route) => [route.routeId, route]));
  const upserts = after.filter((route) => {
    const previous = old.get(route.routeId);
    return previous === undefined || !sameDescriptor(previous, route);
  });
  const kept = new Set(after.map((route) => route.routeId));
  const removed = before.filter((route) => !kept.has(route.routeId)).map((route) => route.routeId);
  return { version, upserts, removed };
}
