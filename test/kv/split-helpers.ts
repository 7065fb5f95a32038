// Test support for splits: several range stores in one engine (each under rangeNamespace),
// applying any command with explicit request ids, and dumps of one range's areas.
import {
  putRequest,
  rangeRequest,
  splitRequest,
  type CommandEnvelope,
  type KvCommand,
} from "../../src/kv/commands.js";
import { KeyLayout, MetaField, rangeNamespace } from "../../src/kv/keys.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import type { CommandResult } from "../../src/kv/results.js";
import { MvccStore, type ApplyOutcome, type MvccStoreOptions } from "../../src/kv/store.js";
import { b, s } from "./helpers.js";

/** One engine holding the stores of several ranges; each range numbers its own entries. */
export class Ranges {
  readonly kv = new MemoryOrderedKv();
  private readonly next = new Map<number, number>();
  private sequence = 0;

  constructor(private readonly options: MvccStoreOptions = {}) {}

  /** A fresh store object over range `id`'s namespace (reads what the engine holds now). */
  store(id: number): MvccStore {
    return new MvccStore(this.kv, { ...this.options, namespace: rangeNamespace(id) });
  }

  /** Applies `command` to range `id` as its next entry (own client id unless given). */
  apply(
    id: number,
    command: KvCommand,
    request: { clientId: string; sequence: number } = { clientId: "test", sequence: ++this.sequence },
    timestamp = 0n,
  ): ApplyOutcome {
    const store = this.store(id);
    const index = Math.max(this.next.get(id) ?? 1, store.appliedIndex + 1);
    this.next.set(id, index + 1);
    const envelope: CommandEnvelope<KvCommand> = { ...request, timestamp, command };
    return store.apply(index, envelope);
  }

  put(id: number, key: string, value: string, lease = 0n): CommandResult {
    return this.apply(id, putRequest({ key: b(key), value: b(value), lease })).result;
  }

  split(id: number, splitKey: string, rhsRangeId: number): ApplyOutcome {
    return this.apply(id, splitRequest(b(splitKey), rhsRangeId));
  }

  /**
   * Runs range `id`'s removal steps (MvccStore.removalStep) until none is left: what a node
   * does in the background after a split or a compaction.
   */
  removeLeftovers(id: number): void {
    const store = this.store(id);
    while (store.removalStep(3));
  }

  /** Every key's value in range `id` at `revision` (0: current), as "key=value". */
  read(id: number, revision = 0n): string[] {
    const bounds = this.store(id).bounds;
    const request = rangeRequest({
      key: bounds.start.length === 0 ? Uint8Array.of(0) : bounds.start,
      rangeEnd: bounds.end ?? Uint8Array.of(0),
      revision,
    });
    return this.store(id)
      .range(request)
      .kvs.map((kv) => `${s(kv.key)}=${s(kv.value)}`);
  }

  /** The user keys of every stored version of range `id`, with their revisions. */
  versions(id: number): string[] {
    const layout = new KeyLayout(rangeNamespace(id));
    const view = this.kv.view();
    try {
      return [...view.scan(layout.dataStart, layout.dataEnd)].map(({ key }) => {
        const { userKey, revision } = layout.parseDataKey(key);
        return `${s(userKey)}@${revision}`;
      });
    } finally {
      view.release();
    }
  }

  /** Every pair of range `id`'s namespace as hex, except the applied index. */
  dumpRange(id: number): string[] {
    const layout = new KeyLayout(rangeNamespace(id));
    const view = this.kv.view();
    try {
      return [...view.scan(layout.start, layout.end)]
        .map(({ key, value }) => `${Buffer.from(key).toString("hex")}=${Buffer.from(value).toString("hex")}`)
        .filter(
          (pair) =>
            !pair.startsWith(`${Buffer.from(layout.metaKey(MetaField.AppliedIndex)).toString("hex")}=`),
        );
    } finally {
      view.release();
    }
  }
}
