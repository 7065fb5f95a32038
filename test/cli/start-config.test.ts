// `concord start` flag validation: etcd's defaults, and every rule that makes a command line
// a usage error.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/cli/errors.js";
import { etcdClusterId } from "../../src/api/etcd/context.js";
import { joinedMemberIdOf } from "../../src/api/etcd/member-ids.js";
import { memberIdOf } from "../../src/cli/member-id.js";
import { configFor } from "./helpers.js";

function assertUsage(flags: Parameters<typeof configFor>[0], message: RegExp): void {
  assert.throws(
    () => configFor(flags),
    (error: unknown) => error instanceof UsageError && message.test(error.message),
  );
}

test("the defaults are etcd's: member default, ports 2379/2380 on 127.0.0.1, data in default.concord", () => {
  const config = configFor({}, "/srv");
  assert.equal(config.name, "default");
  assert.equal(config.dataDir, "/srv/default.concord");
  assert.deepEqual(config.listenClient, { host: "127.0.0.1", port: 2379 });
  assert.deepEqual(config.listenPeer, { host: "127.0.0.1", port: 2380 });
  assert.deepEqual(config.advertiseClientUrls, ["http://localhost:2379"]);
  assert.equal(config.advertisePeerUrl, "http://localhost:2380");
  assert.equal(config.clusterState, "new");
  assert.equal(config.clusterToken, "concord-cluster");
  assert.deepEqual(
    config.members.map((m) => [m.name, m.peerUrl.url, m.id]),
    [["default", "http://localhost:2380", memberIdOf("default", "concord-cluster")]],
  );
  assert.equal(config.memberId, config.members[0]?.id);
});

test("the data dir defaults to <name>.concord and resolves against the working directory", () => {
  assert.equal(configFor({ name: "n1" }, "/srv").dataDir, "/srv/n1.concord");
  assert.equal(configFor({ dataDir: "d/x" }, "/srv").dataDir, "/srv/d/x");
  assert.equal(configFor({ dataDir: "/abs" }, "/srv").dataDir, "/abs");
});

test("without --initial-cluster the member founds a cluster of itself at its advertised peer URL", () => {
  const config = configFor({ name: "solo", initialAdvertisePeerUrls: "http://127.0.0.1:7000" });
  assert.deepEqual(
    config.members.map((m) => `${m.name}=${m.peerUrl.url}`),
    ["solo=http://127.0.0.1:7000"],
  );
});

test("a three-member cluster: every member derives the same ids, peers and cluster id", () => {
  const cluster = "n1=http://127.0.0.1:1001,n2=http://127.0.0.1:1002,n3=http://127.0.0.1:1003";
  const configs = ["n1", "n2", "n3"].map((name, i) =>
    configFor({
      name,
      initialCluster: cluster,
      initialClusterToken: "tok",
      initialAdvertisePeerUrls: `http://127.0.0.1:${1001 + i}`,
      listenPeerUrls: `http://127.0.0.1:${1001 + i}`,
    }),
  );
  const [first, ...rest] = configs;
  assert.ok(first !== undefined);
  for (const other of rest) {
    assert.equal(other.clusterId, first.clusterId);
    assert.deepEqual(other.members, first.members);
  }
  assert.equal(new Set(configs.map((c) => c.memberId)).size, 3);
  assert.deepEqual(
    configs.map((c) => c.memberId),
    ["n1", "n2", "n3"].map((name) => memberIdOf(name, "tok")),
  );
});

test("another token gives other member ids and another cluster id", () => {
  const a = configFor({ initialClusterToken: "a" });
  const b = configFor({ initialClusterToken: "b" });
  assert.notEqual(a.memberId, b.memberId);
  assert.notEqual(a.clusterId, b.clusterId);
});

test("the advertised peer URL may say localhost where --initial-cluster says 127.0.0.1", () => {
  const config = configFor({ initialCluster: "default=http://127.0.0.1:2380" });
  assert.equal(config.members[0]?.peerUrl.url, "http://127.0.0.1:2380");
});

test("a name missing from --initial-cluster is a usage error", () => {
  assertUsage(
    { name: "n9", initialCluster: "n1=http://127.0.0.1:1,n2=http://127.0.0.1:2" },
    /"n9" is not in it/,
  );
});

test("a duplicate member name is a usage error", () => {
  assertUsage(
    { name: "n1", initialCluster: "n1=http://localhost:2380,n1=http://127.0.0.1:2" },
    /"n1" appears twice/,
  );
});

