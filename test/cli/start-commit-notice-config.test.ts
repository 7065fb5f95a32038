// `concord start --commit-notice-delay`: whole milliseconds from 0 to 1000 (default 20), carried
// by the launch to Concord.open; anything else is a usage error naming the flag.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/cli/errors.js";
import { launchOf } from "../../src/cli/start.js";
import { configFor } from "./helpers.js";

test("--commit-notice-delay sets the delay; absent, it is 20 ms", () => {
  assert.equal(configFor({}).commitNoticeDelayMs, 20);
  assert.equal(configFor({ commitNoticeDelay: "0" }).commitNoticeDelayMs, 0);
  const config = configFor({ commitNoticeDelay: "1000" });
  assert.equal(config.commitNoticeDelayMs, 1000);
  assert.equal(launchOf(config, false).commitNoticeDelayMs, 1000);
});

test("a --commit-notice-delay that is not whole milliseconds up to 1000 is a usage error", () => {
  for (const text of ["", "-1", "1.5", "20ms", "1001", "1e3", " 5"]) {
    assert.throws(
      () => configFor({ commitNoticeDelay: text }),
      (error: unknown) =>
        error instanceof UsageError &&
        error.message === `--commit-notice-delay: expected whole milliseconds from 0 to 1000, got "${text}"`,
    );
  }
});
