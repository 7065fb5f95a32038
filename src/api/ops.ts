/**
 * Builders of transaction compares and ops for `db.txn`, taking strings or bytes and the
 * comparison as an operator ("=", "!=", ">", "<"), so callers need not spell out the kv
 * layer's request records.
 */
import {
  CompareResult,
  CompareTarget,
  deleteRangeRequest,
  putRequest,
  rangeRequest,
  type Compare,
  type DeleteRangeRequest,
  type PutRequest,
  type RangeRequest,
} from "../kv/commands.js";
import { prefixEnd, toBytes, type Bytes } from "./db.js";

export type CompareOperator = "=" | "!=" | ">" | "<";

const RESULTS: Readonly<Record<CompareOperator, CompareResult>> = {
  "=": CompareResult.Equal,
  "!=": CompareResult.NotEqual,
  ">": CompareResult.Greater,
  "<": CompareResult.Less,
};

const EMPTY = new Uint8Array(0);

/** Compares the key's value (bytes) with `value`. */
export function compareValue(key: Bytes, operator: CompareOperator, value: Bytes): Compare {
  return {
    target: CompareTarget.Value,
    result: RESULTS[operator],
    key: toBytes(key),
    rangeEnd: EMPTY,
    value: toBytes(value),
  };
}

type NumberTarget = "version" | "createRevision" | "modRevision" | "lease";

const NUMBER_TARGETS: Readonly<Record<NumberTarget, Exclude<CompareTarget, CompareTarget.Value>>> = {
  version: CompareTarget.Version,
  createRevision: CompareTarget.Create,
  modRevision: CompareTarget.Mod,
  lease: CompareTarget.Lease,
};

/** Compares one of the key's numbers (a missing key has version and revisions 0). */
export function compareNumber(
  key: Bytes,
  target: NumberTarget,
  operator: CompareOperator,
  operand: bigint,
): Compare {
  return {
    target: NUMBER_TARGETS[target],
    result: RESULTS[operator],
    key: toBytes(key),
    rangeEnd: EMPTY,
    operand,
  };
}

export function putOp(
  key: Bytes,
  value: Bytes,
  options: { lease?: bigint; prevKv?: boolean } = {},
): PutRequest {
  return putRequest({
    key: toBytes(key),
    value: toBytes(value),
    lease: options.lease ?? 0n,
    prevKv: options.prevKv ?? false,
  });
}

export function getOp(key: Bytes, options: { prefix?: boolean } = {}): RangeRequest {
  const start = toBytes(key);
  return rangeRequest({ key: start, rangeEnd: options.prefix === true ? prefixEnd(start) : EMPTY });
}

export function deleteOp(
  key: Bytes,
  options: { prefix?: boolean; prevKv?: boolean } = {},
): DeleteRangeRequest {
  const start = toBytes(key);
  return deleteRangeRequest({
    key: start,
    rangeEnd: options.prefix === true ? prefixEnd(start) : EMPTY,
    prevKv: options.prevKv ?? false,
  });
}
