/**
 * Where the route catalog lives in the meta range and how its records are encoded.
 *
 * Keys (under a prefix, `catalog/` by default): `version`, `next_route_id`, `route/<id>` and
 * `delta/<version>`, ids and versions as 8-byte big-endian integers so that key order is
 * numeric order. The suffixes sort as delta/ < next_route_id < route/ < version, so one range
 * read from `next_route_id` to the end of the prefix returns the whole catalog except the
 * deltas: a snapshot at one revision.
 *
 * Values: a format byte (RECORD_FORMAT) first, then big-endian fixed-width integers and
 * u32-length-prefixed byte strings (src/kv/bytes.ts). Decoders reject an unknown format,
 * truncation, trailing bytes and any field a valid record cannot hold with CatalogDecodeError;
 * encoders refuse a descriptor that breaks a rule with InvalidCatalogError.
 */
import { ByteReader, ByteWriter, DecodeError, concatBytes, prefixEnd, utf8 } from "../../kv/bytes.js";
import {
  ROUTE_STATES,
  isValidId,
  validateDescriptor,
  type RouteDescriptor,
  type RouteState,
} from "./descriptor.js";
import { CatalogDecodeError, InvalidCatalogError } from "./errors.js";

/** Format byte of every catalog record. */
export const RECORD_FORMAT = 1;

export const DEFAULT_CATALOG_PREFIX = "catalog/";

/** What one catalog version changed: the routes added or changed, and the ids removed. */
export interface CatalogDelta {
  /** The version this delta produces (the previous one is version - 1). */
  readonly version: number;
  /** New and changed routes, whole. */
  readonly upserts: readonly RouteDescriptor[];
  /** Ids of the routes removed. */
  readonly removed: readonly number[];
}

function u64be(value: number): Uint8Array {
  return new ByteWriter(8).u64(BigInt(value)).finish();
}

/** The catalog's keys in the meta range. */
export class CatalogKeys {
  readonly prefix: Uint8Array;
  readonly version: Uint8Array;
  readonly nextRouteId: Uint8Array;
  readonly routePrefix: Uint8Array;
  readonly deltaPrefix: Uint8Array;
  /** Exclusive end of everything under the prefix. */
  readonly end: Uint8Array;

  constructor(prefix: Uint8Array = utf8(DEFAULT_CATALOG_PREFIX)) {
    const end = prefixEnd(prefix);
    if (prefix.length === 0 || end === null) {
      throw new RangeError("the catalog prefix must be non-empty and not all 0xFF bytes");
    }
    this.prefix = prefix;
    this.end = end;
    this.version = concatBytes(prefix, utf8("version"));
    this.nextRouteId = concatBytes(prefix, utf8("next_route_id"));
    this.routePrefix = concatBytes(prefix, utf8("route/"));
    this.deltaPrefix = concatBytes(prefix, utf8("delta/"));
  }

  route(routeId: number): Uint8Array {
    return concatBytes(this.routePrefix, u64be(routeId));
  }

  delta(version: number): Uint8Array {
    return concatBytes(this.deltaPrefix, u64be(version));
  }

  /** Exclusive end of the delta keys. */
  get deltaEnd(): Uint8Array {
    return prefixEnd(this.deltaPrefix)!;
  }

  /** The route id of a `route/<id>` key, or null for any other key. */
  routeIdOf(key: Uint8Array): number | null {
    return this.numberAfter(this.routePrefix, key, "route key");
  }

  /** The version of a `delta/<version>` key, or null for any other key. */
  deltaVersionOf(key: Uint8Array): number | null {
    return this.numberAfter(this.deltaPrefix, key, "delta key");
  }

  private numberAfter(prefix: Uint8Array, key: Uint8Array, what: string): number | null {
    if (key.length < prefix.length) return null;
    for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return null;
    return decoding(what, key.subarray(prefix.length), (r) => readId(r, what));
  }
}

/** Runs `read` over all of `bytes`, turning every malformation into CatalogDecodeError. */
function decoding<T>(what: string, bytes: Uint8Array, read: (r: ByteReader) => T): T {
  try {
    const r = new ByteReader(bytes, what);
    const value = read(r);
    r.end();
    return value;
  } catch (error) {
    if (error instanceof DecodeError) throw new CatalogDecodeError(what, error.failure, error.message);
    if (error instanceof InvalidCatalogError)
      throw new CatalogDecodeError(what, "invalid-field", error.message);
    throw error;
  }
}

function readFormat(r: ByteReader): void {
  const format = r.u8();
  if (format !== RECORD_FORMAT)
    r.fail("unknown-version", `format ${format}, this build reads ${RECORD_FORMAT}`);
}

function readId(r: ByteReader, field: string): number {
  const value = r.u64();
  if (value < 1n || value > BigInt(Number.MAX_SAFE_INTEGER))
    r.fail("invalid-field", `${field} ${value} is not in 1..2^53-1`);
  return Number(value);
}

