// Unit tests for the election oracle: a clean hand-made history passes, and each kind of
// violation is reported on a history made to contain exactly it.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkElectionHistory,
  type ClientEvent,
  type ClientEventBody,
  type CommittedBody,
  type CommittedChange,
  type ElectionCheck,
  type ElectionHistory,
} from "../../src/sim/election/oracle.js";

/** Builds a history in the order the calls are made; `commit` opens a new revision per call. */
class HistoryBuilder {
  readonly committed: CommittedChange[] = [];
  readonly client: ClientEvent[] = [];
  private order = 0;
  private revision = 1n;
  time = 0;

  /** Changes made by one txn: they share a revision. */
  commit(...changes: CommittedBody[]): this {
    this.revision++;
    for (const change of changes) {
      this.committed.push({
        ...change,
        order: this.order++,
        time: this.time,
        revision: this.revision,
      });
    }
    this.time += 10;
    return this;
  }

  event(event: ClientEventBody): this {
    this.client.push({ ...event, order: this.order++, time: this.time });
    this.time += 10;
    return this;
  }

  history(): ElectionHistory {
    return { committed: this.committed, client: this.client };
  }

  register(id: string, priority: number): this {
    return this.commit({ kind: "candidate", id, record: { priority, registeredAt: this.revision + 1n } });
  }

  /** An acquisition txn: the leader record and the term counter at one revision. */
  acquire(holder: string, term: bigint, priority: number): this {
    return this.commit({ kind: "leader", record: { holder, term, priority } }, { kind: "term", term });
  }

  resign(id: string): this {
    return this.commit({ kind: "leader", record: null }, { kind: "candidate", id, record: null });
  }
}

function checksOf(history: ElectionHistory): ElectionCheck[] {
  return checkElectionHistory(history).map((v) => v.check);
}

/** Two candidates, a takes term 1, writes, resigns; b takes term 2. */
function cleanRun(): HistoryBuilder {
  return new HistoryBuilder()
    .register("a", 5)
    .register("b", 3)
    .acquire("a", 1n, 5)
    .event({ kind: "elected", candidate: "a", process: "a#1", term: 1n, lostAlready: false })
    .commit({ kind: "fenced", writer: "a", term: 1n, writeId: "w1" })
    .event({ kind: "fenced", candidate: "a", process: "a#1", term: 1n, writeId: "w1", outcome: "committed" })
    .event({ kind: "lost", candidate: "a", process: "a#1", term: 1n })
    .resign("a")
    .acquire("b", 2n, 3)
    .event({ kind: "elected", candidate: "b", process: "b#1", term: 2n, lostAlready: false });
}

test("a clean history has no violation", () => {
  assert.deepEqual(checkElectionHistory(cleanRun().history()), []);
});

test("renewals and proclaims that keep holder and term are not acquisitions", () => {
  const h = cleanRun().commit({ kind: "leader", record: { holder: "b", term: 2n, priority: 3 } });
  assert.deepEqual(checksOf(h.history()), []);
});

test("two holders in one term", () => {
  const h = new HistoryBuilder()
    .register("a", 5)
    .acquire("a", 1n, 5)
    .commit({ kind: "leader", record: null }, { kind: "candidate", id: "a", record: null })
    .register("b", 5)
    .commit({ kind: "leader", record: { holder: "b", term: 1n, priority: 5 } });
  const checks = checksOf(h.history());
  assert.ok(checks.includes("one holder per term"), checks.join());
  assert.ok(checks.includes("term order"), checks.join());
});

test("a term reset after a resignation breaks term order", () => {
  const h = new HistoryBuilder()
    .register("a", 5)
    .acquire("a", 1n, 5)
    .acquire("a", 2n, 5)
    .commit({ kind: "leader", record: null }, { kind: "term", term: null })
    .acquire("a", 1n, 5);
  const violations = checkElectionHistory(h.history());
  assert.deepEqual(
    violations.map((v) => v.check),
    ["term order", "term order"],
  );
  assert.ok(violations.some((v) => v.check === "term order" && v.detail.includes("deleted")));
  assert.ok(violations.some((v) => v.check === "term order" && v.detail.includes("not above")));
});

test("a fenced write under a stale term that commits", () => {
  const h = cleanRun().commit({ kind: "fenced", writer: "a", term: 1n, writeId: "w2" });
  assert.deepEqual(checksOf(h.history()), ["stale fenced write"]);
});

test("a fenced write after the holder's record is gone", () => {
  const h = new HistoryBuilder()
    .register("a", 5)
    .acquire("a", 1n, 5)
    .commit({ kind: "leader", record: null })
    .commit({ kind: "fenced", writer: "a", term: 1n, writeId: "w1" });
  assert.deepEqual(checksOf(h.history()), ["stale fenced write"]);
});

