// Fakes for the split and merge coordinator tests: FakeRanges, ranges' stores that really hold
// keys and move them on split and merge, enforcing the contract's store rules (a merge-fenced
// range refuses every change, a merge applies only to an active range ending at the image's
// start, ...); CrashingProcess, one process's view of the catalog and the ranges that crashes
// after a chosen step; and checks that a catalog is valid and agrees with the ranges.
import assert from "node:assert/strict";
import { boundsContainKey, boundsEqual, type RangeBounds } from "../../src/kv/bounds.js";
import { bytesEqual, compareBytes } from "../../src/kv/bytes.js";
import { boundsRevision } from "../../src/kv/split.js";
import type { RouteCatalog } from "../../src/placement/catalog/catalog.js";
import { validateCatalog, type RouteDescriptor } from "../../src/placement/catalog/descriptor.js";
import type {
  AppliedMerge,
  AppliedSplit,
  PlannedSplit,
  RangeDescription,
  RangeOps,
  SplitCatalog,
} from "../../src/placement/split/coordinator.js";
import { b, plain } from "./arbitraries.js";

export interface FakeRange {
  bounds: RangeBounds;
  state: "active" | "write-fenced" | "merge-fenced";
  plannedSplit: PlannedSplit | null;
  lastSplit: AppliedSplit | null;
  lastMerge: AppliedMerge | null;
  /** Key (hex) -> value. */
  readonly data: Map<string, string>;
}

/** A refusal of the fake store, named like the KvErrorCode it stands for. */
export class FakeStoreError extends Error {
  constructor(
    readonly code: "RangeFenced" | "KeyOutsideRange" | "MergeImageInvalid",
    detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

interface ImageJson {
  readonly rangeId: number;
  readonly start: string;
  readonly end: string | null;
  readonly state: string;
  readonly data: [string, string][];
}

const hex = (key: Uint8Array): string => Buffer.from(key).toString("hex");
const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "hex"));

export function samePlan(a: PlannedSplit, c: PlannedSplit): boolean {
  return a.rhsRangeId === c.rhsRangeId && bytesEqual(a.splitKey, c.splitKey);
}

/** The ranges' stores: fence, split, merge-fence and merge with the contract's rules. */
export class FakeRanges implements RangeOps {
  readonly ranges = new Map<number, FakeRange>();
  revision = 1_000n;
  /** Forget the last split (a store that does not remember it). */
  forgetLastSplit = false;
  /** Awaited at the start of every call (tests make interleavings with it). */
  yieldPoint: () => Promise<void> = () => Promise.resolve();

  /** A range [start, end) holding `keys` (each with the value "v:<key>"). */
  add(groupId: number, start: string, end: string | null, keys: readonly string[] = []): void {
    const data = new Map(keys.map((k) => [hex(b(k)), `v:${k}`] as [string, string]));
    this.ranges.set(groupId, {
      bounds: { start: b(start), end: end === null ? null : b(end) },
      state: "active",
      plannedSplit: null,
      lastSplit: null,
      lastMerge: null,
      data,
    });
  }

  get(groupId: number): FakeRange {
    const range = this.ranges.get(groupId);
    if (range === undefined) throw new Error(`no range ${groupId}`);
    return range;
  }

  private static strictlyInside(range: FakeRange, key: Uint8Array): boolean {
    return boundsContainKey(range.bounds, key) && compareBytes(key, range.bounds.start) > 0;
  }

  private static refuseIfMergeFenced(range: FakeRange): void {
    if (range.state === "merge-fenced") throw new FakeStoreError("RangeFenced", "merge-fenced");
  }

  async fence(groupId: number, splitKey: Uint8Array, rhsGroupId: number): Promise<void> {
    await this.yieldPoint();
    const range = this.get(groupId);
    FakeRanges.refuseIfMergeFenced(range);
    const plan = { splitKey, rhsRangeId: rhsGroupId };
    if (range.plannedSplit !== null) {
      if (!samePlan(range.plannedSplit, plan)) throw new FakeStoreError("RangeFenced", "another split");
      return;
    }
    if (!FakeRanges.strictlyInside(range, splitKey)) throw new FakeStoreError("KeyOutsideRange", "fence");
    range.state = "write-fenced";
    range.plannedSplit = { splitKey: splitKey.slice(), rhsRangeId: rhsGroupId };
  }

