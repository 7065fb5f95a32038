/**
 * Cluster and maintenance commands: `member list|add|remove|update|promote`, `endpoint
 * status|health [--cluster]`, `move-leader` and `status` (Concord's readable cluster view:
 * members, leader, term, revision, raft and applied index, db size, per endpoint). Per-endpoint
 * commands ask every endpoint separately (no failover), print what answered, and fail (exit 1,
 * or 3 when none answered) when some did not.
 */
import {
  Cluster,
  KV,
  Maintenance,
  MemberSchema,
  ResponseHeaderSchema,
  StatusResponseSchema,
  type Member,
  type StatusResponse,
} from "../../api/etcd/gen/rpc_pb.js";
import { parseEndpoints, type ClientContext } from "./context.js";
import { CommandError, UnavailableError, UsageError } from "./errors.js";
import {
  printEndpointHealth,
  printEndpointStatus,
  printMemberList,
  requireFormat,
  type EndpointHealth,
  type EndpointStatus,
} from "./printers.js";
import { goJson, hexId, humanBytes, jsonText, renderTable } from "./render.js";
import { bytes, parseHexId } from "./requests.js";

const READ = { idempotent: true } as const;
const WRITE = { idempotent: false } as const;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function runMemberList(ctx: ClientContext): Promise<void> {
  const { response } = await ctx.connect().unary(Cluster.method.memberList, {}, READ);
  ctx.out(printMemberList(ctx.format, response));
}

function peerUrlsOf(value: string | undefined): string[] {
  if (value === undefined || value.trim() === "") throw new UsageError("--peer-urls is required");
  const urls = value.split(",").map((url) => url.trim());
  for (const url of urls) {
    if (!/^https?:\/\/[^\s/]+:\d+\/?$/.test(url))
      throw new UsageError(`bad peer URL "${url}": expected http://host:port`);
  }
  return urls;
}

export async function runMemberAdd(
  ctx: ClientContext,
  name: string,
  flags: { peerUrls?: string; learner?: boolean },
): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "member add");
  const peerURLs = peerUrlsOf(flags.peerUrls);
  const isLearner = flags.learner === true;
  const { response } = await ctx.connect().unary(Cluster.method.memberAdd, { peerURLs, isLearner }, WRITE);
  if (ctx.format === "json") {
    ctx.out(
      `${jsonText({
        header: response.header === undefined ? {} : goJson(ResponseHeaderSchema, response.header),
        member: response.member === undefined ? null : goJson(MemberSchema, response.member),
        members: response.members.map((member) => goJson(MemberSchema, member)),
      })}\n`,
    );
    return;
  }
  const id = response.member?.ID ?? 0n;
  const initialCluster = response.members.flatMap((member: Member) => {
    const memberName = member.ID === id ? name : member.name;
    if (memberName === "") return [];
    return member.peerURLs.map((url) => `${memberName}=${url}`);
  });
  ctx.out(
    `Member ${hexId(id)} added to cluster ${hexId(response.header?.clusterId ?? 0n)}\n\n` +
      `ETCD_NAME="${name}"\nETCD_INITIAL_CLUSTER="${initialCluster.join(",")}"\n` +
      `ETCD_INITIAL_ADVERTISE_PEER_URLS="${peerURLs.join(",")}"\nETCD_INITIAL_CLUSTER_STATE="existing"\n`,
  );
}

export async function runMemberRemove(ctx: ClientContext, idText: string): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "member remove");
  const id = parseHexId(idText, "member ID");
  const { response } = await ctx.connect().unary(Cluster.method.memberRemove, { ID: id }, WRITE);
  ctx.out(memberChangeText(ctx, `Member ${hexId(id)} removed from cluster`, response.header?.clusterId));
}

export async function runMemberUpdate(
  ctx: ClientContext,
  idText: string,
  peerUrls: string | undefined,
): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "member update");
  const id = parseHexId(idText, "member ID");
  const peerURLs = peerUrlsOf(peerUrls);
  const { response } = await ctx.connect().unary(Cluster.method.memberUpdate, { ID: id, peerURLs }, WRITE);
  ctx.out(memberChangeText(ctx, `Member ${hexId(id)} updated in cluster`, response.header?.clusterId));
}

