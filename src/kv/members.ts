/**
 * The replicated member table: each cluster member's name, peer URLs and client URLs, kept in
 * the store's own keyspace so that every replica holds the same table, it changes in the batch
 * of the command that changes it, and snapshots carry it to new members. Raft's ConfState says
 * who is a voter or a learner; this table says what etcd's MemberList shows beside that.
 *
 *   namespace | 0x06 | u64be(member id)   record: format, name, peer URLs, client URLs
 *
 * (keys.ts owns tags 0x01-0x03 and 0x10, leases.ts 0x04 and 0x05.) The commands: MemberSet
 * replaces one member's record (MemberAdd and MemberUpdate write it, and a member publishes its
 * own name and URLs after it starts); MemberRemove deletes it. Neither creates a revision. A
 * record of an id that is not in the group's ConfState is not a member: MemberAdd writes the
 * record before the configuration change, so a change that never happens leaves one behind.
 */
import { ByteReader, ByteWriter, concatBytes } from "./bytes.js";
import type { KvReader, WriteBatch } from "./engine.js";
import type { KeyLayout } from "./keys.js";

/** The first byte (after the namespace) of every member-table key. */
export const MEMBER_TAG = 0x06;
const RECORD_FORMAT = 1;
const ID_BYTES = 8;
/** Most URLs of one kind a member may have. */
export const MAX_MEMBER_URLS = 16;
/** Longest member name or URL, in UTF-8 bytes. */
export const MAX_MEMBER_TEXT_BYTES = 1024;

/** One member's replicated attributes (etcd's Member without isLearner, which ConfState holds). */
export interface MemberAttributes {
  /** The member's Raft node id: a positive safe integer. */
  readonly id: number;
  /** Empty until the member has started and published it. */
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
}

/** Sets (creates or replaces) one member's record. */
export interface MemberSetRequest {
  readonly kind: "memberSet";
  readonly member: MemberAttributes;
}

/** Deletes one member's record (no error when there is none). */
export interface MemberRemoveRequest {
  readonly kind: "memberRemove";
  readonly id: number;
}

export type MemberCommand = MemberSetRequest | MemberRemoveRequest;

export interface MemberResponse {
  readonly kind: "member";
}

export function memberSetRequest(member: MemberAttributes): MemberSetRequest {
  return { kind: "memberSet", member };
}

export function memberRemoveRequest(id: number): MemberRemoveRequest {
  return { kind: "memberRemove", id };
}

const utf8Encoder = new TextEncoder();

function checkText(what: string, text: string): void {
  if (utf8Encoder.encode(text).length > MAX_MEMBER_TEXT_BYTES) {
    throw new RangeError(`${what} is longer than ${MAX_MEMBER_TEXT_BYTES} bytes`);
  }
}

function checkMemberId(id: number): void {
  if (!Number.isSafeInteger(id) || id <= 0)
    throw new RangeError(`member id must be a positive safe integer, got ${id}`);
}

function checkUrls(what: string, urls: readonly string[]): void {
  if (urls.length > MAX_MEMBER_URLS) throw new RangeError(`more than ${MAX_MEMBER_URLS} ${what}`);
  for (const url of urls) {
    if (url === "") throw new RangeError(`an empty string among the ${what}`);
    checkText(what, url);
  }
}

/** Throws RangeError unless `member` can be recorded (so a malformed one never reaches the log). */
export function checkMemberAttributes(member: MemberAttributes): void {
  checkMemberId(member.id);
  checkText("member name", member.name);
  checkUrls("peer URLs", member.peerUrls);
  checkUrls("client URLs", member.clientUrls);
}

function writeUrls(w: ByteWriter, urls: readonly string[]): void {
  w.u32(urls.length);
  for (const url of urls) w.string(url);
}

function readUrls(r: ByteReader, what: string): string[] {
  const n = r.u32();
  if (n > MAX_MEMBER_URLS) r.fail("invalid-field", `${n} ${what}, at most ${MAX_MEMBER_URLS}`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const url = r.string();
    if (url === "" || utf8Encoder.encode(url).length > MAX_MEMBER_TEXT_BYTES) {
      r.fail("invalid-field", `bad entry among the ${what}`);
    }
    out.push(url);
  }
  return out;
}

