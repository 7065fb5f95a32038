// The data dir's identity: inspection (never writes), cluster.json checks on later starts,
// founding a fresh dir and rolling that back.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  CLUSTER_FILE,
  foundDataDir,
  inspectDataDir,
  parseClusterRecord,
  recordOf,
  type DataDirState,
} from "../../src/cli/data-dir.js";
import { RuntimeError } from "../../src/cli/errors.js";
import { configFor, snapshotTree, withTempDir } from "./helpers.js";

function fresh(state: DataDirState): DataDirState & { kind: "fresh" } {
  if (state.kind !== "fresh") throw new Error(`expected a fresh data dir, got ${state.kind}`);
  return state;
}

function assertRefused(dir: string, flags: Parameters<typeof configFor>[0], message: RegExp): void {
  const before = snapshotTree(dir);
  assert.throws(
    () => inspectDataDir(configFor(flags, dir)),
    (error: unknown) => error instanceof RuntimeError && message.test(error.message),
  );
  assert.deepEqual(snapshotTree(dir), before, "a refused start must change nothing on disk");
}

test("an absent or empty data dir is fresh", () => {
  withTempDir((root) => {
    assert.deepEqual(inspectDataDir(configFor({ dataDir: "absent" }, root)), {
      kind: "fresh",
      exists: false,
    });
    mkdirSync(join(root, "empty"));
    assert.deepEqual(inspectDataDir(configFor({ dataDir: "empty" }, root)), { kind: "fresh", exists: true });
    assert.ok(!existsSync(join(root, "absent")), "inspection must not create the dir");
  });
});

test("founding writes cluster.json, after which the same flags find the member", () => {
  withTempDir((root) => {
    const config = configFor({ dataDir: "a/b/member" }, root);
    foundDataDir(config, fresh(inspectDataDir(config)));
    const file = join(root, "a/b/member", CLUSTER_FILE);
    assert.deepEqual(parseClusterRecord(readFileSync(file, "utf8"), file), recordOf(config));
    const again = inspectDataDir(config);
    assert.equal(again.kind, "existing");
    assert.ok(!existsSync(`${file}.tmp`), "no temporary file is left behind");
  });
});

test("rolling back a first start removes every directory it created, and nothing more", () => {
  withTempDir((root) => {
    const config = configFor({ dataDir: "a/b/member" }, root);
    const rollback = foundDataDir(config, fresh(inspectDataDir(config)));
    writeFileSync(join(config.dataDir, "store-file"), "x");
    rollback();
    assert.deepEqual([...snapshotTree(root).keys()], ["."]);
  });
});

test("rolling back a first start in a dir that was empty empties it again and keeps the dir", () => {
  withTempDir((root) => {
    mkdirSync(join(root, "member"));
    const config = configFor({ dataDir: "member" }, root);
    const rollback = foundDataDir(config, fresh(inspectDataDir(config)));
    mkdirSync(join(config.dataDir, "raft"));
    rollback();
    assert.deepEqual([...snapshotTree(root).keys()], [".", "member"]);
  });
});

test("a data dir of another cluster token is refused and left as it is", () => {
  withTempDir((root) => {
    const config = configFor({ dataDir: "d" }, root);
    foundDataDir(config, fresh(inspectDataDir(config)));
    assertRefused(
      root,
      { dataDir: "d", initialClusterToken: "other" },
      /belongs to another cluster.*"concord-cluster", not "other"/,
    );
  });
});

test("a data dir of another member is refused", () => {
  withTempDir((root) => {
    const cluster = "n1=http://127.0.0.1:1001,n2=http://127.0.0.1:1002";
    const n1 = configFor(
      {
        dataDir: "d",
        name: "n1",
        initialCluster: cluster,
        initialAdvertisePeerUrls: "http://127.0.0.1:1001",
      },
      root,
    );
    foundDataDir(n1, fresh(inspectDataDir(n1)));
    assertRefused(
      root,
      {
        dataDir: "d",
        name: "n2",
        initialCluster: cluster,
        initialAdvertisePeerUrls: "http://127.0.0.1:1002",
      },
      /belongs to member "n1".*not "n2"/,
    );
  });
});

