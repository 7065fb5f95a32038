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
  const timers = new SimTimers(scheduler, new SeededRandom(1));
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

test("a frozen process runs nothing until its thaw: then its late timers once, then each source's inputs in order", () => {
  const scheduler = new Scheduler();
  const timers = new SimTimers(scheduler, new SeededRandom(7));
  const ran: string[] = [];
  const at = (what: string) => () => ran.push(`${what}@${scheduler.now}`);
  timers.setTimeout(at("tick"), 10);
  timers.setTimeout(at("cancelled"), 20).cancel();
  scheduler.after(5, () => timers.freeze(100));
  // A freeze while frozen that ends sooner does not shorten it.
  scheduler.after(6, () => timers.freeze(10));
  for (const [time, input] of [
    [30, "peer 2: a"],
    [40, "peer 3: x"],
    [50, "peer 2: b"],
    [60, "peer 3: y"],
    [70, "peer 2: c"],
  ] as const) {
    scheduler.after(time, () => timers.deliver(at(input), input.split(":")[0]!));
  }
  scheduler.after(90, () => assert.deepEqual(ran, [], "nothing runs while frozen"));
  while (scheduler.step());
  assert.equal(ran[0], "tick@105", "the overdue timer fires once, first, at the thaw");
  const inputs = ran.slice(1).map((entry) => entry.split("@")[0]!);
  assert.equal(inputs.length, 5);
  const ofSource = (peer: string) => inputs.filter((input) => input.startsWith(peer));
  assert.deepEqual(
    ofSource("peer 2"),
    ["peer 2: a", "peer 2: b", "peer 2: c"],
    "one source's inputs keep their order",
  );
  assert.deepEqual(ofSource("peer 3"), ["peer 3: x", "peer 3: y"]);
  assert.ok(ran.every((entry) => entry.endsWith("@105")));
  timers.deliver(at("running"), "peer 2");
  assert.equal(ran.at(-1), "running@105", "a running process takes its input at once");

  timers.freeze(50);
  timers.deliver(at("held"), "peer 2");
  timers.kill();
  while (scheduler.step());
  assert.equal(ran.at(-1), "running@105", "what a killed process held never runs");
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
