/**
 * `concord range list|split|merge`, over Concord's own Ranges admin service (concordpb.Ranges, served
 * on the client port next to the etcd API), with etcdctl's habits: --endpoints failover for
 * the list (a read), never a resent split or merge (writes), -w simple|table|json, the exit codes of
 * the other commands. Owns the printers of ranges: keys shown readably (see `displayKey`), an
 * unbounded end as "+inf", member ids in hex as `member list` prints them, sizes as
 * go-humanize does; json is the response as etcd's Go structs would marshal it (keys base64,
 * an empty end meaning +inf).
 */
import {
  ListRangesResponseSchema,
  MergeRangeResponseSchema,
  Ranges,
  SplitRangeResponseSchema,
  type RangeInfo,
} from "../../api/etcd/gen/concord/ranges_pb.js";
import type { ClientContext } from "./context.js";
import { CommandError, UsageError } from "./errors.js";
import type { OutputFormat } from "./printers.js";
import { goJson, hexId, humanBytes, jsonText, renderTable } from "./render.js";

/** What the end of an unbounded range prints as. */
export const UNBOUNDED_END = "+inf";

const PLAIN_KEY = /^[\x21-\x7e]+$/;

/**
 * A key as text a person can read and type back: printable ASCII without spaces, quotes or
 * backslashes as is; anything else (the empty key, spaces, control or non-ASCII bytes, and a
 * key spelled like "+inf") double-quoted with Go-style escapes (\" \\ \xNN).
 */
export function displayKey(key: Uint8Array): string {
  const raw = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
  if (PLAIN_KEY.test(raw) && !/["\\]/.test(raw) && raw !== UNBOUNDED_END) return raw;
  let quoted = '"';
  for (const byte of key) {
    if (byte === 0x22) quoted += '\\"';
    else if (byte === 0x5c) quoted += "\\\\";
    else if (byte >= 0x20 && byte <= 0x7e) quoted += String.fromCharCode(byte);
    else quoted += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return `${quoted}"`;
}

/** A split key from the command line: the argument's UTF-8 bytes, or with --hex its hex digits. */
export function parseSplitKey(argument: string, hex: boolean): Uint8Array {
  if (hex) {
    if (!/^([0-9a-fA-F]{2})+$/.test(argument))
      throw new UsageError(`bad split key "${argument}" for --hex: expected an even number of hex digits`);
    return Uint8Array.from(Buffer.from(argument, "hex"));
  }
  if (argument === "") throw new UsageError("the split key must not be empty");
  return new TextEncoder().encode(argument);
}

/** A route id from the command line: a positive decimal integer, as `range list` prints it. */
export function parseRouteId(argument: string): bigint {
  if (!/^[1-9][0-9]{0,15}$/.test(argument) || !Number.isSafeInteger(Number(argument)))
    throw new UsageError(`bad range id "${argument}": expected the positive integer range list shows`);
  return BigInt(argument);
}

/** Requests per second with at most one decimal ("0", "12.5", "1200"). */
function loadText(opsPerSecond: number): string {
  return String(Math.round(opsPerSecond * 10) / 10);
}

const RANGE_COLUMNS = ["ID", "START", "END", "GROUP", "STATE", "REPLICAS", "LEADER", "SIZE", "LOAD"];

function rangeRow(range: RangeInfo): string[] {
  return [
    String(range.routeId),
    displayKey(range.start),
    range.end.length === 0 ? UNBOUNDED_END : displayKey(range.end),
    String(range.groupId),
    range.state,
    range.replicas.map(hexId).join(","),
    range.leader === 0n ? "-" : hexId(range.leader),
    humanBytes(range.sizeBytes),
    loadText(range.opsPerSecond),
  ];
}

/** Ranges as a table or as `member list`-style comma-separated lines. */
function printRanges(format: Exclude<OutputFormat, "json">, ranges: readonly RangeInfo[]): string {
  const rows = ranges.map(rangeRow);
  if (format === "table") return renderTable(RANGE_COLUMNS, rows);
  return rows.map((row) => `${row.join(", ")}\n`).join("");
}

/** UNIMPLEMENTED: an etcd server, or a Concord member that serves no range admin. */
function explainUnimplemented(error: unknown): unknown {
  if (error instanceof CommandError && /does not implement the method/.test(error.message))
    return new CommandError(
      "this endpoint does not serve Concord's ranges admin API (concordpb.Ranges): is it etcd, or a Concord member without ranges?",
    );
  return error;
}

export async function runRangeList(ctx: ClientContext): Promise<void> {
  const { response } = await ctx
    .connect()
    .unary(Ranges.method.list, {}, { idempotent: true })
    .catch((error: unknown) => {
      throw explainUnimplemented(error);
    });
  if (ctx.format === "json") ctx.out(`${jsonText(goJson(ListRangesResponseSchema, response))}\n`);
  else ctx.out(printRanges(ctx.format, response.ranges));
}

export async function runRangeSplit(ctx: ClientContext, keyArgument: string, hex: boolean): Promise<void> {
  const key = parseSplitKey(keyArgument, hex);
  const { response } = await ctx
    .connect()
    .unary(Ranges.method.split, { key }, { idempotent: false })
    .catch((error: unknown) => {
      throw explainUnimplemented(error);
    });
  if (ctx.format === "json") {
    ctx.out(`${jsonText(goJson(SplitRangeResponseSchema, response))}\n`);
    return;
  }
  const sides = [response.left, response.right].filter((side) => side !== undefined);
  ctx.out(printRanges(ctx.format, sides));
}

export async function runRangeMerge(ctx: ClientContext, idArgument: string): Promise<void> {
  const routeId = parseRouteId(idArgument);
  const { response } = await ctx
    .connect()
    .unary(Ranges.method.merge, { routeId }, { idempotent: false })
    .catch((error: unknown) => {
      throw explainUnimplemented(error);
    });
  if (ctx.format === "json") {
    ctx.out(`${jsonText(goJson(MergeRangeResponseSchema, response))}\n`);
    return;
  }
  ctx.out(printRanges(ctx.format, response.merged === undefined ? [] : [response.merged]));
}
