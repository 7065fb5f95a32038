// MemoryTransport/MemoryNetwork: the Transport contract in one process with deterministic,
// owner-driven delivery, cut links, snapshots and restarts.
import { strict as assert } from "node:assert";
import { describe, test } from "node:test";
import { EMPTY_CONF_STATE, MessageType, message, type Message, type NodeId } from "../../src/raft/types.js";
import { MemoryNetwork, type MemoryTransport } from "../../src/transport/memory.js";
import { TransportError, type Envelope } from "../../src/transport/transport.js";
import { appEnvelope, payloadOf } from "./helpers.js";

interface Node {
  readonly transport: MemoryTransport;
  readonly received: Envelope[];
  readonly unreachable: NodeId[];
}

async function node(network: MemoryNetwork, id: NodeId): Promise<Node> {
  const transport = network.createTransport(id);
  const received: Envelope[] = [];
  const unreachable: NodeId[] = [];
  transport.onReceive((e) => received.push(e));
  transport.onUnreachable((p) => unreachable.push(p));
  await transport.start();
  return { transport, received, unreachable };
}

function snapMessage(from: NodeId, to: NodeId): Message {
  return message({
    type: MessageType.Snap,
    from,
    to,
    term: 2,
    snapshot: { metadata: { index: 9, term: 2, confState: EMPTY_CONF_STATE }, data: new Uint8Array(0) },
  });
}

