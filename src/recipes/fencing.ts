/**
 * The fencing token: a term counter kept in its own key `<subspace>/term`, never deleted and
 * only ever incremented (by the transaction that changes the holder), so a token survives
 * resignation, expiry, eviction and restart. Terms are stored as 20 decimal digits, so the
 * stored bytes order as the numbers do. `guard()` is the compare any write carries to be
 * refused under a stale term.
 */
import { CompareResult, CompareTarget, type Compare } from "../kv/commands.js";
import { bytesOf, textOf } from "./client.js";
import { RecipeRecordError } from "./errors.js";

const TERM_DIGITS = 20;
const MAX_TERM = (1n << 63n) - 1n;
const EMPTY = new Uint8Array(0);

/** `<subspace>/<name>` as bytes. */
export function subspaceKey(subspace: string, name: string): Uint8Array {
  return bytesOf(`${subspace}/${name}`);
}

export function termKey(subspace: string): Uint8Array {
  return subspaceKey(subspace, "term");
}

/** The key naming the current holder; it exists only while a holder holds. */
export function leaderKey(subspace: string): Uint8Array {
  return subspaceKey(subspace, "leader");
}

export function encodeTerm(term: bigint): Uint8Array {
  if (term < 0n || term > MAX_TERM) throw new RangeError(`term must be in 0..2^63-1, got ${term}`);
  return bytesOf(term.toString().padStart(TERM_DIGITS, "0"));
}

/** The term stored in `value`; an absent term key means term 0 (nobody was ever elected). */
export function decodeTerm(value: Uint8Array | undefined, key = "term"): bigint {
  if (value === undefined) return 0n;
  let text: string;
  try {
    text = textOf(value);
  } catch {
    throw new RecipeRecordError(key, "term is not UTF-8");
  }
  if (text.length !== TERM_DIGITS || !/^[0-9]+$/.test(text)) {
    throw new RecipeRecordError(key, `term ${JSON.stringify(text)} is not ${TERM_DIGITS} decimal digits`);
  }
  return BigInt(text);
}

/**
 * Compares that hold only while `term` is the current term of `subspace` and its holder still
 * holds: add them to any txn so that a write made under a stale term (a newer holder was
 * elected, or this one's leader record is gone: resigned, expired, evicted) fails.
 */
export function guard(subspace: string, term: bigint): Compare[] {
  if (term <= 0n) throw new RangeError(`a fencing term is at least 1, got ${term}`);
  return [
    {
      target: CompareTarget.Value,
      result: CompareResult.Equal,
      key: termKey(subspace),
      rangeEnd: EMPTY,
      value: encodeTerm(term),
    },
    {
      target: CompareTarget.Version,
      result: CompareResult.Greater,
      key: leaderKey(subspace),
      rangeEnd: EMPTY,
      operand: 0n,
    },
  ];
}