function writeMemberId(w: ByteWriter, id: number): void {
  checkMemberId(id);
  w.u64(BigInt(id));
}

function readMemberId(r: ByteReader): number {
  const id = r.u64();
  if (id === 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) r.fail("invalid-field", `member id ${id}`);
  return Number(id);
}

/** Writes a member command's fields (after the kind byte, which commands.ts owns). */
export function writeMemberCommand(w: ByteWriter, command: MemberCommand): void {
  if (command.kind === "memberRemove") {
    writeMemberId(w, command.id);
    return;
  }
  const { member } = command;
  checkMemberAttributes(member);
  writeMemberId(w, member.id);
  w.string(member.name);
  writeUrls(w, member.peerUrls);
  writeUrls(w, member.clientUrls);
}

export function readMemberSet(r: ByteReader): MemberSetRequest {
  const id = readMemberId(r);
  const name = r.string();
  if (utf8Encoder.encode(name).length > MAX_MEMBER_TEXT_BYTES)
    r.fail("invalid-field", "member name too long");
  const peerUrls = readUrls(r, "peer URLs");
  const clientUrls = readUrls(r, "client URLs");
  return memberSetRequest({ id, name, peerUrls, clientUrls });
}

export function readMemberRemove(r: ByteReader): MemberRemoveRequest {
  return memberRemoveRequest(readMemberId(r));
}

function encodeRecord(member: MemberAttributes): Uint8Array {
  const w = new ByteWriter().u8(RECORD_FORMAT).string(member.name);
  writeUrls(w, member.peerUrls);
  writeUrls(w, member.clientUrls);
  return w.finish();
}

function decodeRecord(id: number, bytes: Uint8Array): MemberAttributes {
  const r = new ByteReader(bytes, "member record");
  const format = r.u8();
  if (format !== RECORD_FORMAT) r.fail("unknown-version", `member record format ${format}`);
  const name = r.string();
  const peerUrls = readUrls(r, "peer URLs");
  const clientUrls = readUrls(r, "client URLs");
  r.end();
  return { id, name, peerUrls, clientUrls };
}

/** The member table of one store (its layout's namespace). */
export class MemberTable {
  private readonly start: Uint8Array;
  private readonly end: Uint8Array;

  constructor(layout: KeyLayout) {
    this.start = concatBytes(layout.namespace, Uint8Array.of(MEMBER_TAG));
    this.end = concatBytes(layout.namespace, Uint8Array.of(MEMBER_TAG + 1));
  }

  /** Every record, by id. */
  list(reader: KvReader): MemberAttributes[] {
    const out: MemberAttributes[] = [];
    for (const { key, value } of reader.scan(this.start, this.end)) {
      const r = new ByteReader(key.subarray(this.start.length), "member key");
      const id = readMemberId(r);
      r.end();
      out.push(decodeRecord(id, value));
    }
    return out;
  }

  /** Stages a member command's effect; it always succeeds (the codec validated it). */
  stage(batch: WriteBatch, command: MemberCommand): MemberResponse {
    if (command.kind === "memberSet") checkMemberAttributes(command.member);
    else checkMemberId(command.id);
    if (command.kind === "memberSet") batch.put(this.key(command.member.id), encodeRecord(command.member));
    else batch.delete(this.key(command.id));
    return { kind: "member" };
  }

  /** Stages a copy of every record in `target` (a split's new range starts with the same table). */
  stageCopy(reader: KvReader, batch: WriteBatch, target: MemberTable): void {
    for (const { key, value } of reader.scan(this.start, this.end)) {
      batch.put(concatBytes(target.start, key.subarray(this.start.length)), value);
    }
  }

  private key(id: number): Uint8Array {
    return concatBytes(this.start, new ByteWriter(ID_BYTES).u64(BigInt(id)).finish());
  }
}
