// Unit tests for the virtual-time scheduler: ordering, ties, cancellation, the empty queue.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Scheduler } from "../../src/sim/scheduler.js";

test("events run in time order, ties in scheduling order", () => {
  const s = new Scheduler();
  const log: string[] = [];
  s.after(5, () => log.push("b5"));
  s.after(1, () => log.push("a1"));
  s.after(5, () => log.push("c5"));
  s.after(0, () => log.push("z0"));
  while (s.step());
  assert.deepEqual(log, ["z0", "a1", "b5", "c5"]);
  assert.equal(s.now, 5);
  assert.equal(s.eventsRun, 4);
});

test("any set of delays is run sorted by (time, insertion order)", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (delays) => {
      const s = new Scheduler();
      const ran: number[] = [];
      delays.forEach((d, i) => s.after(d, () => ran.push(i)));
      while (s.step());
      const expected = delays.map((d, i) => [d, i] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
      assert.deepEqual(
        ran,
        expected.map(([, i]) => i),
      );
    }),
  );
});

test("events scheduled while running are ordered with the rest", () => {
  const s = new Scheduler();
  const log: string[] = [];
  s.after(10, () => {
    log.push("first@10");
    s.after(0, () => log.push("nested@10"));
    s.after(5, () => log.push("nested@15"));
  });
  s.after(12, () => log.push("other@12"));
  while (s.step());
  assert.deepEqual(log, ["first@10", "nested@10", "other@12", "nested@15"]);
});

test("cancelled events never run", () => {
  const s = new Scheduler();
  const log: number[] = [];
  const e = s.after(1, () => log.push(1));
  s.after(2, () => log.push(2));
  e.cancel();
  assert.equal(e.cancelled, true);
  assert.equal(s.peekTime(), 2);
  while (s.step());
  assert.deepEqual(log, [2]);
});

test("peekTime skips cancelled events and reports an empty queue", () => {
  const s = new Scheduler();
  assert.equal(s.peekTime(), undefined);
  assert.equal(s.step(), false);
  const first = s.at(3, () => {});
  s.at(8, () => {});
  first.cancel();
  assert.equal(s.peekTime(), 8);
  assert.equal(s.step(), true);
  assert.equal(s.now, 8);
  assert.equal(s.peekTime(), undefined);
});

test("scheduling in the past or with a bad delay is refused", () => {
  const s = new Scheduler();
  s.at(10, () => {});
  s.step();
  assert.throws(() => s.at(5, () => {}));
  assert.throws(() => s.after(-1, () => {}));
  assert.throws(() => s.after(Number.NaN, () => {}));
});
