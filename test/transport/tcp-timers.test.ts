// TcpTransport with injected timers and randomness: the test decides when timers fire, so
// heartbeats, the idle timeout, the handshake deadline and the reconnect backoff are checked
// step by step without waiting on a clock.
import { strict as assert } from "node:assert";
import { connect, type Socket } from "node:net";
import { afterEach, describe, test } from "node:test";
import type { RandomSource } from "../../src/raft/types.js";
import { decodeGoodbye, encodeHandshake } from "../../src/transport/control-codec.js";
import {
  encodeFrame,
  FrameDecoder,
  FrameKind,
  PROTOCOL_VERSION,
  type Frame,
} from "../../src/transport/frame.js";
import type { TimerHandle, Timers } from "../../src/transport/timers.js";
import { CLUSTER, startNode, waitFor, type TestNode } from "./helpers.js";

/** Timers that fire only when the test says so. */
class ManualTimers implements Timers {
  private pending: { callback: () => void; delayMs: number; cancelled: boolean }[] = [];

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer = { callback, delayMs, cancelled: false };
    this.pending.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Delays of the timers waiting to fire, in scheduling order. */
  delays(): number[] {
    return this.pending.filter((t) => !t.cancelled).map((t) => t.delayMs);
  }

  /** Fires every timer scheduled so far (not those they schedule in turn). */
  fireAll(): void {
    const due = this.pending;
    this.pending = [];
    for (const timer of due) if (!timer.cancelled) timer.callback();
  }
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(id: number, options: Parameters<typeof startNode>[1]): Promise<TestNode> {
  const n = await startNode(id, options);
  cleanups.push(() => n.transport.close());
  return n;
}

async function rawClient(port: number): Promise<{ socket: Socket; frames: Frame[]; closed: () => boolean }> {
  const socket = connect({ host: "127.0.0.1", port });
  cleanups.push(() => void socket.destroy());
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let closed = false;
  socket.on("data", (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  socket.on("error", () => undefined);
  socket.on("close", () => (closed = true));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, frames, closed: () => closed };
}

/** A raw socket that completes the handshake as node 1 towards node 2, then goes silent. */
async function silentPeer(b: TestNode): Promise<Awaited<ReturnType<typeof rawClient>>> {
  b.transport.addPeer(1, { host: "127.0.0.1", port: 1 });
  const raw = await rawClient(b.transport.address().port);
  const hello = { clusterId: CLUSTER, nodeId: 1, peerNodeId: 2, protocolVersion: PROTOCOL_VERSION };
  raw.socket.write(encodeFrame(FrameKind.Handshake, encodeHandshake(hello)));
  await waitFor("handshake answer", () => raw.frames.some((f) => f.kind === FrameKind.Handshake));
  return raw;
}

function goodbyeReason(frames: Frame[]): string {
  const goodbye = frames.find((f) => f.kind === FrameKind.Goodbye);
  return goodbye === undefined ? "(no goodbye)" : decodeGoodbye(goodbye.payload).reason;
}

describe("TcpTransport with injected timers", () => {
  test("an idle connection gets heartbeats, and a silent peer is dropped after the idle timeout", async () => {
    const timers = new ManualTimers();
    const b = await node(2, { timers, keepaliveIntervalMs: 1000, idleTimeoutMs: 3000 });
    const raw = await silentPeer(b);
    const heartbeats = (): number => raw.frames.filter((f) => f.kind === FrameKind.Heartbeat).length;

    timers.fireAll(); // the handshake arrived in this interval and the answer went out: nothing to do
    assert.equal(heartbeats(), 0);
    timers.fireAll(); // 1000 ms of silence both ways: node 2 sends a heartbeat
    await waitFor("a heartbeat", () => heartbeats() === 1);
    timers.fireAll(); // 2000 ms
    assert.equal(raw.closed(), false);
    assert.deepEqual(b.transport.connectedPeers(), [1]);
    timers.fireAll(); // 3000 ms: the idle timeout
    await waitFor("the silent peer is dropped", raw.closed);
    assert.match(goodbyeReason(raw.frames), /nothing received for 3000 ms/);
    assert.deepEqual(b.transport.connectedPeers(), []);
    assert.deepEqual(b.unreachable, [1]);
  });

  test("anything received resets the idle clock", async () => {
    const timers = new ManualTimers();
    const b = await node(2, { timers, keepaliveIntervalMs: 1000, idleTimeoutMs: 2000 });
    const raw = await silentPeer(b);
    for (let i = 0; i < 5; i++) {
      const before = b.transport.counters.framesReceived;
      raw.socket.write(encodeFrame(FrameKind.Heartbeat, new Uint8Array(0)));
      await waitFor("the heartbeat arrives", () => b.transport.counters.framesReceived === before + 1);
      timers.fireAll();
    }
    assert.equal(raw.closed(), false);
    timers.fireAll();
    timers.fireAll();
    await waitFor("the peer is dropped once it stops", raw.closed);
  });

  test("a connection that never completes its handshake is closed at the deadline", async () => {
    const timers = new ManualTimers();
    const b = await node(2, { timers, handshakeTimeoutMs: 500 });
    const raw = await rawClient(b.transport.address().port);
    await waitFor("the connection is accepted", () => b.transport.counters.connectionsAccepted === 1);
    assert.deepEqual(timers.delays(), [500]);
    timers.fireAll();
    await waitFor("the connection is closed", raw.closed);
    assert.match(goodbyeReason(raw.frames), /no handshake within 500 ms/);
  });

  test("redials follow the capped exponential backoff drawn from the injected randomness", async () => {
    const timers = new ManualTimers();
    const lowest: RandomSource = { nextInt: () => 0 };
    const ghost = await node(9, {});
    const deadPort = ghost.transport.address().port;
    await ghost.transport.close();
    const a = await node(1, { timers, random: lowest, backoff: { initialMs: 100, maxMs: 1000 } });
    a.transport.addPeer(9, { host: "127.0.0.1", port: deadPort });
    const delays: number[] = [];
    for (let failures = 1; failures <= 5; failures++) {
      await waitFor(`dial failure ${failures}`, () => a.transport.counters.dialFailures === failures);
      // The failed dial's handshake deadline is cancelled; what is left is the redial.
      delays.push(...timers.delays());
      if (failures < 5) timers.fireAll();
    }
    // Ceilings 200, 400, 800, 1000, 1000; the lowest draw is half of each.
    assert.deepEqual(delays, [100, 200, 400, 500, 500]);
    assert.equal(a.transport.counters.dialAttempts, 5);
    assert.equal(a.transport.counters.reconnects, 5);
  });
});
