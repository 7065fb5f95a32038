// `GET /metrics` on a one-member Concord's client port (src/api/etcd/metrics.ts): Prometheus's
// text format, parsed line by line; etcd's server metrics of the member; the applied and
// committed totals and gRPC's call counts growing with the puts made through the `etcd3`
// client; the watch stream and watcher gauges; a refused call counted by its code; a manual
// split and merge counted by cause; and bad input (unknown paths, an unserved gRPC method)
// answered as before without adding a series.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus, type Client, type ServiceError } from "@grpc/grpc-js";
import type { Etcd3 } from "etcd3";
import {
  Auth,
  AuthenticateRequestSchema,
  KV,
  RangeRequestSchema,
  type RangeResponse,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { EtcdCluster, rawClient } from "./harness.js";
import { waitFor } from "../helpers.js";

const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/y;
const VALUE = /^(?:[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|\.\d+)|NaN|[-+]Inf)$/i;

/** Samples by `name{label="value",...}` (labels sorted); fails on any line the format does not allow. */
function parseExposition(body: string): Map<string, number> {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const [i, line] of body.split("\n").entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === "" || line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [name, type, ...rest] = line.slice("# TYPE ".length).split(" ");
      assert.ok(name !== undefined && new RegExp(`^${NAME}$`).test(name), where);
      assert.ok(type !== undefined && TYPES.has(type) && rest.length === 0, where);
      assert.ok(!types.has(name), `${where}: a second TYPE`);
      types.set(name, type);
      continue;
    }
    assert.ok(!line.startsWith("#"), `${where}: an unknown comment`);
    const match = SAMPLE.exec(line);
    assert.ok(match !== null, where);
    const [, name, labelText = "", value] = match as unknown as [string, string, string | undefined, string];
    assert.match(value, VALUE, where);
    const labels: string[] = [];
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < labelText.length) {
      const label = LABEL.exec(labelText);
      assert.ok(label !== null, `${where}: bad labels`);
      labels.push(`${label[1]}="${label[2]}"`);
    }
    const family = [name, name.replace(/_(bucket|sum|count)$/, "")].find((n) => types.has(n));
    assert.ok(family !== undefined, `${where}: a sample without a TYPE`);
    if (family !== name) assert.ok(["histogram", "summary"].includes(types.get(family)!), where);
    const key = `${name}{${labels.sort().join(",")}}`;
    assert.ok(!samples.has(key), `${where}: a second sample of ${key}`);
    samples.set(key, Number(value));
  }
  return samples;
}

let cluster: EtcdCluster;
let etcd: Etcd3;
let kv: Client;
let auth: Client;

before(async () => {
  cluster = await EtcdCluster.start(1);
  etcd = cluster.client(1);
  const endpoint = cluster.endpoint(1);
  kv = rawClient(KV, endpoint);
  auth = rawClient(Auth, endpoint);
});

after(async () => {
  kv.close();
  auth.close();
  await cluster.close();
});

async function get(path: string, endpoint = cluster.endpoint(1)): Promise<Response> {
  return fetch(`http://${endpoint}${path}`);
}

async function scrape(endpoint?: string): Promise<Map<string, number>> {
  const response = await get("/metrics", endpoint);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(await response.text());
}

/** The value of sample `key` (`name{labels}`, labels sorted); fails when it is absent. */
function sample(samples: Map<string, number>, key: string): number {
  const value = samples.get(key);
  assert.ok(value !== undefined, `no sample ${key} in ${[...samples.keys()].join(" ")}`);
  return value;
}

/**
 * `value` (of `what`) is at least `floor`. With a message of its own: a failing assert.ok
 * without one has node:assert parse this TypeScript file for its text, which takes minutes.
 */
function atLeast(what: string, value: number, floor: number): void {
  assert.ok(value >= floor, `${what} is ${value}, expected at least ${floor}`);
}

const grpcLabels = (service: string, method: string, code?: string) =>
  [
    ...(code === undefined ? [] : [`grpc_code="${code}"`]),
    `grpc_method="${method}"`,
    `grpc_service="${service}"`,
    `grpc_type="unary"`,
  ].join(",");

/** A unary call of a raw grpc-js client: the response, or the gRPC error. */
function call<O>(client: Client, method: string, request: unknown): Promise<O> {
  return new Promise((resolve, reject) => {
    const fn = (
      client as unknown as Record<string, (r: unknown, cb: (e: ServiceError | null, o: O) => void) => void>
    )[method]!;
    fn.call(client, request, (error, response) => (error === null ? resolve(response) : reject(error)));
  });
}

