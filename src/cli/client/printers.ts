/**
 * What each client command prints for a response, in etcdctl's three formats: `simple`
 * (etcdctl's lines: "OK", key and value lines, "lease … granted with TTL(…)"), `json` (etcd's
 * Go structs as JSON, see render.ts) and `table` (where etcdctl draws one: kvs, members,
 * endpoints, health, leases, status). Pure functions from responses to text.
 */
import type { KeyValue, Event } from "../../api/etcd/gen/kv_pb.js";
import { EventSchema, Event_EventType } from "../../api/etcd/gen/kv_pb.js";
import {
  CompactionResponseSchema,
  DeleteRangeResponseSchema,
  MemberListResponseSchema,
  PutResponseSchema,
  RangeResponseSchema,
  ResponseHeaderSchema,
  StatusResponseSchema,
  TxnResponseSchema,
  type CompactionResponse,
  type DeleteRangeResponse,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  type LeaseTimeToLiveResponse,
  type Member,
  type MemberListResponse,
  type PutResponse,
  type RangeResponse,
  type ResponseHeader,
  type ResponseOp,
  type StatusResponse,
  type TxnResponse,
  type WatchResponse,
} from "../../api/etcd/gen/rpc_pb.js";
import { UsageError } from "./errors.js";
import { goJson, hexId, humanBytes, jsonText, leaseHex, renderTable, text, type JsonLike } from "./render.js";

export type OutputFormat = "simple" | "table" | "json";
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["simple", "table", "json"];

/** Refuses a format a command cannot print, before the command sends anything. */
export function requireFormat(
  format: OutputFormat,
  supported: readonly OutputFormat[],
  command: string,
): void {
  if (!supported.includes(format))
    throw new UsageError(`${format} is not a supported output format for ${command}`);
}

const json = (value: JsonLike) => `${jsonText(value)}\n`;

function headerJson(header: ResponseHeader | undefined): { [key: string]: JsonLike } {
  return header === undefined ? {} : goJson(ResponseHeaderSchema, header);
}

function kvLines(kv: KeyValue, valueOnly = false): string {
  return valueOnly ? `${text(kv.value)}\n` : `${text(kv.key)}\n${text(kv.value)}\n`;
}

export interface GetPrintOptions {
  readonly printValueOnly?: boolean;
  readonly countOnly?: boolean;
}

export function printGet(
  format: OutputFormat,
  response: RangeResponse,
  options: GetPrintOptions = {},
): string {
  if (format === "json") return json(goJson(RangeResponseSchema, response));
  if (format === "table") {
    return renderTable(
      ["KEY", "VALUE", "CREATE REVISION", "MOD REVISION", "VERSION", "LEASE"],
      response.kvs.map((kv) => [
        text(kv.key),
        text(kv.value),
        String(kv.createRevision),
        String(kv.modRevision),
        String(kv.version),
        kv.lease === 0n ? "" : leaseHex(kv.lease),
      ]),
    );
  }
  if (options.countOnly === true) return `${response.count}\n`;
  return response.kvs.map((kv) => kvLines(kv, options.printValueOnly === true)).join("");
}

export function printPut(format: OutputFormat, response: PutResponse): string {
  if (format === "json") return json(goJson(PutResponseSchema, response));
  return `OK\n${response.prevKv === undefined ? "" : kvLines(response.prevKv)}`;
}

export function printDelete(format: OutputFormat, response: DeleteRangeResponse): string {
  if (format === "json") return json(goJson(DeleteRangeResponseSchema, response));
  return `${response.deleted}\n${response.prevKvs.map((kv) => kvLines(kv)).join("")}`;
}

function simpleResponseOp(op: ResponseOp): string {
  switch (op.response.case) {
    case "responsePut":
      return printPut("simple", op.response.value);
    case "responseRange":
      return printGet("simple", op.response.value);
    case "responseDeleteRange":
      return printDelete("simple", op.response.value);
    case "responseTxn":
      return printTxn("simple", op.response.value);
    default:
      return "";
  }
}

export function printTxn(format: OutputFormat, response: TxnResponse): string {
  if (format === "json") return json(goJson(TxnResponseSchema, response));
  const outcome = response.succeeded ? "SUCCESS\n" : "FAILURE\n";
  return outcome + response.responses.map((op) => `\n${simpleResponseOp(op)}`).join("");
}

export function printCompaction(
  format: OutputFormat,
  response: CompactionResponse,
  revision: bigint,
): string {
  if (format === "json") return json(goJson(CompactionResponseSchema, response));
  return `compacted revision ${revision}\n`;
}

function simpleEvent(event: Event): string {
  const type = event.type === Event_EventType.Delete ? "DELETE" : "PUT";
  const prev = event.prevKv === undefined ? "" : kvLines(event.prevKv);
  return `${type}\n${prev}${event.kv === undefined ? "" : kvLines(event.kv)}`;
}

/** One watch response's events (etcdctl prints nothing for a response without events). */
export function printWatch(format: OutputFormat, response: WatchResponse): string {
  if (format === "json") {
    return json({
      Header: headerJson(response.header),
      Events: response.events.map((event) => goJson(EventSchema, event)),
      CompactRevision: response.compactRevision,
      Canceled: response.canceled,
      Created: response.created,
    });
  }
  return response.events.map(simpleEvent).join("");
}

