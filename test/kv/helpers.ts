// Shared test helpers for the MVCC store: text keys, a store that numbers its own log
// entries, and a full dump of an engine for byte-for-byte comparisons.
import assert from "node:assert/strict";
import {
  CompareTarget,
  rangeRequest,
  type Command,
  type CommandEnvelope,
  type Compare,
  type CompareResult,
} from "../../src/kv/commands.js";
import type { OrderedKv } from "../../src/kv/engine.js";
import { KeyLayout } from "../../src/kv/keys.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import type { CommandResponse, KeyValue } from "../../src/kv/results.js";
import {
  MvccStore,
  type ApplyOutcome,
  type MvccSnapshot,
  type MvccStoreOptions,
} from "../../src/kv/store.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function b(text: string): Uint8Array {
  return encoder.encode(text);
}

export function s(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** rangeEnd "\0": every key from the start key on. */
export const FROM_KEY = Uint8Array.of(0);
/** rangeEnd of a single-key request. */
export const NO_END = new Uint8Array(0);

/** A store plus the bookkeeping a Raft node would do: entry indexes and one client's sequence. */
export class Harness {
  readonly kv: MemoryOrderedKv;
  readonly store: MvccStore;
  private nextIndex: number;
  private sequence = 0;

  constructor(options: MvccStoreOptions = {}, kv = new MemoryOrderedKv()) {
    this.kv = kv;
    this.store = new MvccStore(kv, options);
    this.nextIndex = this.store.appliedIndex + 1;
  }

  /** Applies `command` as the next entry, stamped `timestamp` (default 0: revisions count up by one). */
  apply(command: Command, timestamp = 0n): ApplyOutcome {
    this.sequence += 1;
    return this.applyEnvelope({ clientId: "harness", sequence: this.sequence, timestamp, command });
  }

  applyEnvelope(envelope: CommandEnvelope): ApplyOutcome {
    return this.store.apply(this.nextIndex++, envelope);
  }

  /** Applies `command` and returns its response, failing the test if it is an error. */
  ok<K extends CommandResponse["kind"]>(
    command: Command,
    kind: K,
    timestamp = 0n,
  ): Extract<CommandResponse, { kind: K }> {
    const { result } = this.apply(command, timestamp);
    if (result.response.kind === "error") assert.fail(`unexpected error: ${result.response.message}`);
    assert.equal(result.response.kind, kind);
    return result.response as Extract<CommandResponse, { kind: K }>;
  }

  /** Applies `command` and returns the error message it must fail with. */
  error(command: Command): string {
    const { result } = this.apply(command);
    if (result.response.kind !== "error") assert.fail(`expected an error, got ${result.response.kind}`);
    return result.response.message;
  }
}

/** Every key-value of an engine as hex, in order: equal dumps mean byte-identical engines. */
export function dump(kv: OrderedKv): string[] {
  const view = kv.view();
  try {
    return [...view.scan(new Uint8Array(0), null)].map(
      ({ key, value }) => `${Buffer.from(key).toString("hex")}=${Buffer.from(value).toString("hex")}`,
    );
  } finally {
    view.release();
  }
}

/** The data area (every stored version) of a store without namespace, dumped like `dump`. */
export function dataDump(kv: OrderedKv): string[] {
  const layout = new KeyLayout(new Uint8Array(0));
  const view = kv.view();
  try {
    return [...view.scan(layout.dataStart, layout.dataEnd)].map(
      ({ key, value }) => `${Buffer.from(key).toString("hex")}=${Buffer.from(value).toString("hex")}`,
    );
  } finally {
    view.release();
  }
}

/** A key-value in a compact, comparable form. */
export function kvText(kv: KeyValue): string {
  return `${s(kv.key)}=${s(kv.value)} c${kv.createRevision} m${kv.modRevision} v${kv.version} l${kv.lease}`;
}

/** The keys a range read returns, as text. */
export function keys(h: Harness, key: string, rangeEnd: Uint8Array, revision = 0n): string[] {
  return h.store.range(rangeRequest({ key: b(key), rangeEnd, revision })).kvs.map((kv) => s(kv.key));
}

/** Every chunk of a store snapshot. */
export async function collect(snapshot: MvccSnapshot): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of snapshot) chunks.push(chunk);
  return chunks;
}

/** One key read as `kvText`, or undefined when absent. */
export function get(h: Harness, key: string, revision = 0n): string | undefined {
  const [kv] = h.store.range(rangeRequest({ key: b(key), revision })).kvs;
  return kv === undefined ? undefined : kvText(kv);
}

/** A single-key compare; the operand is a value for value compares, a number otherwise. */
export function compare(
  target: CompareTarget,
  result: CompareResult,
  key: string,
  operand: bigint | string,
): Compare {
  return target === CompareTarget.Value
    ? { target, result, key: b(key), rangeEnd: NO_END, value: b(String(operand)) }
    : { target, result, key: b(key), rangeEnd: NO_END, operand: BigInt(operand) };
}
