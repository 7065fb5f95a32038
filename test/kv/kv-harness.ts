// A store harness for lease and watch tests: applies any command (key-value or lease) as
// the next log entry, enforces leases by default, and can feed a WatchHub after each apply
// the way a node does.
import assert from "node:assert/strict";
import type { KvCommand } from "../../src/kv/commands.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import type { CommandResponse, KvEvent } from "../../src/kv/results.js";
import { MvccStore, type ApplyOutcome, type MvccStoreOptions } from "../../src/kv/store.js";
import type { WatchHub } from "../../src/kv/watch.js";

/** Every applied write: its revision and its events in key order (what watchers must see). */
export interface Published {
  readonly revision: bigint;
  readonly events: readonly KvEvent[];
}

export class KvHarness {
  readonly kv: MemoryOrderedKv;
  readonly store: MvccStore;
  readonly published: Published[] = [];
  private nextIndex: number;
  private sequence = 0;
  private readonly hubs: WatchHub[] = [];

  constructor(options: MvccStoreOptions = { enforceLeases: true }, kv = new MemoryOrderedKv()) {
    this.kv = kv;
    this.store = new MvccStore(kv, options);
    this.nextIndex = this.store.appliedIndex + 1;
  }

  /** Publishes every later apply's events to `hub`. */
  feed(hub: WatchHub): void {
    this.hubs.push(hub);
  }

  /** The index the next apply will use. */
  get nextEntryIndex(): number {
    return this.nextIndex;
  }

  apply(command: KvCommand, timestamp = 0n): ApplyOutcome {
    this.sequence += 1;
    const outcome = this.store.apply(this.nextIndex++, {
      clientId: "kv-harness",
      sequence: this.sequence,
      timestamp,
      command,
    });
    if (outcome.events.length > 0) {
      const { revision } = outcome.result;
      const sorted = [...outcome.events].sort((a, b) => Buffer.compare(a.kv.key, b.kv.key));
      this.published.push({ revision, events: sorted });
      for (const hub of this.hubs) hub.publish(revision, outcome.events);
    }
    return outcome;
  }

  ok<K extends CommandResponse["kind"]>(
    command: KvCommand,
    kind: K,
    timestamp = 0n,
  ): Extract<CommandResponse, { kind: K }> {
    const { result } = this.apply(command, timestamp);
    if (result.response.kind === "error") assert.fail(`unexpected error: ${result.response.message}`);
    assert.equal(result.response.kind, kind);
    return result.response as Extract<CommandResponse, { kind: K }>;
  }

  error(command: KvCommand): string {
    const { result } = this.apply(command);
    if (result.response.kind !== "error") assert.fail(`expected an error, got ${result.response.kind}`);
    return result.response.message;
  }
}
