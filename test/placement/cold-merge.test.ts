// Automatic merges: a one-node store split by hand into three ranges, then left idle, merges
// its small cold neighbours back by itself (the meta leader's split loop with its merge
// policy) until one range remains; every key stays readable and writable, and the merged-away
// ranges' replicas are destroyed.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Concord } from "../../src/api/index.js";
import { text, waitFor } from "../api/helpers.js";

const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);

test("small cold neighbours merge back by themselves", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-cold-merge-"));
  const db = await Concord.open({
    dataDir,
    tickMs: 10,
    autoSplit: false,
    autoMerge: true,
    // Cold after two one-second windows; no rest after a split or merge.
    splitPolicy: { mergeWindows: 2, cooldownMs: 0, mergeDelayAfterSplitMs: 0 },
    rangeSizeRefreshMs: 50,
  });
  try {
    for (const letter of "acegikmoqsuwy") await db.put(`c/${letter}`, letter);
    const ranges = db.ranges!;
    const { right: middle } = await ranges.split(bytes("c/i"));
    const { right: last } = await ranges.split(bytes("c/q"));
    assert.equal(ranges.list().length, 3);
    await waitFor(() => ranges.list().length === 1, "the cold ranges merge back into one");
    await waitFor(
      () => db.host.replica(middle.groupId) === undefined && db.host.replica(last.groupId) === undefined,
      "the merged-away replicas are destroyed",
    );
    const all = await db.range("c/", { prefix: true });
    assert.deepEqual(
      all.kvs.map((kv) => text(kv.value)),
      "acegikmoqsuwy".split(""),
    );
    await db.put("c/z", "after");
    assert.equal(text((await db.get("c/z"))?.value), "after");
  } finally {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