test("a data dir founded with other members is refused", () => {
  withTempDir((root) => {
    const config = configFor({ dataDir: "d" }, root);
    foundDataDir(config, fresh(inspectDataDir(config)));
    assertRefused(
      root,
      { dataDir: "d", initialCluster: "default=http://localhost:2380,n2=http://127.0.0.1:2" },
      /belongs to another cluster: it was founded with --initial-cluster default=http:\/\/localhost:2380, not/,
    );
  });
});

test("a joined member's dir is not held to --initial-cluster, and its record says it joined", () => {
  withTempDir((root) => {
    const flags = {
      dataDir: "d",
      name: "n4",
      initialCluster: "n1=http://127.0.0.1:1001,n4=http://127.0.0.1:1004",
      initialAdvertisePeerUrls: "http://127.0.0.1:1004",
      initialClusterState: "existing",
    };
    const config = configFor(flags, root);
    foundDataDir(config, fresh(inspectDataDir(config)));
    const state = inspectDataDir(configFor({ ...flags, initialCluster: "n4=http://127.0.0.1:1004" }, root));
    assert.equal(state.kind === "existing" && state.record.joined, true);
    const restartedAsNew = inspectDataDir(configFor({ ...flags, initialClusterState: "new" }, root));
    assert.equal(restartedAsNew.kind === "existing" && restartedAsNew.record.memberId, config.memberId);
  });
});

test("a record whose joined field is not a boolean is damaged", () => {
  assert.throws(
    () => parseClusterRecord(JSON.stringify({ ...recordOf(configFor({})), joined: "yes" }), "cluster.json"),
    /not a Concord cluster file/,
  );
});

test("a member's peer URL may change between starts", () => {
  withTempDir((root) => {
    const config = configFor({ dataDir: "d" }, root);
    foundDataDir(config, fresh(inspectDataDir(config)));
    const moved = configFor({ dataDir: "d", initialAdvertisePeerUrls: "http://127.0.0.1:3000" }, root);
    assert.equal(inspectDataDir(moved).kind, "existing");
  });
});

test("a non-empty dir without cluster.json is refused", () => {
  withTempDir((root) => {
    mkdirSync(join(root, "d"));
    writeFileSync(join(root, "d", "data.mdb"), "something else's");
    assertRefused(root, { dataDir: "d" }, /not empty but has no cluster\.json/);
  });
});

test("a data dir path that is a file is refused", () => {
  withTempDir((root) => {
    writeFileSync(join(root, "d"), "a file");
    assertRefused(root, { dataDir: "d" }, /exists but is not a directory/);
  });
});

test("a data dir below a file cannot be read", () => {
  withTempDir((root) => {
    writeFileSync(join(root, "f"), "a file");
    assertRefused(root, { dataDir: "f/d" }, /cannot read data dir/);
  });
});

test("a damaged cluster.json is refused", () => {
  withTempDir((root) => {
    mkdirSync(join(root, "d"));
    writeFileSync(join(root, "d", CLUSTER_FILE), "{ not json");
    assertRefused(root, { dataDir: "d" }, /is not valid JSON/);
    writeFileSync(join(root, "d", CLUSTER_FILE), JSON.stringify({ format: 1, name: "default" }));
    assertRefused(root, { dataDir: "d" }, /is not a Concord cluster file/);
    writeFileSync(join(root, "d", CLUSTER_FILE), JSON.stringify({ ...recordOf(configFor({})), format: 2 }));
    assertRefused(root, { dataDir: "d" }, /is not a Concord cluster file/);
  });
});

test("a cluster.json that cannot be read is refused", () => {
  withTempDir((root) => {
    mkdirSync(join(root, "d", CLUSTER_FILE), { recursive: true });
    assertRefused(root, { dataDir: "d" }, /cannot read .*cluster\.json/);
  });
});

test("founding under a file fails with a runtime error and leaves nothing", () => {
  withTempDir((root) => {
    writeFileSync(join(root, "f"), "a file");
    const config = configFor({ dataDir: "f/d" }, root);
    const before = snapshotTree(root);
    assert.throws(() => foundDataDir(config, { kind: "fresh", exists: false }), /cannot create data dir/);
    assert.deepEqual(snapshotTree(root), before);
  });
});
