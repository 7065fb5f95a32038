// Merges through NodeRanges in a 3-member cluster of Concord.open members over loopback TCP:
// a range split off and written to merges back into its left neighbour through one member;
// every member routes the merged keys, serves their history, keeps a watch opened before the
// merge going, and destroys its replica of the merged range; refusals change nothing; a merge
// survives a restart of a member.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EmbeddedConcord } from "../../src/api/index.js";
import { MergeRefusedError } from "../../src/placement/split/errors.js";
import { openLoopbackCluster, text, waitFor } from "../api/helpers.js";

const encode = (value: string) => new TextEncoder().encode(value);

test("a range merged back through one member is routed, served and destroyed by all three", async () => {
  const members = new Map<number, EmbeddedConcord>();
  const close = await openLoopbackCluster([1, 2, 3], "ranges-merge", members);
  try {
    const [one, two, three] = [members.get(1)!, members.get(2)!, members.get(3)!];
    for (let i = 0; i < 20; i++) await one.put(`m/${String(i).padStart(2, "0")}`, `v${i}`);
    await waitFor(async () => (await one.ranges!.catalog.snapshot()).version >= 1, "catalog initialized");
    await two.ranges!.split(encode("m/10"));
    const { right } = await two.ranges!.split(encode("m/15"));
    await three.put("m/16", "before-merge");
    const revisionBefore = (await three.range("m/16")).kvs[0]!.modRevision;
    for (const member of [one, two, three]) {
      await waitFor(
        () => member.host.replica(right.groupId) !== undefined,
        `member ${member.nodeId} hosts it`,
      );
    }

    const watch = await three.watch("m/", { prefix: true });
    const seen: string[] = [];
    const watched = (async () => {
      for await (const response of watch) {
        for (const event of response.events) seen.push(`${text(event.kv.key)}=${text(event.kv.value)}`);
        if (seen.length >= 2) return;
      }
    })();

    await assert.rejects(one.ranges!.merge(1), (error: unknown) => {
      assert.ok(error instanceof MergeRefusedError);
      assert.equal(error.reason, "first-route");
      return true;
    });
    await assert.rejects(one.ranges!.merge(9_999), /unknown-route/);
    const versionBefore = (await one.ranges!.catalog.snapshot()).version;
    assert.equal((await one.ranges!.catalog.snapshot()).routes.length, 3);
    assert.equal(versionBefore, (await one.ranges!.catalog.snapshot()).version);

    const { merged } = await one.ranges!.merge(right.routeId);
    assert.equal(text(merged.start), "m/10");
    assert.equal(merged.end, null);
    for (const member of [one, two, three]) {
      await waitFor(() => member.ranges!.list().length === 2, `member ${member.nodeId} sees two ranges`);
      await waitFor(
        () => member.host.replica(right.groupId) === undefined,
        `member ${member.nodeId} destroyed the merged range's replica`,
      );
      const replica = member.host.replica(merged.groupId)!;
      await waitFor(() => replica.bounds.end === null, `member ${member.nodeId}'s left range grew`);
    }

    await two.put("m/17", "after-merge");
    await one.put("m/11", "left-after-merge");
    await watched;
    watch.cancel();
    assert.deepEqual(seen, ["m/17=after-merge", "m/11=left-after-merge"]);

    for (const member of [one, two, three]) {
      const all = await member.range("m/", { prefix: true });
      assert.equal(all.count, 20);
      const values = new Map(all.kvs.map((kv) => [text(kv.key), text(kv.value)]));
      assert.equal(values.get("m/16"), "before-merge");
      assert.equal(values.get("m/17"), "after-merge");
      assert.equal(values.get("m/05"), "v5");
      const old = await member.range("m/16", { revision: revisionBefore });
      assert.equal(text(old.kvs[0]?.value), "before-merge", "history of a merged key");
    }
  } finally {
    await close();
  }
});
