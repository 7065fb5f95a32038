/**
 * The replicated half of leases: the lease table (id -> granted TTL) and the keys attached to
 * each lease, kept in the store's own keyspace — so every replica holds the same table, it
 * changes in the same batch as the command that changes it, and snapshots carry it — and the
 * effects of LeaseGrant and LeaseRevoke. When a lease expires is not decided here: the
 * leader's LeaseClock (lease-clock.ts) judges that and proposes a LeaseRevoke.
 *
 *   namespace | 0x04 | u64be(id)              lease: format, granted TTL in seconds
 *   namespace | 0x05 | u64be(id) | user key   the key is attached to the lease (empty value)
 *
 * (keys.ts owns tags 0x01-0x03 and 0x10.) A key is attached to the lease of its current
 * version while that lease is live: a put attaches it, and a put with another lease, a delete
 * or the revocation of the lease detaches it. So the attached keys are exactly the live keys
 * whose current version names the lease, and revoking deletes them all in one revision.
 */
import { ByteReader, ByteWriter, EMPTY, compareBytes, concatBytes, prefixEnd } from "./bytes.js";
import { deleteRangeRequest, type LeaseGrantRequest, type LeaseRevokeRequest } from "./commands.js";
import { FULL_BOUNDS, boundsContainKey, type RangeBounds } from "./bounds.js";
import type { KvReader, WriteBatch } from "./engine.js";
import { KvErrorCode } from "./errors.js";
import { revisionForApply } from "./hlc.js";
import type { KeyLayout } from "./keys.js";
import type { RevisionBounds } from "./range.js";
import {
  errorResponse,
  type ErrorResponse,
  type KvEvent,
  type LeaseGrantResponse,
  type LeaseRevokeResponse,
} from "./results.js";
import { CommandWriter } from "./writer.js";

/** Granted TTLs below this are raised to it. */
export const MIN_LEASE_TTL_SECONDS = 1;
/** etcd's limit: longer TTLs fail with "etcdserver: too large lease TTL". */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;

const TAG_LEASE = 0x04;
const TAG_ATTACHED = 0x05;
const RECORD_FORMAT = 1;
const ID_BYTES = 8;

export interface LeaseSummary {
  readonly id: bigint;
  readonly ttlSeconds: number;
}

export interface LeaseInfo extends LeaseSummary {
  /** The attached keys in key order (empty unless asked for). */
  readonly keys: readonly Uint8Array[];
}

/** What a lease command changed in the lease table, for the leader's LeaseClock. */
export type LeaseChange =
  | { readonly kind: "granted"; readonly id: bigint; readonly ttlSeconds: number }
  | { readonly kind: "revoked"; readonly id: bigint };

/** The effects of one lease command (nothing staged when it failed). */
export interface LeaseOutcome {
  readonly response: LeaseGrantResponse | LeaseRevokeResponse | ErrorResponse;
  /** Delete events of the keys a revocation removed, in key order, all at `revision`. */
  readonly events: readonly KvEvent[];
  /** The store's revision after the command: new only when a revocation deleted keys. */
  readonly revision: bigint;
  readonly change: LeaseChange | null;
}

function idBytes(id: bigint): Uint8Array {
  return new ByteWriter(ID_BYTES).u64(id).finish();
}

export class LeaseTable {
  private readonly leasesStart: Uint8Array;
  private readonly leasesEnd: Uint8Array;
  private readonly attachedStart: Uint8Array;

  constructor(private readonly layout: KeyLayout) {
    this.leasesStart = concatBytes(layout.namespace, Uint8Array.of(TAG_LEASE));
    this.leasesEnd = concatBytes(layout.namespace, Uint8Array.of(TAG_LEASE + 1));
    this.attachedStart = concatBytes(layout.namespace, Uint8Array.of(TAG_ATTACHED));
  }

  /** The live lease `id`, or undefined (ids <= 0 are never live: 0 means "no lease"). */
  lookup(reader: KvReader, id: bigint): LeaseSummary | undefined {
    if (id <= 0n) return undefined;
    const record = reader.get(this.leaseKey(id));
    return record === undefined ? undefined : { id, ttlSeconds: decodeRecord(record) };
  }

