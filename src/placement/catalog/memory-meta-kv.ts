/**
 * An in-memory meta range for unit tests and tools: an MvccStore over an OrderedKv, applying
 * each transaction as the next log entry and publishing its events to a WatchHub, so that
 * the route catalog and the route watcher run against the real MVCC semantics without a Raft
 * group. Reopening a new MemoryMetaKv over the same engine simulates a restart.
 */
import type { KvCommand, RangeRequest, TxnRequest } from "../../kv/commands.js";
import type { OrderedKv } from "../../kv/engine.js";
import { MemoryOrderedKv } from "../../kv/memory-engine.js";
import type { CommandResult, RangeResult } from "../../kv/results.js";
import { MvccStore } from "../../kv/store.js";
import { WatchHub, type Watch, type WatchRequest } from "../../kv/watch.js";
import { toTxnResult, type MetaRangeKv, type MetaRangeWatch, type MetaTxnResult } from "./meta-kv.js";

export class MemoryMetaKv implements MetaRangeKv, MetaRangeWatch {
  readonly store: MvccStore;
  readonly hub: WatchHub;
  /**
   * Runs (once: it is cleared first) before the next transaction is applied, after the caller built it: tests use it to
   * slip a concurrent write in between a catalog's read and its transaction.
   */
  beforeTxn: (() => void | Promise<void>) | null = null;
  private nextIndex: number;

  constructor(readonly engine: OrderedKv = new MemoryOrderedKv()) {
    this.store = new MvccStore(engine);
    this.hub = new WatchHub(this.store);
    this.nextIndex = this.store.appliedIndex + 1;
  }

  range(request: RangeRequest): Promise<RangeResult> {
    return new Promise((resolve) => resolve(this.store.range(request)));
  }

  async txn(request: TxnRequest): Promise<MetaTxnResult> {
    const hook = this.beforeTxn;
    this.beforeTxn = null;
    await hook?.();
    return toTxnResult(this.apply(request));
  }

  watch(request: WatchRequest): Watch {
    return this.hub.watch(request);
  }

  /** Applies any command as the next entry (no dedup) and publishes its events. */
  apply(command: KvCommand): CommandResult {
    const outcome = this.store.apply(this.nextIndex++, { clientId: "", sequence: 0, timestamp: 0n, command });
    if (outcome.events.length > 0) this.hub.publish(outcome.result.revision, outcome.events);
    return outcome.result;
  }
}