test("malformed --initial-cluster entries are usage errors", () => {
  assertUsage({ initialCluster: "default" }, /is not name=http/);
  assertUsage({ initialCluster: "=http://127.0.0.1:2380" }, /is not name=http/);
  assertUsage({ initialCluster: "default=127.0.0.1:2380" }, /--initial-cluster.*not a URL/);
  assertUsage({ initialCluster: "default=http://127.0.0.1:0" }, /needs a real port/);
  assertUsage({ initialCluster: " , " }, /expected at least one/);
});

test("this member's --initial-cluster entry must match --initial-advertise-peer-urls", () => {
  assertUsage({ initialCluster: "default=http://127.0.0.1:9999" }, /they must match/);
});

test("malformed URL flags are usage errors naming the flag", () => {
  assertUsage({ listenClientUrls: "http://127.0.0.1" }, /--listen-client-urls.*no port/);
  assertUsage({ listenPeerUrls: "tcp://127.0.0.1:1" }, /--listen-peer-urls/);
  assertUsage({ advertiseClientUrls: "http://127.0.0.1:0" }, /--advertise-client-urls.*real port/);
  assertUsage({ initialAdvertisePeerUrls: "bogus" }, /--initial-advertise-peer-urls/);
  assertUsage({ listenClientUrls: "http://example.com:2379" }, /--listen-client-urls.*IP address/);
});

test("--listen-metrics-urls: none by default, else one or more IP addresses to bind; bad ones are usage errors", () => {
  assert.deepEqual(configFor({}).listenMetrics, []);
  assert.deepEqual(
    configFor({ listenMetricsUrls: "http://localhost:2381,http://127.0.0.2:0" }).listenMetrics,
    [
      { host: "127.0.0.1", port: 2381 },
      { host: "127.0.0.2", port: 0 },
    ],
  );
  assertUsage({ listenMetricsUrls: "http://127.0.0.1" }, /--listen-metrics-urls.*no port/);
  assertUsage({ listenMetricsUrls: "http://example.com:2381" }, /--listen-metrics-urls.*IP address/);
  assertUsage({ listenMetricsUrls: "https://127.0.0.1:2381" }, /--listen-metrics-urls/);
  assertUsage({ listenMetricsUrls: " , " }, /--listen-metrics-urls: expected at least one URL/);
});

test("listeners take one URL each; advertised client URLs may be several", () => {
  assertUsage({ listenClientUrls: "http://127.0.0.1:1,http://127.0.0.1:2" }, /exactly one URL/);
  assertUsage({ listenPeerUrls: "http://127.0.0.1:1,http://127.0.0.1:2" }, /exactly one URL/);
  assert.deepEqual(configFor({ advertiseClientUrls: "http://a:1,http://b:2" }).advertiseClientUrls, [
    "http://a:1",
    "http://b:2",
  ]);
});

test("non-loopback binds are allowed when asked for explicitly", () => {
  const config = configFor({
    listenClientUrls: "http://0.0.0.0:2379",
    listenPeerUrls: "http://10.1.2.3:2380",
  });
  assert.deepEqual(config.listenClient, { host: "0.0.0.0", port: 2379 });
  assert.deepEqual(config.listenPeer, { host: "10.1.2.3", port: 2380 });
});

test("a joining member (existing) takes the id MemberAdd derives from its peer URL; the others keep theirs", () => {
  const config = configFor({
    name: "n4",
    initialCluster: "n1=http://127.0.0.1:1001,n4=http://127.0.0.1:1004",
    initialAdvertisePeerUrls: "http://127.0.0.1:1004",
    initialClusterState: "existing",
    initialClusterToken: "tok",
  });
  assert.equal(config.memberId, joinedMemberIdOf(etcdClusterId(config.clusterId), ["http://127.0.0.1:1004"]));
  assert.deepEqual(
    config.members.map((m) => [m.name, m.id]),
    [
      ["n1", memberIdOf("n1", "tok")],
      ["n4", config.memberId],
    ],
  );
  assert.equal(config.clusterId, configFor({ initialClusterToken: "tok" }).clusterId);
});

test("--initial-cluster-state is new or existing", () => {
  assert.equal(configFor({ initialClusterState: "existing" }).clusterState, "existing");
  assertUsage({ initialClusterState: "old" }, /expected "new" or "existing"/);
});

test("empty names, tokens and data dirs, and names with = or , are usage errors", () => {
  assertUsage({ name: "" }, /--name must not be empty/);
  assertUsage({ name: "a=b" }, /must not contain/);
  assertUsage({ name: "a,b" }, /must not contain/);
  assertUsage({ initialClusterToken: " " }, /--initial-cluster-token must not be empty/);
  assertUsage({ dataDir: "" }, /--data-dir must not be empty/);
});