  /** Every live lease, by id. */
  list(reader: KvReader): LeaseSummary[] {
    const out: LeaseSummary[] = [];
    for (const { key, value } of reader.scan(this.leasesStart, this.leasesEnd)) {
      const id = new ByteReader(key.subarray(this.leasesStart.length), "lease key").u64();
      out.push({ id, ttlSeconds: decodeRecord(value) });
    }
    return out;
  }

  /** The keys attached to lease `id`, in key order. */
  attachedKeys(reader: KvReader, id: bigint): Uint8Array[] {
    const prefix = this.attachedPrefix(id);
    return [...reader.scan(prefix, prefixEnd(prefix))].map(({ key }) => key.slice(prefix.length));
  }

  /** Whether a put among `events` names a lease that is not live (etcd fails such a command). */
  namesMissingLease(reader: KvReader, events: readonly KvEvent[]): boolean {
    const live = new Map<bigint, boolean>();
    for (const { type, kv } of events) {
      if (type !== "put" || kv.lease === 0n) continue;
      let found = live.get(kv.lease);
      if (found === undefined) {
        found = this.lookup(reader, kv.lease) !== undefined;
        live.set(kv.lease, found);
      }
      if (!found) return true;
    }
    return false;
  }

  /**
   * Stages the attachment changes of a command's events: each key leaves the lease of the
   * version it replaced and joins the (live) lease of its new version. `reader` is the state
   * before the command; no command both writes keys and grants or revokes a lease.
   */
  stageAttachments(reader: KvReader, batch: WriteBatch, events: readonly KvEvent[]): void {
    for (const { type, kv, prevKv } of events) {
      const before = prevKv?.lease ?? 0n;
      const after = type === "put" ? kv.lease : 0n;
      if (before === after) continue;
      if (before > 0n) batch.delete(this.attachedKey(before, kv.key));
      if (this.lookup(reader, after) !== undefined) batch.put(this.attachedKey(after, kv.key), EMPTY);
    }
  }

  /**
   * LeaseGrant as entry `entryIndex`. Id 0 chooses the entry index, or the next id above it
   * that no live lease has: deterministic on every replica, and never a live lease's id.
   * A grant creates no revision (`revision` is the current one), as in etcd.
   */
  grant(
    reader: KvReader,
    batch: WriteBatch,
    request: LeaseGrantRequest,
    entryIndex: number,
    revision: bigint,
  ): LeaseOutcome {
    const fail = (code: KvErrorCode): LeaseOutcome => ({
      response: errorResponse(code),
      events: [],
      revision,
      change: null,
    });
    if (request.ttlSeconds > MAX_LEASE_TTL_SECONDS) return fail(KvErrorCode.LeaseTtlTooLarge);
    let id = request.id;
    if (id === 0n) {
      id = BigInt(entryIndex);
      while (this.lookup(reader, id) !== undefined) id += 1n;
    } else if (this.lookup(reader, id) !== undefined) {
      return fail(KvErrorCode.LeaseExists);
    }
    const ttlSeconds = Math.max(request.ttlSeconds, MIN_LEASE_TTL_SECONDS);
    batch.put(this.leaseKey(id), encodeRecord(ttlSeconds));
    return {
      response: { kind: "leaseGrant", id, ttlSeconds },
      events: [],
      revision,
      change: { kind: "granted", id, ttlSeconds },
    };
  }

