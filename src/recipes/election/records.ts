/**
 * The election's stored records and their versioned JSON encoding: the leader record
 * `<subspace>/leader` (holder, term, priority, lease, value) and a candidate's registration
 * `<subspace>/candidates/<id>` (id, priority, lease, value; its registration revision is the
 * key's create revision). Values are bytes, stored base64. Also the checks on the names a
 * caller chooses (subspace, candidate id, priority).
 */
import { bytesOf, textOf } from "../client.js";
import { RecipeConfigError, RecipeRecordError } from "../errors.js";

const RECORD_FORMAT = 1;
const MAX_CANDIDATE_ID_LENGTH = 256;

export interface LeaderRecord {
  readonly holder: string;
  /** The fencing token of this holder's tenure. */
  readonly term: bigint;
  /** The holder's registered priority when it was elected. */
  readonly priority: number;
  /** The lease the record is attached to (the holder's session). */
  readonly lease: bigint;
  readonly value: Uint8Array;
}

export interface CandidateRecord {
  readonly id: string;
  readonly priority: number;
  readonly lease: bigint;
  readonly value: Uint8Array;
}

export function checkSubspace(subspace: unknown): string {
  if (typeof subspace !== "string" || subspace.length === 0 || subspace.endsWith("/")) {
    throw new RecipeConfigError(
      `subspace must be a non-empty string not ending in "/", got ${JSON.stringify(subspace)}`,
    );
  }
  return subspace;
}

export function checkCandidateId(id: unknown): string {
  if (
    typeof id !== "string" ||
    id.length === 0 ||
    id.length > MAX_CANDIDATE_ID_LENGTH ||
    id.includes("/") ||
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f]/.test(id)
  ) {
    throw new RecipeConfigError(
      `candidate id must be 1..${MAX_CANDIDATE_ID_LENGTH} characters without "/" or control characters, got ${JSON.stringify(id)}`,
    );
  }
  return id;
}

export function checkPriority(priority: unknown): number {
  if (typeof priority !== "number" || !Number.isSafeInteger(priority)) {
    throw new RecipeConfigError(`priority must be a safe integer, got ${String(priority)}`);
  }
  return priority;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function parse(value: Uint8Array, key: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textOf(value));
  } catch {
    throw new RecipeRecordError(key, "not JSON");
  }
  if (typeof parsed !== "object" || parsed === null) throw new RecipeRecordError(key, "not an object");
  const record = parsed as Record<string, unknown>;
  if (record.format !== RECORD_FORMAT)
    throw new RecipeRecordError(key, `unknown format ${String(record.format)}`);
  return record;
}

function field<T>(
  record: Record<string, unknown>,
  name: string,
  key: string,
  check: (v: unknown) => T | undefined,
): T {
  const checked = check(record[name]);
  if (checked === undefined) throw new RecipeRecordError(key, `bad ${name} ${JSON.stringify(record[name])}`);
  return checked;
}

const asString = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const asPriority = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isSafeInteger(v) ? v : undefined;
const asUnsigned = (v: unknown): bigint | undefined =>
  typeof v === "string" && /^[0-9]{1,20}$/.test(v) ? BigInt(v) : undefined;
const asBytes = (v: unknown): Uint8Array | undefined =>
  typeof v === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(v)
    ? new Uint8Array(Buffer.from(v, "base64"))
    : undefined;

export function encodeLeaderRecord(record: LeaderRecord): Uint8Array {
  return bytesOf(
    JSON.stringify({
      format: RECORD_FORMAT,
      holder: record.holder,
      term: record.term.toString(),
      priority: record.priority,
      lease: record.lease.toString(),
      value: base64(record.value),
    }),
  );
}

export function decodeLeaderRecord(value: Uint8Array, key: string): LeaderRecord {
  const record = parse(value, key);
  return {
    holder: field(record, "holder", key, asString),
    term: field(record, "term", key, asUnsigned),
    priority: field(record, "priority", key, asPriority),
    lease: field(record, "lease", key, asUnsigned),
    value: field(record, "value", key, asBytes),
  };
}

export function encodeCandidateRecord(record: CandidateRecord): Uint8Array {
  return bytesOf(
    JSON.stringify({
      format: RECORD_FORMAT,
      id: record.id,
      priority: record.priority,
      lease: record.lease.toString(),
      value: base64(record.value),
    }),
  );
}

export function decodeCandidateRecord(value: Uint8Array, key: string): CandidateRecord {
  const record = parse(value, key);
  return {
    id: field(record, "id", key, asString),
    priority: field(record, "priority", key, asPriority),
    lease: field(record, "lease", key, asUnsigned),
    value: field(record, "value", key, asBytes),
  };
}
