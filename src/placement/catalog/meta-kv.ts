/**
 * The narrow view of the meta range (range 1) that the route catalog needs — etcd-style
 * range reads and transactions built from src/kv/commands.ts requests, plus watches — and
 * the adapter that makes a node's `Replica` of the meta range one. The catalog depends on
 * nothing else of the node, so it runs unchanged over an in-memory store in unit tests
 * (memory-meta-kv.ts) and over a replicated range in a cluster.
 */
import type { RangeRequest, TxnRequest } from "../../kv/commands.js";
import type { CommandResult, OpResponse, RangeResult } from "../../kv/results.js";
import type { Watch, WatchRequest } from "../../kv/watch.js";
import type { Replica } from "../../node/replica.js";
import { CatalogStoreError } from "./errors.js";

/** A transaction's outcome: which branch ran, its responses, and the revision after it. */
export interface MetaTxnResult {
  readonly revision: bigint;
  readonly succeeded: boolean;
  readonly responses: readonly OpResponse[];
}

export interface MetaRangeKv {
  /**
   * etcd's Range, linearizable, at `request.revision` (0: current): one consistent revision,
   * reported as the result's `revision` for a read at the current one. Rejects with KvError
   * (compacted, future revision) as MvccStore.range does.
   */
  range(request: RangeRequest): Promise<RangeResult>;
  /**
   * Applies an etcd-style transaction through the meta range's log; resolves once it is
   * applied. An error result (the store refused the request) rejects with CatalogStoreError;
   * a node's errors (not leader, ambiguous result, ...) pass through unchanged.
   */
  txn(request: TxnRequest): Promise<MetaTxnResult>;
}

/** Watches on the meta range's applied state (src/kv/watch.ts semantics). */
export interface MetaRangeWatch {
  watch(request: WatchRequest): Watch;
}

/** The transaction result of `result`, or CatalogStoreError when the store answered an error. */
export function toTxnResult(result: CommandResult): MetaTxnResult {
  const { response } = result;
  if (response.kind === "error") throw new CatalogStoreError(response.code, response.message);
  if (response.kind !== "txn") {
    throw new CatalogStoreError(null, `a transaction was answered with a ${response.kind} response`);
  }
  return { revision: result.revision, succeeded: response.succeeded, responses: response.responses };
}

/**
 * The meta range as served by `replica`: linearizable reads (ReadIndex), transactions proposed
 * through its Raft group (a follower forwards them to the leader), watches on its applied state.
 */
export function replicaMetaKv(replica: Replica): MetaRangeKv & MetaRangeWatch {
  return {
    range: (request) => replica.range(request, "linearizable"),
    txn: async (request) => toTxnResult(await replica.propose(request)),
    watch: (request) => replica.watch(request),
  };
}
