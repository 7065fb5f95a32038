// Concord.open without cluster options: a one-node durable store in this process, in a
// temporary directory. Data written before close is there after reopening.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Concord, ClientClosedError, KvError, KvErrorCode } from "../../src/api/index.js";
import { LmdbStorageEngine } from "../../src/storage/lmdb/engine.js";
import { text } from "./helpers.js";

test("a new data dir keeps its Raft log in raft-log/; one holding an lmdb raft/ keeps using that", async () => {
  for (const earlier of [false, true]) {
    const dataDir = mkdtempSync(join(tmpdir(), "concord-api-"));
    try {
      // A data dir an earlier version made: its Raft log is an lmdb environment in raft/.
      if (earlier) await (await LmdbStorageEngine.open({ path: join(dataDir, "raft") })).close();
      const db = await Concord.open({ dataDir, tickMs: 10 });
      await db.put("alpha", "1");
      await db.close();
      const reopened = await Concord.open({ dataDir, tickMs: 10 });
      assert.equal(text((await reopened.get("alpha"))?.value), "1");
      await reopened.close();
      assert.equal(existsSync(join(dataDir, "raft-log")), !earlier);
      assert.equal(existsSync(join(dataDir, "raft")), earlier);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
});

test("embedded open, put, get, close and reopen keeps the data", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-api-"));
  try {
    const db = await Concord.open({ dataDir, tickMs: 10 });
    const first = await db.put("alpha", "1");
    await db.put("beta", "2");
    await db.put("alpha", "3");
    assert.equal(text((await db.get("alpha"))?.value), "3");
    assert.equal((await db.get("alpha"))?.version, 2n);
    assert.equal(await db.get("missing"), null);
    const deleted = await db.delete("beta", { prevKv: true });
    assert.equal(deleted.deleted, 1);
    assert.equal(text(deleted.prevKvs[0]?.value), "2");
    const old = await db.get("alpha", { revision: first.revision });
    assert.equal(text(old?.value), "1");
    await db.close();
    await assert.rejects(db.get("alpha"), ClientClosedError);

    const reopened = await Concord.open({ dataDir, tickMs: 10 });
    try {
      assert.equal(text((await reopened.get("alpha"))?.value), "3");
      assert.equal(await reopened.get("beta"), null);
      const status = await reopened.status();
      assert.equal(status.nodeId, 1);
      assert.deepEqual(status.voters, [1]);
      const after = await reopened.put("gamma", "4");
      assert.ok(after.revision > first.revision);
    } finally {
      await reopened.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("embedded txn, prefix range, leases and errors", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-api-"));
  const db = await Concord.open({ dataDir, tickMs: 10 });
  try {
    await db.put("app/a", "1");
    await db.put("app/b", "2");
    await db.put("other", "3");
    const listed = await db.range("app/", { prefix: true });
    assert.deepEqual(
      listed.kvs.map((kv) => text(kv.key)),
      ["app/a", "app/b"],
    );

    const swapped = await db.txn({
      compares: [Concord.compareValue("app/a", "=", "1")],
      success: [Concord.put("app/a", "10"), Concord.get("app/b")],
      failure: [Concord.put("app/a", "never")],
    });
    assert.equal(swapped.succeeded, true);
    assert.equal(text((await db.get("app/a"))?.value), "10");
    const again = await db.txn({
      compares: [Concord.compareValue("app/a", "=", "1")],
      success: [Concord.put("app/a", "never")],
    });
    assert.equal(again.succeeded, false);

    const lease = await db.leaseGrant(60);
    assert.equal(await db.leaseKeepAlive(lease.id), 60);
    assert.deepEqual(
      (await db.leases()).map((l) => l.id),
      [lease.id],
    );
    await db.put("leased", "x", { lease: lease.id });
    await db.leaseRevoke(lease.id);
    assert.equal(await db.get("leased"), null);
    await assert.rejects(db.put("leased", "y", { lease: lease.id }), (error: unknown) => {
      return error instanceof KvError && error.code === KvErrorCode.LeaseNotFound;
    });
    await assert.rejects(db.put("", "empty key"), (error: unknown) => {
      return error instanceof KvError && error.code === KvErrorCode.EmptyKey;
    });
  } finally {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("an embedded watch reports puts and deletes, and ends when cancelled", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-api-"));
  const db = await Concord.open({ dataDir, tickMs: 10 });
  try {
    const watch = await db.watch("config/", { prefix: true });
    const put = await db.put("config/a", "1");
    await db.put("elsewhere", "not watched");
    const deleted = await db.delete("config/a");
    const events: string[] = [];
    for await (const response of watch) {
      for (const event of response.events)
        events.push(`${event.type} ${text(event.kv.key)} @${event.kv.modRevision}`);
      if (events.length >= 2) watch.cancel();
    }
    assert.deepEqual(events, [`put config/a @${put.revision}`, `delete config/a @${deleted.revision}`]);
  } finally {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("linearizable reads are served under either read mode; an unknown mode opens nothing", async () => {
  const root = mkdtempSync(join(tmpdir(), "concord-api-"));
  try {
    for (const linearizableReads of ["lease", "read-index"] as const) {
      const db = await Concord.open({
        dataDir: join(root, linearizableReads),
        tickMs: 10,
        linearizableReads,
      });
      try {
        await db.put("k", linearizableReads);
        assert.equal(text((await db.get("k"))?.value), linearizableReads);
      } finally {
        await db.close();
      }
    }
    const dataDir = join(root, "refused");
    await assert.rejects(
      Concord.open({ dataDir, linearizableReads: "stale" as never }),
      /linearizableReads must be "lease" or "read-index", got "stale"/,
    );
    assert.equal(existsSync(dataDir), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("metrics ports without a client port, or at a bad address, are refused before anything opens", async () => {
  const root = mkdtempSync(join(tmpdir(), "concord-api-"));
  try {
    const dataDir = join(root, "refused");
    await assert.rejects(
      Concord.open({ dataDir, listenMetrics: ["127.0.0.1:0"] }),
      /listenMetrics needs listenClient/,
    );
    await assert.rejects(
      Concord.open({ dataDir, listenClient: "127.0.0.1:0", listenMetrics: ["127.0.0.1"] }),
      /"127.0.0.1" is not a host:port address/,
    );
    assert.equal(existsSync(dataDir), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("auto-compaction keeps the retention's history and compacts what is older, by itself", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-api-"));
  try {
    const db = await Concord.open({ dataDir, tickMs: 10, autoCompactionRetentionMs: 1_000 });
    try {
      const first = await db.put("alpha", "1");
      await db.put("alpha", "2");
      const compactedAway = async (): Promise<boolean> => {
        try {
          await db.get("alpha", { revision: first.revision });
          return false;
        } catch (error) {
          if (error instanceof KvError && error.code === KvErrorCode.Compacted) return true;
          throw error;
        }
      };
      // Bounded by count and time: the compactor runs every second; 30 s is plenty on a loaded machine.
      const deadline = Date.now() + 30_000;
      while (!(await compactedAway())) {
        assert.ok(Date.now() < deadline, "the first write's revision was not compacted within 30 s");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(text((await db.get("alpha"))?.value), "2");
    } finally {
      await db.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
