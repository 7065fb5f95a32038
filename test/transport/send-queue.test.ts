// The bounded per-peer send queue (drop oldest, count everything, frame-sized batches) and the
// reconnect backoff computed from injected randomness.
import { strict as assert } from "node:assert";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { RandomSource } from "../../src/raft/types.js";
import { BATCH_ENTRY_OVERHEAD_BYTES } from "../../src/transport/codec.js";
import { SendQueue, type QueuedEnvelope } from "../../src/transport/send-queue.js";
import { backoffDelay } from "../../src/transport/timers.js";

function item(tag: number, bytes: number, messageCount = 1): QueuedEnvelope {
  return { encoded: new Uint8Array(bytes).fill(tag), messageCount };
}

const tags = (batches: QueuedEnvelope[][]): number[][] =>
  batches.map((b) => b.map((e) => e.encoded[0] ?? -1));

describe("SendQueue", () => {
  test("keeps everything within its limits, in order", () => {
    const queue = new SendQueue({ maxMessages: 10, maxBytes: 1000 });
    for (let i = 1; i <= 3; i++) assert.equal(queue.push(item(i, 10, 2)), 0);
    assert.equal(queue.messageCount, 6);
    assert.equal(queue.byteCount, 30);
    assert.deepEqual(tags(queue.takeBatches(1000)), [[1, 2, 3]]);
    assert.ok(queue.isEmpty);
    assert.equal(queue.messageCount, 0);
  });

  test("drops the oldest envelopes first when over the message limit, and says how many messages", () => {
    const queue = new SendQueue({ maxMessages: 5, maxBytes: 1000 });
    queue.push(item(1, 1, 2));
    queue.push(item(2, 1, 2));
    assert.equal(queue.push(item(3, 1, 2)), 2);
    assert.deepEqual(tags(queue.takeBatches(1000)), [[2, 3]]);
  });

  test("drops the oldest envelopes first when over the byte limit", () => {
    const queue = new SendQueue({ maxMessages: 100, maxBytes: 25 });
    queue.push(item(1, 10));
    queue.push(item(2, 10));
    assert.equal(queue.push(item(3, 10)), 1);
    assert.equal(queue.byteCount, 20);
    assert.deepEqual(tags(queue.takeBatches(1000)), [[2, 3]]);
  });

  test("model: the queue holds the newest suffix that fits, and drops are counted exactly", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ bytes: fc.integer({ min: 1, max: 20 }), messages: fc.integer({ min: 0, max: 4 }) }),
          {
            maxLength: 60,
          },
        ),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 200 }),
        (pushes, maxMessages, maxBytes) => {
          const queue = new SendQueue({ maxMessages, maxBytes });
          let model: QueuedEnvelope[] = [];
          let dropped = 0;
          pushes.forEach((p, i) => {
            dropped += queue.push(item(i % 256, p.bytes, p.messages));
            model.push(item(i % 256, p.bytes, p.messages));
            const over = (): boolean =>
              model.reduce((n, e) => n + e.messageCount, 0) > maxMessages ||
              model.reduce((n, e) => n + e.encoded.length, 0) > maxBytes;
            while (model.length > 0 && over()) model = model.slice(1);
          });
          const total = pushes.reduce((n, p) => n + p.messages, 0);
          assert.equal(dropped, total - model.reduce((n, e) => n + e.messageCount, 0));
          assert.deepEqual(queue.takeBatches(10_000).flat(), model);
        },
      ),
    );
  });

  test("clear() reports the messages it throws away", () => {
    const queue = new SendQueue({ maxMessages: 100, maxBytes: 1000 });
    queue.push(item(1, 5, 3));
    queue.push(item(2, 5, 4));
    assert.equal(queue.clear(), 7);
    assert.ok(queue.isEmpty);
  });

  test("batches are cut so each RaftBatch payload fits the frame limit", () => {
    const queue = new SendQueue({ maxMessages: 100, maxBytes: 10_000 });
    for (let i = 1; i <= 5; i++) queue.push(item(i, 40));
    const perEntry = 40 + BATCH_ENTRY_OVERHEAD_BYTES;
    assert.deepEqual(tags(queue.takeBatches(2 * perEntry)), [[1, 2], [3, 4], [5]]);
  });

  test("an envelope that cannot fit any frame is a caller bug", () => {
    const queue = new SendQueue({ maxMessages: 100, maxBytes: 10_000 });
    queue.push(item(1, 100));
    assert.throws(() => queue.takeBatches(50), /cannot fit a frame/);
  });

  test("limits must be positive", () => {
    assert.throws(() => new SendQueue({ maxMessages: 0, maxBytes: 1 }), /must be positive/);
  });
});

describe("backoffDelay", () => {
  const lowest: RandomSource = { nextInt: () => 0 };
  const highest: RandomSource = { nextInt: (bound) => bound - 1 };
  const policy = { initialMs: 100, maxMs: 1000 };

  test("the ceiling doubles per failure and is capped", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 50].map((f) => backoffDelay(policy, f, highest)),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  test("jitter stays within [ceiling / 2, ceiling]", () => {
    assert.deepEqual(
      [0, 1, 4].map((f) => backoffDelay(policy, f, lowest)),
      [50, 100, 500],
    );
    fc.assert(
      fc.property(fc.nat(100), fc.nat(), (failures, draw) => {
        const random: RandomSource = { nextInt: (bound) => draw % bound };
        const delay = backoffDelay(policy, failures, random);
        const ceiling = Math.min(1000, 100 * 2 ** failures);
        assert.ok(delay >= ceiling / 2 && delay <= ceiling, `delay ${delay} for ${failures} failures`);
      }),
    );
  });

  test("an invalid policy is refused", () => {
    assert.throws(() => backoffDelay({ initialMs: 0, maxMs: 10 }, 0, lowest), /invalid backoff policy/);
    assert.throws(() => backoffDelay({ initialMs: 10, maxMs: 5 }, 0, lowest), /invalid backoff policy/);
  });
});
