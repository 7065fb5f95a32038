/**
 * The `apply` workload: what applying committed puts costs a replica's state machine, without
 * Raft or network (the store's background lmdb commits, synced, are waited for and counted).
 * Every replica pays it for every write, so it is a floor under each member's CPU per put in
 * etcd-compare.
 *
 * An MvccStore over lmdb (in a temp dir, removed afterwards) applies batches of put entries
 * the way a replica does (`applyEntries`, envelopes decoded from their log bytes), with etcd-
 * compare's shape: 256-byte values over 1,000 keys, one client id (a node's). The reference,
 * measured in the same run: bare lmdb write transactions of the same number of rows, keys and
 * values (what the engine alone costs per put). Process CPU time per put, after a warm-up.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "lmdb";
import { utf8 } from "../src/kv/bytes.js";
import { decodeEnvelope, encodeEnvelope, putRequest } from "../src/kv/commands.js";
import { rangeNamespace } from "../src/kv/keys.js";
import { LmdbOrderedKv } from "../src/kv/lmdb-engine.js";
import { MvccStore } from "../src/kv/store.js";
import { systemTimers } from "../src/transport/timers.js";
import { describeMachine, type Machine } from "./embedded.js";

export const APPLY_BATCH_SIZES = [1, 16, 64] as const;
const VALUE_BYTES = 256;
/** Distinct keys the puts of the apply and layout-writes workloads go to. */
export const KEY_COUNT = 1_000;
const CLIENT_ID = "bench-apply-node-incarnation";
/** Puts applied before a row's clock starts, so that the code is compiled and the keys exist. */
const WARM_UP_PUTS = 20_000;

export interface ApplyRow {
  readonly batch: number;
  readonly puts: number;
  /** MvccStore.applyEntries: process CPU (all threads) per put. */
  readonly applyCpuUsPerPut: number;
  /** Bare lmdb transactions of one row per put: process CPU per put. */
  readonly engineCpuUsPerPut: number;
}

export interface ApplyReport {
  readonly workload: "apply";
  readonly date: string;
  readonly machine: Machine;
  readonly putsPerRow: number;
  readonly rows: readonly ApplyRow[];
}

/** The key of put number `index`: one of KEY_COUNT keys, in turn. */
export function keyName(index: number): Uint8Array {
  return utf8(`bench/key/${String(index % KEY_COUNT).padStart(6, "0")}`);
}

/**
 * Runs `writeBatch` (`batch` puts each) through the warm-up, then for `puts` puts; returns the
 * CPU microseconds (user + system, every thread) per put of the second part.
 */
async function cpuPerPut(
  batch: number,
  puts: number,
  writeBatch: () => void,
  committed: () => Promise<void>,
): Promise<number> {
  for (let done = 0; done < WARM_UP_PUTS; done += batch) writeBatch();
  await committed();
  const before = process.cpuUsage();
  for (let done = 0; done < puts; done += batch) writeBatch();
  await committed();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / puts;
}

/** A range-1 store over a fresh lmdb engine in `dir`, with commits on the system timers, as a node has. */
export function openBenchStore(dir: string): { readonly kv: LmdbOrderedKv; readonly store: MvccStore } {
  const kv = LmdbOrderedKv.open({
    path: dir,
    commitTimer: (commit, delayMs) => systemTimers.setTimeout(commit, delayMs),
  });
  return { kv, store: new MvccStore(kv, { namespace: rangeNamespace(1) }) };
}

/** Applies `puts` puts in batches of `batch` to a fresh store; returns the CPU per put after the warm-up. */
async function measureApply(dir: string, batch: number, puts: number): Promise<number> {
  const { kv, store } = openBenchStore(dir);
  try {
    const value = new Uint8Array(VALUE_BYTES).fill(0x61);
    let index = 0;
    let timestamp = 1n << 32n;
    const applyBatch = (): void => {
      const entries = [];
      for (let i = 0; i < batch; i++) {
        index += 1;
        timestamp += 1n << 16n;
        const command = putRequest({ key: keyName(index), value });
        const data = encodeEnvelope({ clientId: CLIENT_ID, sequence: index, timestamp, command });
        entries.push({ index, envelope: decodeEnvelope(data) });
      }
      store.applyEntries(entries);
    };
    // The store's commits run in the background (lmdb-engine.ts): the measurement waits for them.
    return await cpuPerPut(batch, puts, applyBatch, () => kv.sync());
  } finally {
    await kv.close();
  }
}

/** The same rows written straight into lmdb, `batch` rows per synchronous transaction. */
async function measureEngine(dir: string, batch: number, puts: number): Promise<number> {
  // Committed without an fsync each, as the store's transactions are (it syncs separately).
  const root = open<Uint8Array, Uint8Array>({
    path: dir,
    keyEncoding: "binary",
    encoding: "binary",
    noSync: true,
    overlappingSync: false,
    eventTurnBatching: false,
  });
  try {
    const value = new Uint8Array(VALUE_BYTES + 34).fill(0x61);
    let index = 0;
    const writeBatch = (): void => {
      root.transactionSync(() => {
        for (let i = 0; i < batch; i++) {
          index += 1;
          root.putSync(keyName(index), value);
        }
      });
    };
    return await cpuPerPut(batch, puts, writeBatch, () => Promise.resolve());
  } finally {
    await root.close();
  }
}

export async function runApplyBench(puts: number, progress: (line: string) => void): Promise<ApplyReport> {
  const rows: ApplyRow[] = [];
  for (const batch of APPLY_BATCH_SIZES) {
    const dir = mkdtempSync(join(tmpdir(), "concord-bench-apply-"));
    try {
      const applyCpuUsPerPut = await measureApply(join(dir, "store"), batch, puts);
      const engineCpuUsPerPut = await measureEngine(join(dir, "engine"), batch, puts);
      rows.push({ batch, puts, applyCpuUsPerPut, engineCpuUsPerPut });
      progress(`done: batches of ${batch}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return {
    workload: "apply",
    date: new Date().toISOString(),
    machine: describeMachine(),
    putsPerRow: puts,
    rows,
  };
}
