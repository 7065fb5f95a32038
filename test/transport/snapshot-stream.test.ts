// Snapshot transfers without sockets: CRC-32, cutting data into chunks, and the receiver's
// reassembly with every check that makes it discard a transfer.
import { strict as assert } from "node:assert";
import { describe, test } from "node:test";
import fc from "fast-check";
import { EMPTY_CONF_STATE, MessageType, message } from "../../src/raft/types.js";
import type { SnapshotChunk } from "../../src/transport/control-codec.js";
import { crc32 } from "node:zlib";
import {
  SnapshotAssembler,
  snapshotChunks,
  SnapshotTransferError,
} from "../../src/transport/snapshot-stream.js";
import type { Envelope } from "../../src/transport/transport.js";

const HEADER: Envelope = {
  groupId: 3,
  from: 1,
  to: 2,
  messages: [
    message({
      type: MessageType.Snap,
      from: 1,
      to: 2,
      term: 4,
      snapshot: { metadata: { index: 10, term: 4, confState: EMPTY_CONF_STATE }, data: new Uint8Array(0) },
    }),
  ],
};

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** `data` in pieces of the given sizes (then the rest), each after a turn of the event loop. */
async function* pieces(data: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let offset = 0;
  for (const size of sizes) {
    if (offset >= data.length) break;
    await nextTurn();
    yield data.subarray(offset, offset + size);
    offset += size;
  }
  if (offset < data.length) yield data.subarray(offset);
}

async function collectChunks(source: AsyncIterable<Uint8Array> | Uint8Array, chunkBytes: number) {
  const out: { data: Uint8Array; last: boolean }[] = [];
  for await (const c of snapshotChunks(source, chunkBytes)) out.push({ data: c.data.slice(), last: c.last });
  return out;
}

/** The chunks a sender produces for `data`, as the receiver will see them. */
async function chunksFor(data: Uint8Array, chunkBytes: number): Promise<SnapshotChunk[]> {
  let total = 0;
  let running = 0;
  return (await collectChunks(data, chunkBytes)).map((c, seq) => {
    total += c.data.length;
    running = crc32(c.data, running);
    return {
      transferId: 1,
      seq,
      header: seq === 0 ? HEADER : null,
      data: c.data,
      crc32: crc32(c.data),
      last: c.last,
      totalBytes: c.last ? total : 0,
      totalCrc32: c.last ? running : 0,
    };
  });
}

function failsWith(run: () => unknown, reason: RegExp): void {
  assert.throws(run, (e: unknown) => e instanceof SnapshotTransferError && reason.test(e.reason));
}

describe("snapshotChunks", () => {
  test("re-cuts any stream of pieces into full chunks and a flagged last one", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 50 }),
        async (data, sizes, chunkBytes) => {
          const streamed = await collectChunks(pieces(data, sizes), chunkBytes);
          const whole = await collectChunks(data, chunkBytes);
          for (const chunks of [streamed, whole]) {
            assert.deepEqual(Buffer.concat(chunks.map((c) => c.data)), Buffer.from(data));
            assert.deepEqual(
              chunks.map((c) => c.last),
              chunks.map((_, i) => i === chunks.length - 1),
            );
            chunks.slice(0, -1).forEach((c) => assert.equal(c.data.length, chunkBytes));
            assert.ok(chunks.at(-1)!.data.length <= chunkBytes);
          }
          assert.deepEqual(streamed, whole);
        },
      ),
    );
  });

  test("an empty snapshot is one empty last chunk", async () => {
    assert.deepEqual(await collectChunks(new Uint8Array(0), 8), [{ data: new Uint8Array(0), last: true }]);
  });

  test("an error in the data source surfaces", async () => {
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(5);
      await nextTurn();
      throw new Error("disk read failed");
    }
    await assert.rejects(collectChunks(broken(), 2), /disk read failed/);
  });
});

describe("SnapshotAssembler", () => {
  test("reassembles a transfer into the header's message with the data", async () => {
    const data = new Uint8Array(1000).map((_, i) => (i * 7) % 256);
    const assembler = new SnapshotAssembler(HEADER, 10_000);
    const results = (await chunksFor(data, 64)).map((c) => assembler.add(c));
    assert.ok(results.slice(0, -1).every((r) => r === null));
    const complete = results.at(-1);
    assert.deepEqual(complete?.messages[0]?.snapshot?.data, data);
    assert.deepEqual(complete?.messages[0]?.snapshot?.metadata, HEADER.messages[0]?.snapshot?.metadata);
    assert.equal(complete?.groupId, 3);
  });

  test("a corrupted chunk fails its checksum", async () => {
    const chunks = await chunksFor(new Uint8Array(300).fill(1), 100);
    const assembler = new SnapshotAssembler(HEADER, 10_000);
    assembler.add(chunks[0]!);
    const corrupted = { ...chunks[1]!, data: chunks[1]!.data.map((b, i) => (i === 5 ? b ^ 1 : b)) };
    failsWith(() => assembler.add(corrupted), /chunk 1 fails its CRC-32 check/);
  });

  test("a missing, repeated or reordered chunk is refused", async () => {
    const chunks = await chunksFor(new Uint8Array(300), 100);
    const skip = new SnapshotAssembler(HEADER, 10_000);
    skip.add(chunks[0]!);
    failsWith(() => skip.add(chunks[2]!), /chunk 2 arrived, expected chunk 1/);
    const repeat = new SnapshotAssembler(HEADER, 10_000);
    repeat.add(chunks[0]!);
    failsWith(() => repeat.add(chunks[0]!), /chunk 0 arrived, expected chunk 1/);
  });

  test("wrong totals in the last chunk are refused", async () => {
    const chunks = await chunksFor(new Uint8Array([1, 2, 3]), 10);
    failsWith(
      () => new SnapshotAssembler(HEADER, 100).add({ ...chunks[0]!, totalBytes: 4 }),
      /sender sent 4/,
    );
    failsWith(
      () => new SnapshotAssembler(HEADER, 100).add({ ...chunks[0]!, totalCrc32: 1 }),
      /whole snapshot fails its CRC-32 check/,
    );
  });

  test("a snapshot over the size limit is refused", async () => {
    const chunks = await chunksFor(new Uint8Array(50), 20);
    const assembler = new SnapshotAssembler(HEADER, 30);
    assembler.add(chunks[0]!);
    failsWith(() => assembler.add(chunks[1]!), /exceeds the limit of 30 bytes/);
  });

  test("a header that is not a single data-less Snap message is refused", () => {
    failsWith(() => new SnapshotAssembler({ ...HEADER, messages: [] }, 10), /carries 0 messages/);
    const app = message({ type: MessageType.App, from: 1, to: 2 });
    failsWith(() => new SnapshotAssembler({ ...HEADER, messages: [app] }, 10), /App message, expected Snap/);
    const withData = {
      ...HEADER,
      messages: [
        { ...HEADER.messages[0]!, snapshot: { ...HEADER.messages[0]!.snapshot!, data: new Uint8Array(1) } },
      ],
    };
    failsWith(() => new SnapshotAssembler(withData, 10), /data travels in chunks/);
  });
});
