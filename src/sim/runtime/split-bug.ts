/**
 * The deliberate split bug of the checks-bite tests (`--split-loses-key`): a split's copy into
 * the new range forgets one key. It acts on the state-machine engine's writes, so the real
 * split code runs unchanged: a batch that copies MVCC data into another range's namespace (puts
 * data keys under one namespace and writes under another: the splitting range's meta) loses
 * the puts of every version of the smallest copied user key. Every node applies the split the same
 * way, so the nodes still agree with each other; only the client-visible checks can tell.
 */
import { WriteBatch, type WriteOp } from "../../kv/engine.js";

/** Bytes of a range namespace (`rangeNamespace`: a 4-byte range id). */
const NAMESPACE_BYTES = 4;
/** The tag byte after the namespace that marks MVCC data keys (keys.ts). */
const DATA_TAG = 0x10;

function isDataKey(key: Uint8Array): boolean {
  return key.length > NAMESPACE_BYTES && key[NAMESPACE_BYTES] === DATA_TAG;
}

function sameNamespace(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < NAMESPACE_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The length of a data key's namespace, tag and encoded user key (up to and including the
 * encoding's 0x00 0x01 terminator; 0x00 0xFF is an escaped zero byte), or null if malformed.
 */
function userKeyPrefixLength(key: Uint8Array): number | null {
  for (let i = NAMESPACE_BYTES + 1; i + 1 < key.length; i++) {
    if (key[i] !== 0) continue;
    if (key[i + 1] === 1) return i + 2;
    i++;
  }
  return null;
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** `batch` without the copies of one moved key when it is a split's copy; otherwise `batch`. */
export function dropOneMovedKey(batch: WriteBatch): WriteBatch {
  const ops = batch.sortedOps();
  const copied = ops.find((op) => op.value !== null && isDataKey(op.key));
  if (copied === undefined || ops.every((op) => sameNamespace(op.key, copied.key))) return batch;
  const length = userKeyPrefixLength(copied.key);
  if (length === null) return batch;
  const lost = copied.key.subarray(0, length);
  const kept = new WriteBatch();
  const keep = (op: WriteOp): void => {
    if (op.value === null) kept.delete(op.key);
    else kept.put(op.key, op.value);
  };
  for (const op of ops) if (op.value === null || !startsWith(op.key, lost)) keep(op);
  return kept;
}
