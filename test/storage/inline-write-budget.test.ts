// InlineWriteBudget: which write-ahead-log writes may block the event loop. Unit tests on a
// manual clock, and a property: however long the writes take and however they are spaced,
// inline writes block the loop at most the cap plus `share` of the elapsed time, plus the one
// write that overdrew the bucket.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { InlineWriteBudget } from "../../src/storage/wal/inline-write-budget.js";

class ManualClock {
  ms = 1_000;
  readonly now = () => this.ms;
}

/** Asserts that `budget` refuses a write of `bytes` now, without running it. */
function refuses(budget: InlineWriteBudget, bytes: number, message?: string): void {
  let ran = false;
  assert.equal(
    budget.tryInline(bytes, () => (ran = true)),
    false,
    message,
  );
  assert.equal(ran, false, "a refused write is not run");
}

/** A "write" that takes `ms` on `clock`. */
function taking(clock: ManualClock, ms: number): () => void {
  return () => {
    clock.ms += ms;
  };
}

describe("InlineWriteBudget", () => {
  it("runs a small write inline at once and charges its duration", () => {
    const clock = new ManualClock();
    const budget = new InlineWriteBudget({ now: clock.now });
    assert.equal(budget.tryInline(4_096, taking(clock, 0.5)), true);
    assert.equal(budget.remainingMs, 1.5);
  });

  it("after a slow write, refuses until `share` of the time since has paid it back", () => {
    const clock = new ManualClock();
    const budget = new InlineWriteBudget({ now: clock.now, share: 0.1, capMs: 2 });
    assert.equal(budget.tryInline(100, taking(clock, 7)), true);
    assert.equal(budget.remainingMs, -5);
    clock.ms += 49;
    refuses(budget, 100);
    clock.ms += 2;
    assert.equal(budget.tryInline(100, taking(clock, 0.05)), true);
  });

  it("saves at most `capMs` while the loop is free", () => {
    const clock = new ManualClock();
    const budget = new InlineWriteBudget({ now: clock.now, share: 0.1, capMs: 2 });
    clock.ms += 3_600_000;
    assert.equal(budget.tryInline(100, taking(clock, 1.5)), true);
    assert.equal(budget.tryInline(100, taking(clock, 1.5)), true, "0.5 ms left: still allowed");
    refuses(budget, 100);
  });

  it("never runs a write above maxBytes inline, nor any with share 0", () => {
    const clock = new ManualClock();
    const big = new InlineWriteBudget({ now: clock.now, maxBytes: 1_024 });
    refuses(big, 1_025);
    assert.equal(big.tryInline(1_024, taking(clock, 0)), true);
    const off = new InlineWriteBudget({ now: clock.now, share: 0 });
    clock.ms += 60_000;
    refuses(off, 1);
  });

  it("charges a write that throws, and lets the error through", () => {
    const clock = new ManualClock();
    const budget = new InlineWriteBudget({ now: clock.now, capMs: 2 });
    assert.throws(
      () =>
        budget.tryInline(100, () => {
          clock.ms += 3;
          throw new Error("EIO");
        }),
      /EIO/,
    );
    assert.equal(budget.remainingMs, -1);
  });

  it("refuses options out of range", () => {
    const now = () => 0;
    assert.throws(() => new InlineWriteBudget({ now, share: 1.5 }), RangeError);
    assert.throws(() => new InlineWriteBudget({ now, share: Number.NaN }), RangeError);
    assert.throws(() => new InlineWriteBudget({ now, capMs: -1 }), RangeError);
    assert.throws(() => new InlineWriteBudget({ now, capMs: Number.POSITIVE_INFINITY }), RangeError);
    assert.throws(() => new InlineWriteBudget({ now, maxBytes: 1.5 }), RangeError);
  });

  it("blocks the loop at most capMs + share x elapsed + one write, whatever the writes", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 10, noNaN: true }),
        fc.array(
          fc.record({
            gapMs: fc.double({ min: 0, max: 50, noNaN: true }),
            durationMs: fc.double({ min: 0, max: 100, noNaN: true }),
          }),
          { maxLength: 200 },
        ),
        (share, capMs, writes) => {
          const clock = new ManualClock();
          const budget = new InlineWriteBudget({ now: clock.now, share, capMs });
          const startedAt = clock.ms;
          let blockedMs = 0;
          let longestMs = 0;
          for (const { gapMs, durationMs } of writes) {
            clock.ms += gapMs;
            if (budget.tryInline(100, taking(clock, durationMs))) {
              blockedMs += durationMs;
              longestMs = Math.max(longestMs, durationMs);
            }
            const elapsedMs = clock.ms - startedAt;
            const bound = capMs + share * (elapsedMs - blockedMs) + longestMs;
            assert.ok(blockedMs <= bound + 1e-6, `blocked ${blockedMs} ms, bound ${bound} ms`);
          }
        },
      ),
    );
  });
});