test("GET /metrics: Prometheus's text format; etcd's server metrics of a member that leads", async () => {
  // An acknowledged put is durable: at least one write-ahead-log append was timed.
  await etcd.put("metrics/first").value("v");
  const samples = await scrape();
  const expected: [string, number][] = [
    ["etcd_server_has_leader{}", 1],
    ["etcd_server_is_leader{}", 1],
    ["concord_ranges{}", 1],
    ["concord_ranges_led{}", 1],
    ['etcd_server_version{server_version="3.4.23"}', 1],
    ['etcd_cluster_version{cluster_version="3.4"}', 1],
    [`etcd_server_id{server_id="${cluster.member(1).nodeId.toString(16)}"}`, 1],
    ["etcd_server_is_learner{}", 0],
    ["etcd_server_slow_apply_total{}", 0],
  ];
  for (const [key, value] of expected) assert.equal(sample(samples, key), value, key);
  const positive = [
    "etcd_server_leader_changes_seen_total{}",
    "etcd_mvcc_db_total_size_in_bytes{}",
    "etcd_disk_wal_fsync_duration_seconds_count{}",
    "concord_wal_bytes_total{}",
    // Node's default metrics, unprefixed.
    "process_cpu_user_seconds_total{}",
    "nodejs_heap_size_used_bytes{}",
  ];
  for (const key of positive) {
    const value = sample(samples, key);
    assert.ok(value > 0, `${key} is ${value}, expected above 0`);
  }
  for (const key of ["etcd_server_proposals_pending{}", "etcd_server_proposals_failed_total{}"]) {
    atLeast(key, sample(samples, key), 0);
  }
  assert.equal(
    sample(samples, 'etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"}'),
    sample(samples, "etcd_disk_wal_fsync_duration_seconds_count{}"),
  );
  // The member's local snapshots are timed, as many as its host counted (each is told to the
  // histogram: test/node/checkpoint-listener.test.ts).
  const snapshots = "etcd_debugging_snap_save_total_duration_seconds_count{}";
  assert.equal(sample(samples, snapshots), cluster.member(1).host.counters.checkpoints);
  assert.equal(
    sample(samples, 'etcd_debugging_snap_save_total_duration_seconds_bucket{le="+Inf"}'),
    sample(samples, snapshots),
  );
});

test("N puts: the applied and committed totals grow by N at least; gRPC counts N Puts handled OK", async () => {
  const before = await scrape();
  const puts = 20;
  for (let i = 0; i < puts; i++) await etcd.put(`metrics/${i}`).value("v");
  const after = await scrape();
  const grew = (key: string) => sample(after, key) - (before.get(key) ?? 0);
  for (const key of ["etcd_server_proposals_applied_total{}", "etcd_server_proposals_committed_total{}"]) {
    atLeast(`the growth of ${key}`, grew(key), puts);
  }
  assert.equal(
    sample(after, "etcd_server_proposals_applied_total{}"),
    sample(after, "etcd_server_proposals_committed_total{}"),
    "a member at rest has applied everything committed",
  );
  assert.equal(grew(`grpc_server_started_total{${grpcLabels("etcdserverpb.KV", "Put")}}`), puts);
  assert.equal(grew(`grpc_server_handled_total{${grpcLabels("etcdserverpb.KV", "Put", "OK")}}`), puts);
});

test("N puts: client gRPC bytes grow by their messages; the state machines' lmdb commits are timed", async () => {
  const before = await scrape();
  const puts = 10;
  const value = "v".repeat(1_000);
  for (let i = 0; i < puts; i++) await etcd.put(`metrics/bytes/${i}`).value(value);
  const received = "etcd_network_client_grpc_received_bytes_total{}";
  const sent = "etcd_network_client_grpc_sent_bytes_total{}";
  let after = await scrape();
  atLeast(
    `the growth of ${received}`,
    sample(after, received) - sample(before, received),
    puts * value.length,
  );
  // Each PutResponse holds at least its header (cluster id, member id, revision, raft term).
  atLeast(`the growth of ${sent}`, sample(after, sent) - sample(before, sent), puts * 10);
  // The puts' batches are committed to lmdb within its commit delay (1 s) after the first.
  const commits = "etcd_disk_backend_commit_duration_seconds_count{}";
  await waitFor(async () => {
    after = await scrape();
    return sample(after, commits) > (before.get(commits) ?? 0);
  }, "an lmdb commit after the puts");
  assert.equal(
    sample(after, 'etcd_disk_backend_commit_duration_seconds_bucket{le="+Inf"}'),
    sample(after, commits),
  );
  assert.equal(
    [...after.keys()].some((key) => /^etcd_network_(peer_|active_peers)/.test(key)),
    false,
    "a one-member cluster has no peers to count",
  );
});

