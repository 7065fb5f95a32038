// `concord start --auto-compaction-retention` / `--auto-compaction-mode`: etcd's spellings of a
// periodic retention (Go durations, or bare hours), off by default and at "0", anything else
// refused as a usage error naming the flag (revision mode with the reason); the launch
// carries the retention to Concord.open.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/cli/errors.js";
import { launchOf } from "../../src/cli/start.js";
import { configFor } from "./helpers.js";

const retention = (text: string | undefined, mode?: string) =>
  configFor({
    ...(text === undefined ? {} : { autoCompactionRetention: text }),
    ...(mode === undefined ? {} : { autoCompactionMode: mode }),
  }).autoCompactionRetentionMs;

test("auto-compaction is off unless a retention is given; etcd's spellings of it", () => {
  assert.equal(retention(undefined), 0);
  assert.equal(retention("0"), 0);
  assert.equal(retention("0s"), 0);
  assert.equal(retention("1"), 3_600_000, "a bare number is hours, as in etcd");
  assert.equal(retention("0.5"), 1_800_000);
  assert.equal(retention("1h"), 3_600_000);
  assert.equal(retention("30m"), 1_800_000);
  assert.equal(retention("1h30m"), 5_400_000);
  assert.equal(retention("90s"), 90_000);
  assert.equal(retention("1500ms"), 1_500);
  assert.equal(retention("5m", "periodic"), 300_000);
  assert.equal(
    launchOf(configFor({ autoCompactionRetention: "2h" }), false).autoCompactionRetentionMs,
    7_200_000,
  );
});

test("a bad retention or mode is a usage error naming the flag", () => {
  const refused = (text: string | undefined, mode: string | undefined, message: RegExp) =>
    assert.throws(
      () => retention(text, mode),
      (error: unknown) => error instanceof UsageError && message.test(error.message),
      `${text} ${mode}`,
    );
  for (const text of ["", "h", "1x", "-1h", "1h 30m", "1d", "abc", "1h-"]) {
    refused(text, undefined, /^--auto-compaction-retention: expected a duration like 1h/);
  }
  refused("500ms", undefined, /^--auto-compaction-retention: expected 0 \(off\) or at least 1s/);
  refused("1h", "revision", /^--auto-compaction-mode: revision mode keeps the last N revisions/);
  refused("1h", "hourly", /^--auto-compaction-mode: expected periodic, got "hourly"/);
});
