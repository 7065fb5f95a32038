// The snapshot file framing: any image size gives a file etcdctl's size check accepts, the
// image comes back out, and a damaged or foreign file is refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  imageOfSnapshotFile,
  snapshotFileBytes,
  snapshotFileHash,
  snapshotFileTrailer,
} from "../../../src/api/etcd/snapshot-file.js";

function fileOf(image: Uint8Array): Uint8Array {
  const hash = snapshotFileHash();
  hash.update(image);
  return new Uint8Array(Buffer.concat([image, snapshotFileTrailer(image.length, hash)]));
}

test("every image size frames into a multiple of 512 plus 32 bytes and comes back out", () => {
  for (const size of [0, 1, 463, 464, 465, 511, 512, 1000, 4096]) {
    const image = Uint8Array.from({ length: size }, (_, i) => (i * 7 + 1) % 256);
    const file = fileOf(image);
    assert.equal(file.length, snapshotFileBytes(size));
    assert.equal(file.length % 512, 32, `size ${size}`);
    assert.deepEqual(imageOfSnapshotFile(file), image);
  }
});

test("damaged, truncated and foreign files are refused", () => {
  const file = fileOf(Uint8Array.from({ length: 600 }, (_, i) => i % 256));
  const flipped = Uint8Array.from(file);
  flipped[10] = (flipped[10] ?? 0) ^ 1;
  assert.throws(() => imageOfSnapshotFile(flipped), /SHA-256 does not match/);
  assert.throws(() => imageOfSnapshotFile(file.subarray(0, file.length - 1)), /not a Concord snapshot file/);
  assert.throws(() => imageOfSnapshotFile(new Uint8Array(544)), /SHA-256 does not match/);
});
