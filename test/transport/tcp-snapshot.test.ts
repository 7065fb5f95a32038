// Snapshot streaming between TcpTransports on 127.0.0.1. A frame-level proxy between the nodes
// corrupts or cuts a transfer in flight; each failure must reach the sender as a rejection,
// leave the receiver clean, and a retry must then succeed.
import { strict as assert } from "node:assert";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, test } from "node:test";
import { EMPTY_CONF_STATE, MessageType, message, type Message, type NodeId } from "../../src/raft/types.js";
import { decodeSnapshotChunk, encodeSnapshotChunk } from "../../src/transport/control-codec.js";
import { encodeFrame, FrameDecoder, FrameKind, type Frame } from "../../src/transport/frame.js";
import type { PeerAddress } from "../../src/transport/tcp.js";
import { TransportError, type SnapshotTransferOutcome } from "../../src/transport/transport.js";
import { appEnvelope, payloadOf, startNode, waitConnected, waitFor, type TestNode } from "./helpers.js";

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(id: number, options: Parameters<typeof startNode>[1] = {}): Promise<TestNode> {
  const n = await startNode(id, options);
  cleanups.push(() => n.transport.close());
  return n;
}

/** What the proxy does with a frame going from the dialer to the acceptor. */
type Tamper = (frame: Frame) => Frame | "cut";

/** Forwards connections to `target`, passing dialer→acceptor frames through `tamper`. */
async function startProxy(target: PeerAddress, tamper: Tamper): Promise<PeerAddress> {
  const sockets = new Set<Socket>();
  const track = (s: Socket): Socket => {
    sockets.add(s);
    s.on("error", () => undefined);
    s.on("close", () => sockets.delete(s));
    return s;
  };
  const server: Server = createServer((client) => {
    track(client);
    const upstream = track(connect({ host: target.host, port: target.port }));
    const decoder = new FrameDecoder();
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const result = tamper(frame);
        if (result === "cut") return cut();
        upstream.write(encodeFrame(result.kind, result.payload));
      }
    });
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    client.on("close", cut);
    upstream.on("close", cut);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy is not listening");
  return { host: "127.0.0.1", port: address.port };
}

/** Node 1 dials node 2 through a proxy applying `tamper`. */
async function pairThroughProxy(tamper: Tamper, options: Parameters<typeof startNode>[1] = {}) {
  const b = await node(2, options);
  const proxy = await startProxy(b.transport.address(), tamper);
  const a = await node(1, { peers: [[2, proxy]] });
  b.transport.addPeer(1, a.transport.address());
  await waitConnected([a, b]);
  return { a, b };
}

function snapMessage(from: NodeId, to: NodeId): Message {
  return message({
    type: MessageType.Snap,
    from,
    to,
    term: 3,
    snapshot: {
      metadata: { index: 42, term: 3, confState: { ...EMPTY_CONF_STATE, voters: [1, 2] } },
      data: new Uint8Array(0),
    },
  });
}