  async split(groupId: number, splitKey: Uint8Array, rhsGroupId: number): Promise<{ revision: bigint }> {
    await this.yieldPoint();
    const range = this.get(groupId);
    FakeRanges.refuseIfMergeFenced(range);
    if (!FakeRanges.strictlyInside(range, splitKey)) throw new FakeStoreError("KeyOutsideRange", "split");
    if (range.plannedSplit !== null && !samePlan(range.plannedSplit, { splitKey, rhsRangeId: rhsGroupId })) {
      throw new FakeStoreError("RangeFenced", "another split");
    }
    const revision = ++this.revision;
    const moved = new Map<string, string>();
    for (const [key, value] of range.data) {
      if (compareBytes(unhex(key), splitKey) >= 0) moved.set(key, value);
    }
    for (const key of moved.keys()) range.data.delete(key);
    this.ranges.set(rhsGroupId, {
      bounds: { start: splitKey.slice(), end: range.bounds.end },
      state: "active",
      plannedSplit: null,
      lastSplit: null,
      lastMerge: null,
      data: moved,
    });
    range.bounds = { start: range.bounds.start, end: splitKey.slice() };
    range.state = "active";
    range.plannedSplit = null;
    range.lastSplit = { splitKey: splitKey.slice(), rhsRangeId: rhsGroupId, revision };
    return { revision };
  }

  async describe(groupId: number): Promise<RangeDescription> {
    await this.yieldPoint();
    const range = this.get(groupId);
    return {
      bounds: range.bounds,
      state: range.state,
      plannedSplit: range.plannedSplit,
      lastSplit: this.forgetLastSplit ? null : range.lastSplit,
      lastMerge: range.lastMerge,
      boundsRevision: boundsRevision(range.lastSplit, range.lastMerge),
    };
  }

  async mergeFence(groupId: number): Promise<void> {
    await this.yieldPoint();
    const range = this.get(groupId);
    if (range.bounds.start.length === 0) throw new FakeStoreError("KeyOutsideRange", "the first range");
    if (range.state === "write-fenced") throw new FakeStoreError("RangeFenced", "fenced for a split");
    range.state = "merge-fenced";
  }

  async mergeImage(groupId: number): Promise<Uint8Array> {
    await this.yieldPoint();
    const range = this.get(groupId);
    if (range.state !== "merge-fenced") throw new Error(`range ${groupId} is not merge-fenced`);
    const image: ImageJson = {
      rangeId: groupId,
      start: hex(range.bounds.start),
      end: range.bounds.end === null ? null : hex(range.bounds.end),
      state: range.state,
      data: [...range.data],
    };
    return new TextEncoder().encode(JSON.stringify(image));
  }

  async merge(
    groupId: number,
    rhsGroupId: number,
    image: Uint8Array,
    lhsBoundsRevision: bigint,
  ): Promise<{ revision: bigint }> {
    await this.yieldPoint();
    const range = this.get(groupId);
    if (range.state !== "active") throw new FakeStoreError("RangeFenced", range.state);
    let decoded: ImageJson;
    try {
      decoded = JSON.parse(new TextDecoder().decode(image)) as ImageJson;
    } catch {
      throw new FakeStoreError("MergeImageInvalid", "does not decode");
    }
    if (decoded.state !== "merge-fenced") throw new FakeStoreError("MergeImageInvalid", "not fenced");
    const moved = boundsRevision(range.lastSplit, range.lastMerge) !== lhsBoundsRevision;
    if (range.bounds.end === null || hex(range.bounds.end) !== decoded.start || moved) {
      // A retry that finds this very merge applied resolves (as the node's RangeOps does).
      if (range.lastMerge?.rhsRangeId === rhsGroupId) return { revision: range.lastMerge.revision };
      throw new FakeStoreError("KeyOutsideRange", "the range does not end at the image's start");
    }
    const revision = ++this.revision;
    for (const [key, value] of decoded.data) range.data.set(key, value);
    range.bounds = { start: range.bounds.start, end: decoded.end === null ? null : unhex(decoded.end) };
    range.lastMerge = { rhsRangeId: rhsGroupId, revision };
    return { revision };
  }
}

export type CrashPoint =
  | "allocate"
  | "fence"
  | "save-fenced"
  | "split"
  | "save-layout"
  | "merge-fence"
  | "save-migrating"
  | "image"
  | "merge"
  | "save-merged"
  | "save-unfenced";

export class Crash extends Error {
  constructor(readonly point: CrashPoint | number) {
    super(`crashed after ${point}`);
  }
}

