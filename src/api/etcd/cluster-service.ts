/**
 * etcd's Cluster service over the range's Raft group: MemberList, MemberAdd, MemberRemove,
 * MemberUpdate, MemberPromote. Voters and learners come from Raft's configuration, names and
 * URLs from the replicated member table (src/kv/members.ts, Replica.members()).
 *
 * - MemberAdd records the new member's peer URLs (a MemberSet command), then proposes the
 *   configuration change (AddLearner or AddVoter). Its id derives from the cluster id and its
 *   first peer URL (member-ids.ts), so `concord start --initial-cluster-state existing` with
 *   that peer URL finds the same id without talking. Until it starts and publishes, it shows
 *   with an empty name and no client URLs, as in etcd.
 * - MemberRemove proposes the configuration change, then deletes the record.
 * - MemberUpdate replaces the peer URLs and keeps the name and client URLs.
 * - MemberPromote is decided by the leader (it judges whether the learner is in sync); a
 *   follower forwards it to the leader's client URL, as etcd forwards it over its peer API.
 * - MemberList serves the member's applied state; with `linearizable` it first waits for a
 *   ReadIndex (etcd 3.4's MemberList is always local; 3.5 added the flag).
 * - Add, remove, update and promote check the request against the membership after a ReadIndex
 *   (committedMembers): etcd checks a change against the committed membership when it applies
 *   it, so a member that has not yet applied an earlier change (acknowledged by another member)
 *   must not refuse on its stale view ("member not found" for a member just added).
 *
 * - MemberAdd of a voter and MemberRemove pass etcd's strict reconfiguration check first
 *   (Replica.reconfigurationRefusal): "not enough started members", "unhealthy cluster".
 *
 * Not done: etcd's refusal to re-add a removed member's id (an id derives from a peer URL, so
 * a removed member re-added at the same URL gets its old id).
 */
import { create } from "@bufbuild/protobuf";
import {
  Metadata,
  credentials,
  makeGenericClientConstructor,
  status as GrpcStatus,
  type ServiceError,
} from "@grpc/grpc-js";
import { rangeRequest } from "../../kv/commands.js";
import { memberRemoveRequest, memberSetRequest, type MemberCommand } from "../../kv/members.js";
import { NotLeaderError } from "../../node/errors.js";
import { LearnerNotReadyError, MemberNotLearnerError, peerAddressOf } from "../../node/members.js";
import type { Replica } from "../../node/replica.js";
import type { MemberRecord } from "../../node/types.js";
import { ETCD_ERRORS, EtcdRpcError, unary, type EtcdContext } from "./context.js";
import {
  Cluster,
  MemberAddResponseSchema,
  MemberListResponseSchema,
  MemberPromoteResponseSchema,
  MemberRemoveResponseSchema,
  MemberSchema,
  MemberUpdateResponseSchema,
  type Member,
  type MemberAddRequest,
  type MemberAddResponse,
  type MemberListRequest,
  type MemberListResponse,
  type MemberPromoteRequest,
  type MemberPromoteResponse,
  type MemberRemoveRequest,
  type MemberRemoveResponse,
  type MemberUpdateRequest,
  type MemberUpdateResponse,
} from "./gen/rpc_pb.js";
import { grpcServiceDefinition } from "./grpc-service.js";
import type { ServiceHandlers } from "./grpc-server.js";
import { canonicalPeerUrl, joinedMemberIdOf } from "./member-ids.js";

/** Marks a request one member forwarded to the leader, so it is never forwarded again. */
const FORWARDED_HEADER = "concord-forwarded";
const FORWARD_TIMEOUT_MS = 10_000;

export function toMember(record: MemberRecord): Member {
  return create(MemberSchema, {
    ID: BigInt(record.id),
    name: record.name,
    peerURLs: [...record.peerUrls],
    clientURLs: [...record.clientUrls],
    isLearner: record.isLearner,
  });
}

/** A member id from the wire: etcd's uint64, Concord's ids are safe integers. */
function memberIdOf(id: bigint): number {
  if (id <= 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) throw new EtcdRpcError(ETCD_ERRORS.memberNotFound);
  return Number(id);
}

/** Peer URLs as given, after checking each is a bare http(s) URL; at least one. */
function checkedPeerUrls(urls: readonly string[]): string[] {
  if (urls.length === 0) throw new EtcdRpcError(ETCD_ERRORS.memberBadUrls);
  try {
    for (const url of urls) canonicalPeerUrl(url);
  } catch {
    throw new EtcdRpcError(ETCD_ERRORS.memberBadUrls);
  }
  return [...urls];
}

/** Refuses peer URLs another member (not `except`) already has. */
function checkPeerUrlsFree(members: readonly MemberRecord[], urls: readonly string[], except?: number): void {
  const wanted = new Set(urls.map(canonicalPeerUrl));
  for (const member of members) {
    if (member.id === except) continue;
    for (const url of member.peerUrls) {
      let canonical: string;
      try {
        canonical = canonicalPeerUrl(url);
      } catch {
        continue;
      }
      if (wanted.has(canonical)) throw new EtcdRpcError(ETCD_ERRORS.peerUrlExists);
    }
  }
}

function findMember(members: readonly MemberRecord[], id: number): MemberRecord {
  const member = members.find((candidate) => candidate.id === id);
  if (member === undefined) throw new EtcdRpcError(ETCD_ERRORS.memberNotFound);
  return member;
}

async function proposeMemberCommand(ctx: EtcdContext, command: MemberCommand): Promise<void> {
  const result = await ctx.replica().propose(command);
  if (result.response.kind !== "member") {
    throw new EtcdRpcError({
      code: GrpcStatus.INTERNAL,
      message: `unexpected ${result.response.kind} result`,
    });
  }
}

