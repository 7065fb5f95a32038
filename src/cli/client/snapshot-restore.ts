/**
 * `concord snapshot restore <file> --data-dir <dir> [--name --initial-cluster
 * --initial-cluster-token --initial-advertise-peer-urls]`: builds a member's data dir from a
 * saved snapshot, for a new cluster, the way etcdctl's restore does — the keyspace, its
 * revisions and leases come from the snapshot; membership comes from the flags.
 *
 * The file is what Maintenance.Snapshot streams from Concord: one MVCC image of the whole
 * keyspace, every range merged (src/kv/backup.ts), in the kv layer's snapshot format
 * (src/kv/snapshot.ts) wrapped as src/api/etcd/snapshot-file.ts lays
 * it out (zero fill, image length, SHA-256: checked), or a bare image. The restored dir holds `cluster.json`
 * (as `concord start` founds it, from the same flags) and the state machine's store in
 * `state/` with the snapshot's pairs under range 1's namespace — minus the applied index, so
 * the new cluster's fresh Raft log applies from its first entry. `concord start` with the same
 * --name, --initial-cluster and --initial-cluster-token then bootstraps the group over it.
 *
 * Everything is checked (flags, the data dir is absent or empty, the whole snapshot decodes)
 * before anything is written; a failure while writing removes what the restore created.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DecodeError } from "../../kv/bytes.js";
import { WriteBatch, type KvPair } from "../../kv/engine.js";
import { KeyLayout, MetaField } from "../../kv/keys.js";
import { LmdbOrderedKv } from "../../kv/lmdb-engine.js";
import { systemTimers } from "../../transport/timers.js";
import { SnapshotDecoder } from "../../kv/snapshot.js";
import { FIRST_RANGE_ID, STATE_MACHINE_DIR } from "../../api/embedded.js";
import { rangeNamespace } from "../../kv/keys.js";
import { imageOfSnapshotFile, SNAPSHOT_FILE_ALIGNMENT } from "../../api/etcd/snapshot-file.js";
import { foundDataDir, inspectDataDir } from "../data-dir.js";
import { RuntimeError } from "../errors.js";
import { resolveStartConfig, START_DEFAULTS, type StartConfig } from "../start-config.js";
import type { ClientContext } from "./context.js";
import { CommandError, UsageError } from "./errors.js";
import { jsonText } from "./render.js";
import { fsyncDir, progressBar } from "./snapshot-save.js";

export interface RestoreFlags {
  readonly dataDir?: string;
  readonly name: string;
  readonly initialCluster?: string;
  readonly initialClusterToken: string;
  readonly initialAdvertisePeerUrls: string;
}

export const RESTORE_DEFAULTS = {
  name: START_DEFAULTS.name,
  initialClusterToken: START_DEFAULTS.initialClusterToken,
  initialAdvertisePeerUrls: START_DEFAULTS.initialAdvertisePeerUrls,
} as const;

const SHA256_BYTES = 32;
const DECODE_CHUNK_BYTES = 1024 * 1024;
const PAIRS_PER_BATCH = 10_000;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The image inside a snapshot file: a file of etcd's size shape (a multiple of 512 plus a
 * 32-byte digest) must be Maintenance.Snapshot's wrapping and is checked as such; anything
 * else is taken as a bare image (the decoder checks its own CRC).
 */
function imageOf(file: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length % SNAPSHOT_FILE_ALIGNMENT !== SHA256_BYTES) return bytes;
  try {
    return imageOfSnapshotFile(bytes);
  } catch (error) {
    throw new CommandError(`${file} is not a Concord snapshot or is damaged: ${errorText(error)}`);
  }
}

/** Decodes the whole image, handing its pairs (minus the applied index) to `sink`. */
function decodeImage(
  file: string,
  image: Uint8Array,
  sink: (pairs: KvPair[]) => void,
  onBytes: (done: number) => void,
): number {
  const relativeAppliedIndex = new KeyLayout(new Uint8Array(0)).metaKey(MetaField.AppliedIndex);
  const isAppliedIndex = (key: Uint8Array) => Buffer.from(key).equals(relativeAppliedIndex);
  const decoder = new SnapshotDecoder();
  let pairs = 0;
  try {
    for (let offset = 0; offset < image.length; offset += DECODE_CHUNK_BYTES) {
      const chunk = image.subarray(offset, offset + DECODE_CHUNK_BYTES);
      const decoded = decoder.push(chunk).filter((pair) => !isAppliedIndex(pair.key));
      pairs += decoded.length;
      sink(decoded);
      onBytes(offset + chunk.length);
    }
    decoder.finish();
  } catch (error) {
    if (error instanceof DecodeError)
      throw new CommandError(`${file} is not a Concord snapshot or is damaged: ${error.message}`);
    throw error;
  }
  return pairs;
}

function configOf(flags: RestoreFlags, cwd: string): StartConfig {
  if (flags.dataDir === undefined) throw new UsageError("snapshot restore needs --data-dir <dir>");
  return resolveStartConfig(
    {
      ...START_DEFAULTS,
      name: flags.name,
      dataDir: flags.dataDir,
      initialCluster: flags.initialCluster,
      initialClusterToken: flags.initialClusterToken,
      initialAdvertisePeerUrls: flags.initialAdvertisePeerUrls,
      initialClusterState: "new",
    },
    cwd,
  );
}

export async function runSnapshotRestore(
  ctx: ClientContext,
  fileArg: string,
  flags: RestoreFlags,
): Promise<void> {
  const file = resolve(ctx.io.cwd, fileArg);
  const config = configOf(flags, ctx.io.cwd);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new CommandError(`cannot read snapshot ${file}: ${errorText(error)}`);
  }
  const state = inspectDataDir(config);
  if (state.kind !== "fresh")
    throw new CommandError(`data-dir "${config.dataDir}" exists and holds a member`);
  // Everything is decoded once before anything is written: a bad file changes nothing.
  const image = imageOf(file, bytes);
  const pairCount = decodeImage(
    file,
    image,
    () => {},
    () => {},
  );

  const rollback = foundDataDir(config, state);
  const bar = progressBar(ctx.io.stderrIsTTY, "snapshot restore");
  let store: LmdbOrderedKv | null = null;
  try {
    store = LmdbOrderedKv.open({
      path: join(config.dataDir, STATE_MACHINE_DIR),
      commitTimer: (commit, delayMs) => systemTimers.setTimeout(commit, delayMs),
    });
    const target = store;
    const namespace = rangeNamespace(FIRST_RANGE_ID);
    let batch = new WriteBatch();
    decodeImage(
      file,
      image,
      (pairs) => {
        for (const { key, value } of pairs) batch.put(Buffer.concat([namespace, key]), value);
        if (batch.size >= PAIRS_PER_BATCH) {
          target.write(batch);
          batch = new WriteBatch();
        }
      },
      (done) => bar.update(done, image.length),
    );
    target.write(batch);
    await target.sync();
    await target.close();
    store = null;
    fsyncDir(config.dataDir);
  } catch (error) {
    await store?.close();
    rollback();
    if (error instanceof CommandError || error instanceof RuntimeError) throw error;
    throw new CommandError(`cannot write ${config.dataDir}: ${errorText(error)}`);
  } finally {
    bar.stop();
  }
  if (ctx.format === "json") {
    ctx.out(
      `${jsonText({ dataDir: config.dataDir, name: config.name, pairs: pairCount, wrapped: image !== bytes })}\n`,
    );
  } else {
    ctx.out(`Snapshot ${fileArg} restored into ${config.dataDir} (member ${config.name})\n`);
  }
}