test("three members: bytes sent to and received from each peer and the active peer connections, labelled with member ids in hex", async () => {
  const three = await EtcdCluster.start(3);
  try {
    await three.client(1).put("metrics/peers").value("v");
    const ids = [...three.members.keys()];
    const scraped = new Map<number, Map<string, number>>();
    for (const id of ids) scraped.set(id, await scrape(three.endpoint(id)));
    for (const id of ids) {
      const samples = scraped.get(id)!;
      for (const peer of ids.filter((other) => other !== id)) {
        const label = peer.toString(16);
        atLeast(
          `bytes member ${id} sent to ${peer}`,
          sample(samples, `etcd_network_peer_sent_bytes_total{To="${label}"}`),
          1,
        );
        atLeast(
          `bytes member ${id} received from ${peer}`,
          sample(samples, `etcd_network_peer_received_bytes_total{From="${label}"}`),
          1,
        );
      }
      for (const peer of ids.filter((other) => other !== id)) {
        const labels = `Local="${id.toString(16)}",Remote="${peer.toString(16)}"`;
        assert.equal(sample(samples, `etcd_network_active_peers{${labels}}`), 1, labels);
      }
      assert.equal(
        samples.has(`etcd_network_peer_sent_bytes_total{To="${id.toString(16)}"}`),
        false,
        "not to itself",
      );
    }
    // No snapshot has been sent yet; the transport's transfers feed these (snapshot-metrics.test.ts,
    // test/transport/tcp-snapshot.test.ts).
    const text = await (await get("/metrics", three.endpoint(ids[0]!))).text();
    for (const direction of ["send", "receive"]) {
      const series = `etcd_network_snapshot_${direction}`;
      assert.match(text, new RegExp(`# TYPE ${series}_total_duration_seconds histogram`));
      assert.match(text, new RegExp(`# TYPE ${series}_inflights_total gauge`));
    }
  } finally {
    await three.close();
  }
});

test("watches and watch streams are gauged as they open and close", async () => {
  const streams = "etcd_debugging_mvcc_watch_stream_total{}";
  const watchers = "etcd_debugging_mvcc_watcher_total{}";
  const gauges = async () => {
    const samples = await scrape();
    return [sample(samples, streams), sample(samples, watchers)];
  };
  assert.deepEqual(await gauges(), [0, 0]);
  // The etcd3 client carries all of its watches on one stream.
  const watching = cluster.client(1);
  try {
    const first = await watching.watch().key("metrics/watched/1").create();
    const second = await watching.watch().prefix("metrics/watched/").create();
    assert.deepEqual(await gauges(), [1, 2]);
    await first.cancel();
    await waitFor(async () => (await gauges())[1] === 1, "the cancelled watch to close");
    await second.cancel();
    await waitFor(async () => (await gauges())[1] === 0, "the last watch to close");
  } finally {
    watching.close();
  }
  await waitFor(async () => (await gauges())[0] === 0, "the client's watch stream to close");
});

test("a refused call is counted by its code: a Range at a future revision is OutOfRange", async () => {
  const range = (revision: bigint) =>
    call<RangeResponse>(kv, "Range", create(RangeRequestSchema, { key: Buffer.from("metrics/0"), revision }));
  const now = (await range(0n)).header!.revision;
  await assert.rejects(range(now + (3_600_000n << 16n)), (error: ServiceError) => {
    assert.equal(error.code, GrpcStatus.OUT_OF_RANGE);
    return true;
  });
  const samples = await scrape();
  assert.equal(
    sample(samples, `grpc_server_handled_total{${grpcLabels("etcdserverpb.KV", "Range", "OutOfRange")}}`),
    1,
  );
});

test("a manual split and merge are counted by cause; the other causes show 0", async () => {
  const ranges = cluster.members.get(1)!.ranges!;
  const causes = (name: string, all: readonly string[], samples: Map<string, number>) =>
    Object.fromEntries(all.map((cause) => [cause, sample(samples, `${name}{cause="${cause}"}`)]));
  const splitCauses = ["load", "size", "manual", "recovered"];
  const mergeCauses = ["cold", "manual", "recovered"];
  const before = await scrape();
  const { right } = await ranges.split(Buffer.from("metrics/m"));
  await ranges.merge(right.routeId);
  const after = await scrape();
  const grew = (name: string, all: readonly string[]) => {
    const [was, now] = [causes(name, all, before), causes(name, all, after)];
    return Object.fromEntries(all.map((cause) => [cause, now[cause]! - was[cause]!]));
  };
  assert.deepEqual(grew("concord_range_splits_total", splitCauses), {
    load: 0,
    size: 0,
    manual: 1,
    recovered: 0,
  });
  assert.deepEqual(grew("concord_range_merges_total", mergeCauses), { cold: 0, manual: 1, recovered: 0 });
});

test("unknown paths are 404 and an unserved gRPC method UNIMPLEMENTED, adding no series; /health and /version unchanged", async () => {
  const before = await scrape();
  for (const path of ["/metrics/extra", "/metricsx", "/Metrics"]) {
    const response = await get(path);
    assert.equal(response.status, 404, path);
    assert.deepEqual(await response.json(), { message: `no such endpoint: ${path}` });
  }
  await assert.rejects(
    call(auth, "Authenticate", create(AuthenticateRequestSchema, {})),
    (error: ServiceError) => {
      assert.equal(error.code, GrpcStatus.UNIMPLEMENTED);
      return true;
    },
  );
  const health = await get("/health");
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { health: "true", reason: "" });
  assert.deepEqual(await (await get("/version")).json(), { etcdserver: "3.4.23", etcdcluster: "3.4.0" });
  const after = await scrape();
  const grpcSeries = (samples: Map<string, number>) =>
    [...samples.keys()].filter((key) => key.startsWith("grpc_"));
  assert.deepEqual(grpcSeries(after), grpcSeries(before));
  assert.deepEqual(
    grpcSeries(after).filter((key) => key.includes("etcdserverpb.Auth")),
    [],
  );
});
