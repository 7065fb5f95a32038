// The election over a three-member cluster in this process, candidates on remote clients of
// different members: elected across members, the Raft leader's member closes under a held
// leadership, and the election goes on with a higher term while the old token stays fenced.
// Waits are bounded polls; nothing asserts on how long anything took.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Concord, type ConcordDb, type EmbeddedConcord } from "../../src/api/index.js";
import { Election, type Leadership } from "../../src/recipes/index.js";
import { openLoopbackCluster } from "../api/helpers.js";
import { waitFor, within } from "./helpers.js";

const IDS = [1, 2, 3] as const;
const members = new Map<number, EmbeddedConcord>();
const clients: ConcordDb[] = [];

function endpoint(id: number): string {
  const address = members.get(id)?.clientAddress();
  if (address === null || address === undefined) throw new Error(`member ${id} serves no clients`);
  return `${address.host}:${address.port}`;
}

/** A remote client that talks to `first` first and fails over to the others. */
function clientOf(first: number): ConcordDb {
  const order = [first, ...IDS.filter((id) => id !== first)];
  const db = Concord.connect({ endpoints: order.map(endpoint), retry: { maxAttempts: 100 } });
  clients.push(db);
  return db;
}

let closeCluster: () => Promise<void> = () => Promise.resolve();

before(async () => {
  closeCluster = await openLoopbackCluster(IDS, "recipes", members);
});

after(async () => {
  for (const db of clients) await db.close();
  await closeCluster();
});

test("an election across members survives the loss of the Raft leader's member", async () => {
  const raftLeader = (await members.get(1)!.status()).leader;
  // Candidates talk first to members that stay up, so only the store's failover is exercised.
  const survivors = IDS.filter((id) => id !== raftLeader);
  const [a, b, c] = ["a", "b", "c"].map(
    (id, i) => new Election(clientOf(survivors[i % survivors.length]!), { subspace: "svc", candidateId: id }),
  ) as [Election, Election, Election];
  try {
    await a.configure({ leaseSeconds: 4, renewIntervalMs: 500, candidateTimeoutMs: 500 });
    const first = await within(a.campaign("a"), "a elected");
    assert.equal(first.term, 1n);
    const waiting = new Map<string, Promise<Leadership>>([
      ["b", b.campaign("b", { priority: 2 })],
      ["c", c.campaign("c", { priority: 1 })],
    ]);
    const watcher = clientOf(survivors[0]!);
    await waitFor(
      async () => (await watcher.range("svc/candidates/", { prefix: true })).kvs.length === 3,
      "3 registered",
    );

    await members.get(raftLeader)!.close();
    members.delete(raftLeader);
    await waitFor(async () => {
      const leader = (await members.get(survivors[0]!)!.status()).leader;
      return leader !== 0 && leader !== raftLeader;
    }, "a new Raft leader");

    // Whether a kept its lease through the failover or lost it, the next holder has a higher term.
    if (!first.lost.aborted) await within(a.resign(), "a resigns");
    const next = await within(waiting.get("b")!, "b elected");
    assert.ok(next.term > first.term);
    assert.ok(first.lost.aborted, "a was told it lost");
    assert.equal((await watcher.txn({ compares: first.guard() })).succeeded, false);
    assert.equal((await watcher.txn({ compares: next.guard() })).succeeded, true);
    assert.equal((await c.leader())?.holder, "b");
    const cEnded = assert.rejects(waiting.get("c")!);
    await c.close();
    await cEnded;
  } finally {
    for (const election of [a, b, c]) await election.close().catch(() => undefined);
  }
});
