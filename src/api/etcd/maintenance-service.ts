/**
 * etcd's Maintenance service: Status, HashKV (and the older Hash), Snapshot, MoveLeader, Alarm,
 * Defragment. What each means in Concord:
 *
 * - Status: `version` is ETCD_COMPATIBLE_VERSION (the etcd API level Concord answers as),
 *   `dbSize` / `dbSizeInUse` the bytes of this member's data files (MaintenanceOptions), leader,
 *   Raft term, commit index (`raftIndex`) and applied index, learner status; `errors` holds
 *   "etcdserver: no leader" while no leader is known, as in etcd.
 * - HashKV: a CRC-32 of every stored key version at or below the revision, over every range
 *   this member hosts, in key order (NodeRanges.hashKv); members at the same applied state
 *   answer the same hash. Hash (etcd's whole-backend hash) answers the same hash at the
 *   current revision.
 * - Snapshot: streams a backup of every range this member hosts as ONE store image of the
 *   whole keyspace (src/kv/backup.ts; NodeRanges.backupImage) — Concord's snapshot format
 *   (src/kv/snapshot.ts: "CONCORD-KV" header, key-value records, CRC-32 trailer), NOT etcd's
 *   bbolt file — followed by a trailer that etcdctl's size check accepts (snapshot-file.ts):
 *   `etcdctl snapshot save` stores it, `etcdctl snapshot status/restore` cannot read it;
 *   `imageOfSnapshotFile` gives the image back to Concord's restore. `remaining_bytes` is
 *   exact (the image's size is measured on the same read view before streaming).
 * - MoveLeader: on range 1's leader only ("etcdserver: not leader" elsewhere; etcdctl
 *   move-leader finds the leader itself); the target must be a voter ("etcdserver: bad leader
 *   transferee"). Every other range this member leads, and the target votes in, moves too.
 * - Alarm: Concord keeps no alarms. GET and DEACTIVATE answer an empty list, ACTIVATE is
 *   refused. etcd's NOSPACE alarm maps to the storage engine's DiskFullError: writes then fail
 *   with "etcdserver: mvcc: database space exceeded" instead of an alarm being raised.
 * - Defragment: a no-op that succeeds. lmdb reuses freed pages in place and has no online
 *   equivalent of bbolt's defragmentation (compacting it means copying the environment offline).
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { ServiceHandlers } from "./grpc-server.js";
import { NotLeaderError } from "../../node/errors.js";
import { LeaderTransferError } from "../../node/members.js";
import { StateRole } from "../../raft/types.js";
import { ETCD_ERRORS, EtcdRpcError, serverStream, unary, type EtcdContext } from "./context.js";
import {
  AlarmRequest_AlarmAction,
  AlarmResponseSchema,
  DefragmentResponseSchema,
  HashKVResponseSchema,
  HashResponseSchema,
  MoveLeaderResponseSchema,
  SnapshotResponseSchema,
  StatusResponseSchema,
  type AlarmRequest,
  type AlarmResponse,
  type DefragmentRequest,
  type DefragmentResponse,
  type HashKVRequest,
  type HashKVResponse,
  type HashRequest,
  type HashResponse,
  type MoveLeaderRequest,
  type MoveLeaderResponse,
  type SnapshotRequest,
  type SnapshotResponse,
  type StatusRequest,
  type StatusResponse,
} from "./gen/rpc_pb.js";
import { snapshotFileBytes, snapshotFileHash, snapshotFileTrailer } from "./snapshot-file.js";

/** The etcd version Status reports: the API level Concord answers as (etcdctl 3.4's). */
export const ETCD_COMPATIBLE_VERSION = "3.4.23";

const TIMEOUT_LEADER_TRANSFER = {
  code: GrpcStatus.UNAVAILABLE,
  message: "etcdserver: request timed out, leader transfer took too long",
};

export interface MaintenanceOptions {
  /** The member's data directory: Status reports the total size of the files under it. */
  readonly dataDir?: string;
}

/** Bytes of every file under `dir` (0 when it cannot be read): Status's dbSize, and the metrics'. */
export function directoryBytes(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    try {
      const stat = statSync(path);
      total += stat.isDirectory() ? directoryBytes(path) : stat.size;
    } catch {
      // A file removed while we looked: it no longer counts.
    }
  }
  return total;
}

/** `run`'s value, or its exception as a rejection. */
function answer<T>(run: () => T): Promise<T> {
  return new Promise((resolve) => resolve(run()));
}