/** What a catalog save does, judged from the routes it saves (one operation at a time). */
function saveKind(before: number, routes: readonly RouteDescriptor[]): CrashPoint {
  if (routes.length < before) return "save-merged";
  if (routes.length > before) return "save-layout";
  if (routes.some((r) => r.state === "migrating-source")) return "save-migrating";
  if (routes.some((r) => r.state === "write-fenced")) return "save-fenced";
  return "save-unfenced";
}

/**
 * One process's view of the catalog and the ranges: the step named `crashAt` (or, given a
 * number n, the n-th call of any kind) takes effect and then throws, and every later call of
 * this view throws too (the process is gone).
 */
export class CrashingProcess {
  crashed = false;
  calls = 0;
  readonly catalog: SplitCatalog;
  readonly ranges: RangeOps;

  constructor(catalog: RouteCatalog, ranges: FakeRanges, crashAt: CrashPoint | number | null) {
    const step = async <T>(point: CrashPoint | null, run: () => Promise<T>): Promise<T> => {
      if (this.crashed) throw new Error("this process crashed");
      const result = await run();
      this.calls += 1;
      const crash =
        typeof crashAt === "number" ? this.calls === crashAt : point !== null && point === crashAt;
      if (crash) {
        this.crashed = true;
        throw new Crash(crashAt!);
      }
      return result;
    };
    this.catalog = {
      snapshot: () => step(null, () => catalog.snapshot()),
      allocateRouteIds: (n) => step("allocate", () => catalog.allocateRouteIds(n)),
      save: async (version, routes) => {
        const before = (await catalog.snapshot()).routes.length;
        return step(saveKind(before, routes), () => catalog.save(version, routes));
      },
    };
    this.ranges = {
      fence: (g, key, rhs) => step("fence", () => ranges.fence(g, key, rhs)),
      split: (g, key, rhs) => step("split", () => ranges.split(g, key, rhs)),
      describe: (g) => step(null, () => ranges.describe(g)),
      mergeFence: (g) => step("merge-fence", () => ranges.mergeFence(g)),
      mergeImage: (g) => step("image", () => ranges.mergeImage(g)),
      merge: (g, rhs, image, revision) => step("merge", () => ranges.merge(g, rhs, image, revision)),
    };
  }
}

/** The catalog is valid, its versions contiguous from 1 with every delta present, and replaying them gives it. */
export async function checkHistory(catalog: RouteCatalog): Promise<void> {
  const snapshot = await catalog.snapshot();
  validateCatalog(snapshot.routes);
  const read = await catalog.deltasSince(0);
  assert.equal(read.kind, "deltas");
  if (read.kind !== "deltas") return;
  assert.equal(read.currentVersion, snapshot.version);
  assert.deepEqual(
    read.deltas.map((d) => d.version),
    Array.from({ length: snapshot.version }, (_, i) => i + 1),
  );
  const replayed = new Map<number, RouteDescriptor>();
  for (const delta of read.deltas) {
    for (const id of delta.removed) replayed.delete(id);
    for (const r of delta.upserts) replayed.set(r.routeId, r);
  }
  const sorted = [...replayed.values()].sort((x, y) => compareBytes(x.start, y.start));
  assert.deepEqual(sorted.map(plain), snapshot.routes.map(plain));
}

/**
 * The settled state: the catalog valid with every route active, each route's range active with
 * exactly its bounds, every key of those ranges inside them, and together exactly `keys`.
 */
export async function checkAgreement(
  catalog: RouteCatalog,
  ranges: FakeRanges,
  keys: readonly string[],
): Promise<void> {
  const snapshot = await catalog.snapshot();
  validateCatalog(snapshot.routes);
  const found: string[] = [];
  for (const route of snapshot.routes) {
    assert.equal(route.state, "active", `route ${route.routeId} is ${route.state}`);
    const range = ranges.get(route.groupId);
    assert.ok(
      boundsEqual(range.bounds, { start: route.start, end: route.end }),
      `range ${route.groupId} has the bounds of route ${route.routeId}`,
    );
    assert.equal(range.state, "active", `range ${route.groupId} is ${range.state}`);
    for (const key of range.data.keys()) {
      assert.ok(boundsContainKey(range.bounds, unhex(key)), `key ${key} inside range ${route.groupId}`);
      found.push(Buffer.from(key, "hex").toString());
    }
  }
  assert.deepEqual(found.sort(), [...keys].sort(), "every key in exactly one range");
}
