/**
 * The byte stream Maintenance.Snapshot sends, which `etcdctl snapshot save` stores as a file:
 * Concord's snapshot image (src/kv/snapshot.ts) wrapped so that etcd's clients accept it.
 * etcdctl 3.4 refuses a download whose size is not a multiple of 512 plus 32 (etcd sends its
 * bbolt file, page-aligned, followed by the file's SHA-256), so the image is followed by:
 *
 *   image | zero fill | u64 big-endian image length | SHA-256 of every byte before it
 *
 * with the fill chosen to make everything before the digest a multiple of 512 bytes. The
 * image is Concord's format, not bbolt: `etcdctl snapshot status/restore` cannot read it;
 * `imageOfSnapshotFile` gives the image back for Concord's own restore.
 */
import { createHash, type Hash } from "node:crypto";

export const SNAPSHOT_FILE_ALIGNMENT = 512;
const LENGTH_BYTES = 8;
const DIGEST_BYTES = 32;

function fillBytes(imageBytes: number): number {
  return (
    (SNAPSHOT_FILE_ALIGNMENT - ((imageBytes + LENGTH_BYTES) % SNAPSHOT_FILE_ALIGNMENT)) %
    SNAPSHOT_FILE_ALIGNMENT
  );
}

/** The size of the whole file for an image of `imageBytes`. */
export function snapshotFileBytes(imageBytes: number): number {
  return imageBytes + fillBytes(imageBytes) + LENGTH_BYTES + DIGEST_BYTES;
}

/** A hash to feed every image chunk to, for `snapshotFileTrailer`. */
export function snapshotFileHash(): Hash {
  return createHash("sha256");
}

/** What follows an image of `imageBytes` whose chunks went into `hash` (which this finishes). */
export function snapshotFileTrailer(imageBytes: number, hash: Hash): Uint8Array {
  const tail = new Uint8Array(fillBytes(imageBytes) + LENGTH_BYTES);
  new DataView(tail.buffer).setBigUint64(tail.length - LENGTH_BYTES, BigInt(imageBytes));
  hash.update(tail);
  const out = new Uint8Array(tail.length + DIGEST_BYTES);
  out.set(tail);
  out.set(hash.digest(), tail.length);
  return out;
}

/** The Concord image inside a snapshot file; RangeError when the file is not one (or damaged). */
export function imageOfSnapshotFile(file: Uint8Array): Uint8Array {
  if (file.length < LENGTH_BYTES + DIGEST_BYTES || file.length % SNAPSHOT_FILE_ALIGNMENT !== DIGEST_BYTES) {
    throw new RangeError(`a snapshot file of ${file.length} bytes is not a Concord snapshot file`);
  }
  const body = file.subarray(0, file.length - DIGEST_BYTES);
  const digest = createHash("sha256").update(body).digest();
  if (Buffer.compare(digest, file.subarray(body.length)) !== 0) {
    throw new RangeError("the snapshot file's SHA-256 does not match: it is damaged");
  }
  const length = new DataView(body.buffer, body.byteOffset, body.length).getBigUint64(
    body.length - LENGTH_BYTES,
  );
  if (length > BigInt(body.length - LENGTH_BYTES) || snapshotFileBytes(Number(length)) !== file.length) {
    throw new RangeError(`the snapshot file names an image of ${length} bytes, which does not fit it`);
  }
  const image = body.subarray(0, Number(length));
  if (body.subarray(image.length, body.length - LENGTH_BYTES).some((byte) => byte !== 0)) {
    throw new RangeError("the snapshot file's fill is not zero: it is damaged");
  }
  return image;
}
