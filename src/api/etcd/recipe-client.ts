/**
 * `ReplicaRecipeClient`: the recipes' client (src/recipes/client.ts) over the range's replica
 * on this member, so the Election and Lock services run the recipes server-side as etcd runs
 * its concurrency package over an in-process client. Writes are proposed like the KV
 * service's (a follower forwards them; no client id of its own, so one slow campaign never
 * holds up another's writes); reads are linearizable; watches follow this member's applied
 * state.
 *
 * Sessions served here are the etcd caller's: the caller renews its lease, so `leaseKeepAlive`
 * renews nothing. It answers whether the lease is still live in this member's applied state
 * (its TTL) or gone (null), which is all the recipes ask of a session they do not keep alive.
 */
import {
  leaseGrantRequest,
  leaseRevokeRequest,
  rangeRequest,
  txnRequest,
  type Compare,
  type TxnOp,
} from "../../kv/commands.js";
import type { KeyValue, OpResponse, RangeResult } from "../../kv/results.js";
import type {
  RecipeBytes,
  RecipeClient,
  RecipeRangeOptions,
  RecipeWatch,
  RecipeWatchOptions,
} from "../../recipes/client.js";
import { prefixEnd, toBytes } from "../db.js";
import type { EtcdContext } from "./context.js";
import { commandResponse } from "./convert.js";

function rangeEndOf(key: Uint8Array, options: { rangeEnd?: RecipeBytes; prefix?: boolean }): Uint8Array {
  if (options.prefix === true) return prefixEnd(key);
  return options.rangeEnd === undefined ? new Uint8Array(0) : toBytes(options.rangeEnd);
}

export class ReplicaRecipeClient implements RecipeClient {
  constructor(private readonly ctx: EtcdContext) {}

  async get(key: RecipeBytes, options: { readonly revision?: bigint } = {}): Promise<KeyValue | null> {
    const result = await this.range(key, options);
    return result.kvs[0] ?? null;
  }

  range(key: RecipeBytes, options: RecipeRangeOptions = {}): Promise<RangeResult> {
    const start = toBytes(key);
    return this.ctx
      .kv()
      .range(
        rangeRequest({ key: start, rangeEnd: rangeEndOf(start, options), revision: options.revision ?? 0n }),
      );
  }

  async txn(spec: {
    readonly compares?: readonly Compare[];
    readonly success?: readonly TxnOp[];
    readonly failure?: readonly TxnOp[];
  }): Promise<{ revision: bigint; succeeded: boolean; responses: readonly OpResponse[] }> {
    const result = await this.ctx.kv().propose(
      txnRequest({
        compares: spec.compares ?? [],
        success: spec.success ?? [],
        failure: spec.failure ?? [],
      }),
    );
    const response = commandResponse(result, "txn");
    return { revision: result.revision, succeeded: response.succeeded, responses: response.responses };
  }

  async leaseGrant(ttlSeconds: number): Promise<{ id: bigint; ttlSeconds: number; revision: bigint }> {
    const result = await this.ctx.kv().propose(leaseGrantRequest(ttlSeconds));
    const response = commandResponse(result, "leaseGrant");
    return { id: response.id, ttlSeconds: response.ttlSeconds, revision: result.revision };
  }

  /** The lease's TTL while it is live here, null once it is gone; never renews (see the header). */
  async leaseKeepAlive(id: bigint): Promise<number | null> {
    return this.leaseTtl(id);
  }

  async leaseRevoke(id: bigint): Promise<{ revision: bigint }> {
    const result = await this.ctx.kv().propose(leaseRevokeRequest(id));
    commandResponse(result, "leaseRevoke");
    return { revision: result.revision };
  }

  watch(key: RecipeBytes, options: RecipeWatchOptions = {}): Promise<RecipeWatch> {
    const start = toBytes(key);
    // A refused watch (replica stopped, bad request) rejects instead of throwing.
    return new Promise((resolve) =>
      resolve(
        this.ctx.kv().watch({
          key: start,
          rangeEnd: rangeEndOf(start, options),
          startRevision: options.startRevision ?? 0n,
          prevKv: options.prevKv ?? false,
        }),
      ),
    );
  }

  /**
   * The granted TTL of a live lease, null when it does not exist, after a linearizable read so
   * that a lease granted through another member a moment ago has been applied here.
   */
  async leaseTtl(id: bigint): Promise<number | null> {
    await this.ctx.replica().range(rangeRequest({ key: new Uint8Array([0]), countOnly: true }));
    return (
      this.ctx
        .replica()
        .leases()
        .find((lease) => lease.id === id)?.ttlSeconds ?? null
    );
  }
}
