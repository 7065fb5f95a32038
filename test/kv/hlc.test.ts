// HybridClock and the apply-time revision rule: strictly increasing timestamps whatever the
// physical clock does, observation, logical overflow carrying into milliseconds, and
// max(last + 1, stamp) at apply time.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  HybridClock,
  MAX_LOGICAL,
  MAX_TIMESTAMP,
  MAX_WALL_MILLIS,
  logicalOf,
  makeTimestamp,
  revisionForApply,
  wallMillisOf,
} from "../../src/kv/hlc.js";

/** A physical clock the test moves by hand. */
function manualClock(start: number): { clock: HybridClock; set: (ms: number) => void } {
  let now = start;
  return { clock: new HybridClock(() => now), set: (ms) => (now = ms) };
}

describe("HLC timestamps", () => {
  it("pack 48-bit milliseconds above a 16-bit logical counter", () => {
    const ts = makeTimestamp(1_700_000_000_123, 7);
    assert.equal(ts, (1_700_000_000_123n << 16n) | 7n);
    assert.equal(wallMillisOf(ts), 1_700_000_000_123);
    assert.equal(logicalOf(ts), 7);
  });

  it("stay within int64 for etcd clients and reject components out of range", () => {
    assert.equal(makeTimestamp(MAX_WALL_MILLIS, MAX_LOGICAL), MAX_TIMESTAMP);
    assert.throws(() => makeTimestamp(MAX_WALL_MILLIS + 1, 0), RangeError);
    assert.throws(() => makeTimestamp(0, MAX_LOGICAL + 1), RangeError);
    assert.throws(() => makeTimestamp(-1, 0), RangeError);
  });
});

describe("HybridClock", () => {
  it("follows the physical clock when it moves forward", () => {
    const { clock, set } = manualClock(1000);
    assert.equal(clock.now(), makeTimestamp(1000, 0));
    set(1005);
    assert.equal(clock.now(), makeTimestamp(1005, 0));
  });

  it("counts logically while the physical clock stands still or steps back", () => {
    const { clock, set } = manualClock(1000);
    clock.now();
    assert.equal(clock.now(), makeTimestamp(1000, 1));
    set(900);
    assert.equal(clock.now(), makeTimestamp(1000, 2));
  });

  it("carries an overflowing logical counter into the milliseconds", () => {
    const { clock } = manualClock(1000);
    clock.observe(makeTimestamp(1000, MAX_LOGICAL));
    assert.equal(clock.now(), makeTimestamp(1001, 0));
  });

  it("never issues a timestamp at or below one it observed", () => {
    const { clock } = manualClock(1000);
    const remote = makeTimestamp(5000, 3);
    clock.observe(remote);
    assert.equal(clock.now(), makeTimestamp(5000, 4));
    clock.observe(makeTimestamp(10, 0));
    assert.equal(clock.last, makeTimestamp(5000, 4), "an older observation changes nothing");
  });

  it("is strictly increasing under any sequence of clock readings and observations", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ set: fc.integer({ min: 0, max: 3000 }) }),
            fc.record({ observe: fc.bigInt({ min: 0n, max: makeTimestamp(3000, MAX_LOGICAL) }) }),
            fc.constant({ now: true }),
          ),
        ),
        (steps) => {
          const { clock, set } = manualClock(0);
          let previous = -1n;
          let observed = 0n;
          for (const step of steps) {
            if ("set" in step) set(step.set);
            else if ("observe" in step) {
              clock.observe(step.observe);
              if (step.observe > observed) observed = step.observe;
            } else {
              const ts = clock.now();
              assert.ok(ts > previous, `${ts} after ${previous}`);
              assert.ok(ts > observed, `${ts} not above observed ${observed}`);
              previous = ts;
            }
          }
        },
      ),
    );
  });

  it("rejects a physical clock outside the representable range", () => {
    assert.throws(() => new HybridClock(() => -1).now(), RangeError);
    assert.throws(() => new HybridClock(() => Number.NaN).now(), RangeError);
    assert.throws(() => new HybridClock(() => MAX_WALL_MILLIS + 1).now(), RangeError);
  });
});

describe("revisionForApply", () => {
  it("uses the leader's stamp when it is above the last applied revision", () => {
    assert.equal(revisionForApply(10n, 500n), 500n);
  });

  it("uses last + 1 when the stamp is not above the last applied revision (a lagging clock)", () => {
    assert.equal(revisionForApply(500n, 10n), 501n);
    assert.equal(revisionForApply(500n, 500n), 501n);
    assert.equal(revisionForApply(500n, 501n), 501n);
  });

  it("is strictly increasing along any sequence of stamps", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 0n, max: 1n << 40n })), (stamps) => {
        let last = 0n;
        for (const stamp of stamps) {
          const next = revisionForApply(last, stamp);
          assert.ok(next > last);
          assert.ok(next >= stamp);
          last = next;
        }
      }),
    );
  });

  it("refuses invalid inputs and an exhausted revision space", () => {
    assert.throws(() => revisionForApply(-1n, 0n), RangeError);
    assert.throws(() => revisionForApply(0n, MAX_TIMESTAMP + 1n), RangeError);
    assert.throws(() => revisionForApply(MAX_TIMESTAMP, 0n), RangeError);
  });
});
