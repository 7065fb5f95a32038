// etcd's snapshot transfer metrics, fed by the peer transport's outcomes: success and failure
// counts and a duration histogram per peer and direction, and the transfers under way, member
// ids in hex as etcd labels them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import { snapshotTransferMetrics } from "../../../src/api/etcd/metrics.js";

test("each ended transfer counts once, by direction, outcome and peer, and is timed in seconds", async () => {
  const registry = new Registry();
  const ended = snapshotTransferMetrics([registry], () => ({
    sending: new Map([[0x1f, 2]]),
    receiving: new Map(),
  }));
  ended({ peer: 0x1f, direction: "send", succeeded: true, milliseconds: 250 });
  ended({ peer: 0x1f, direction: "send", succeeded: false, milliseconds: 40 });
  ended({ peer: 0x2a, direction: "receive", succeeded: true, milliseconds: 3_000 });
  const text = await registry.metrics();
  const line = (series: string) => {
    const found = text.split("\n").find((l) => l.startsWith(`${series} `));
    assert.ok(found !== undefined, `no ${series} in:\n${text}`);
    return Number(found.slice(series.length + 1));
  };
  assert.equal(line('etcd_network_snapshot_send_success{To="1f"}'), 1);
  assert.equal(line('etcd_network_snapshot_send_failures{To="1f"}'), 1);
  assert.equal(line('etcd_network_snapshot_send_total_duration_seconds_count{To="1f"}'), 2);
  assert.equal(line('etcd_network_snapshot_send_total_duration_seconds_sum{To="1f"}'), 0.29);
  assert.equal(line('etcd_network_snapshot_send_total_duration_seconds_bucket{le="0.1",To="1f"}'), 1);
  assert.equal(line('etcd_network_snapshot_receive_success{From="2a"}'), 1);
  assert.equal(line('etcd_network_snapshot_receive_total_duration_seconds_bucket{le="3.2",From="2a"}'), 1);
  assert.equal(line('etcd_network_snapshot_receive_total_duration_seconds_bucket{le="1.6",From="2a"}'), 0);
  assert.ok(!text.includes('etcd_network_snapshot_receive_failures{From="2a"}'), "no failure counted");
  assert.equal(line('etcd_network_snapshot_send_inflights_total{To="1f"}'), 2);
  assert.ok(!text.includes("etcd_network_snapshot_receive_inflights_total{"), "none under way: no series");
});
