// The periodic auto-compactor: on the meta leader only, every min(retention, 1 h), it compacts
// at the revision of `retention` ago (an HLC timestamp), or at the newest revision when nothing
// was written since; it never asks for a revision it compacted already, and a failure is
// counted and retried at the next cycle.
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorResponse, type CommandResult } from "../../src/kv/results.js";
import { KvErrorCode } from "../../src/kv/errors.js";
import { makeTimestamp } from "../../src/kv/hlc.js";
import { AutoCompactor, MAX_AUTO_COMPACTION_INTERVAL_MS } from "../../src/placement/auto-compaction.js";
import { VirtualTime } from "../node/harness.js";

const HOUR = 3_600_000;

function compactor(options: {
  retentionMs: number;
  time: VirtualTime;
  leader?: () => boolean;
  answer: (revision: bigint) => CommandResult;
}) {
  const asked: bigint[] = [];
  const auto = new AutoCompactor({
    retentionMs: options.retentionMs,
    timers: options.time.timers,
    wallClock: () => options.time.wall(),
    isMetaLeader: options.leader ?? (() => true),
    compact: (revision) => {
      asked.push(revision);
      return Promise.resolve(options.answer(revision));
    },
  });
  return { auto, asked };
}

const compacted = (revision: bigint): CommandResult => ({ revision, response: { kind: "compact" } });
const settle = () => new Promise((resolve) => setImmediate(resolve));

test("compacts at the timestamp of `retention` ago, every retention, on the meta leader only", async () => {
  const time = new VirtualTime();
  let leader = false;
  const { auto, asked } = compactor({ retentionMs: 10_000, time, leader: () => leader, answer: compacted });
  auto.start();
  time.advance(10_000);
  await settle();
  assert.deepEqual(asked, [], "not the meta leader: nothing");
  leader = true;
  time.advance(10_000);
  await settle();
  assert.deepEqual(asked, [makeTimestamp(time.wall() - 10_000, 0)]);
  time.advance(10_000);
  await settle();
  assert.equal(asked.length, 2);
  assert.equal(asked[1], makeTimestamp(time.wall() - 10_000, 0));
  assert.deepEqual(auto.counters, { cycles: 3, compacted: 2, failures: 0 });
  auto.stop();
  time.advance(100_000);
  await settle();
  assert.equal(auto.counters.cycles, 3, "stopped");
});

test("with nothing written since the retention began, compacts at the newest revision, once", async () => {
  const time = new VirtualTime();
  const newest = makeTimestamp(time.wall() - 50_000, 3);
  const { auto, asked } = compactor({
    retentionMs: 20_000,
    time,
    answer: (revision) =>
      revision > newest
        ? { revision: newest, response: errorResponse(KvErrorCode.FutureRevision) }
        : compacted(revision),
  });
  time.advance(1);
  assert.equal(await auto.runOnce(), newest);
  assert.deepEqual(asked, [makeTimestamp(time.wall() - 20_000, 0), newest]);
  assert.equal(await auto.runOnce(), null, "the newest revision is compacted already");
  assert.equal(asked.length, 3);
});

test("a compaction already past the target, or a failure, compacts nothing; the next cycle tries again", async () => {
  const time = new VirtualTime();
  let answer: (revision: bigint) => CommandResult = (revision) => ({
    revision,
    response: errorResponse(KvErrorCode.Compacted),
  });
  const { auto } = compactor({ retentionMs: 5_000, time, answer: (revision) => answer(revision) });
  time.advance(10_000);
  assert.equal(await auto.runOnce(), null);
  assert.equal(auto.counters.compacted, 0);
  answer = () => {
    throw new Error("no leader");
  };
  time.advance(10_000);
  assert.equal(await auto.runOnce(), null);
  assert.equal(auto.counters.failures, 1);
  answer = compacted;
  time.advance(10_000);
  assert.equal(await auto.runOnce(), makeTimestamp(time.wall() - 5_000, 0));
});

test("the interval is capped at an hour; a retention must be a positive number of ms", async () => {
  const time = new VirtualTime();
  const { auto, asked } = compactor({ retentionMs: 72 * HOUR, time, answer: compacted });
  auto.start();
  time.advance(MAX_AUTO_COMPACTION_INTERVAL_MS);
  await settle();
  assert.equal(asked.length, 1, "a 72 h retention still compacts every hour");
  auto.stop();
  for (const retentionMs of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => compactor({ retentionMs, time, answer: compacted }), RangeError);
  }
});
