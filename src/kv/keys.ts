/**
 * How the MVCC store lays itself out in an ordered byte keyspace: the order-preserving,
 * prefix-free user-key encoding, the descending revision suffix, the value header of each
 * stored version, and the key areas under a store's namespace (meta, dedup table, data).
 *
 *   namespace | 0x01 | field                      meta: applied index, revision, ...
 *   namespace | 0x02 | utf8(client id)            dedup: last sequence + result per client
 *   namespace | 0x03 | u64be(entry index)         dedup: clients by last use, for eviction
 *   namespace | 0x10 | enc(user key) | ^revision  data: one version of one key
 *
 * enc(k) escapes each 0x00 byte as 0x00 0xFF and ends with 0x00 0x01. Byte order of enc(k)
 * equals byte order of k, and no enc(k) is a prefix of another, so all versions of a key are
 * contiguous and a key's versions never interleave with a longer key's. ^revision is the
 * bitwise complement of the revision as 8 big-endian bytes: newest version first.
 */
import {
  DecodeError,
  EMPTY,
  I64_MAX,
  I64_MIN,
  concatBytes,
  prefixEnd,
  readU64,
  subrange,
  utf8,
  writeU64,
} from "./bytes.js";

const ESCAPE = 0x00;
const ESCAPED_ZERO = 0xff;
const TERMINATOR = 0x01;
const REVISION_BYTES = 8;
const U64_MASK = (1n << 64n) - 1n;

/**
 * The longest user key a write may name, each 0x00 byte counting twice (as encodeUserKey
 * escapes it). The durable engine (lmdb) stores keys of at most 1,978 bytes; a version key is
 * the key encoded plus 16 bytes of engine prefix, namespace, tag, terminator and revision, and
 * a lease attachment the raw key plus 14; 1,900 leaves room for both.
 */
export const MAX_KEY_BYTES = 1900;

/** Whether a write naming `key` must be refused (KeyTooLarge): see MAX_KEY_BYTES. */
export function keyTooLarge(key: Uint8Array): boolean {
  return key.length > MAX_KEY_BYTES || key.length + escapedBytes(key) > MAX_KEY_BYTES;
}

/** How many bytes of `key` encodeUserKey escapes (each then takes two). */
function escapedBytes(key: Uint8Array): number {
  let zeros = 0;
  for (const b of key) if (b === ESCAPE) zeros += 1;
  return zeros;
}

/** The order-preserving, prefix-free encoding of a user key. */
export function encodeUserKey(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(encodedUserKeyBytes(key));
  writeUserKey(out, 0, key);
  return out;
}

function encodedUserKeyBytes(key: Uint8Array): number {
  return key.length + escapedBytes(key) + 2;
}

/** Writes encodeUserKey(key) at `out[at..]`; returns the offset just past it. */
function writeUserKey(out: Uint8Array, at: number, key: Uint8Array): number {
  for (let i = 0; i < key.length; i++) {
    const b = key[i]!;
    out[at++] = b;
    if (b === ESCAPE) out[at++] = ESCAPED_ZERO;
  }
  out[at++] = ESCAPE;
  out[at++] = TERMINATOR;
  return at;
}

/** Decodes an encoded user key starting at `offset`; `end` is the offset just past it. */
export function decodeUserKey(bytes: Uint8Array, offset = 0): { key: Uint8Array; end: number } {
  const out: number[] = [];
  let i = offset;
  for (;;) {
    if (i >= bytes.length) throw new DecodeError("user key", "truncated", "no terminator");
    const b = bytes[i++]!;
    if (b !== ESCAPE) {
      out.push(b);
      continue;
    }
    const next = bytes[i++];
    if (next === ESCAPED_ZERO) out.push(ESCAPE);
    else if (next === TERMINATOR) return { key: Uint8Array.from(out), end: i };
    else throw new DecodeError("user key", "invalid-field", `bad escape 0x00 ${next ?? "(end)"}`);
  }
}

export function encodeDescendingRevision(revision: bigint): Uint8Array {
  const out = new Uint8Array(REVISION_BYTES);
  writeDescendingRevision(out, 0, revision);
  return out;
}

function writeDescendingRevision(out: Uint8Array, at: number, revision: bigint): void {
  if (revision < 0n || revision > U64_MASK) throw new RangeError(`revision out of range: ${revision}`);
  writeU64(out, at, ~revision & U64_MASK);
}

export function decodeDescendingRevision(bytes: Uint8Array, offset = 0): bigint {
  if (bytes.length - offset < REVISION_BYTES) throw new DecodeError("revision", "truncated", "need 8 bytes");
  return ~readU64(bytes, offset) & U64_MASK;
}

