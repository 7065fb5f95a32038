/**
 * The deliberate merge bug of the checks-bite tests (`--merge-loses-key`): a merge's import
 * into the left-hand range drops one version. Like split-bug.ts it acts on the state-machine
 * engine's writes, so the real merge code runs unchanged. A merge's one engine write puts
 * copies of the right-hand range's data keys under the left-hand range's namespace while the
 * originals are still stored under the right-hand namespace (that replica is destroyed only
 * later), and deletes no data key: a batch like that loses the put of its first copied data
 * key in key order — the newest version of the smallest imported user key. Every node applies the
 * merge the same way, so the nodes still agree; only the client-visible checks can tell.
 */
import { WriteBatch, type KvReader, type WriteOp } from "../../kv/engine.js";
import { prefixEnd } from "../../kv/bytes.js";

/** Bytes of a range namespace (`rangeNamespace`: a 4-byte range id). */
const NAMESPACE_BYTES = 4;
/** The tag byte after the namespace that marks MVCC data keys (keys.ts). */
const DATA_TAG = 0x10;

function isDataKey(key: Uint8Array): boolean {
  return key.length > NAMESPACE_BYTES && key[NAMESPACE_BYTES] === DATA_TAG;
}

/** Every namespace holding a key in `engine` (one seek per namespace). */
function storedNamespaces(engine: KvReader): Uint8Array[] {
  const found: Uint8Array[] = [];
  let from: Uint8Array | null = new Uint8Array(0);
  while (from !== null) {
    const first = firstKeyFrom(engine, from);
    if (first === undefined || first.length < NAMESPACE_BYTES) break;
    const namespace = first.slice(0, NAMESPACE_BYTES);
    found.push(namespace);
    from = prefixEnd(namespace);
  }
  return found;
}

function firstKeyFrom(engine: KvReader, from: Uint8Array): Uint8Array | undefined {
  for (const pair of engine.scan(from, null)) return pair.key;
  return undefined;
}

/** The same data key (tag, user key, revision) under another namespace. */
function underNamespace(key: Uint8Array, namespace: Uint8Array): Uint8Array {
  const moved = Uint8Array.from(key);
  moved.set(namespace, 0);
  return moved;
}

/**
 * `batch` without the first of its data-key puts, in key order, that copies a data key
 * stored under another namespace of `engine` (the state before the batch) — a merge's import —
 * unless the batch also deletes data keys (a split's move, a compaction); otherwise `batch`.
 * One engine write may carry several applied commands, so the batch may hold other puts too.
 */
export function dropOneImportedVersion(batch: WriteBatch, engine: KvReader): WriteBatch {
  const ops = batch.sortedOps();
  if (ops.some((op) => op.value === null && isDataKey(op.key))) return batch;
  const puts = ops.filter((op) => op.value !== null && isDataKey(op.key));
  if (puts.length === 0) return batch;
  const namespaces = storedNamespaces(engine);
  const copied = puts.find((op) =>
    namespaces.some(
      (namespace) =>
        Buffer.compare(namespace, op.key.subarray(0, NAMESPACE_BYTES)) !== 0 &&
        engine.get(underNamespace(op.key, namespace)) !== undefined,
    ),
  );
  if (copied === undefined) return batch;
  const kept = new WriteBatch();
  const keep = (op: WriteOp): void => {
    if (op.value === null) kept.delete(op.key);
    else kept.put(op.key, op.value);
  };
  for (const op of ops) if (op !== copied) keep(op);
  return kept;
}
