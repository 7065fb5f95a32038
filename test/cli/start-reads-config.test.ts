// `concord start --linearizable-reads`: lease by default, read-index on request, anything else
// refused as a usage error; the launch carries the choice to Concord.open.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/cli/errors.js";
import { launchOf } from "../../src/cli/start.js";
import { configFor } from "./helpers.js";

test("linearizable reads use the leader's lease unless --linearizable-reads says read-index", () => {
  assert.equal(configFor({}).linearizableReads, "lease");
  assert.equal(configFor({ linearizableReads: "lease" }).linearizableReads, "lease");
  const readIndex = configFor({ linearizableReads: "read-index" });
  assert.equal(readIndex.linearizableReads, "read-index");
  assert.equal(launchOf(readIndex, false).linearizableReads, "read-index");
});

test("an unknown --linearizable-reads mode is a usage error naming the flag", () => {
  for (const text of ["", "Lease", "serializable", "readindex"]) {
    assert.throws(
      () => configFor({ linearizableReads: text }),
      (error: unknown) =>
        error instanceof UsageError &&
        error.message === `--linearizable-reads: expected lease or read-index, got "${text}"`,
    );
  }
});