/** Fields of the meta area; each holds one u64, except the range's bounds and state (bounds.ts, split.ts). */
export enum MetaField {
  /** Version of this key layout and value format; a store refuses to open another. */
  LayoutVersion = 0,
  /** Raft index of the last entry the store applied. */
  AppliedIndex = 1,
  /** Revision of the last write. */
  Revision = 2,
  /** Revision of the last compaction; reads below it fail. */
  CompactedRevision = 3,
  /** Number of clients in the dedup table. */
  DedupClients = 4,
  /** The keys the store holds (encodeRangeBounds); absent: the whole keyspace. */
  Bounds = 5,
  /** Whether writes are fenced for a planned split (encodeRangeState); absent: active. */
  RangeState = 6,
  /** The last split this store applied (encodeAppliedSplit); absent: none. */
  LastSplit = 7,
  /** The last merge this store applied (encodeAppliedMerge); absent: none. */
  LastMerge = 8,
  /**
   * The compaction whose removals this replica finished (MvccStore.removalStep); absent:
   * none. Local, not replicated: each replica removes compacted versions at its own pace.
   */
  PhysicallyCompacted = 9,
  /**
   * The highest range id this store has split into or merged in (u64); absent: the higher of
   * the last split's and the last merge's. Route ids are allocated in increasing order, so a
   * fence or split naming an id no higher is a stale plan (split.ts).
   */
  HighestRangeId = 10,
}

export const LAYOUT_VERSION = 1n;

/**
 * The namespace of range `rangeId`'s store in an engine shared by every range of a node: the
 * id as 4 big-endian bytes, fixed width so that no range's namespace is a prefix of another's.
 */
export function rangeNamespace(rangeId: number): Uint8Array {
  if (!Number.isSafeInteger(rangeId) || rangeId < 0 || rangeId > 0xffff_ffff) {
    throw new RangeError(`range id must be in 0..2^32-1, got ${rangeId}`);
  }
  const namespace = new Uint8Array(4);
  new DataView(namespace.buffer).setUint32(0, rangeId, false);
  return namespace;
}

/** The range id whose namespace `namespace` is (rangeNamespace), or null when it is none. */
export function rangeIdOfNamespace(namespace: Uint8Array): number | null {
  if (namespace.length !== 4) return null;
  return new DataView(namespace.buffer, namespace.byteOffset, 4).getUint32(0, false);
}

const TAG_META = 0x01;
const TAG_DEDUP_CLIENT = 0x02;
// 0x03 held the dedup table's eviction order, which is no longer stored (see dedup.ts). Not to
// be reused: stores written before still hold such rows, and nothing reads them.
const TAG_DATA = 0x10;

/**
 * Key construction for one store under `namespace`. Stores sharing an engine (one per Raft
 * group on a node) need namespaces of which none is a prefix of another, e.g. a fixed-width
 * group id.
 */
export class KeyLayout {
  /** Every key of the store lies in [start, end); end null: up to the end of the keyspace. */
  readonly start: Uint8Array;
  readonly end: Uint8Array | null;
  readonly dataStart: Uint8Array;
  readonly dataEnd: Uint8Array;
  readonly dedupClientsStart: Uint8Array;
  readonly dedupClientsEnd: Uint8Array;

  readonly namespace: Uint8Array;
  private lastDedupClient: { readonly id: string; readonly key: Uint8Array } = { id: "", key: EMPTY };

  constructor(namespace: Uint8Array) {
    this.namespace = namespace.slice();
    this.start = this.namespace;
    this.end = prefixEnd(namespace);
    this.dataStart = this.tagged(TAG_DATA);
    this.dataEnd = this.tagged(TAG_DATA + 1);
    this.dedupClientsStart = this.tagged(TAG_DEDUP_CLIENT);
    this.dedupClientsEnd = this.tagged(TAG_DEDUP_CLIENT + 1);
  }

  metaKey(field: MetaField): Uint8Array {
    return concatBytes(this.namespace, Uint8Array.of(TAG_META, field));
  }

