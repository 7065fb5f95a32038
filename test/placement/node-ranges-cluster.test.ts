// NodeRanges in a 3-member cluster of Concord.open members over loopback TCP: a split made
// through one member reaches every member's route table, every member hosts both ranges, and
// writes and scans through any member land in and read from the right range; membership
// changes of range 1 carry over to the new range.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EmbeddedConcord } from "../../src/api/index.js";
import { openLoopbackCluster, text, waitFor } from "../api/helpers.js";

test("a split made on one member is routed by all three", async () => {
  const members = new Map<number, EmbeddedConcord>();
  const close = await openLoopbackCluster([1, 2, 3], "ranges-cluster", members);
  try {
    const [one, two, three] = [members.get(1)!, members.get(2)!, members.get(3)!];
    for (let i = 0; i < 20; i++) await one.put(`c/${String(i).padStart(2, "0")}`, `v${i}`);
    await waitFor(async () => (await one.ranges!.catalog.snapshot()).version >= 1, "catalog initialized");
    const { right } = await two.ranges!.split(new TextEncoder().encode("c/10"));
    for (const member of [one, two, three]) {
      await waitFor(() => member.ranges!.list().length === 2, `member ${member.nodeId} sees two ranges`);
      await waitFor(
        () => member.host.replica(right.groupId) !== undefined,
        `member ${member.nodeId} hosts the new range`,
      );
    }
    await three.put("c/05", "three-left");
    await three.put("c/15", "three-right");
    await two.put("c/19", "two-right");
    for (const member of [one, two, three]) {
      const all = await member.range("c/", { prefix: true });
      assert.equal(all.count, 20);
      const values = new Map(all.kvs.map((kv) => [text(kv.key), text(kv.value)]));
      assert.equal(values.get("c/05"), "three-left");
      assert.equal(values.get("c/15"), "three-right");
      assert.equal(values.get("c/19"), "two-right");
    }
    const leftReplica = one.host.replica(1)!;
    const rightReplica = one.host.replica(right.groupId)!;
    assert.equal(text(leftReplica.bounds.end ?? undefined), "c/10");
    assert.equal(text(rightReplica.bounds.start), "c/10");

    // Membership follows range 1: a member removed there leaves the new range too, and one
    // added back joins it as a learner first, then as a voter.
    const voters = (): readonly number[] => [...rightReplica.status().confState.voters].sort();
    await one.host.replica(1)!.removeNode(3);
    await waitFor(() => voters().join() === "1,2", "node 3 removed from the new range");
    await one.host.replica(1)!.addVoter(3);
    await waitFor(() => voters().join() === "1,2,3", "node 3 a voter of the new range again");
    await three.put("c/18", "after-membership");
    assert.equal(text((await one.get("c/18"))?.value), "after-membership");
  } finally {
    await close();
  }
});
