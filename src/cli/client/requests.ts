/**
 * The key-value requests the commands send, built from etcdctl's flags: key ranges (a range
 * end, --prefix, --from-key), sort and limit, leases, revisions. Shared by `get`/`put`/`del`
 * and the op lines of a `txn` script. Bad input throws UsageError and builds nothing.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type DeleteRangeRequestSchema,
  type PutRequestSchema,
  type RangeRequestSchema,
} from "../../api/etcd/gen/rpc_pb.js";
import { UsageError } from "./errors.js";

const encoder = new TextEncoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The smallest key above every key starting with `prefix` ("\0" = no end: the whole keyspace). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.slice(0, i + 1);
    }
  }
  return Uint8Array.of(0);
}

export interface KeyRangeFlags {
  readonly prefix?: boolean;
  readonly fromKey?: boolean;
}

/** The key and range end a command's arguments and --prefix/--from-key select. */
export function keyRange(
  key: string,
  rangeEnd: string | undefined,
  flags: KeyRangeFlags,
): { key: Uint8Array; rangeEnd: Uint8Array } {
  if (flags.prefix === true && flags.fromKey === true)
    throw new UsageError("`--prefix` and `--from-key` cannot be set at the same time, choose one");
  if (rangeEnd !== undefined && flags.prefix === true)
    throw new UsageError("too many arguments, only accept one argument when `--prefix` is set");
  if (rangeEnd !== undefined && flags.fromKey === true)
    throw new UsageError("too many arguments, only accept one argument when `--from-key` is set");
  const keyBytes = bytes(key);
  // An empty prefix means every key: [\0, \0), as etcd's clients send it.
  if (flags.prefix === true && keyBytes.length === 0)
    return { key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0) };
  if (flags.prefix === true) return { key: keyBytes, rangeEnd: prefixEnd(keyBytes) };
  if (flags.fromKey === true)
    return { key: keyBytes.length === 0 ? Uint8Array.of(0) : keyBytes, rangeEnd: Uint8Array.of(0) };
  return { key: keyBytes, rangeEnd: rangeEnd === undefined ? new Uint8Array(0) : bytes(rangeEnd) };
}

/** A non-negative decimal integer flag ("--rev", "--limit", a revision argument). */
export function parseCount(value: string, what: string): bigint {
  if (!/^\d+$/.test(value)) throw new UsageError(`bad ${what} "${value}": expected a non-negative integer`);
  const parsed = BigInt(value);
  if (parsed > 2n ** 63n - 1n) throw new UsageError(`bad ${what} "${value}": too large`);
  return parsed;
}

/** A lease or member id in hex, as etcdctl prints and takes them. */
export function parseHexId(value: string, what: string): bigint {
  if (!/^[0-9a-fA-F]{1,16}$/.test(value))
    throw new UsageError(`bad ${what} "${value}": expected a hexadecimal id (up to 16 digits)`);
  return BigInt(`0x${value}`);
}

/** A lease id argument: hex, then as a signed 64-bit number the API carries. */
export function parseLeaseId(value: string): bigint {
  return BigInt.asIntN(64, parseHexId(value, "lease ID"));
}

export interface GetFlags extends KeyRangeFlags {
  readonly limit?: string;
  readonly rev?: string;
  readonly sortBy?: string;
  readonly order?: string;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly consistency?: string;
}

const SORT_TARGETS: Record<string, RangeRequest_SortTarget> = {
  CREATE: RangeRequest_SortTarget.Create,
  KEY: RangeRequest_SortTarget.Key,
  MODIFY: RangeRequest_SortTarget.Mod,
  VALUE: RangeRequest_SortTarget.Value,
  VERSION: RangeRequest_SortTarget.Version,
};

const SORT_ORDERS: Record<string, RangeRequest_SortOrder> = {
  ASCEND: RangeRequest_SortOrder.Ascend,
  DESCEND: RangeRequest_SortOrder.Descend,
};

export function rangeRequest(
  key: string,
  rangeEnd: string | undefined,
  flags: GetFlags,
): MessageInitShape<typeof RangeRequestSchema> {
  const range = keyRange(key, rangeEnd, flags);
  let sortTarget = RangeRequest_SortTarget.Key;
  let sortOrder = RangeRequest_SortOrder.None;
  if (flags.sortBy !== undefined && flags.sortBy !== "") {
    const target = SORT_TARGETS[flags.sortBy.toUpperCase()];
    if (target === undefined)
      throw new UsageError(`bad --sort-by "${flags.sortBy}": one of CREATE, KEY, MODIFY, VALUE, VERSION`);
    sortTarget = target;
    sortOrder = RangeRequest_SortOrder.Ascend;
  }
  if (flags.order !== undefined && flags.order !== "") {
    const order = SORT_ORDERS[flags.order.toUpperCase()];
    if (order === undefined) throw new UsageError(`bad --order "${flags.order}": ASCEND or DESCEND`);
    sortOrder = order;
  }
  const consistency = flags.consistency ?? "l";
  if (consistency !== "l" && consistency !== "s")
    throw new UsageError(`unknown consistency flag "${consistency}": l (linearizable) or s (serializable)`);
  return {
    ...range,
    limit: flags.limit === undefined ? 0n : parseCount(flags.limit, "--limit"),
    revision: flags.rev === undefined ? 0n : parseCount(flags.rev, "--rev"),
    sortOrder,
    sortTarget,
    serializable: consistency === "s",
    keysOnly: flags.keysOnly === true,
    countOnly: flags.countOnly === true,
  };
}

export interface PutFlags {
  readonly lease?: string;
  readonly prevKv?: boolean;
}

export function putRequest(
  key: string,
  value: string,
  flags: PutFlags,
): MessageInitShape<typeof PutRequestSchema> {
  return {
    key: bytes(key),
    value: bytes(value),
    lease: flags.lease === undefined || flags.lease === "0" ? 0n : parseLeaseId(flags.lease),
    prevKv: flags.prevKv === true,
  };
}

export interface DelFlags extends KeyRangeFlags {
  readonly prevKv?: boolean;
}

export function deleteRequest(
  key: string,
  rangeEnd: string | undefined,
  flags: DelFlags,
): MessageInitShape<typeof DeleteRangeRequestSchema> {
  return { ...keyRange(key, rangeEnd, flags), prevKv: flags.prevKv === true };
}