export function printLeaseGrant(format: OutputFormat, response: LeaseGrantResponse): string {
  if (format === "json")
    return json({
      ...headerJson(response.header),
      ID: response.ID,
      TTL: response.TTL,
      Error: response.error,
    });
  return `lease ${leaseHex(response.ID)} granted with TTL(${response.TTL}s)\n`;
}

export function printLeaseRevoke(
  format: OutputFormat,
  id: bigint,
  header: ResponseHeader | undefined,
): string {
  if (format === "json") return json(headerJson(header));
  return `lease ${leaseHex(id)} revoked\n`;
}

export function printTimeToLive(
  format: OutputFormat,
  response: LeaseTimeToLiveResponse,
  withKeys: boolean,
): string {
  if (format === "json") {
    return json({
      ...headerJson(response.header),
      id: response.ID,
      ttl: response.TTL,
      "granted-ttl": response.grantedTTL,
      keys: response.keys.length === 0 ? null : response.keys,
    });
  }
  const id = leaseHex(response.ID);
  if (response.grantedTTL === 0n && response.TTL === -1n) return `lease ${id} already expired\n`;
  const keys = withKeys ? `, attached keys([${response.keys.map(text).join(" ")}])` : "";
  return `lease ${id} granted with TTL(${response.grantedTTL}s), remaining(${response.TTL}s)${keys}\n`;
}

export function printLeaseList(format: OutputFormat, response: LeaseLeasesResponse): string {
  if (format === "json")
    return json({
      ...headerJson(response.header),
      leases: response.leases.map((lease) => ({ id: lease.ID })),
    });
  if (format === "table")
    return renderTable(
      ["LEASE"],
      response.leases.map((lease) => [leaseHex(lease.ID)]),
    );
  return `found ${response.leases.length} leases\n${response.leases.map((lease) => `${leaseHex(lease.ID)}\n`).join("")}`;
}

export function printKeepAlive(format: OutputFormat, response: LeaseKeepAliveResponse): string {
  if (format === "json") return json({ ...headerJson(response.header), ID: response.ID, TTL: response.TTL });
  return `lease ${leaseHex(response.ID)} keepalived with TTL(${response.TTL})\n`;
}

function memberRow(member: Member): string[] {
  return [
    hexId(member.ID),
    member.name === "" ? "unstarted" : "started",
    member.name,
    member.peerURLs.join(","),
    member.clientURLs.join(","),
    String(member.isLearner),
  ];
}

export function printMemberList(format: OutputFormat, response: MemberListResponse): string {
  if (format === "json") return json(goJson(MemberListResponseSchema, response));
  const rows = response.members.map(memberRow);
  if (format === "table")
    return renderTable(["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"], rows);
  return rows.map((row) => `${row.join(", ")}\n`).join("");
}

export interface EndpointStatus {
  readonly endpoint: string;
  readonly status: StatusResponse;
}

function statusRow({ endpoint, status }: EndpointStatus): string[] {
  const memberId = status.header?.memberId ?? 0n;
  return [
    endpoint,
    hexId(memberId),
    status.version,
    humanBytes(status.dbSize),
    String(status.leader !== 0n && status.leader === memberId),
    String(status.isLearner),
    String(status.raftTerm),
    String(status.raftIndex),
    String(status.raftAppliedIndex),
    status.errors.join(", "),
  ];
}

export function printEndpointStatus(format: OutputFormat, statuses: readonly EndpointStatus[]): string {
  if (format === "json")
    return json(
      statuses.map((s) => ({ Endpoint: s.endpoint, Status: goJson(StatusResponseSchema, s.status) })),
    );
  const rows = statuses.map(statusRow);
  if (format === "table") {
    return renderTable(
      [
        "ENDPOINT",
        "ID",
        "VERSION",
        "DB SIZE",
        "IS LEADER",
        "IS LEARNER",
        "RAFT TERM",
        "RAFT INDEX",
        "RAFT APPLIED INDEX",
        "ERRORS",
      ],
      rows,
    );
  }
  return rows.map((row) => `${row.join(", ")}\n`).join("");
}

export interface EndpointHealth {
  readonly endpoint: string;
  readonly health: boolean;
  /** Milliseconds the health read took. */
  readonly tookMs: number;
  readonly error?: string;
}

/** A duration as Go's time.Duration prints it: "1.659535ms", "2.5s", "850µs". */
export function goDuration(ms: number): string {
  const trim = (value: number, digits: number) => value.toFixed(digits).replace(/\.?0+$/, "");
  if (ms >= 1000) return `${trim(ms / 1000, 9)}s`;
  if (ms >= 1) return `${trim(ms, 6)}ms`;
  return `${trim(ms * 1000, 3)}µs`;
}

export function printEndpointHealth(format: OutputFormat, results: readonly EndpointHealth[]): string {
  if (format === "json") {
    return json(
      results.map((r) => ({
        endpoint: r.endpoint,
        health: r.health,
        took: goDuration(r.tookMs),
        ...(r.error === undefined ? {} : { error: r.error }),
      })),
    );
  }
  if (format === "table") {
    return renderTable(
      ["ENDPOINT", "HEALTH", "TOOK", "ERROR"],
      results.map((r) => [r.endpoint, String(r.health), goDuration(r.tookMs), r.error ?? ""]),
    );
  }
  return results
    .map((r) =>
      r.health
        ? `${r.endpoint} is healthy: successfully committed proposal: took = ${goDuration(r.tookMs)}\n`
        : `${r.endpoint} is unhealthy: failed to commit proposal: ${r.error ?? "unknown error"}\n`,
    )
    .join("");
}
