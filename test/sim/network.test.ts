// Unit tests for the simulated network: delays, loss, duplication, reordering, partitions, down nodes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MessageType, message, type Message } from "../../src/raft/types.js";
import { SeededRandom } from "../../src/sim/random.js";
import { Scheduler } from "../../src/sim/scheduler.js";
import { SimNetwork, type DropReason, type NetworkConditions } from "../../src/sim/network.js";

interface Harness {
  scheduler: Scheduler;
  network: SimNetwork;
  delivered: { at: number; m: Message }[];
  dropped: { m: Message; reason: DropReason }[];
}

function harness(conditions: NetworkConditions, seed = 1): Harness {
  const scheduler = new Scheduler();
  const delivered: Harness["delivered"] = [];
  const dropped: Harness["dropped"] = [];
  const network = new SimNetwork(scheduler, new SeededRandom(seed), conditions, {
    deliver: (_sender, m) => delivered.push({ at: scheduler.now, m }),
    dropped: (_sender, m, reason) => dropped.push({ m, reason }),
  });
  return { scheduler, network, delivered, dropped };
}

const CLEAN: NetworkConditions = {
  minDelay: 3,
  maxDelay: 3,
  lossRate: 0,
  duplicateRate: 0,
  slowRate: 0,
  slowMaxDelay: 0,
};

function app(from: number, to: number, index: number): Message {
  return message({ type: MessageType.App, from, to, index });
}

