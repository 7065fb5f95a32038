// A watch fan-out through the etcd Watch service: many watches on one stream (the etcd3 client
// puts every watcher of a client on one Watch stream) receive the same published events,
// encoded once and shared (src/api/etcd/watch-encoding.ts). Each watch must still get exactly
// its own form of every event: with or without prev_kv, filtered or not, on a key or a prefix.
// Decoded by the etcd3 client's own protobuf code, not ours. Load: 12 writes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Etcd3, IKeyValue, Watcher } from "etcd3";
import { waitFor } from "../helpers.js";
import { EtcdCluster } from "./harness.js";

let cluster: EtcdCluster;
let etcd: Etcd3;

before(async () => {
  cluster = await EtcdCluster.start(1);
  etcd = cluster.client(1);
});

after(async () => {
  await cluster.close();
});

const PUTS = 10;
const KIND_COUNT = 8;

interface Seen {
  readonly watcher: Watcher;
  readonly events: string[];
}

function record(watcher: Watcher): Seen {
  const events: string[] = [];
  const describe = (kind: string, kv: IKeyValue, previous?: IKeyValue) =>
    `${kind} ${kv.key.toString()}=${kv.value.toString()} prev=${previous?.value.toString() ?? "-"}`;
  watcher.on("put", (kv, previous) => events.push(describe("put", kv, previous)));
  watcher.on("delete", (kv, previous) => events.push(describe("delete", kv, previous)));
  return { watcher, events };
}

test("every watch of a fan-out gets its own form of each shared event, in order", async () => {
  const kinds = {
    plain: () => etcd.watch().key("fan/k"),
    withPrevious: () => etcd.watch().key("fan/k").withPreviousKV(),
    prefixWithPrevious: () => etcd.watch().prefix("fan/").withPreviousKV(),
    // etcd3 maps ignore("delete") to etcd's NOPUT filter (and "put" to NODELETE).
    deletesOnly: () => etcd.watch().key("fan/k").ignore("delete"),
  };
  const seen = new Map<keyof typeof kinds, Seen[]>();
  try {
    for (const [kind, builder] of Object.entries(kinds) as [
      keyof typeof kinds,
      () => ReturnType<Etcd3["watch"]>,
    ][]) {
      const list: Seen[] = [];
      seen.set(kind, list);
      for (let i = 0; i < KIND_COUNT; i++) list.push(record(await builder().create()));
    }
    for (let i = 0; i < PUTS; i++) await etcd.put("fan/k").value(`v${i}`);
    await etcd.put("fan/other").value("x");
    await etcd.delete().key("fan/k");

    const puts = Array.from({ length: PUTS }, (_, i) => `put fan/k=v${i}`);
    const expected = {
      plain: [...puts.map((put) => `${put} prev=-`), "delete fan/k= prev=-"],
      withPrevious: [
        ...puts.map((put, i) => `${put} prev=${i === 0 ? "-" : `v${i - 1}`}`),
        `delete fan/k= prev=v${PUTS - 1}`,
      ],
      prefixWithPrevious: [
        ...puts.map((put, i) => `${put} prev=${i === 0 ? "-" : `v${i - 1}`}`),
        "put fan/other=x prev=-",
        `delete fan/k= prev=v${PUTS - 1}`,
      ],
      deletesOnly: ["delete fan/k= prev=-"],
    };
    const all = [...seen.values()].flat();
    const wanted = (kind: keyof typeof kinds) => expected[kind].length;
    await waitFor(
      () => [...seen].every(([kind, list]) => list.every((s) => s.events.length >= wanted(kind))),
      "every watch to see every event",
    );
    for (const [kind, list] of seen) {
      for (const { events } of list) assert.deepEqual(events, expected[kind], kind);
    }
    assert.equal(all.length, 4 * KIND_COUNT);
  } finally {
    await Promise.all([...seen.values()].flat().map(({ watcher }) => watcher.cancel()));
  }
});
