// Leases over split ranges (NodeRanges + RangeRouter): a lease granted in range 1 after a
// split is mirrored into the range a put names it in; its time-to-live lists its keys in every
// range; revoking it deletes its keys in every range; when it expires in range 1, the meta
// leader's sweep revokes the mirror, keys and all.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Concord } from "../../src/api/index.js";
import { text, waitFor } from "../api/helpers.js";

const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);

test("leases granted after a split attach keys in any range and take them along when they end", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-ranges-leases-"));
  const db = await Concord.open({ dataDir, tickMs: 10, autoSplit: false });
  try {
    const ranges = db.ranges!;
    await db.put("k/a", "left");
    await waitFor(async () => (await ranges.catalog.snapshot()).version === 1, "catalog initialized");
    const { right } = await ranges.split(bytes("k/m"));

    const revoked = await db.leaseGrant(60);
    await db.put("k/b", "left", { lease: revoked.id });
    await db.put("k/x", "right", { lease: revoked.id });
    assert.equal(text((await db.get("k/x"))?.value), "right");
    const timeToLive = await db.leaseTimeToLive(revoked.id, { keys: true });
    assert.deepEqual(timeToLive?.keys.map(text), ["k/b", "k/x"], "the keys of both ranges");
    assert.ok(
      db.host
        .replica(right.groupId)!
        .leases()
        .some((lease) => lease.id === revoked.id),
      "mirrored",
    );
    await db.leaseRevoke(revoked.id);
    assert.equal(await db.get("k/b"), null);
    assert.equal(await db.get("k/x"), null);

    const expiring = await db.leaseGrant(1);
    await db.put("k/y", "right", { lease: expiring.id });
    assert.equal(text((await db.get("k/y"))?.value), "right");
    await waitFor(
      async () => (await db.get("k/y")) === null,
      "the expired lease's key in the right range deleted",
    );
    assert.equal(db.host.replica(right.groupId)!.leases().length, 0);
  } finally {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