  /** Where all versions of `userKey` start; also the exclusive bound of keys below it. */
  versionsPrefix(userKey: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.dataStart.length + encodedUserKeyBytes(userKey));
    out.set(this.dataStart);
    writeUserKey(out, this.dataStart.length, userKey);
    return out;
  }

  /** Where the versions of the user keys in [start, end) lie (end null: up to the last key). */
  dataSpan(
    start: Uint8Array,
    end: Uint8Array | null,
  ): { readonly start: Uint8Array; readonly end: Uint8Array } {
    return { start: this.versionsPrefix(start), end: end === null ? this.dataEnd : this.versionsPrefix(end) };
  }

  /**
   * The key of `userKey`'s version at `revision`. Versions sort newest first, so the newest
   * version at or below some revision is the first key at or after dataKey(userKey, revision).
   */
  dataKey(userKey: Uint8Array, revision: bigint): Uint8Array {
    const out = new Uint8Array(this.dataStart.length + encodedUserKeyBytes(userKey) + REVISION_BYTES);
    out.set(this.dataStart);
    writeDescendingRevision(out, writeUserKey(out, this.dataStart.length, userKey), revision);
    return out;
  }

  parseDataKey(key: Uint8Array): { userKey: Uint8Array; revision: bigint } {
    const at = this.dataStart.length;
    const { key: userKey, end } = decodeUserKey(key, at);
    if (key.length - end !== REVISION_BYTES) {
      throw new DecodeError(
        "data key",
        "invalid-field",
        `expected 8 revision bytes, found ${key.length - end}`,
      );
    }
    return { userKey, revision: decodeDescendingRevision(key, end) };
  }

  /**
   * The key of `clientId`'s dedup record. The last one is kept: each applied command looks up
   * and records its client's, and a node's commands share one client id. Callers must not
   * change the bytes.
   */
  dedupClientKey(clientId: string): Uint8Array {
    if (clientId !== this.lastDedupClient.id) {
      this.lastDedupClient = { id: clientId, key: concatBytes(this.dedupClientsStart, utf8(clientId)) };
    }
    return this.lastDedupClient.key;
  }

  private tagged(tag: number): Uint8Array {
    return concatBytes(this.namespace, Uint8Array.of(tag));
  }
}

/** One stored version of a key, as kept in the value of its data key. */
export interface StoredVersion {
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  /** Number of puts since the key was (re)created; 0 on a tombstone. */
  readonly version: bigint;
  readonly lease: bigint;
  /** A deletion marker: the key does not exist from modRevision on. */
  readonly tombstone: boolean;
  readonly value: Uint8Array;
}

const VALUE_FORMAT = 1;
const FLAG_TOMBSTONE = 0x01;
/** format, flags, create, mod, version, lease */
const VALUE_HEADER_BYTES = 2 + 4 * 8;

export function encodeStoredVersion(v: StoredVersion): Uint8Array {
  checkU64(v.createRevision, "create revision");
  checkU64(v.modRevision, "mod revision");
  checkU64(v.version, "version");
  if (v.lease < I64_MIN || v.lease > I64_MAX) throw new Error(`i64 out of range: ${v.lease}`);
  // One exact allocation: a value is usually past the 64 bytes V8 keeps on its heap, and every
  // array beyond that costs a backing store.
  const out = new Uint8Array(VALUE_HEADER_BYTES + v.value.length);
  out[0] = VALUE_FORMAT;
  out[1] = v.tombstone ? FLAG_TOMBSTONE : 0;
  writeU64(out, 2, v.createRevision);
  writeU64(out, 10, v.modRevision);
  writeU64(out, 18, v.version);
  writeU64(out, 26, BigInt.asUintN(64, v.lease));
  out.set(v.value, VALUE_HEADER_BYTES);
  return out;
}

function checkU64(value: bigint, what: string): void {
  if (value < 0n || value > U64_MASK) throw new Error(`${what} out of range: ${value}`);
}

/**
 * The stored version encoded in `bytes`. Its value is a view of `bytes` (subrange), not a
 * copy: stored versions are exact arrays nobody changes (the engine's copies, the batch's
 * encodings).
 */
export function decodeStoredVersion(bytes: Uint8Array): StoredVersion {
  if (bytes.length < VALUE_HEADER_BYTES) {
    throw new DecodeError(
      "stored version",
      "truncated",
      `a header needs ${VALUE_HEADER_BYTES} bytes, ${bytes.length} given`,
    );
  }
  const format = bytes[0]!;
  if (format !== VALUE_FORMAT) {
    throw new DecodeError("stored version", "unknown-version", `value format ${format} (at byte 0)`);
  }
  const flags = bytes[1]!;
  if ((flags & ~FLAG_TOMBSTONE) !== 0) {
    throw new DecodeError(
      "stored version",
      "invalid-field",
      `unknown flags 0x${flags.toString(16)} (at byte 1)`,
    );
  }
  return {
    tombstone: flags === FLAG_TOMBSTONE,
    createRevision: readU64(bytes, 2),
    modRevision: readU64(bytes, 10),
    version: readU64(bytes, 18),
    lease: BigInt.asIntN(64, readU64(bytes, 26)),
    value: subrange(bytes, VALUE_HEADER_BYTES),
  };
}

/** Whether an encoded stored version is a tombstone, without decoding the rest. */
export function isTombstone(bytes: Uint8Array): boolean {
  if (bytes.length < VALUE_HEADER_BYTES || bytes[0] !== VALUE_FORMAT) {
    throw new DecodeError("stored version", "invalid-field", "not a stored version");
  }
  return (bytes[1]! & FLAG_TOMBSTONE) !== 0;
}