function writeNumberRecord(value: number, what: string): Uint8Array {
  if (!isValidId(value)) throw new RangeError(`${what} ${String(value)} is not in 1..2^53-1`);
  return new ByteWriter(9).u8(RECORD_FORMAT).u64(BigInt(value)).finish();
}

/** `catalog/version`: the catalog version, >= 1 once initialized. */
export function encodeVersion(version: number): Uint8Array {
  return writeNumberRecord(version, "catalog version");
}

export function decodeVersion(bytes: Uint8Array): number {
  return decoding("catalog version", bytes, (r) => {
    readFormat(r);
    return readId(r, "version");
  });
}

/** `catalog/next_route_id`: the lowest route id never handed out. */
export function encodeNextRouteId(next: number): Uint8Array {
  return writeNumberRecord(next, "next route id");
}

export function decodeNextRouteId(bytes: Uint8Array): number {
  return decoding("next route id", bytes, (r) => {
    readFormat(r);
    return readId(r, "next route id");
  });
}

function stateCode(state: RouteState): number {
  return ROUTE_STATES.indexOf(state) + 1;
}

function writeDescriptorBody(w: ByteWriter, route: RouteDescriptor): void {
  validateDescriptor(route);
  w.u64(BigInt(route.routeId)).bytes(route.start);
  if (route.end === null) w.u8(0);
  else w.u8(1).bytes(route.end);
  w.u64(BigInt(route.groupId))
    .u8(stateCode(route.state))
    .u64(BigInt(route.parentRouteId ?? 0))
    .u64(route.splitAt);
}

function readDescriptorBody(r: ByteReader): RouteDescriptor {
  const routeId = readId(r, "route id");
  const start = r.bytes();
  const hasEnd = r.u8();
  if (hasEnd > 1) r.fail("invalid-field", `end marker ${hasEnd}`);
  const end = hasEnd === 1 ? r.bytes() : null;
  const groupId = readId(r, "group id");
  const code = r.u8();
  const state = ROUTE_STATES[code - 1];
  if (state === undefined) r.fail("invalid-field", `route state code ${code}`);
  const parent = r.u64();
  if (parent > BigInt(Number.MAX_SAFE_INTEGER)) r.fail("invalid-field", `parent route id ${parent}`);
  const splitAt = r.u64();
  const route: RouteDescriptor = {
    routeId,
    start,
    end,
    groupId,
    state,
    parentRouteId: parent === 0n ? null : Number(parent),
    splitAt,
  };
  validateDescriptor(route);
  return route;
}

/** `catalog/route/<id>`: one route descriptor. Throws InvalidCatalogError for an invalid one. */
export function encodeDescriptor(route: RouteDescriptor): Uint8Array {
  const w = new ByteWriter(64).u8(RECORD_FORMAT);
  writeDescriptorBody(w, route);
  return w.finish();
}

export function decodeDescriptor(bytes: Uint8Array): RouteDescriptor {
  return decoding("route descriptor", bytes, (r) => {
    readFormat(r);
    return readDescriptorBody(r);
  });
}

function checkDeltaIds(delta: CatalogDelta): string | null {
  const seen = new Set<number>();
  for (const id of [...delta.upserts.map((route) => route.routeId), ...delta.removed]) {
    if (!isValidId(id)) return `route id ${String(id)} is not in 1..2^53-1`;
    if (seen.has(id)) return `route id ${id} appears twice`;
    seen.add(id);
  }
  return null;
}

/** `catalog/delta/<version>`: what that version changed. Throws RangeError for a malformed delta. */
export function encodeDelta(delta: CatalogDelta): Uint8Array {
  if (!isValidId(delta.version))
    throw new RangeError(`delta version ${String(delta.version)} is not in 1..2^53-1`);
  const problem = checkDeltaIds(delta);
  if (problem !== null) throw new RangeError(`malformed catalog delta: ${problem}`);
  const w = new ByteWriter(64).u8(RECORD_FORMAT).u64(BigInt(delta.version)).u32(delta.upserts.length);
  for (const route of delta.upserts) writeDescriptorBody(w, route);
  w.u32(delta.removed.length);
  for (const id of delta.removed) w.u64(BigInt(id));
  return w.finish();
}

export function decodeDelta(bytes: Uint8Array): CatalogDelta {
  return decoding("catalog delta", bytes, (r) => {
    readFormat(r);
    const version = readId(r, "delta version");
    const upserts: RouteDescriptor[] = [];
    const upsertCount = r.u32();
    for (let i = 0; i < upsertCount; i++) upserts.push(readDescriptorBody(r));
    const removed: number[] = [];
    const removedCount = r.u32();
    for (let i = 0; i < removedCount; i++) removed.push(readId(r, "removed route id"));
    const delta = { version, upserts, removed };
    const problem = checkDeltaIds(delta);
    if (problem !== null) r.fail("invalid-field", problem);
    return delta;
  });
}
