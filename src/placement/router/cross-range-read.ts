/**
 * One etcd Range over a span that several ranges (or several pieces of one range, around the
 * system span) hold, answered at ONE revision R as one unsplit store would answer it:
 *
 * - linearizable, revision 0: a linearizable one-key count read on every range gives its
 *   revision r_i; R = max r_i; every range with r_i < R gets `floorRevision(R)` (afterwards
 *   nothing commits there at or below R); then each piece is read serializably on the local
 *   replica at R. The header revision is R.
 * - serializable, revision 0: R = the lowest local revision of the ranges (a range still at
 *   revision 0 holds nothing and is read as it is now). No proposal. The header revision is R.
 * - an explicit revision R: R must not be above the newest revision known (the local replicas
 *   of every route, and for a linearizable read the involved ranges' linearizable revisions):
 *   else FutureRevision, as etcd. Ranges whose local revision is below R are floored to R; each
 *   piece is read at R. The header revision is the newest current revision of the pieces.
 *
 * Merging follows MvccStore's Range exactly: `count` sums the pieces' counts (every key of the
 * span at R, before filters and limit); in key order (ascending or descending by key) without
 * revision filters, pieces are read in that order and only counted once the limit is reached;
 * otherwise every piece's filtered keys are gathered, sorted stably (ties keep key order),
 * then limited. `more` means what it means for one store.
 */
import type { KeySpan } from "../../kv/bounds.js";
import { SortOrder, SortTarget, rangeRequest, type RangeRequest } from "../../kv/commands.js";
import { KvError, KvErrorCode } from "../../kv/errors.js";
import { rangeShape, sortedRangeResponse } from "../../kv/range.js";
import type { KeyValue, RangeResult } from "../../kv/results.js";
import type { ReadConsistency } from "../../node/types.js";
import type { RoutedReplica } from "./routed-replica.js";

/** One piece of a read: a span inside one route, served by range `groupId`. */
export interface ReadPart {
  readonly groupId: number;
  readonly span: KeySpan;
}

export interface CrossReadAccess {
  /** The local replica of range `groupId`; throws (retryably) when this node hosts none. */
  replica(groupId: number): RoutedReplica;
  /** The newest revision this node knows of any range (its local replicas' revisions). */
  knownRevision(): bigint;
  /** Waits until this node's replica of every range has applied what its leader had committed. */
  catchUp(): Promise<unknown>;
}

const FROM_KEY_ON = Uint8Array.of(0);

/** etcd's rangeEnd for a span: its end, or "\0" (every key from start on) for +infinity. */
export function rangeEndOf(span: KeySpan): Uint8Array {
  return span.end ?? FROM_KEY_ON;
}

/** Reads at no revision tried again when a compaction passed the revision they chose. */
const COMPACTED_READ_ATTEMPTS = 3;

/**
 * Reads `parts` (in key order; none is fine) as one Range at one revision. KvError from a
 * replica (KeyOutsideRange when routes moved, Compacted, FutureRevision) passes through, but
 * for a read at no revision: it chose R itself, and a compaction past R that landed between
 * choosing and reading (auto-compaction floors and compacts ranges meanwhile) is no error of
 * the client's; after catching up with every range, it is read again at a newer R.
 */
export async function crossRangeRead(
  request: RangeRequest,
  consistency: ReadConsistency,
  parts: readonly ReadPart[],
  access: CrossReadAccess,
): Promise<RangeResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readAtOneRevision(request, consistency, parts, access);
    } catch (error) {
      const compacted = error instanceof KvError && error.code === KvErrorCode.Compacted;
      if (!compacted || request.revision !== 0n || attempt >= COMPACTED_READ_ATTEMPTS) throw error;
      await access.catchUp();
    }
  }
}