describe("MemoryTransport", () => {
  test("nothing moves until flush, then until deliver; one frame per peer per flush", async () => {
    const network = new MemoryNetwork();
    const [a, b, c] = [await node(network, 1), await node(network, 2), await node(network, 3)];
    a.transport.send(2, appEnvelope(10, 1, 2, "x"));
    a.transport.send(3, appEnvelope(10, 1, 3, "y"));
    a.transport.send(2, appEnvelope(11, 1, 2, "z"));
    assert.equal(network.pendingCount, 0);
    a.transport.flush();
    assert.equal(network.pendingCount, 2);
    assert.equal(a.transport.counters.framesSent, 2);
    assert.equal(a.transport.counters.messagesSent, 3);
    assert.equal(b.received.length, 0);
    assert.equal(network.deliver(), 2);
    assert.deepEqual(b.received.map(payloadOf), ["x", "z"]);
    assert.deepEqual(
      b.received.map((e) => e.groupId),
      [10, 11],
    );
    assert.deepEqual(c.received.map(payloadOf), ["y"]);
  });

  test("envelopes round-trip through the codec: equal, never the same object", async () => {
    const network = new MemoryNetwork();
    const [a, b] = [await node(network, 1), await node(network, 2)];
    const sent = appEnvelope(5, 1, 2, "payload");
    a.transport.send(2, sent);
    a.transport.flush();
    network.deliver();
    assert.deepEqual(b.received[0], sent);
    assert.notEqual(b.received[0], sent);
    assert.ok(b.transport.counters.bytesReceived > 0);
  });

  test("items sent during a delivery wait for the next deliver()", async () => {
    const network = new MemoryNetwork();
    const a = await node(network, 1);
    const bTransport = network.createTransport(2);
    bTransport.onReceive((e) => {
      bTransport.send(1, appEnvelope(e.groupId, 2, 1, `echo ${payloadOf(e)}`));
      bTransport.flush();
    });
    await bTransport.start();
    a.transport.send(2, appEnvelope(1, 1, 2, "ping"));
    a.transport.flush();
    assert.equal(network.deliver(), 1);
    assert.equal(a.received.length, 0);
    assert.equal(network.deliver(), 1);
    assert.deepEqual(a.received.map(payloadOf), ["echo ping"]);
  });

  test("a cut link drops at flush (counted, reported) and at delivery", async () => {
    const network = new MemoryNetwork();
    const [a, b] = [await node(network, 1), await node(network, 2)];
    network.cut(1, 2);
    a.transport.send(2, appEnvelope(1, 1, 2, "lost"));
    a.transport.flush();
    assert.deepEqual(a.unreachable, [2]);
    assert.equal(a.transport.counters.messagesDropped, 1);
    network.heal(1, 2);
    a.transport.send(2, appEnvelope(1, 1, 2, "in flight"));
    a.transport.flush();
    network.cut(1, 2);
    network.deliver();
    assert.equal(b.received.length, 0);
    assert.equal(a.transport.counters.messagesDropped, 2);
    // One-way: the other direction still works.
    b.transport.send(1, appEnvelope(1, 2, 1, "back"));
    b.transport.flush();
    network.deliver();
    assert.deepEqual(a.received.map(payloadOf), ["back"]);
  });

  test("a snapshot resolves once delivered, with its data", async () => {
    const network = new MemoryNetwork();
    const [a, b] = [await node(network, 1), await node(network, 2)];
    let settled = false;
    const data = new Uint8Array(5000).map((_, i) => i % 251);
    const sending = a.transport.sendSnapshot(2, 4, snapMessage(1, 2), data).then(() => (settled = true));
    await Promise.resolve();
    assert.equal(settled, false);
    network.deliver();
    await sending;
    const got = b.received[0];
    assert.equal(got?.groupId, 4);
    assert.deepEqual(got?.messages[0]?.snapshot?.data, data);
    assert.equal(a.transport.counters.snapshotsSent, 1);
    assert.equal(b.transport.counters.snapshotsReceived, 1);
  });

  test("a streamed snapshot is collected and sent", async () => {
    const network = new MemoryNetwork();
    const [a, b] = [await node(network, 1), await node(network, 2)];
    async function* source(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 2]);
      await new Promise((resolve) => setImmediate(resolve));
      yield new Uint8Array([3]);
    }
    const sending = a.transport.sendSnapshot(2, 4, snapMessage(1, 2), source());
    while (network.pendingCount === 0) await new Promise((resolve) => setImmediate(resolve));
    network.deliver();
    await sending;
    assert.deepEqual(b.received[0]?.messages[0]?.snapshot?.data, new Uint8Array([1, 2, 3]));
  });

  test("a snapshot fails when the link is cut before delivery, and may be retried", async () => {
    const network = new MemoryNetwork();
    const [a, b] = [await node(network, 1), await node(network, 2)];
    const first = a.transport.sendSnapshot(2, 4, snapMessage(1, 2), new Uint8Array([1]));
    network.cut(1, 2);
    network.deliver();
    await assert.rejects(first, TransportError);
    await assert.rejects(
      a.transport.sendSnapshot(2, 4, snapMessage(1, 2), new Uint8Array([1])),
      /unreachable/,
    );
    network.heal(1, 2);
    const retry = a.transport.sendSnapshot(2, 4, snapMessage(1, 2), new Uint8Array([1]));
    network.deliver();
    await retry;
    assert.equal(b.received.length, 1);
    assert.equal(a.transport.counters.snapshotsSendFailed, 2);
  });

  test("closing rejects pending snapshots and drops queued messages; a restart replaces the node", async () => {
    const network = new MemoryNetwork();
    const [a, b] = [await node(network, 1), await node(network, 2)];
    const pending = a.transport.sendSnapshot(2, 4, snapMessage(1, 2), new Uint8Array([1]));
    a.transport.send(2, appEnvelope(1, 1, 2, "queued"));
    await a.transport.close();
    await assert.rejects(pending, /transport closed/);
    assert.equal(a.transport.counters.messagesDropped, 1);
    await b.transport.close();
    b.transport.send(1, appEnvelope(1, 2, 1, "after close"));
    assert.equal(b.transport.counters.messagesDropped, 1);
    const restarted = await node(network, 1);
    network.deliver();
    const c = await node(network, 3);
    restarted.transport.send(3, appEnvelope(1, 1, 3, "hello again"));
    restarted.transport.flush();
    network.deliver();
    assert.deepEqual(c.received.map(payloadOf), ["hello again"]);
    assert.throws(() => network.createTransport(3), /already has an open transport/);
  });

  test("a throwing receive handler surfaces from deliver(); later items stay in flight", async () => {
    const network = new MemoryNetwork();
    const a = await node(network, 1);
    const c = await node(network, 3);
    const b = network.createTransport(2);
    b.onReceive(() => {
      throw new Error("handler bug");
    });
    await b.start();
    a.transport.send(2, appEnvelope(1, 1, 2, "boom"));
    a.transport.send(3, appEnvelope(1, 1, 3, "later"));
    a.transport.flush();
    assert.throws(() => network.deliver(), /handler bug/);
    assert.equal(network.pendingCount, 1);
    network.deliver();
    assert.deepEqual(c.received.map(payloadOf), ["later"]);
  });

  test("misuse is refused", async () => {
    const network = new MemoryNetwork();
    const a = await node(network, 1);
    assert.throws(() => a.transport.send(2, appEnvelope(1, 1, 3, "x")), /envelope for node 3 sent to node 2/);
    assert.throws(() => a.transport.send(2, appEnvelope(1, 9, 2, "x")), /envelope from node 9/);
    assert.throws(
      () =>
        a.transport.sendSnapshot(2, 1, message({ type: MessageType.App, from: 1, to: 2 }), new Uint8Array()),
      /Snap message/,
    );
    const unstarted = network.createTransport(5);
    await assert.rejects(unstarted.start(), /onReceive must be called/);
  });

  test("the same calls produce the same deliveries", async () => {
    const run = async (): Promise<string[]> => {
      const network = new MemoryNetwork();
      const log: string[] = [];
      const nodes = await Promise.all(
        [1, 2, 3].map(async (id) => {
          const t = network.createTransport(id);
          t.onReceive((e) => log.push(`${e.from}>${e.to}:${payloadOf(e)}`));
          await t.start();
          return t;
        }),
      );
      for (let round = 0; round < 3; round++) {
        for (const t of nodes) {
          for (const peer of [3, 1, 2]) {
            if (peer !== t.nodeId) t.send(peer, appEnvelope(round, t.nodeId, peer, `r${round}`));
          }
          t.flush();
        }
        network.deliver();
      }
      return log;
    };
    const first = await run();
    assert.equal(first.length, 18);
    assert.deepEqual(await run(), first);
    assert.deepEqual(first.slice(0, 2), ["1>2:r0", "1>3:r0"]);
  });
});