export async function runMemberPromote(ctx: ClientContext, idText: string): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "member promote");
  const id = parseHexId(idText, "member ID");
  const { response } = await ctx.connect().unary(Cluster.method.memberPromote, { ID: id }, WRITE);
  ctx.out(memberChangeText(ctx, `Member ${hexId(id)} promoted in cluster`, response.header?.clusterId));
}

function memberChangeText(ctx: ClientContext, message: string, clusterId: bigint | undefined): string {
  if (ctx.format === "json") return `${jsonText({ cluster_id: clusterId ?? 0n })}\n`;
  return `${message} ${hexId(clusterId ?? 0n)}\n`;
}

/** --endpoints, or with --cluster every member's client URLs (from a member list). */
async function targetEndpoints(ctx: ClientContext, cluster: boolean): Promise<readonly string[]> {
  if (!cluster) return ctx.options.endpoints;
  const { response } = await ctx.connect().unary(Cluster.method.memberList, {}, READ);
  const urls = [...new Set(response.members.flatMap((member) => member.clientURLs))];
  if (urls.length === 0) throw new CommandError("no member advertises a client URL");
  return parseEndpoints(urls.join(","));
}

/** Asks each endpoint; failures are reported on stderr and summarised in the error thrown. */
async function perEndpoint<T>(
  ctx: ClientContext,
  endpoints: readonly string[],
  ask: (endpoint: string) => Promise<T>,
): Promise<{ results: T[]; failures: Error[] }> {
  const settled = await Promise.allSettled(endpoints.map(ask));
  const results: T[] = [];
  const failures: Error[] = [];
  settled.forEach((outcome, i) => {
    if (outcome.status === "fulfilled") results.push(outcome.value);
    else {
      const error = outcome.reason instanceof Error ? outcome.reason : new Error(String(outcome.reason));
      ctx.io.stderr(`Failed to get the status of endpoint ${endpoints[i]!} (${error.message})\n`);
      failures.push(error);
    }
  });
  return { results, failures };
}

function failureOf(failures: readonly Error[], anyAnswered: boolean): Error | null {
  if (failures.length === 0) return null;
  const message = failures.map((failure) => failure.message).join("; ");
  return !anyAnswered && failures.every((f) => f instanceof UnavailableError)
    ? new UnavailableError(message)
    : new CommandError(message);
}

async function statuses(ctx: ClientContext, endpoints: readonly string[]) {
  const connection = ctx.connect(endpoints);
  return perEndpoint(ctx, endpoints, async (endpoint): Promise<EndpointStatus> => ({
    endpoint,
    status: await connection.unaryAt(endpoint, Maintenance.method.status, {}),
  }));
}

export async function runEndpointStatus(ctx: ClientContext, cluster: boolean): Promise<void> {
  const endpoints = await targetEndpoints(ctx, cluster);
  const { results, failures } = await statuses(ctx, endpoints);
  if (results.length > 0) ctx.out(printEndpointStatus(ctx.format, results));
  const failure = failureOf(failures, results.length > 0);
  if (failure !== null) throw failure;
}

export async function runEndpointHealth(ctx: ClientContext, cluster: boolean): Promise<void> {
  const endpoints = await targetEndpoints(ctx, cluster);
  const connection = ctx.connect(endpoints);
  const results = await Promise.all(
    endpoints.map(async (endpoint): Promise<EndpointHealth> => {
      const started = performance.now();
      try {
        // A linearizable read commits through Raft: a member without a quorum fails it.
        await connection.unaryAt(endpoint, KV.method.range, { key: bytes("health") });
        return { endpoint, health: true, tookMs: performance.now() - started };
      } catch (error) {
        return { endpoint, health: false, tookMs: performance.now() - started, error: errorText(error) };
      }
    }),
  );
  ctx.out(printEndpointHealth(ctx.format, results));
  if (results.some((result) => !result.health)) throw new CommandError("unhealthy cluster");
}

