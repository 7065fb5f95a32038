/**
 * The `layout-writes` workload: how many bytes the device writes, and how long a commit takes,
 * when a second's puts reach lmdb, by how versions are keyed. Concord stores a version under
 * its key, then its revision (src/kv/keys.ts): versions of one key are contiguous, so each
 * commit rewrites one B-tree leaf per key written, however far apart the commits are. etcd's
 * backend keys versions by revision: a commit appends. Found while tracing the put p99, whose
 * slow writes coincide with these commits on a shared disk.
 *
 * Rows, each on a fresh lmdb environment in a temp dir (removed afterwards) holding
 * HISTORY_VERSIONS puts of 270-byte values over 1,000 keys before the measured commits:
 * Concord's MvccStore applying put entries (one sync per commit, so one lmdb commit each);
 * the reference, bare lmdb transactions of the same puts keyed key-major (Concord's order) and
 * revision-major (etcd's). Bytes come from the block device's own counter
 * (`/sys/dev/block/<major:minor>/stat`, sectors written), so nothing else may write to that
 * device during the run; `/proc/<pid>/io` overcounts on kernels with large folios.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "lmdb";
import { decodeEnvelope, encodeEnvelope, putRequest } from "../src/kv/commands.js";
import { KEY_COUNT, keyName, openBenchStore } from "./apply.js";
import { describeMachine, type Machine } from "./embedded.js";

const VALUE_BYTES = 270;
const HISTORY_VERSIONS = 200_000;
const MEASURED_COMMITS = 30;
/** Puts per commit: a second's worth at 1,000 puts/s, and ten seconds' worth. */
export const LAYOUT_PUTS_PER_COMMIT = [1_000, 10_000] as const;
const LAYOUTS = ["concord-store", "key-major", "revision-major"] as const;
type Layout = (typeof LAYOUTS)[number];

export interface LayoutWritesRow {
  readonly layout: Layout;
  readonly putsPerCommit: number;
  readonly deviceBytesPerCommit: number;
  readonly deviceBytesPerPut: number;
  /** Wall time of one commit's puts (applies, for the store) and its synced lmdb commit. */
  readonly commitMs: number;
}

export interface LayoutWritesReport {
  readonly workload: "layout-writes";
  readonly date: string;
  readonly machine: Machine;
  readonly device: string;
  readonly rows: readonly LayoutWritesRow[];
}

/** Bytes written so far by the block device holding `path` (its sysfs counter). */
function deviceWrittenBytes(statFile: string): number {
  const fields = readFileSync(statFile, "utf8").trim().split(/\s+/);
  return Number(fields[6]) * 512;
}

function deviceStatFile(path: string): string {
  const { dev } = statSync(path);
  // Linux's dev_t: major in bits 8-19 (and 32-43), minor in bits 0-7 (and 20-31).
  const major = ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  const file = `/sys/dev/block/${major}:${minor}/stat`;
  if (!existsSync(file)) throw new Error(`${path} is on no block device with a counter (${file} is missing)`);
  return file;
}

/** A writer of one layout: `commit(n)` makes n puts of random keys durable in one lmdb commit. */
interface LayoutWriter {
  commit(puts: number): Promise<void>;
  close(): Promise<void>;
}

function concordStoreWriter(dir: string, random: () => number): LayoutWriter {
  const { kv, store } = openBenchStore(dir);
  const value = new Uint8Array(VALUE_BYTES).fill(0x61);
  let index = 0;
  let timestamp = 1n << 32n;
  return {
    async commit(puts) {
      const entries = [];
      for (let i = 0; i < puts; i++) {
        index += 1;
        timestamp += 1n << 16n;
        const command = putRequest({ key: keyName(Math.floor(random() * KEY_COUNT)), value });
        const data = encodeEnvelope({ clientId: "bench", sequence: index, timestamp, command });
        entries.push({ index, envelope: decodeEnvelope(data) });
      }
      store.applyEntries(entries);
      await kv.sync();
    },
    close: () => kv.close(),
  };
}

function bareWriter(dir: string, layout: "key-major" | "revision-major", random: () => number): LayoutWriter {
  const env = open<Uint8Array, Uint8Array>({ path: dir, overlappingSync: false, eventTurnBatching: false });
  const db = env.openDB<Uint8Array, Uint8Array>({ name: "data", keyEncoding: "binary", encoding: "binary" });
  const value = new Uint8Array(VALUE_BYTES).fill(0x61);
  let revision = 1n;
  const versionKey = (key: Uint8Array, rev: bigint): Uint8Array => {
    const out = new Uint8Array(1 + key.length + 8);
    const view = new DataView(out.buffer);
    if (layout === "key-major") {
      out[0] = 0x10;
      out.set(key, 1);
      view.setBigUint64(1 + key.length, ~rev & 0xffff_ffff_ffff_ffffn);
    } else {
      out[0] = 0x20;
      view.setBigUint64(1, rev);
      out.set(key, 9);
    }
    return out;
  };
  return {
    async commit(puts) {
      await db.transaction(() => {
        for (let i = 0; i < puts; i++) {
          void db.put(versionKey(keyName(Math.floor(random() * KEY_COUNT)), revision++), value);
        }
      });
    },
    close: () => env.close(),
  };
}

/** A small deterministic generator (the rows see the same key sequence). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

async function measure(layout: Layout, putsPerCommit: number, statFile: string): Promise<LayoutWritesRow> {
  const dir = mkdtempSync(join(tmpdir(), "concord-bench-layout-"));
  const random = seededRandom(7);
  const writer =
    layout === "concord-store" ? concordStoreWriter(dir, random) : bareWriter(dir, layout, random);
  try {
    for (let written = 0; written < HISTORY_VERSIONS; written += 10_000) await writer.commit(10_000);
    const before = deviceWrittenBytes(statFile);
    const started = performance.now();
    for (let i = 0; i < MEASURED_COMMITS; i++) await writer.commit(putsPerCommit);
    const elapsedMs = performance.now() - started;
    const bytes = deviceWrittenBytes(statFile) - before;
    return {
      layout,
      putsPerCommit,
      deviceBytesPerCommit: bytes / MEASURED_COMMITS,
      deviceBytesPerPut: bytes / MEASURED_COMMITS / putsPerCommit,
      commitMs: elapsedMs / MEASURED_COMMITS,
    };
  } finally {
    await writer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runLayoutWritesBench(progress: (line: string) => void): Promise<LayoutWritesReport> {
  const statFile = deviceStatFile(tmpdir());
  const rows: LayoutWritesRow[] = [];
  for (const putsPerCommit of LAYOUT_PUTS_PER_COMMIT) {
    for (const layout of LAYOUTS) {
      const row = await measure(layout, putsPerCommit, statFile);
      progress(
        `${layout}, ${putsPerCommit} puts per commit: ${(row.deviceBytesPerCommit / 1e6).toFixed(2)} MB, ` +
          `${row.commitMs.toFixed(1)} ms per commit`,
      );
      rows.push(row);
    }
  }
  return {
    workload: "layout-writes",
    date: new Date().toISOString(),
    machine: describeMachine(),
    device: statFile,
    rows,
  };
}