async function readAtOneRevision(
  request: RangeRequest,
  consistency: ReadConsistency,
  parts: readonly ReadPart[],
  access: CrossReadAccess,
): Promise<RangeResult> {
  const groups = [...new Set(parts.map((part) => part.groupId))];
  const firstSpans = new Map<number, KeySpan>();
  for (const part of parts) if (!firstSpans.has(part.groupId)) firstSpans.set(part.groupId, part.span);
  const probe = async (groupId: number): Promise<bigint> => {
    const span = firstSpans.get(groupId)!;
    const result = await access
      .replica(groupId)
      .range(rangeRequest({ key: span.start, countOnly: true }), "linearizable");
    return result.revision;
  };
  const floor = async (groupId: number, revision: bigint): Promise<void> => {
    const replica = access.replica(groupId);
    if (replica.revision < revision) await replica.floorRevision(revision);
  };

  // The revision each group is read at (a group absent from the map: read as it is now).
  const readAt = new Map<number, bigint>();
  let header: bigint | null;
  if (request.revision > 0n) {
    const target = request.revision;
    // The revision may come from a range this node has not caught up with yet (the write
    // went through another member), not necessarily one of those read.
    if (target > access.knownRevision() && consistency === "linearizable") await access.catchUp();
    if (target > access.knownRevision()) throw new KvError(KvErrorCode.FutureRevision);
    await Promise.all(groups.map((groupId) => floor(groupId, target)));
    for (const groupId of groups) readAt.set(groupId, target);
    header = null;
  } else if (consistency === "linearizable") {
    const revisions = await Promise.all(groups.map(probe));
    const target = revisions.reduce((max, revision) => (revision > max ? revision : max), 0n);
    await Promise.all(groups.map((groupId) => floor(groupId, target)));
    for (const groupId of groups) readAt.set(groupId, target);
    header = target;
  } else {
    const local = groups.map((groupId) => [groupId, access.replica(groupId).revision] as const);
    let target = 0n;
    for (const [, revision] of local)
      if (revision > 0n && (target === 0n || revision < target)) target = revision;
    for (const [groupId, revision] of local) if (revision >= target) readAt.set(groupId, target);
    header = target;
  }
  if (groups.length === 0) header ??= access.knownRevision();

  const currents: bigint[] = [];
  const readPart = async (part: ReadPart, overrides: Partial<RangeRequest>) => {
    const result = await access.replica(part.groupId).range(
      {
        ...request,
        key: part.span.start,
        rangeEnd: rangeEndOf(part.span),
        revision: readAt.get(part.groupId) ?? 0n,
        ...overrides,
      },
      "serializable",
    );
    currents.push(result.revision);
    return result;
  };
  const merged = await mergeParts(request, parts, readPart);
  const revision = header ?? currents.reduce((max, current) => (current > max ? current : max), 0n);
  return { ...merged, revision };
}

type PartRead = (part: ReadPart, overrides: Partial<RangeRequest>) => Promise<RangeResult>;

async function mergeParts(
  request: RangeRequest,
  parts: readonly ReadPart[],
  readPart: PartRead,
): Promise<{ kind: "range"; kvs: KeyValue[]; more: boolean; count: number }> {
  if (request.countOnly) {
    let count = 0;
    for (const part of parts) count += (await readPart(part, { countOnly: true })).count;
    return { kind: "range", kvs: [], more: false, count };
  }
  const limit = request.limit > 0 ? request.limit : Infinity;
  const { order, filtered, keyOrdered } = rangeShape(request);

  if (keyOrdered && !filtered) {
    const ordered = order === SortOrder.Descend ? [...parts].reverse() : parts;
    const kvs: KeyValue[] = [];
    let count = 0;
    for (const part of ordered) {
      const wanted = limit - kvs.length;
      if (wanted > 0) {
        const result = await readPart(part, { limit: wanted === Infinity ? 0 : wanted });
        kvs.push(...result.kvs);
        count += result.count;
      } else {
        count += (await readPart(part, { countOnly: true, limit: 0 })).count;
      }
    }
    return { kind: "range", kvs, more: count > kvs.length, count };
  }

  // Gather every piece's keys that pass the filters (values kept: a sort may need them).
  const kvs: KeyValue[] = [];
  let count = 0;
  for (const part of parts) {
    const result = await readPart(part, {
      limit: 0,
      sortOrder: SortOrder.None,
      sortTarget: SortTarget.Key,
      keysOnly: false,
    });
    kvs.push(...result.kvs);
    count += result.count;
  }
  return sortedRangeResponse(kvs, request, order, limit, count);
}