export async function runMoveLeader(ctx: ClientContext, targetText: string): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "move-leader");
  const target = parseHexId(targetText, "member ID");
  const { results } = await statuses(ctx, ctx.options.endpoints);
  const leader = results.find(
    ({ status }) => status.leader !== 0n && status.leader === status.header?.memberId,
  );
  if (leader === undefined)
    throw new CommandError(`no leader endpoint given at [${ctx.options.endpoints.join(" ")}]`);
  const from = leader.status.leader;
  const response = await ctx
    .connect(ctx.options.endpoints)
    .unaryAt(leader.endpoint, Maintenance.method.moveLeader, { targetID: target });
  if (ctx.format === "json")
    ctx.out(
      `${jsonText(response.header === undefined ? {} : goJson(ResponseHeaderSchema, response.header))}\n`,
    );
  else ctx.out(`Leadership transferred from ${hexId(from)} to ${hexId(target)}\n`);
}

function role(status: StatusResponse): string {
  if (status.isLearner) return "learner";
  return status.leader !== 0n && status.leader === status.header?.memberId ? "leader" : "follower";
}

/** `concord status`: the members and what each member's endpoint reports. */
export async function runStatus(ctx: ClientContext): Promise<void> {
  const { response: list } = await ctx.connect().unary(Cluster.method.memberList, {}, READ);
  const urls = [...new Set(list.members.flatMap((member) => member.clientURLs))];
  const endpoints = urls.length === 0 ? ctx.options.endpoints : parseEndpoints(urls.join(","));
  const { results, failures } = await statuses(ctx, endpoints);
  const byMember = new Map(results.map((result) => [result.status.header?.memberId ?? 0n, result]));
  const leaderId = results.find((r) => r.status.leader !== 0n)?.status.leader ?? 0n;
  const clusterId = list.header?.clusterId ?? 0n;
  if (ctx.format === "json") {
    ctx.out(
      `${jsonText({
        cluster_id: clusterId,
        leader: leaderId,
        members: list.members.map((member) => goJson(MemberSchema, member)),
        endpoints: results.map((r) => ({
          Endpoint: r.endpoint,
          Status: goJson(StatusResponseSchema, r.status),
        })),
      })}\n`,
    );
  } else {
    const leader = list.members.find((member) => member.ID === leaderId);
    const any = results[0]?.status;
    const summary =
      `cluster ${hexId(clusterId)}: ${list.members.length} member(s), ` +
      `leader ${leader === undefined ? "unknown" : `${leader.name} (${hexId(leaderId)})`}, ` +
      `term ${any?.raftTerm ?? "?"}, revision ${any?.header?.revision ?? "?"}\n`;
    const rows = list.members.map((member) => {
      const seen = byMember.get(member.ID);
      const status = seen?.status;
      return [
        member.name || "(unstarted)",
        hexId(member.ID),
        seen?.endpoint ?? member.clientURLs.join(","),
        status === undefined ? "unreachable" : role(status),
        status === undefined ? "" : String(status.raftTerm),
        status === undefined ? "" : String(status.header?.revision ?? 0n),
        status === undefined ? "" : String(status.raftIndex),
        status === undefined ? "" : String(status.raftAppliedIndex),
        status === undefined ? "" : humanBytes(status.dbSize),
        status === undefined ? "" : status.version,
      ];
    });
    const headers = [
      "NAME",
      "ID",
      "ENDPOINT",
      "ROLE",
      "TERM",
      "REVISION",
      "RAFT INDEX",
      "APPLIED INDEX",
      "DB SIZE",
      "VERSION",
    ];
    ctx.out(
      summary +
        (ctx.format === "table"
          ? renderTable(headers, rows)
          : rows.map((row) => `${row.filter((cell) => cell !== "").join(", ")}\n`).join("")),
    );
  }
  const failure = failureOf(failures, results.length > 0);
  if (failure !== null) throw failure;
}
