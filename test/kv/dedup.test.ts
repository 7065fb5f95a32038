// At-most-once application of retried commands: a replayed envelope returns its original
// result and changes nothing; older requests are refused; the table is bounded by least-recent
// eviction, persists across reopening and is the same on every replica.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { putRequest, type CommandEnvelope } from "../../src/kv/commands.js";
import { KeyLayout, MetaField } from "../../src/kv/keys.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { MvccStore } from "../../src/kv/store.js";
import { commandArb, type KeySpace } from "./arbitraries.js";
import { Harness, b, dataDump, dump } from "./helpers.js";

const SPACE: KeySpace = {
  key: fc.constantFrom("a", "b", "c").map(b),
  rangeEnd: fc.constantFrom("", "\0", "c").map(b),
  value: fc.constantFrom("x", "y").map(b),
  revision: fc.bigInt({ min: 0n, max: 12n }),
  lease: fc.constant(1n),
};

const LAYOUT = new KeyLayout(new Uint8Array(0));
const appliedIndexLine = Buffer.from(LAYOUT.metaKey(MetaField.AppliedIndex)).toString("hex") + "=";
const dedupClientPrefix = Buffer.from(LAYOUT.dedupClientsStart).toString("hex");

/** The whole engine except the applied index, which every entry moves. */
function stateDump(kv: MemoryOrderedKv): string[] {
  return dump(kv).filter((line) => !line.startsWith(appliedIndexLine));
}

function envelope(clientId: string, sequence: number, key: string, value: string): CommandEnvelope {
  return { clientId, sequence, timestamp: 0n, command: putRequest({ key: b(key), value: b(value) }) };
}

describe("dedup table", () => {
  it("answers a replayed envelope with its original result and changes nothing but the applied index", () => {
    fc.assert(
      fc.property(fc.array(commandArb(SPACE), { minLength: 1, maxLength: 15 }), (commands) => {
        const h = new Harness();
        commands.forEach((command, i) => {
          const original: CommandEnvelope = { clientId: "client", sequence: i + 1, timestamp: 0n, command };
          const first = h.applyEnvelope(original);
          assert.equal(first.duplicate, false);
          const before = stateDump(h.kv);
          const replay = h.applyEnvelope(original);
          assert.deepEqual(replay, { result: first.result, events: [], duplicate: true });
          assert.deepEqual(stateDump(h.kv), before);
        });
      }),
      { numRuns: 100 },
    );
  });

  it("refuses a request older than the client's last applied one without applying it", () => {
    const h = new Harness();
    h.applyEnvelope(envelope("c", 1, "a", "1"));
    h.applyEnvelope(envelope("c", 2, "a", "2"));
    const before = dataDump(h.kv);
    const stale = h.applyEnvelope(envelope("c", 1, "a", "1"));
    assert.equal(stale.duplicate, true);
    assert.equal(
      stale.result.response.kind === "error" && stale.result.response.message,
      "concord: request sequence is older than the client's last applied request; its result is gone",
    );
    assert.deepEqual(dataDump(h.kv), before);
  });

  it("applies a later sequence even after a gap", () => {
    const h = new Harness();
    h.applyEnvelope(envelope("c", 1, "a", "1"));
    assert.equal(h.applyEnvelope(envelope("c", 7, "a", "2")).duplicate, false);
    assert.equal(h.store.revision, 2n);
  });

  it("never deduplicates commands without a client id", () => {
    const h = new Harness();
    const anonymous = { ...envelope("", 0, "a", "1"), sequence: 0 };
    h.applyEnvelope(anonymous);
    assert.equal(h.applyEnvelope(anonymous).duplicate, false);
    assert.equal(h.store.revision, 2n);
  });

  it("evicts the least recently used client beyond its bound", () => {
    const h = new Harness({ maxDedupClients: 2 });
    h.applyEnvelope(envelope("c1", 1, "a", "1"));
    h.applyEnvelope(envelope("c2", 1, "a", "2"));
    h.applyEnvelope(envelope("c1", 2, "a", "3")); // c1 is now the most recent
    h.applyEnvelope(envelope("c3", 1, "a", "4")); // evicts c2
    assert.equal(h.applyEnvelope(envelope("c1", 2, "a", "3")).duplicate, true);
    assert.equal(h.applyEnvelope(envelope("c3", 1, "a", "4")).duplicate, true);
    // c2 is forgotten: its retry is indistinguishable from a new request and applies again.
    const revision = h.store.revision;
    assert.equal(h.applyEnvelope(envelope("c2", 1, "a", "2")).duplicate, false);
    assert.equal(h.store.revision, revision + 1n);
    const clients = dump(h.kv).filter((line) => line.startsWith(dedupClientPrefix)).length;
    assert.equal(clients, 2, "the table holds two clients");
  });

  it("evicts the oldest tenth of a larger bound at once, by each client's last command", () => {
    const h = new Harness({ maxDedupClients: 20 });
    for (let c = 1; c <= 20; c++) h.applyEnvelope(envelope(`c${c}`, 1, "a", `${c}`));
    // c1 and c2 write again: c3 and c4 now have the oldest last commands.
    h.applyEnvelope(envelope("c1", 2, "a", "1b"));
    h.applyEnvelope(envelope("c2", 2, "a", "2b"));
    const clients = () => dump(h.kv).filter((line) => line.startsWith(dedupClientPrefix)).length;
    assert.equal(clients(), 20);
    h.applyEnvelope(envelope("c21", 1, "a", "21")); // 21 clients: down to 20 - 2
    assert.equal(clients(), 18);
    for (const kept of ["c1", "c2", "c6", "c20", "c21"]) {
      const sequence = kept === "c1" || kept === "c2" ? 2 : 1;
      assert.equal(h.applyEnvelope(envelope(kept, sequence, "a", "retry")).duplicate, true, kept);
    }
    // Forgotten: a retry applies again.
    for (const evicted of ["c3", "c4", "c5"]) {
      assert.equal(h.applyEnvelope(envelope(evicted, 1, "a", "again")).duplicate, false, evicted);
    }
  });

  it("survives reopening the store over the same engine", () => {
    const h = new Harness();
    const first = h.applyEnvelope(envelope("c", 1, "a", "1"));
    const reopened = new MvccStore(h.kv);
    const replay = reopened.apply(reopened.appliedIndex + 1, envelope("c", 1, "a", "1"));
    assert.equal(replay.duplicate, true);
    assert.deepEqual(replay.result, first.result);
  });

  it("refuses a bound below one", () => {
    assert.throws(() => new MvccStore(new MemoryOrderedKv(), { maxDedupClients: 0 }), RangeError);
  });
});