/** The image in chunks, then the file trailer (snapshot-file.ts); remaining_bytes counts both. */
async function* snapshotResponses(ctx: EtcdContext): AsyncGenerator<SnapshotResponse> {
  const image = await ctx.kv().backupImage();
  let imageBytes: number;
  try {
    imageBytes = image.byteLength();
  } catch (error) {
    image.release();
    throw error;
  }
  let remaining = snapshotFileBytes(imageBytes);
  const header = ctx.header(image.revision);
  const hash = snapshotFileHash();
  const response = (blob: Uint8Array) => {
    remaining -= blob.length;
    return create(SnapshotResponseSchema, { header, remainingBytes: BigInt(remaining), blob });
  };
  for await (const blob of image) {
    hash.update(blob);
    yield response(blob);
  }
  yield response(snapshotFileTrailer(imageBytes, hash));
}

/** etcd's error for a failed leader transfer (anything else unchanged). */
function leaderTransferFailure(error: unknown): unknown {
  if (error instanceof NotLeaderError) return new EtcdRpcError(ETCD_ERRORS.notLeader);
  if (error instanceof LeaderTransferError) {
    return new EtcdRpcError(
      error.reason === "not-voter" ? ETCD_ERRORS.badLeaderTransferee : TIMEOUT_LEADER_TRANSFER,
    );
  }
  return error;
}

export function maintenanceService(ctx: EtcdContext, options: MaintenanceOptions = {}): ServiceHandlers {
  const dbSize = () => BigInt(options.dataDir === undefined ? 0 : directoryBytes(options.dataDir));
  return {
    Status: unary<StatusRequest, StatusResponse>(() =>
      answer(() => {
        const replica = ctx.replica();
        const status = replica.status();
        const size = dbSize();
        return create(StatusResponseSchema, {
          header: ctx.header(),
          version: ETCD_COMPATIBLE_VERSION,
          dbSize: size,
          dbSizeInUse: size,
          leader: BigInt(status.leader),
          raftIndex: BigInt(status.commit),
          raftTerm: BigInt(status.term),
          raftAppliedIndex: BigInt(status.applied),
          errors: status.leader === 0 ? [ETCD_ERRORS.noLeader.message] : [],
          isLearner: status.confState.learners.includes(ctx.memberId),
        });
      }),
    ),

    HashKV: unary<HashKVRequest, HashKVResponse>((request) =>
      answer(() => {
        const revision = request.revision < 0n ? 0n : request.revision;
        const hashed = ctx.kv().hashKv(revision);
        return create(HashKVResponseSchema, {
          header: ctx.header(hashed.revision),
          hash: hashed.hash,
          compactRevision: hashed.compacted,
        });
      }),
    ),

    Hash: unary<HashRequest, HashResponse>(() =>
      answer(() => {
        const hashed = ctx.kv().hashKv(0n);
        return create(HashResponseSchema, { header: ctx.header(hashed.revision), hash: hashed.hash });
      }),
    ),

    Snapshot: serverStream<SnapshotRequest>(async (_request, call) => {
      for await (const response of snapshotResponses(ctx)) {
        if (call.cancelled) return;
        if (!call.write(response)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              call.off("drain", done);
              call.off("close", done);
              resolve();
            };
            call.on("drain", done);
            call.on("close", done);
          });
        }
      }
    }),

    MoveLeader: unary<MoveLeaderRequest, MoveLeaderResponse>(async (request) => {
      const replica = ctx.replica();
      if (replica.status().role !== StateRole.Leader) throw new EtcdRpcError(ETCD_ERRORS.notLeader);
      const target = request.targetID;
      if (target <= 0n || target > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new EtcdRpcError(ETCD_ERRORS.badLeaderTransferee);
      }
      const to = Number(target);
      await replica.transferLeader(to).catch((error: unknown) => {
        throw leaderTransferFailure(error);
      });
      // What move-leader is for is taking leadership off this member: every other range it
      // leads goes to the target too, where the target is a voter of it. One that changed
      // leader meanwhile is no longer this member's to move.
      const others = ctx.host
        .rangeIds()
        .flatMap((id) => (id === replica.rangeId ? [] : (ctx.host.replica(id) ?? [])))
        .filter((other) => {
          const status = other.status();
          return status.role === StateRole.Leader && status.confState.voters.includes(to);
        });
      await Promise.all(
        others.map((other) =>
          other.transferLeader(to).catch((error: unknown) => {
            if (!(error instanceof NotLeaderError)) throw leaderTransferFailure(error);
          }),
        ),
      );
      return create(MoveLeaderResponseSchema, { header: ctx.header() });
    }),

    Alarm: unary<AlarmRequest, AlarmResponse>((request) =>
      answer(() => {
        if (request.action === AlarmRequest_AlarmAction.Activate) {
          throw new EtcdRpcError({
            code: GrpcStatus.UNIMPLEMENTED,
            message: "concord: alarms are not kept; a full disk fails writes with database space exceeded",
          });
        }
        return create(AlarmResponseSchema, { header: ctx.header(), alarms: [] });
      }),
    ),

    Defragment: unary<DefragmentRequest, DefragmentResponse>(() =>
      answer(() => create(DefragmentResponseSchema, { header: ctx.header() })),
    ),
  };
}
