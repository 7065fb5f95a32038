/**
 * The election's key layout under its subspace, and the one-read snapshot of everything in
 * it (config, leader record, term, registered candidates in election order) that every
 * decision of the recipe is made from, with the revision it was read at.
 */
import { CompareResult, CompareTarget, type Compare } from "../../kv/commands.js";
import type { KeyValue } from "../../kv/results.js";
import { bytesOf, prefixEnd, type RecipeClient } from "../client.js";
import { decodeTerm, leaderKey, subspaceKey, termKey } from "../fencing.js";
import { decodeElectionConfig, type ElectionConfig } from "./config.js";
import {
  decodeCandidateRecord,
  decodeLeaderRecord,
  type CandidateRecord,
  type LeaderRecord,
} from "./records.js";

const EMPTY = new Uint8Array(0);
/** Key names for messages and matching; other tools may store non-UTF-8 keys nearby. */
const lenientUtf8 = new TextDecoder();

function keyText(key: Uint8Array): string {
  return lenientUtf8.decode(key);
}

/** The keys of one election. */
export class ElectionKeys {
  readonly all: Uint8Array;
  readonly config: Uint8Array;
  readonly leader: Uint8Array;
  readonly term: Uint8Array;
  readonly candidatesPrefix: Uint8Array;

  constructor(readonly subspace: string) {
    this.all = bytesOf(`${subspace}/`);
    this.config = subspaceKey(subspace, "config");
    this.leader = leaderKey(subspace);
    this.term = termKey(subspace);
    this.candidatesPrefix = subspaceKey(subspace, "candidates/");
  }

  candidate(id: string): Uint8Array {
    return subspaceKey(this.subspace, `candidates/${id}`);
  }

  /** The candidate id of a key under the candidates prefix, or undefined for any other key. */
  candidateIdOf(key: Uint8Array): string | undefined {
    const text = keyText(key);
    const prefix = `${this.subspace}/candidates/`;
    if (!text.startsWith(prefix)) return undefined;
    const id = text.slice(prefix.length);
    return id.length > 0 && !id.includes("/") ? id : undefined;
  }
}

export interface RegisteredCandidate {
  readonly record: CandidateRecord;
  /** The lease the record is attached to (the candidate's session). */
  readonly lease: bigint;
  /** Registration order: the key's create revision. */
  readonly createRevision: bigint;
  readonly modRevision: bigint;
}

export interface ElectionState {
  /** The revision the state was read at. */
  readonly revision: bigint;
  readonly config: ElectionConfig | null;
  readonly configModRevision: bigint;
  readonly leader: LeaderRecord | null;
  readonly leaderKv: KeyValue | null;
  readonly term: bigint;
  readonly termModRevision: bigint;
  /** Best first: highest priority, then earliest registration. */
  readonly candidates: readonly RegisteredCandidate[];
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Election order: higher priority first, equal priorities by registration (FIFO). */
export function electionOrder(a: RegisteredCandidate, b: RegisteredCandidate): number {
  if (a.record.priority !== b.record.priority) return b.record.priority - a.record.priority;
  if (a.createRevision !== b.createRevision) return a.createRevision < b.createRevision ? -1 : 1;
  return a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0;
}

/** Reads the whole subspace at one revision. */
export async function readElectionState(client: RecipeClient, keys: ElectionKeys): Promise<ElectionState> {
  const result = await client.range(keys.all, { prefix: true });
  let config: ElectionConfig | null = null;
  let configModRevision = 0n;
  let leader: LeaderRecord | null = null;
  let leaderKv: KeyValue | null = null;
  let term = 0n;
  let termModRevision = 0n;
  const candidates: RegisteredCandidate[] = [];
  for (const kv of result.kvs) {
    const name = keyText(kv.key);
    if (sameBytes(kv.key, keys.config)) {
      config = decodeElectionConfig(kv.value, name);
      configModRevision = kv.modRevision;
    } else if (sameBytes(kv.key, keys.leader)) {
      leader = decodeLeaderRecord(kv.value, name);
      leaderKv = kv;
    } else if (sameBytes(kv.key, keys.term)) {
      term = decodeTerm(kv.value, name);
      termModRevision = kv.modRevision;
    } else if (keys.candidateIdOf(kv.key) !== undefined) {
      candidates.push({
        record: decodeCandidateRecord(kv.value, name),
        lease: kv.lease,
        createRevision: kv.createRevision,
        modRevision: kv.modRevision,
      });
    }
  }
  candidates.sort(electionOrder);
  return {
    revision: result.revision,
    config,
    configModRevision,
    leader,
    leaderKv,
    term,
    termModRevision,
    candidates,
  };
}

export function modRevisionIs(key: Uint8Array, modRevision: bigint): Compare {
  return {
    target: CompareTarget.Mod,
    result: CompareResult.Equal,
    key,
    rangeEnd: EMPTY,
    operand: modRevision,
  };
}

export function leaseIs(key: Uint8Array, lease: bigint): Compare {
  return { target: CompareTarget.Lease, result: CompareResult.Equal, key, rangeEnd: EMPTY, operand: lease };
}

export function keyAbsent(key: Uint8Array): Compare {
  return { target: CompareTarget.Version, result: CompareResult.Equal, key, rangeEnd: EMPTY, operand: 0n };
}

/** Holds when no key under `prefix` was created or changed after `revision` (deletions are not seen). */
export function unchangedSince(prefix: Uint8Array, revision: bigint): Compare {
  return {
    target: CompareTarget.Mod,
    result: CompareResult.Less,
    key: prefix,
    rangeEnd: prefixEnd(prefix),
    operand: revision + 1n,
  };
}
