// TcpTransport on 127.0.0.1: batches between two and three nodes, reconnection to a restarted
// peer, handshake refusals, and raw sockets sending garbage that must close only their own
// connection. Every test waits for events (bounded) and closes every socket it opened.
import { strict as assert } from "node:assert";
import { connect, type Socket } from "node:net";
import { afterEach, describe, test } from "node:test";
import { encodeRaftBatch, encodeEnvelope } from "../../src/transport/codec.js";
import { decodeGoodbye, encodeHandshake } from "../../src/transport/control-codec.js";
import { encodeFrame, FrameDecoder, FrameKind, PROTOCOL_VERSION } from "../../src/transport/frame.js";
import {
  appEnvelope,
  CLUSTER,
  introduce,
  payloadOf,
  startNode,
  waitConnected,
  waitFor,
  type TestNode,
} from "./helpers.js";

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(id: number, options: Parameters<typeof startNode>[1] = {}): Promise<TestNode> {
  const n = await startNode(id, options);
  cleanups.push(() => n.transport.close());
  return n;
}

/** A raw client socket that records the frames it receives and whether it was closed. */
async function rawClient(
  port: number,
): Promise<{ socket: Socket; frames: { kind: FrameKind; payload: Uint8Array }[]; closed: () => boolean }> {
  const socket = connect({ host: "127.0.0.1", port });
  cleanups.push(() => void socket.destroy());
  const decoder = new FrameDecoder();
  const frames: { kind: FrameKind; payload: Uint8Array }[] = [];
  let closed = false;
  socket.on("data", (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  socket.on("error", () => undefined);
  socket.on("close", () => (closed = true));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, frames, closed: () => closed };
}

describe("TcpTransport", () => {
  test("two nodes exchange batches; one flush to a peer is one frame", async () => {
    // Heartbeats off (long interval) so that frame counts are exact.
    const quiet = { keepaliveIntervalMs: 60_000, idleTimeoutMs: 600_000 };
    const [a, b] = [await node(1, quiet), await node(2, quiet)];
    introduce([a, b]);
    await waitConnected([a, b]);
    const framesBefore = b.transport.counters.framesReceived;
    a.transport.send(2, appEnvelope(7, 1, 2, "one"));
    a.transport.send(2, appEnvelope(8, 1, 2, "two"));
    a.transport.send(2, appEnvelope(7, 1, 2, "three"));
    a.transport.flush();
    await waitFor("three envelopes at node 2", () => b.received.length === 3);
    assert.deepEqual(b.received.map(payloadOf), ["one", "two", "three"]);
    assert.deepEqual(
      b.received.map((e) => e.groupId),
      [7, 8, 7],
    );
    assert.equal(b.transport.counters.framesReceived - framesBefore, 1);
    assert.equal(b.transport.counters.messagesReceived, 3);
    assert.equal(a.transport.counters.messagesSent, 3);

    // The higher id answers over the connection the lower id dialed.
    b.transport.send(1, appEnvelope(7, 2, 1, "reply"));
    b.transport.flush();
    await waitFor("reply at node 1", () => a.received.length === 1);
    assert.equal(payloadOf(a.received[0]!), "reply");
    assert.equal(a.transport.counters.dialAttempts, 1);
    assert.equal(b.transport.counters.dialAttempts, 0);
  });

  test("three nodes: everyone reaches everyone", async () => {
    const nodes = [await node(1), await node(2), await node(3)];
    introduce(nodes);
    await waitConnected(nodes);
    for (const from of nodes) {
      for (const to of nodes)
        if (from !== to) from.transport.send(to.id, appEnvelope(1, from.id, to.id, `${from.id}→${to.id}`));
      from.transport.flush();
    }
    await waitFor("two envelopes at every node", () => nodes.every((n) => n.received.length === 2));
    for (const n of nodes) {
      const expected = nodes.filter((m) => m !== n).map((m) => `${m.id}→${n.id}`);
      assert.deepEqual(n.received.map(payloadOf).sort(), expected.sort());
    }
  });

  test("bytes are counted per peer: what one node sent to another is what that one received from it", async () => {
    const quiet = { keepaliveIntervalMs: 60_000, idleTimeoutMs: 600_000 };
    const nodes = [await node(1, quiet), await node(2, quiet), await node(3, quiet)];
    introduce(nodes);
    await waitConnected(nodes);
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    a.transport.send(2, appEnvelope(1, 1, 2, "x".repeat(5_000)));
    a.transport.send(3, appEnvelope(1, 1, 3, "y"));
    a.transport.flush();
    await waitFor("both envelopes delivered", () => b.received.length === 1 && c.received.length === 1);
    const sent = a.transport.traffic.snapshot();
    assert.deepEqual([...sent.keys()], [2, 3]);
    assert.ok(sent.get(2)!.sent > 5_000, "the large envelope counts at its size");
    assert.ok(sent.get(2)!.sent > sent.get(3)!.sent);
    for (const [peer, receiver] of [
      [2, b],
      [3, c],
    ] as const) {
      // Every frame between them (handshakes included) was written by one and read by the other.
      assert.equal(receiver.transport.traffic.snapshot().get(1)?.received, sent.get(peer)!.sent);
      assert.equal(receiver.transport.traffic.snapshot().get(1)?.sent, sent.get(peer)!.received);
    }
    const total = [...sent.values()].reduce((sum, bytes) => sum + bytes.sent, 0);
    assert.equal(
      total,
      a.transport.counters.bytesSent,
      "node 1 dialed both: every frame it wrote had a peer",
    );
  });

  test("messages queued while a peer is down are sent once it connects; unreachable is reported", async () => {
    const a = await node(1);
    const b = await node(2);
    a.transport.addPeer(2, b.transport.address());
    b.transport.addPeer(1, a.transport.address());
    // Node 1's dial has not even started connecting yet: the message waits in the queue.
    b.transport.send(1, appEnvelope(1, 2, 1, "early"));
    b.transport.flush();
    assert.deepEqual(b.unreachable, [1]);
    await waitFor("early message delivered", () => a.received.length === 1);
    assert.equal(payloadOf(a.received[0]!), "early");
  });

  test("a restarted peer on the same port is reconnected to", async () => {
    const a = await node(1);
    let b = await node(2);
    introduce([a, b]);
    await waitConnected([a, b]);
    const port = b.transport.address().port;
    await b.transport.close();
    await waitFor("node 1 notices the loss", () => a.transport.connectedPeers().length === 0);
    assert.ok(a.unreachable.includes(2));
    a.transport.send(2, appEnvelope(1, 1, 2, "while down"));
    a.transport.flush();

    b = await node(2, { listen: { host: "127.0.0.1", port }, peers: [[1, a.transport.address()]] });
    await waitConnected([a, b]);
    assert.ok(a.transport.counters.reconnects >= 1);
    assert.ok(a.transport.counters.connectionsLost >= 1);
    a.transport.send(2, appEnvelope(1, 1, 2, "after restart"));
    a.transport.flush();
    await waitFor("message after restart", () => b.received.some((e) => payloadOf(e) === "after restart"));
    b.transport.send(1, appEnvelope(1, 2, 1, "back"));
    b.transport.flush();
    await waitFor("answer from the restarted node", () => a.received.length === 1);
  });

  test("a newer connection from a peer replaces a stale one at the acceptor", async () => {
    const b = await node(2);
    b.transport.addPeer(1, { host: "127.0.0.1", port: 1 });
    // A connection that still looks like node 1's to node 2 (as after node 1 died silently).
    const stale = await rawClient(b.transport.address().port);
    const hello = { clusterId: CLUSTER, nodeId: 1, peerNodeId: 2, protocolVersion: PROTOCOL_VERSION };
    stale.socket.write(encodeFrame(FrameKind.Handshake, encodeHandshake(hello)));
    await waitFor("the stale connection is adopted", () => b.transport.connectedPeers().length === 1);

    const a = await node(1, { peers: [[2, b.transport.address()]] });
    await waitFor("the stale connection is closed", stale.closed);
    const goodbye = stale.frames.find((f) => f.kind === FrameKind.Goodbye);
    assert.match(decodeGoodbye(goodbye!.payload).reason, /replaced by a newer connection/);
    await waitConnected([a, b]);
    a.transport.send(2, appEnvelope(1, 1, 2, "from the new node 1"));
    a.transport.flush();
    await waitFor("delivery over the new connection", () => b.received.length === 1);
  });

  test("a peer that never comes up: drops are counted, in all and per peer, never silent", async () => {
    const a = await node(1, { maxQueuedMessages: 3 });
    const ghost = await node(9);
    const port = ghost.transport.address().port;
    await ghost.transport.close();
    a.transport.addPeer(9, { host: "127.0.0.1", port });
    for (let i = 0; i < 5; i++) a.transport.send(9, appEnvelope(1, 1, 9, `m${i}`));
    a.transport.flush();
    assert.equal(a.transport.counters.messagesDropped, 2);
    assert.deepEqual(a.unreachable, [9]);
    await waitFor("a few failed dials", () => a.transport.counters.dialFailures >= 2);
    assert.ok(a.transport.counters.reconnects >= 2);
    a.transport.send(42, appEnvelope(1, 1, 42, "unknown peer"));
    assert.equal(a.transport.counters.messagesDropped, 3);
    const dropped = [...a.transport.traffic.snapshot()].map(([peer, counts]) => [
      peer,
      counts.messagesDropped,
    ]);
    assert.deepEqual(dropped, [
      [9, 2],
      [42, 1],
    ]);
  });

  test("handshake: a node of another cluster is refused, with the reason on both sides", async () => {
    const a = await node(1, { clusterId: "other-cluster" });
    const b = await node(2);
    introduce([a, b]);
    await waitFor(
      "refusals",
      () => a.transport.counters.handshakeFailures >= 1 && b.transport.counters.handshakeFailures >= 1,
    );
    assert.match(b.logger.text(), /cluster id mismatch/);
    assert.match(a.logger.text(), /peer refused the handshake.*cluster id mismatch/);
    assert.deepEqual(a.transport.connectedPeers(), []);
  });

  test("handshake: reaching the wrong node is refused", async () => {
    const a = await node(1);
    const b = await node(2);
    a.transport.addPeer(3, b.transport.address());
    b.transport.addPeer(1, a.transport.address());
    await waitFor("refusal", () => b.transport.counters.handshakeFailures >= 1);
    assert.match(b.logger.text(), /node id mismatch: peer expected node 3, this is 2/);
    assert.deepEqual(a.transport.connectedPeers(), []);
  });

  describe("garbage from a raw socket closes that connection only", () => {
    const cases: { name: string; bytes: () => Uint8Array; reason: RegExp }[] = [
      {
        name: "unknown protocol version",
        bytes: () => new Uint8Array([0, 0, 0, 0, 42, FrameKind.Heartbeat]),
        reason: /unsupported protocol version 42/,
      },
      {
        name: "unknown frame kind",
        bytes: () => new Uint8Array([0, 0, 0, 0, PROTOCOL_VERSION, 200]),
        reason: /unknown frame kind 200/,
      },
      {
        name: "oversized frame",
        bytes: () => new Uint8Array([0x7f, 0xff, 0xff, 0xff, PROTOCOL_VERSION, FrameKind.RaftBatch]),
        reason: /exceeds the limit/,
      },
      {
        name: "undecodable handshake",
        bytes: () => encodeFrame(FrameKind.Handshake, new Uint8Array([0xff, 0xff, 0xff])),
        reason: /handshake/,
      },
      {
        name: "a batch before the handshake",
        bytes: () =>
          encodeFrame(FrameKind.RaftBatch, encodeRaftBatch([encodeEnvelope(appEnvelope(1, 1, 2, "x"))])),
        reason: /RaftBatch frame before the handshake/,
      },
    ];
    for (const c of cases) {
      test(c.name, async () => {
        const a = await node(1);
        const b = await node(2);
        introduce([a, b]);
        await waitConnected([a, b]);
        const raw = await rawClient(b.transport.address().port);
        raw.socket.write(c.bytes());
        await waitFor("the raw connection is closed", raw.closed);
        assert.equal(b.transport.counters.decodeErrors, 1);
        const goodbye = raw.frames.find((f) => f.kind === FrameKind.Goodbye);
        assert.ok(goodbye !== undefined, "the node says why it closes");
        assert.match(decodeGoodbye(goodbye.payload).reason, c.reason);
        // The real peer connection is untouched.
        a.transport.send(2, appEnvelope(1, 1, 2, "still fine"));
        a.transport.flush();
        await waitFor("delivery after the garbage", () => b.received.length === 1);
        assert.deepEqual(b.transport.connectedPeers(), [1]);
      });
    }

    test("garbage after a valid handshake closes the impostor's connection", async () => {
      const b = await node(2);
      b.transport.addPeer(1, { host: "127.0.0.1", port: 1 });
      const raw = await rawClient(b.transport.address().port);
      const hello = { clusterId: CLUSTER, nodeId: 1, peerNodeId: 2, protocolVersion: PROTOCOL_VERSION };
      raw.socket.write(encodeFrame(FrameKind.Handshake, encodeHandshake(hello)));
      await waitFor("handshake answer", () => raw.frames.some((f) => f.kind === FrameKind.Handshake));
      raw.socket.write(encodeFrame(FrameKind.RaftBatch, new Uint8Array([0x0a, 0x05, 1])));
      await waitFor("the raw connection is closed", raw.closed);
      assert.equal(b.transport.counters.decodeErrors, 1);
      assert.match(b.logger.text(), /batch\.envelopes is truncated/);
      assert.deepEqual(b.transport.connectedPeers(), []);
    });
  });

  test("close() is idempotent and sends after close are counted as drops", async () => {
    const a = await node(1);
    await a.transport.close();
    await a.transport.close();
    a.transport.addPeer(2, { host: "127.0.0.1", port: 1 });
    a.transport.send(2, appEnvelope(1, 1, 2, "late"));
    assert.equal(a.transport.counters.messagesDropped, 1);
    await assert.rejects(a.transport.start(), /start\(\) on a transport that is closed/);
  });
});
