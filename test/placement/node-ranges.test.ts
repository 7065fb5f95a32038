// NodeRanges end to end in Concord.open: a manual split of a one-node store, then every kind
// of request over both ranges through the handle and through the etcd client port, and the
// layout surviving a restart.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Etcd3 } from "etcd3";
import { Concord } from "../../src/api/index.js";
import { text, waitFor } from "../api/helpers.js";

const LETTERS = "abcdefghijklmnopqrstuvwxyz".split("");

test("a split store answers puts, gets, scans, deletes and watches across its ranges", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-ranges-"));
  try {
    const db = await Concord.open({ dataDir, tickMs: 10, listenClient: "127.0.0.1:0", autoSplit: false });
    try {
      for (const letter of LETTERS) await db.put(`k/${letter}`, letter);
      const ranges = db.ranges;
      assert.ok(ranges !== null);
      const { left, right } = await ranges.split(new TextEncoder().encode("k/m"));
      assert.equal(text(left.end ?? new Uint8Array()), "k/m");
      assert.equal(text(right.start), "k/m");
      assert.notEqual(left.groupId, right.groupId);
      assert.equal(ranges.list().length, 2);

      for (const letter of LETTERS) assert.equal(text((await db.get(`k/${letter}`))?.value), letter);
      const all = await db.range("k/", { prefix: true });
      assert.deepEqual(
        all.kvs.map((kv) => text(kv.value)),
        LETTERS,
      );
      assert.equal(all.count, 26);
      const limited = await db.range("k/", { prefix: true, limit: 14 });
      assert.equal(limited.kvs.length, 14);
      assert.equal(limited.more, true);
      assert.equal(text(limited.kvs[13]!.value), "n");

      const watch = await db.watch("k/", { prefix: true });
      await db.put("k/a", "A");
      await db.put("k/z", "Z");
      const seen: string[] = [];
      for await (const response of watch) {
        for (const event of response.events) seen.push(text(event.kv.value) ?? "");
        if (seen.length >= 2) break;
      }
      watch.cancel();
      assert.deepEqual(seen, ["A", "Z"]);

      const deleted = await db.delete("k/", { prefix: true });
      assert.equal(deleted.deleted, 26);
      assert.equal((await db.range("k/", { prefix: true })).count, 0);

      const address = db.clientAddress()!;
      const client = new Etcd3({ hosts: `http://${address.host}:${address.port}` });
      try {
        await client.put("k/b").value("left");
        await client.put("k/x").value("right");
        assert.deepEqual(await client.getAll().prefix("k/").strings(), { "k/b": "left", "k/x": "right" });
        await assert.rejects(
          client.if("k/b", "Value", "==", "left").then(client.put("k/y").value("no")).commit(),
          /cross-range transactions not yet supported/,
        );
        assert.equal(await client.get("k/y").string(), null);
        const watcher = await client.watch().prefix("k/").create();
        const events: string[] = [];
        const both = new Promise<void>((resolve) =>
          watcher.on("put", (kv) => {
            events.push(kv.value.toString());
            if (events.length === 2) resolve();
          }),
        );
        await client.put("k/c").value("left-watched");
        await client.put("k/w").value("right-watched");
        await both;
        await watcher.cancel();
        assert.deepEqual(events, ["left-watched", "right-watched"]);
      } finally {
        client.close();
      }
    } finally {
      await db.close();
    }
    const reopened = await Concord.open({ dataDir, tickMs: 10, autoSplit: false });
    try {
      await waitFor(() => reopened.ranges?.list().length === 2, "the split layout after a restart");
      assert.equal(text((await reopened.get("k/x"))?.value), "right");
      assert.equal(text((await reopened.get("k/b"))?.value), "left");
    } finally {
      await reopened.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
