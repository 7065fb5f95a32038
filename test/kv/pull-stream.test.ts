// PullStream: both ways of consuming a stream pulled by poll(): iteration (waiting consumers
// answered in order, ended on close) and push (one deferred wake for any number of pumps, none
// once closed), and that a stream is consumed one way only.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PullStream } from "../../src/kv/pull-stream.js";

/** A stream over a queue the test fills, closed when the test says. */
function queueStream(): { stream: PullStream<number>; queue: number[]; close(): void; cancels: number } {
  const queue: number[] = [];
  let closed = false;
  const state = {
    queue,
    cancels: 0,
    stream: new PullStream<number>(
      () => queue.shift(),
      () => closed,
      () => {
        state.cancels += 1;
      },
    ),
    close() {
      closed = true;
      state.stream.endAll();
    },
  };
  return state;
}

describe("PullStream", () => {
  it("iteration: waiting consumers are answered in order as responses are pumped, and ended on close", async () => {
    const state = queueStream();
    const { stream, queue } = state;
    const iterator = stream.iterator();
    const first = iterator.next();
    const second = iterator.next();
    queue.push(1, 2);
    stream.pump();
    assert.deepEqual(await first, { done: false, value: 1 });
    assert.deepEqual(await second, { done: false, value: 2 });
    const third = iterator.next();
    state.close();
    assert.deepEqual(await third, { done: true, value: undefined });
  });

  it("push: one wake after the synchronous step, however many pumps it made", async () => {
    const { stream, queue } = queueStream();
    let wakes = 0;
    stream.listen(() => (wakes += 1));
    assert.equal(wakes, 0, "not woken inside the call");
    await Promise.resolve();
    assert.equal(wakes, 1, "woken once soon after listen");
    for (let i = 0; i < 5; i++) {
      queue.push(i);
      stream.pump();
    }
    assert.equal(wakes, 1, "not woken inside the step that pumped");
    await Promise.resolve();
    assert.equal(wakes, 2, "five pumps, one wake");
    assert.deepEqual(queue, [0, 1, 2, 3, 4], "the consumer polls; the stream takes nothing itself");
  });

  it("push: no wake once the stream is closed, even one queued before", async () => {
    const state = queueStream();
    const { stream } = state;
    let wakes = 0;
    stream.listen(() => (wakes += 1));
    await Promise.resolve();
    stream.pump();
    state.close();
    stream.pump();
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(wakes, 1);
  });

  it("a stream is iterated or listened to, once", () => {
    const listened = queueStream().stream;
    listened.listen(() => {});
    assert.throws(() => listened.iterator(), /consumed once/);
    assert.throws(() => listened.listen(() => {}), /consumed once/);
    const iterated = queueStream().stream;
    iterated.iterator();
    assert.throws(() => iterated.listen(() => {}), /consumed once/);
  });

  it("leaving an iteration cancels the stream", async () => {
    const state = queueStream();
    await state.stream.iterator().return!();
    assert.equal(state.cancels, 1);
  });
});
