/**
 * The `split-apply` workload: how long applying ONE split command holds a replica's main
 * thread, by how many versions the range stores, and what is left for the background. A split
 * copies every version at or above its key into the new range's namespace in the split's
 * batch (src/kv/split.ts), synchronously, and every replica of the range applies it at about
 * the same time: while it runs, the node serves nothing. (Found with etcd-compare's paced
 * puts: a load split during a row stalled every member for 0.5-0.8 s.) The left side's copies
 * are removed afterwards in steps (MvccStore.removalStep, REMOVAL_STEP_VERSIONS each, as a
 * node runs them between requests); so are a compaction's versions, measured on the right side.
 *
 * An MvccStore over lmdb (a temp dir, removed afterwards) holds `versions` puts over 1,000
 * keys (256-byte values), is fenced, then applies a split at the middle key; measured: the
 * wall time of that apply (main thread), of the store's commit that follows (lmdb's write
 * thread), of the left side's removal steps (the longest and all of them), then a Compact at
 * the right side's revision: its apply and its removal steps. The reference, in the same run:
 * one synchronous bare lmdb transaction that reads the same rows and writes them under
 * another prefix, commit included (what moving them costs the engine alone).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "lmdb";
import { utf8 } from "../src/kv/bytes.js";
import {
  compactRequest,
  fenceRequest,
  putRequest,
  splitRequest,
  type KvCommand,
} from "../src/kv/commands.js";
import { rangeNamespace } from "../src/kv/keys.js";
import { RHS_INITIAL_INDEX } from "../src/kv/split.js";
import { MvccStore } from "../src/kv/store.js";
import { REMOVAL_STEP_VERSIONS } from "../src/node/host.js";
import { openBenchStore } from "./apply.js";
import { describeMachine, type Machine } from "./embedded.js";

export const SPLIT_APPLY_VERSIONS = [10_000, 50_000, 100_000] as const;
const VALUE_BYTES = 256;
const KEY_COUNT = 1_000;
const SPLIT_KEY = utf8(`bench/key/${String(KEY_COUNT / 2).padStart(6, "0")}`);

export interface SplitApplyRow {
  readonly versions: number;
  /** Versions the split moved into the new range. */
  readonly moved: number;
  /** The split command's apply, on the main thread. */
  readonly applyMs: number;
  /** The store's commit of the split's batch, after it. */
  readonly commitMs: number;
  /** The left side's removal steps of the moved versions: the longest one, and all of them. */
  readonly removalStepMaxMs: number;
  readonly removalMs: number;
  /** A Compact at the right side's revision: its apply, and its longest removal step. */
  readonly compactApplyMs: number;
  readonly compactStepMaxMs: number;
  /** Bare lmdb: one transaction reading the moved rows and writing them under another prefix. */
  readonly engineMs: number;
}

export interface SplitApplyReport {
  readonly workload: "split-apply";
  readonly date: string;
  readonly machine: Machine;
  readonly rows: readonly SplitApplyRow[];
}

function keyName(index: number): Uint8Array {
  return utf8(`bench/key/${String(index % KEY_COUNT).padStart(6, "0")}`);
}

async function measureSplit(dir: string, versions: number): Promise<Omit<SplitApplyRow, "engineMs">> {
  const { kv, store } = openBenchStore(dir);
  try {
    const value = new Uint8Array(VALUE_BYTES).fill(0x61);
    let index = 0;
    const apply = (command: KvCommand) => {
      index += 1;
      return store.apply(index, { clientId: "bench", sequence: index, timestamp: BigInt(index), command });
    };
    for (let i = 0; i < versions; i++) apply(putRequest({ key: keyName(i), value }));
    apply(fenceRequest(SPLIT_KEY, 2));
    await kv.sync();
    const before = new MvccStore(kv, { namespace: rangeNamespace(2) });
    if (before.appliedIndex !== 0) throw new Error("the new range's store exists before the split");
    const started = performance.now();
    const outcome = apply(splitRequest(SPLIT_KEY, 2));
    const applied = performance.now();
    await kv.sync();
    const committed = performance.now();
    if (outcome.result.response.kind !== "split") {
      throw new Error(`the split was refused: ${JSON.stringify(outcome.result.response)}`);
    }
    let moved = 0;
    for (let i = 0; i < versions; i++) if (i % KEY_COUNT >= KEY_COUNT / 2) moved += 1;
    const removal = timeRemovalSteps(store);
    const rhs = new MvccStore(kv, { namespace: rangeNamespace(2) });
    const compactStarted = performance.now();
    // Another client id: the right side inherited the dedup record of the puts' client.
    const compacted = rhs.apply(RHS_INITIAL_INDEX + 1, {
      clientId: "bench-compact",
      sequence: 1,
      timestamp: 0n,
      command: compactRequest(rhs.revision),
    });
    const compactApplyMs = performance.now() - compactStarted;
    if (compacted.result.response.kind !== "compact") throw new Error("the compaction was refused");
    const compaction = timeRemovalSteps(rhs);
    await kv.sync();
    return {
      versions,
      moved,
      applyMs: applied - started,
      commitMs: committed - applied,
      removalStepMaxMs: removal.maxMs,
      removalMs: removal.totalMs,
      compactApplyMs,
      compactStepMaxMs: compaction.maxMs,
    };
  } finally {
    await kv.close();
  }
}

/** Runs `store`'s removal steps until none is left: the longest step and all of them, in ms. */
function timeRemovalSteps(store: MvccStore): { readonly maxMs: number; readonly totalMs: number } {
  let maxMs = 0;
  let totalMs = 0;
  for (let more = true; more;) {
    const started = performance.now();
    more = store.removalStep(REMOVAL_STEP_VERSIONS);
    const took = performance.now() - started;
    maxMs = Math.max(maxMs, took);
    totalMs += took;
  }
  return { maxMs, totalMs };
}

async function measureEngine(dir: string, rows: number): Promise<number> {
  const root = open<Uint8Array, Uint8Array>({
    path: dir,
    keyEncoding: "binary",
    encoding: "binary",
    overlappingSync: false,
  });
  try {
    const value = new Uint8Array(VALUE_BYTES + 34).fill(0x61);
    const source = (i: number) => utf8(`a/${String(i).padStart(9, "0")}`);
    root.transactionSync(() => {
      for (let i = 0; i < rows; i++) root.putSync(source(i), value);
    });
    const started = performance.now();
    root.transactionSync(() => {
      const stored = [...root.getRange({ start: utf8("a/"), end: utf8("a0") })];
      for (const { key, value: row } of stored) {
        root.putSync(Buffer.concat([utf8("b/"), key.subarray(2)]), row);
        root.removeSync(key);
      }
    });
    return performance.now() - started;
  } finally {
    await root.close();
  }
}

export async function runSplitApplyBench(progress: (line: string) => void): Promise<SplitApplyReport> {
  const rows: SplitApplyRow[] = [];
  for (const versions of SPLIT_APPLY_VERSIONS) {
    const dir = mkdtempSync(join(tmpdir(), "concord-bench-split-apply-"));
    try {
      const split = await measureSplit(join(dir, "store"), versions);
      const engineMs = await measureEngine(join(dir, "engine"), split.moved);
      rows.push({ ...split, engineMs });
      progress(`done: ${versions} versions`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { workload: "split-apply", date: new Date().toISOString(), machine: describeMachine(), rows };
}