test("a writer told its write committed when the log does not have it, or refused when it does", () => {
  const told = cleanRun().event({
    kind: "fenced",
    candidate: "b",
    process: "b#1",
    term: 2n,
    writeId: "ghost",
    outcome: "committed",
  });
  assert.deepEqual(checksOf(told.history()), ["stale fenced write"]);
  const refused = cleanRun()
    .commit({ kind: "fenced", writer: "b", term: 2n, writeId: "w9" })
    .event({ kind: "fenced", candidate: "b", process: "b#1", term: 2n, writeId: "w9", outcome: "refused" });
  assert.deepEqual(checksOf(refused.history()), ["stale fenced write"]);
  const unknown = cleanRun().event({
    kind: "fenced",
    candidate: "b",
    process: "b#1",
    term: 2n,
    writeId: "w10",
    outcome: "unknown",
  });
  assert.deepEqual(checksOf(unknown.history()), []);
});

test("a process told it was elected without a committed record", () => {
  const h = cleanRun().event({
    kind: "elected",
    candidate: "b",
    process: "b#1",
    term: 3n,
    lostAlready: false,
  });
  assert.deepEqual(checksOf(h.history()), ["phantom leader"]);
});

test("a process told it was elected after a successor won, without lost having fired", () => {
  const late = new HistoryBuilder()
    .register("a", 5)
    .acquire("a", 1n, 5)
    .resign("a")
    .register("b", 3)
    .acquire("b", 2n, 3)
    .event({ kind: "elected", candidate: "a", process: "a#1", term: 1n, lostAlready: false });
  assert.deepEqual(checksOf(late.history()), ["phantom leader"]);
  const toldLost = new HistoryBuilder()
    .register("a", 5)
    .acquire("a", 1n, 5)
    .resign("a")
    .register("b", 3)
    .acquire("b", 2n, 3)
    .event({ kind: "elected", candidate: "a", process: "a#1", term: 1n, lostAlready: true });
  assert.deepEqual(checksOf(toldLost.history()), []);
});

test("a successor elected before the previous holder's lost fired", () => {
  const h = new HistoryBuilder()
    .register("a", 5)
    .register("b", 3)
    .acquire("a", 1n, 5)
    .event({ kind: "elected", candidate: "a", process: "a#1", term: 1n, lostAlready: false })
    .commit({ kind: "leader", record: null }, { kind: "candidate", id: "a", record: null })
    .acquire("b", 2n, 3)
    .event({ kind: "lost", candidate: "a", process: "a#1", term: 1n });
  assert.deepEqual(checksOf(h.history()), ["lost before successor"]);
});

test("a frozen holder must fire lost at its thaw; a crashed one need not", () => {
  const frozen = (lostAtThaw: boolean): HistoryBuilder => {
    const h = new HistoryBuilder()
      .register("a", 5)
      .register("b", 3)
      .acquire("a", 1n, 5)
      .event({ kind: "elected", candidate: "a", process: "a#1", term: 1n, lostAlready: false })
      .event({ kind: "frozen", candidate: "a", process: "a#1" })
      .commit({ kind: "leader", record: null }, { kind: "candidate", id: "a", record: null })
      .acquire("b", 2n, 3)
      .event({ kind: "thawed", candidate: "a", process: "a#1" });
    if (!lostAtThaw) h.time += 50;
    h.time -= 10;
    return h.event({ kind: "lost", candidate: "a", process: "a#1", term: 1n });
  };
  assert.deepEqual(checksOf(frozen(true).history()), []);
  assert.deepEqual(checksOf(frozen(false).history()), ["lost before successor"]);
  const crashed = new HistoryBuilder()
    .register("a", 5)
    .register("b", 3)
    .acquire("a", 1n, 5)
    .event({ kind: "elected", candidate: "a", process: "a#1", term: 1n, lostAlready: false })
    .event({ kind: "crashed", candidate: "a", process: "a#1" })
    .commit({ kind: "leader", record: null }, { kind: "candidate", id: "a", record: null })
    .acquire("b", 2n, 3);
  assert.deepEqual(checksOf(crashed.history()), []);
});

test("an acquirer with a lower registered priority than another registered candidate", () => {
  const h = new HistoryBuilder().register("a", 5).register("b", 3).acquire("b", 1n, 3);
  assert.deepEqual(checksOf(h.history()), ["priority order"]);
});

test("equal priorities go in registration order", () => {
  const fifo = new HistoryBuilder().register("a", 4).register("b", 4).acquire("a", 1n, 4);
  assert.deepEqual(checksOf(fifo.history()), []);
  const jumped = new HistoryBuilder().register("a", 4).register("b", 4).acquire("b", 1n, 4);
  assert.deepEqual(checksOf(jumped.history()), ["priority order"]);
});

test("a spoofed priority in the leader record, and an unregistered acquirer", () => {
  const spoofed = new HistoryBuilder().register("a", 1).acquire("a", 1n, 9);
  assert.deepEqual(checksOf(spoofed.history()), ["priority order"]);
  const unregistered = new HistoryBuilder().acquire("a", 1n, 1);
  assert.deepEqual(checksOf(unregistered.history()), ["priority order"]);
});

test("a registration in the acquisition's own revision counts", () => {
  const h = new HistoryBuilder().commit(
    { kind: "leader", record: { holder: "a", term: 1n, priority: 2 } },
    { kind: "term", term: 1n },
    { kind: "candidate", id: "a", record: { priority: 2, registeredAt: 2n } },
  );
  assert.deepEqual(checksOf(h.history()), []);
});