test("a clean network delivers every message once, after its delay", () => {
  const h = harness(CLEAN);
  for (let i = 0; i < 10; i++) h.network.send(1, app(1, 2, i));
  while (h.scheduler.step());
  assert.equal(h.delivered.length, 10);
  assert.ok(h.delivered.every((d) => d.at === 3));
  assert.deepEqual(
    h.delivered.map((d) => d.m.index),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.equal(h.network.counters.sent, 10);
  assert.equal(h.network.counters.delivered, 10);
  assert.equal(h.network.counters.reordered, 0);
});

test("random delays reorder messages on a link, and the counter notices", () => {
  const h = harness({ ...CLEAN, minDelay: 1, maxDelay: 50, lossRate: 0, duplicateRate: 0 });
  for (let i = 0; i < 200; i++) h.network.send(1, app(1, 2, i));
  while (h.scheduler.step());
  const order = h.delivered.map((d) => d.m.index);
  let outOfOrder = 0;
  let highest = -1;
  for (const i of order) {
    if (i < highest) outOfOrder++;
    highest = Math.max(highest, i);
  }
  assert.ok(outOfOrder > 0);
  assert.equal(h.network.counters.reordered, outOfOrder);
});

test("loss and duplication happen at roughly their rates and are reported", () => {
  const h = harness({ ...CLEAN, minDelay: 1, maxDelay: 5, lossRate: 0.2, duplicateRate: 0.1 });
  const n = 5000;
  for (let i = 0; i < n; i++) h.network.send(1, app(1, 2, i));
  while (h.scheduler.step());
  const c = h.network.counters;
  assert.ok(c.droppedLoss > n * 0.17 && c.droppedLoss < n * 0.23, `lost ${c.droppedLoss}`);
  assert.ok(c.duplicated > (n - c.droppedLoss) * 0.07, `duplicated ${c.duplicated}`);
  assert.equal(h.dropped.filter((d) => d.reason === "loss").length, c.droppedLoss);
  assert.equal(h.delivered.length, n - c.droppedLoss + c.duplicated);
});

test("slow messages get a long-tail delay within the configured bound", () => {
  const h = harness({ ...CLEAN, minDelay: 1, maxDelay: 5, slowRate: 0.1, slowMaxDelay: 500 });
  for (let i = 0; i < 2000; i++) h.network.send(1, app(1, 2, i));
  while (h.scheduler.step());
  const slowed = h.network.counters.slowed;
  assert.ok(slowed > 150 && slowed < 250, `slowed ${slowed} of 2000`);
  assert.ok(h.delivered.every((d) => d.at >= 1 && d.at <= 505));
  assert.ok(h.delivered.filter((d) => d.at > 5).length > 100, "some deliveries took the long tail");
  assert.equal(h.delivered.length, 2000);
});

test("a symmetric partition drops both directions, including messages already in flight", () => {
  const h = harness(CLEAN);
  h.network.send(1, app(1, 3, 0));
  h.network.partition([1, 2], [3]);
  h.network.send(3, app(3, 1, 1));
  h.network.send(1, app(1, 2, 2));
  while (h.scheduler.step());
  assert.deepEqual(
    h.delivered.map((d) => d.m.index),
    [2],
  );
  assert.deepEqual(
    h.dropped.map((d) => [d.m.index, d.reason]),
    [
      [0, "partition"],
      [1, "partition"],
    ],
  );
  h.network.heal();
  h.network.send(3, app(3, 1, 3));
  while (h.scheduler.step());
  assert.equal(h.delivered.at(-1)?.m.index, 3);
});

test("a one-way cut blocks only its direction", () => {
  const h = harness(CLEAN);
  h.network.cut(1, 2);
  assert.equal(h.network.canReach(1, 2), false);
  assert.equal(h.network.canReach(2, 1), true);
  h.network.send(1, app(1, 2, 0));
  h.network.send(2, app(2, 1, 1));
  while (h.scheduler.step());
  assert.deepEqual(
    h.delivered.map((d) => d.m.index),
    [1],
  );
  assert.equal(h.network.counters.droppedPartition, 1);
  assert.equal(h.network.describeCuts(), "1>2");
});

test("links are physical: a forwarded message follows its sender's link, not its from field", () => {
  const h = harness(CLEAN);
  h.network.cut(2, 1);
  // Node 2 forwards a proposal that originated at node 3: the cut 2>1 applies, not 3>1.
  h.network.send(2, message({ type: MessageType.Prop, from: 3, to: 1 }));
  h.network.send(3, message({ type: MessageType.Prop, from: 3, to: 1 }));
  while (h.scheduler.step());
  assert.equal(h.delivered.length, 1);
  assert.equal(h.network.counters.droppedPartition, 1);
});

test("messages to a down node are dropped until it comes back", () => {
  const h = harness(CLEAN);
  h.network.setUp(2, false);
  h.network.send(1, app(1, 2, 0));
  while (h.scheduler.step());
  assert.equal(h.delivered.length, 0);
  assert.equal(h.network.counters.droppedDown, 1);
  h.network.setUp(2, true);
  h.network.send(1, app(1, 2, 1));
  while (h.scheduler.step());
  assert.equal(h.delivered.length, 1);
});

test("the same seed gives the same deliveries", () => {
  const run = (seed: number): string => {
    const h = harness({ ...CLEAN, minDelay: 1, maxDelay: 20, lossRate: 0.1, duplicateRate: 0.1 }, seed);
    for (let i = 0; i < 300; i++) h.network.send(1 + (i % 3), app(1 + (i % 3), 4, i));
    while (h.scheduler.step());
    return h.delivered.map((d) => `${d.at}:${d.m.from}:${d.m.index}`).join(",");
  };
  assert.equal(run(5), run(5));
  assert.notEqual(run(5), run(6));
});

test("invalid conditions and self-addressed messages are refused", () => {
  const h = harness(CLEAN);
  assert.throws(() =>
    h.network.setConditions({ ...CLEAN, minDelay: 5, maxDelay: 1, lossRate: 0, duplicateRate: 0 }),
  );
  assert.throws(() =>
    h.network.setConditions({ ...CLEAN, minDelay: 1, maxDelay: 2, lossRate: 1.5, duplicateRate: 0 }),
  );
  assert.throws(() => h.network.send(1, app(1, 1, 0)));
});
