// `concord start`'s split flags as values: what each becomes in the StartConfig (only the
// thresholds given; automatic splits on by default), and every value refused as a usage error.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/cli/errors.js";
import { launchOf } from "../../src/cli/start.js";
import { SPLIT_FLAG_NAMES, type StartFlags } from "../../src/cli/start-config.js";
import { configFor } from "./helpers.js";

function assertUsage(flags: Partial<StartFlags>, message: RegExp): void {
  assert.throws(
    () => configFor(flags),
    (error: unknown) => error instanceof UsageError && message.test(error.message),
  );
}

test("without split flags automatic splits are on with the policy's own defaults", () => {
  assert.deepEqual(configFor({}).split, { autoSplit: true, autoMerge: true, policy: {} });
});

test("each threshold flag sets exactly its policy option, and the launch carries them", () => {
  const config = configFor({
    splitLoadOps: "100",
    splitLoadWindows: "3",
    splitMaxRangeBytes: "1048576",
    splitCooldown: "2000",
  });
  const expected = {
    autoSplit: true,
    autoMerge: true,
    policy: { loadSplitOpsPerSecond: 100, loadSplitWindows: 3, maxRangeBytes: 1_048_576, cooldownMs: 2_000 },
  };
  assert.deepEqual(config.split, expected);
  assert.deepEqual(launchOf(config, false).split, expected);
  assert.deepEqual(configFor({ splitLoadOps: "12.5" }).split.policy, { loadSplitOpsPerSecond: 12.5 });
  assert.deepEqual(configFor({ splitCooldown: "0" }).split.policy, { cooldownMs: 0 });
});

test("--auto-split takes Go's boolean spellings; a bare --auto-split means true", () => {
  for (const text of ["true", "1", "t", "TRUE", "True"])
    assert.equal(configFor({ autoSplit: text }).split.autoSplit, true);
  for (const text of ["false", "0", "f", "FALSE", "False"])
    assert.equal(configFor({ autoSplit: text }).split.autoSplit, false);
  assert.equal(configFor({ autoSplit: true }).split.autoSplit, true);
  // --auto-merge follows --auto-split unless given.
  assert.deepEqual(configFor({ autoSplit: "false" }).split, {
    autoSplit: false,
    autoMerge: false,
    policy: {},
  });
  assert.deepEqual(configFor({ autoMerge: "false" }).split, {
    autoSplit: true,
    autoMerge: false,
    policy: {},
  });
  assert.deepEqual(configFor({ autoSplit: "false", autoMerge: "true" }).split, {
    autoSplit: false,
    autoMerge: true,
    policy: {},
  });
});

test("bad split values are usage errors naming the flag", () => {
  assertUsage({ autoSplit: "yes" }, /^--auto-split: expected true or false, got "yes"$/);
  assertUsage({ autoSplit: "" }, /^--auto-split: expected true or false/);
  assertUsage({ splitLoadOps: "0" }, /^--split-load-ops: expected a number >= 1, got "0"$/);
  assertUsage({ splitLoadOps: "-5" }, /^--split-load-ops: expected a number >= 1/);
  assertUsage({ splitLoadOps: "1e3" }, /^--split-load-ops: expected a number >= 1/);
  assertUsage({ splitLoadOps: "abc" }, /^--split-load-ops: expected a number >= 1/);
  assertUsage({ splitLoadWindows: "2.5" }, /^--split-load-windows: expected a whole number >= 1, got "2.5"$/);
  assertUsage({ splitLoadWindows: "0" }, /^--split-load-windows: expected a whole number >= 1/);
  assertUsage({ splitMaxRangeBytes: "64MiB" }, /^--split-max-range-bytes: expected a whole number >= 1/);
  assertUsage(
    { splitMaxRangeBytes: "99999999999999999999" },
    /^--split-max-range-bytes: expected a whole number >= 1/,
  );
  assertUsage({ splitCooldown: "" }, /^--split-cooldown: expected a whole number >= 0, got ""$/);
  assertUsage({ splitCooldown: "0x10" }, /^--split-cooldown: expected a whole number >= 0/);
});

test("merge thresholds set their policy options; bad ones are usage errors naming the flag", () => {
  assert.deepEqual(
    configFor({ mergeMaxBytes: "1048576", mergeMaxOps: "2.5", mergeWindows: "5", mergeDelayAfterSplit: "0" })
      .split.policy,
    {
      mergeMaxBytes: 1_048_576,
      mergeMaxOpsPerSecond: 2.5,
      mergeWindows: 5,
      mergeDelayAfterSplitMs: 0,
    },
  );
  assertUsage({ autoMerge: "maybe" }, /^--auto-merge: expected true or false, got "maybe"$/);
  assertUsage({ mergeMaxBytes: "8MiB" }, /^--merge-max-bytes: expected a whole number >= 1/);
  assertUsage({ mergeMaxOps: "0" }, /^--merge-max-ops: expected a number >= 1, got "0"$/);
  assertUsage({ mergeWindows: "1.5" }, /^--merge-windows: expected a whole number >= 1/);
  assertUsage({ mergeDelayAfterSplit: "-1" }, /^--merge-delay-after-split: expected a whole number >= 0/);
  assertUsage({ autoMerge: "false", mergeWindows: "5" }, /have no effect with --auto-merge=false/);
  assertUsage({ autoMerge: "false", mergeDelayAfterSplit: "0" }, /have no effect with --auto-merge=false/);
});

test("thresholds with --auto-split=false are refused: they would change nothing", () => {
  assertUsage({ autoSplit: "false", splitLoadOps: "100" }, /have no effect with --auto-split=false/);
  assertUsage({ autoSplit: "0", splitCooldown: "10" }, /have no effect with --auto-split=false/);
});

test("the flag names are etcd-style kebab case", () => {
  assert.deepEqual(SPLIT_FLAG_NAMES, [
    "auto-split",
    "split-load-ops",
    "split-load-windows",
    "split-max-range-bytes",
    "split-cooldown",
    "auto-merge",
    "merge-max-bytes",
    "merge-max-ops",
    "merge-windows",
    "merge-delay-after-split",
  ]);
});
