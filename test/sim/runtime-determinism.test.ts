// The runtime simulation is a pure function of its seed: the same seed twice gives the same
// history, trace and stats; another seed gives another run. Plus the simulated parts it
// is built from: the transport over SimNetwork, virtual timers, the crash-losing store.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WriteBatch } from "../../src/kv/engine.js";
import { runRuntimeSimulation } from "../../src/sim/runtime/runtime-run.js";
import { CrashableKv } from "../../src/sim/runtime/runtime-node.js";
import {
  SimTimers,
  simMonotonicClock,
  simWallClock,
  SIM_EPOCH_MS,
} from "../../src/sim/runtime/sim-timers.js";
import { SimTransportHub } from "../../src/sim/runtime/sim-transport.js";
import { SeededRandom } from "../../src/sim/random.js";
import { Scheduler } from "../../src/sim/scheduler.js";
import { EMPTY_BYTES, MessageType, type Message } from "../../src/raft/types.js";
import { TransportError, type Envelope } from "../../src/transport/transport.js";
import { settleMicrotasks } from "./runtime-support.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

test("the same seed twice gives the same run, event for event", async () => {
  const run = () =>
    runRuntimeSimulation({
      seed: 11,
      profile: "crashes",
      durationMs: 500,
      settleMicrotasks,
      traceCapacity: 5000,
    });
  const first = await run();
  const second = await run();
  assert.ok(first.history.length > 20, `only ${first.history.length} operations`);
  assert.deepEqual(second.history, first.history);
  assert.deepEqual(second.trace, first.trace);
  assert.deepEqual(second.stats, first.stats);
  const other = await runRuntimeSimulation({
    seed: 12,
    profile: "crashes",
    durationMs: 500,
    settleMicrotasks,
  });
  assert.notDeepEqual(other.history, first.history);
});

test("the final linearizable reads of every key join the history", async () => {
  const result = await runRuntimeSimulation({
    seed: 3,
    profile: "calm-with-loss",
    durationMs: 300,
    settleMicrotasks,
  });
  assert.deepEqual(result.violations, []);
  const last = result.history.slice(-3);
  assert.deepEqual(
    last.map((op) => op.kind),
    ["get", "get", "get"],
  );
  assert.deepEqual(last.map((op) => op.key).sort(), ["k0", "k1", "k2"]);
});

function message(from: number, to: number, type = MessageType.App): Message {
  return {
    type,
    from,
    to,
    term: 1,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    vote: 0,
    snapshot: null,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    responses: [],
  } as unknown as Message;
}

function hubWith(scheduler: Scheduler): SimTransportHub {
  return new SimTransportHub(scheduler, new SeededRandom(1), {
    minDelay: 1,
    maxDelay: 5,
    lossRate: 0,
    duplicateRate: 0,
    slowRate: 0,
    slowMaxDelay: 0,
  });
}

test("the sim transport sends on flush, keeps the group, and reports cut links as unreachable", async () => {
  const scheduler = new Scheduler();
  const hub = hubWith(scheduler);
  const one = hub.createTransport(1);
  const two = hub.createTransport(2);
  const received: Envelope[] = [];
  const unreachable: number[] = [];
  two.onReceive((envelope) => received.push(envelope));
  one.onUnreachable((peer) => unreachable.push(peer));
  await one.start();
  await two.start();
  one.send(2, { groupId: 7, from: 1, to: 2, messages: [message(1, 2)] });
  while (scheduler.step());
  assert.equal(received.length, 0, "nothing leaves before flush");
  one.flush();
  while (scheduler.step());
  assert.equal(received.length, 1);
  assert.equal(received[0]!.groupId, 7);
  assert.equal(received[0]!.from, 1);
  hub.network.cut(1, 2);
  one.send(2, { groupId: 7, from: 1, to: 2, messages: [message(1, 2)] });
  one.flush();
  while (scheduler.step());
  assert.equal(received.length, 1);
  assert.deepEqual(unreachable, [2]);
});

test("a snapshot resolves once handed over, and rejects when its link is cut", async () => {
  const scheduler = new Scheduler();
  const hub = hubWith(scheduler);
  const one = hub.createTransport(1);
  const two = hub.createTransport(2);
  const images: string[] = [];
  two.onReceive((envelope) => {
    for (const m of envelope.messages) if (m.snapshot !== null) images.push(decoder.decode(m.snapshot.data));
  });
  await one.start();
  await two.start();
  const snap = {
    ...message(1, 2, MessageType.Snap),
    snapshot: { metadata: { index: 5, term: 1, confState: { voters: [1, 2] } }, data: EMPTY_BYTES },
  } as unknown as Message;
  async function* chunks(): AsyncIterable<Uint8Array> {
    for (const part of ["ima", "ge"]) {
      await Promise.resolve();
      yield encoder.encode(part);
    }
  }
  const delivered = one.sendSnapshot(2, 1, snap, chunks());
  await settleMicrotasks();
  while (scheduler.step()) await settleMicrotasks();
  await delivered;
  assert.deepEqual(images, ["image"]);
  hub.network.cut(1, 2);
  const refused = assert.rejects(one.sendSnapshot(2, 1, snap, encoder.encode("x")), TransportError);
  await settleMicrotasks();
  while (scheduler.step()) await settleMicrotasks();
  await refused;
});

test("virtual timers run on the scheduler and never after the process was killed", () => {
  const scheduler = new Scheduler();
  const timers = new SimTimers(scheduler);
  const fired: number[] = [];
  timers.setTimeout(() => fired.push(scheduler.now), 30);
  const cancelled = timers.setTimeout(() => fired.push(-1), 10);
  cancelled.cancel();
  timers.setTimeout(() => fired.push(-2), 50);
  scheduler.after(40, () => timers.kill());
  while (scheduler.step());
  assert.deepEqual(fired, [30]);
  assert.equal(simMonotonicClock(scheduler)(), 40, "the killed timer's event was cancelled too");
  assert.equal(simWallClock(scheduler)(), SIM_EPOCH_MS + 40);
});

test("the state machine store forgets its unsynced writes on a crash", () => {
  const kv = new CrashableKv();
  const write = (key: string, value: string) => {
    const batch = new WriteBatch();
    batch.put(encoder.encode(key), encoder.encode(value));
    kv.write(batch);
  };
  const read = (key: string) => {
    const view = kv.view();
    const value = view.get(encoder.encode(key));
    view.release();
    return value === undefined ? undefined : decoder.decode(value);
  };
  write("a", "1");
  kv.sync();
  write("a", "2");
  write("b", "3");
  assert.equal(read("a"), "2");
  kv.crash();
  assert.equal(read("a"), "1");
  assert.equal(read("b"), undefined);
});