/** A few MiB of data that no shifted or corrupted copy can match. */
function snapshotData(bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  let x = 12345;
  for (let i = 0; i < bytes; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}

/** `data` as a stream of uneven pieces, the way a snapshot store might read it. */
async function* streamOf(data: Uint8Array, fail?: { afterBytes: number }): AsyncGenerator<Uint8Array> {
  const piece = 100_003;
  for (let offset = 0; offset < data.length; offset += piece) {
    if (fail !== undefined && offset >= fail.afterBytes) throw new Error("snapshot store read failed");
    yield data.subarray(offset, offset + piece);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const SIZE = 3 * 1024 * 1024 + 12_345;

describe("TcpTransport snapshots", () => {
  test("a corrupted chunk fails the transfer at both ends; the retry succeeds", async () => {
    let corrupted = false;
    const { a, b } = await pairThroughProxy((frame) => {
      if (frame.kind !== FrameKind.SnapshotChunk || corrupted) return frame;
      const chunk = decodeSnapshotChunk(frame.payload);
      if (chunk.seq !== 1) return frame;
      corrupted = true;
      const data = chunk.data.slice();
      data[1000] = data[1000]! ^ 0x40;
      return { kind: frame.kind, payload: encodeSnapshotChunk({ ...chunk, data }) };
    });
    const data = snapshotData(SIZE);
    const ended: SnapshotTransferOutcome[] = [];
    let clock = 0;
    const tick = () => (clock += 5);
    a.transport.observeSnapshots(tick, (outcome) => ended.push(outcome));
    b.transport.observeSnapshots(tick, (outcome) => ended.push(outcome));
    assert.throws(() => a.transport.observeSnapshots(tick, () => undefined), /observed already/);

    await assert.rejects(
      a.transport.sendSnapshot(2, 5, snapMessage(1, 2), streamOf(data)),
      (error: unknown) => {
        assert.ok(error instanceof TransportError);
        assert.match(error.message, /node 2 rejected the snapshot: chunk 1 fails its CRC-32 check/);
        return true;
      },
    );
    assert.ok(corrupted);
    assert.equal(a.transport.counters.snapshotsSendFailed, 1);
    assert.equal(b.transport.counters.snapshotsDiscarded, 1);
    assert.equal(b.received.length, 0);

    const retry = a.transport.sendSnapshot(2, 5, snapMessage(1, 2), streamOf(data));
    assert.deepEqual([...a.transport.snapshotsInFlight().sending], [[2, 1]], "under way from the call on");
    await retry;
    for (const { sending, receiving } of [a.transport.snapshotsInFlight(), b.transport.snapshotsInFlight()])
      assert.deepEqual([sending.size, receiving.size], [0, 0], "none under way once it ended");
    assert.equal(a.transport.counters.snapshotsSent, 1);
    assert.equal(b.transport.counters.snapshotsReceived, 1);
    const got = b.received[0];
    assert.equal(got?.groupId, 5);
    assert.equal(got?.from, 1);
    const snap = got?.messages[0];
    assert.equal(snap?.type, MessageType.Snap);
    assert.deepEqual(snap?.snapshot?.metadata, snapMessage(1, 2).snapshot?.metadata);
    assert.equal(snap?.snapshot?.data.length, SIZE);
    const received = snap?.snapshot?.data ?? new Uint8Array(0);
    assert.ok(Buffer.from(received).equals(Buffer.from(data)), "the snapshot data arrives intact");
    assert.deepEqual(
      ended.map(({ peer, direction, succeeded }) => `${direction} ${peer} ${succeeded ? "ok" : "failed"}`),
      ["receive 1 failed", "send 2 failed", "receive 1 ok", "send 2 ok"],
      "each end tells of each transfer once, with the peer it was with",
    );
    assert.ok(
      ended.every((outcome) => outcome.milliseconds > 0),
      "timed on the observer's clock",
    );

    // Raft traffic still flows on the same connection.
    a.transport.send(2, appEnvelope(5, 1, 2, "after snapshot"));
    a.transport.flush();
    await waitFor("a batch after the snapshot", () => b.received.length === 2);
    assert.equal(payloadOf(b.received[1]!), "after snapshot");
  });

  test("a connection cut mid-transfer rejects the send and discards the partial snapshot", async () => {
    let cuts = 0;
    const { a, b } = await pairThroughProxy((frame) => {
      if (
        frame.kind === FrameKind.SnapshotChunk &&
        cuts === 0 &&
        decodeSnapshotChunk(frame.payload).seq === 2
      ) {
        cuts++;
        return "cut";
      }
      return frame;
    });
    const data = snapshotData(SIZE);
    await assert.rejects(
      a.transport.sendSnapshot(2, 5, snapMessage(1, 2), streamOf(data)),
      /connection to node 2 lost/,
    );
    await waitFor(
      "the receiver discards the partial transfer",
      () => b.transport.counters.snapshotsDiscarded === 1,
    );
    assert.equal(b.received.length, 0);

    await waitConnected([a, b]);
    await a.transport.sendSnapshot(2, 5, snapMessage(1, 2), data);
    assert.equal(b.received.length, 1);
    assert.ok(Buffer.from(b.received[0]!.messages[0]!.snapshot!.data).equals(Buffer.from(data)));
  });

  test("a failing data source cancels the transfer at the receiver; the retry succeeds", async () => {
    const { a, b } = await pairThroughProxy((frame) => frame);
    const data = snapshotData(SIZE);
    // Failing after 2.5 MB: chunk 0 has gone out (a chunk leaves only once the next one is full).
    await assert.rejects(
      a.transport.sendSnapshot(2, 6, snapMessage(1, 2), streamOf(data, { afterBytes: 2_500_000 })),
      /snapshot store read failed/,
    );
    await waitFor(
      "the receiver drops the cancelled transfer",
      () => b.transport.counters.snapshotsDiscarded === 1,
    );
    assert.match(b.logger.text(), /peer cancelled its snapshot transfer/);
    await a.transport.sendSnapshot(2, 6, snapMessage(1, 2), streamOf(data));
    assert.equal(b.received.length, 1);
    assert.equal(b.received[0]?.groupId, 6);
  });

  test("the higher id sends to the lower one; empty and whole-buffer snapshots work", async () => {
    const a = await node(1);
    const b = await node(2, { snapshotChunkBytes: 4096 });
    a.transport.addPeer(2, b.transport.address());
    b.transport.addPeer(1, a.transport.address());
    await waitConnected([a, b]);
    const data = snapshotData(50_000);
    await b.transport.sendSnapshot(1, 9, snapMessage(2, 1), data);
    await b.transport.sendSnapshot(1, 10, snapMessage(2, 1), new Uint8Array(0));
    assert.deepEqual(
      a.received.map((e) => [e.groupId, e.messages[0]?.snapshot?.data.length]),
      [
        [9, 50_000],
        [10, 0],
      ],
    );
    assert.ok(Buffer.from(a.received[0]!.messages[0]!.snapshot!.data).equals(Buffer.from(data)));
  });

  test("a snapshot over the receiver's limit is rejected with the reason", async () => {
    const a = await node(1);
    const b = await node(2, { maxSnapshotBytes: 10_000 });
    a.transport.addPeer(2, b.transport.address());
    b.transport.addPeer(1, a.transport.address());
    await waitConnected([a, b]);
    await assert.rejects(
      a.transport.sendSnapshot(2, 1, snapMessage(1, 2), snapshotData(20_000)),
      /exceeds the limit of 10000 bytes/,
    );
    assert.equal(b.transport.counters.snapshotsDiscarded, 1);
  });

  test("sending to a peer that is not connected rejects at once", async () => {
    const a = await node(1);
    a.transport.addPeer(2, { host: "127.0.0.1", port: 1 });
    await assert.rejects(
      a.transport.sendSnapshot(2, 1, snapMessage(1, 2), new Uint8Array(1)),
      /not connected/,
    );
    await assert.rejects(
      a.transport.sendSnapshot(2, 1, message({ type: MessageType.App, from: 1, to: 2 }), new Uint8Array(1)),
      /Snap message/,
    );
  });
});