  /**
   * LeaseRevoke: deletes every attached key inside `keyBounds` at one new revision (none when
   * no key is attached, as in etcd) and then the lease. `timestamp` is the envelope's stamp.
   */
  revoke(
    reader: KvReader,
    batch: WriteBatch,
    request: LeaseRevokeRequest,
    timestamp: bigint,
    bounds: RevisionBounds,
    keyBounds: RangeBounds = FULL_BOUNDS,
  ): LeaseOutcome {
    const { id } = request;
    if (this.lookup(reader, id) === undefined) {
      return {
        response: errorResponse(KvErrorCode.LeaseNotFound),
        events: [],
        revision: bounds.current,
        change: null,
      };
    }
    // Only keys of this range are deleted; a split moved the attachments of the others away
    // (an attachment outside the bounds is dropped with the lease, never followed).
    const attached = this.attachedKeys(reader, id);
    const keys = attached.filter((key) => boundsContainKey(keyBounds, key));
    for (const key of attached)
      if (!boundsContainKey(keyBounds, key)) batch.delete(this.attachedKey(id, key));
    let events: readonly KvEvent[] = [];
    let revision = bounds.current;
    if (keys.length > 0) {
      revision = revisionForApply(bounds.current, timestamp);
      const writer = new CommandWriter(reader, batch, this.layout, revision, bounds);
      for (const key of keys) writer.run(deleteRangeRequest({ key }));
      events = writer.events;
      const strays = events.filter((event) => event.prevKv?.lease !== id).length;
      if (events.length !== keys.length || strays > 0) {
        throw new Error(
          `invariant violated: lease ${id} lists ${keys.length} attached keys but ` +
            `${events.length} live keys were deleted, ${strays} of them under another lease`,
        );
      }
      this.stageAttachments(reader, batch, events);
    }
    batch.delete(this.leaseKey(id));
    return { response: { kind: "leaseRevoke" }, events, revision, change: { kind: "revoked", id } };
  }

  /**
   * Stages a split's share of the lease table in `rhs` (another store's table): every lease
   * record is copied, and each attached key at or above `splitKey` moves there (the left
   * keeps the rest). With `copy` false (the right-hand store exists already) the attachments
   * of moved keys are only removed here.
   */
  stageSplit(
    reader: KvReader,
    batch: WriteBatch,
    rhs: LeaseTable,
    splitKey: Uint8Array,
    copy: boolean,
  ): void {
    if (copy) {
      for (const { key, value } of reader.scan(this.leasesStart, this.leasesEnd)) {
        batch.put(concatBytes(rhs.leasesStart, key.subarray(this.leasesStart.length)), value);
      }
    }
    const attachedEnd = prefixEnd(this.attachedStart);
    for (const { key } of reader.scan(this.attachedStart, attachedEnd)) {
      const userKey = key.subarray(this.attachedStart.length + ID_BYTES);
      if (compareBytes(userKey, splitKey) < 0) continue;
      batch.delete(key);
      if (copy) batch.put(concatBytes(rhs.attachedStart, key.subarray(this.attachedStart.length)), EMPTY);
    }
  }

  /**
   * Stages a merge's import of `source`'s table (read through `sourceReader`): a lease only
   * there is added, a lease in both keeps this table's record, and every attachment of the
   * source joins this table's (the merged keys are new here, so the attachments are a union).
   */
  stageMergeFrom(reader: KvReader, batch: WriteBatch, source: LeaseTable, sourceReader: KvReader): void {
    for (const { key, value } of sourceReader.scan(source.leasesStart, source.leasesEnd)) {
      const own = concatBytes(this.leasesStart, key.subarray(source.leasesStart.length));
      if (reader.get(own) === undefined) batch.put(own, value);
    }
    for (const { key } of sourceReader.scan(source.attachedStart, prefixEnd(source.attachedStart))) {
      batch.put(concatBytes(this.attachedStart, key.subarray(source.attachedStart.length)), EMPTY);
    }
  }

  private leaseKey(id: bigint): Uint8Array {
    return concatBytes(this.leasesStart, idBytes(id));
  }

  private attachedPrefix(id: bigint): Uint8Array {
    return concatBytes(this.attachedStart, idBytes(id));
  }

  private attachedKey(id: bigint, userKey: Uint8Array): Uint8Array {
    return concatBytes(this.attachedStart, idBytes(id), userKey);
  }
}

function encodeRecord(ttlSeconds: number): Uint8Array {
  return new ByteWriter(9).u8(RECORD_FORMAT).count(ttlSeconds).finish();
}

function decodeRecord(bytes: Uint8Array): number {
  const r = new ByteReader(bytes, "lease record");
  const format = r.u8();
  if (format !== RECORD_FORMAT) r.fail("unknown-version", `lease record format ${format}`);
  const ttlSeconds = r.count();
  r.end();
  return ttlSeconds;
}