const ClusterClient = makeGenericClientConstructor(grpcServiceDefinition(Cluster), "Cluster");

/** Calls `method` on the leader's Cluster service; its gRPC error comes back as is. */
function callLeader<O>(ctx: EtcdContext, method: string, request: unknown): Promise<O> {
  const address = peerAddressOf(ctx.leaderClientUrl() ?? undefined);
  if (address === null) throw new EtcdRpcError(ETCD_ERRORS.noLeader);
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  const client = new ClusterClient(`${host}:${address.port}`, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set(FORWARDED_HEADER, "1");
  const call = (client as unknown as Record<string, (...args: unknown[]) => void>)[method]!.bind(client);
  return new Promise<O>((resolve, reject) => {
    call(
      request,
      metadata,
      { deadline: Date.now() + FORWARD_TIMEOUT_MS },
      (error: ServiceError | null, response: O) => {
        client.close();
        if (error === null) resolve(response);
        else reject(new EtcdRpcError({ code: error.code, message: error.details }));
      },
    );
  });
}

async function promote(ctx: EtcdContext, id: number): Promise<void> {
  try {
    await ctx.replica().promote(id);
  } catch (error) {
    if (error instanceof MemberNotLearnerError) {
      throw new EtcdRpcError(error.isMember ? ETCD_ERRORS.memberNotLearner : ETCD_ERRORS.memberNotFound);
    }
    if (error instanceof LearnerNotReadyError) throw new EtcdRpcError(ETCD_ERRORS.learnerNotReady);
    throw error;
  }
}

/**
 * The members once this member has applied everything committed before the call (any
 * linearizable read waits for a ReadIndex and its application here).
 */
async function committedMembers(ctx: EtcdContext): Promise<readonly MemberRecord[]> {
  await ctx.replica().range(rangeRequest({ key: Uint8Array.of(0), countOnly: true }));
  return ctx.members();
}

function checkReconfiguration(
  ctx: EtcdContext,
  change: Parameters<Replica["reconfigurationRefusal"]>[0],
): void {
  const refusal = ctx.replica().reconfigurationRefusal(change);
  if (refusal === "not-enough-started") throw new EtcdRpcError(ETCD_ERRORS.notEnoughStartedMembers);
  if (refusal === "unhealthy") throw new EtcdRpcError(ETCD_ERRORS.unhealthy);
}

export function clusterService(ctx: EtcdContext): ServiceHandlers {
  const list = (): Member[] => ctx.members().map(toMember);
  return {
    MemberList: unary<MemberListRequest, MemberListResponse>(async (request) => {
      const members = request.linearizable ? await committedMembers(ctx) : ctx.members();
      return create(MemberListResponseSchema, { header: ctx.header(), members: members.map(toMember) });
    }),

    MemberAdd: unary<MemberAddRequest, MemberAddResponse>(async (request) => {
      const peerUrls = checkedPeerUrls(request.peerURLs);
      const members = await committedMembers(ctx);
      checkPeerUrlsFree(members, peerUrls);
      const id = joinedMemberIdOf(ctx.clusterId, peerUrls);
      if (members.some((member) => member.id === id)) throw new EtcdRpcError(ETCD_ERRORS.memberExists);
      checkReconfiguration(ctx, { kind: request.isLearner ? "addLearner" : "addVoter", id });
      // The record first: every member learns where to reach the new one before it is added.
      await proposeMemberCommand(ctx, memberSetRequest({ id, name: "", peerUrls, clientUrls: [] }));
      const replica = ctx.replica();
      await (request.isLearner ? replica.addLearner(id) : replica.addVoter(id));
      const added: MemberRecord = { id, name: "", peerUrls, clientUrls: [], isLearner: request.isLearner };
      return create(MemberAddResponseSchema, {
        header: ctx.header(),
        member: toMember(added),
        members: list(),
      });
    }),

    MemberRemove: unary<MemberRemoveRequest, MemberRemoveResponse>(async (request) => {
      const id = memberIdOf(request.ID);
      findMember(await committedMembers(ctx), id);
      checkReconfiguration(ctx, { kind: "remove", id });
      await ctx.replica().removeNode(id);
      await proposeMemberCommand(ctx, memberRemoveRequest(id));
      return create(MemberRemoveResponseSchema, { header: ctx.header(), members: list() });
    }),

    MemberUpdate: unary<MemberUpdateRequest, MemberUpdateResponse>(async (request) => {
      const id = memberIdOf(request.ID);
      const peerUrls = checkedPeerUrls(request.peerURLs);
      const members = await committedMembers(ctx);
      const member = findMember(members, id);
      checkPeerUrlsFree(members, peerUrls, id);
      await proposeMemberCommand(
        ctx,
        memberSetRequest({ id, name: member.name, peerUrls, clientUrls: member.clientUrls }),
      );
      return create(MemberUpdateResponseSchema, { header: ctx.header(), members: list() });
    }),

    MemberPromote: unary<MemberPromoteRequest, MemberPromoteResponse>(async (request, call) => {
      const id = memberIdOf(request.ID);
      findMember(await committedMembers(ctx), id);
      try {
        await promote(ctx, id);
      } catch (error) {
        const forwarded = call.metadata(FORWARDED_HEADER) !== undefined;
        if (!(error instanceof NotLeaderError) || forwarded) {
          throw error instanceof NotLeaderError ? new EtcdRpcError(ETCD_ERRORS.notLeader) : error;
        }
        const answer = await callLeader<MemberPromoteResponse>(ctx, "MemberPromote", request);
        return create(MemberPromoteResponseSchema, { header: ctx.header(), members: answer.members });
      }
      return create(MemberPromoteResponseSchema, { header: ctx.header(), members: list() });
    }),
  };
}
