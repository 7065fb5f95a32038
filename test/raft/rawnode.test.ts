// Unit tests of the core's behaviour that transcripts show less directly: configuration checks,
// randomized election timeouts, overflow guards, limits, and the Ready/advance contract.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkedIncrement, RaftInvariantError } from "../../src/raft/assert.js";
import { RaftConfigError, ReadOnlyOption, type RaftConfig } from "../../src/raft/config.js";
import { ProposalDroppedError } from "../../src/raft/raft.js";
import { RawNode } from "../../src/raft/rawnode.js";
import { EntryType, message, MessageType, StateRole, type ConfState } from "../../src/raft/types.js";
import { UnstableLog } from "../../src/raft/unstable.js";
import { MemoryStorageEngine } from "../../src/storage/memory.js";
import { SeededRandom } from "../../src/sim/random.js";

function confState(voters: number[], learners: number[] = []): ConfState {
  return { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
}

function newNode(id: number, cs: ConfState, overrides: Partial<RaftConfig> = {}) {
  const engine = new MemoryStorageEngine();
  const storage = engine.replica(1);
  storage.setConfState(cs);
  engine.syncNow();
  const raw = new RawNode({
    id,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    random: new SeededRandom(id),
    ...overrides,
  });
  return { raw, storage, engine };
}

/** A second core over `storage` (a restart of the node that wrote it). */
function newNodeOver(
  storage: ReturnType<MemoryStorageEngine["replica"]>,
  overrides: Partial<RaftConfig> = {},
) {
  const raw = new RawNode({
    id: 2,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    random: new SeededRandom(2),
    ...overrides,
  });
  return { raw, storage };
}

/** Persist and advance every Ready until none is left (a one-node "cluster" needs no network). */
function drain(node: ReturnType<typeof newNode>): number {
  let applied = 0;
  while (node.raw.hasReady()) {
    const rd = node.raw.ready();
    if (rd.entries.length > 0) node.storage.append(rd.entries);
    if (rd.hardState) node.storage.setHardState(rd.hardState);
    node.engine.syncNow();
    applied += rd.committedEntries.filter((e) => e.data.length > 0).length;
    node.raw.advance(rd);
  }
  return applied;
}

test("invalid configurations are refused with a clear error", () => {
  const storage = new MemoryStorageEngine().replica(1);
  const base = { id: 1, electionTick: 10, heartbeatTick: 1, storage, random: new SeededRandom(1) };
  assert.throws(() => new RawNode({ ...base, id: 0 }), RaftConfigError);
  assert.throws(
    () => new RawNode({ ...base, electionTick: 1 }),
    /electionTick must be greater than heartbeatTick/,
  );
  assert.throws(
    () => new RawNode({ ...base, checkQuorum: false, readOnlyOption: ReadOnlyOption.LeaseBased }),
    /lease-based reads require checkQuorum/,
  );
  assert.throws(() => new RawNode({ ...base, maxInflightMsgs: 0 }), RaftConfigError);
});

test("the election timeout is electionTick plus a draw from the injected random source", () => {
  for (let draw = 0; draw < 10; draw++) {
    const bounds: number[] = [];
    const random = {
      nextInt: (bound: number) => {
        bounds.push(bound);
        return draw;
      },
    };
    const node = newNode(1, confState([1, 2, 3]), { random });
    let ticks = 0;
    while (node.raw.status().softState.role === StateRole.Follower && ticks < 100) {
      node.raw.tick();
      ticks++;
    }
    assert.equal(ticks, 10 + draw);
    assert.ok(
      bounds.every((b) => b === 10),
      "draws are bounded by electionTick",
    );
  }
});

test("terms and indexes never wrap: incrementing the largest safe integer is an invariant failure", () => {
  assert.equal(checkedIncrement(41), 42);
  assert.throws(() => checkedIncrement(Number.MAX_SAFE_INTEGER), RaftInvariantError);
});

test("a single voter elects itself and commits after its own log is persisted", () => {
  const node = newNode(1, confState([1]));
  node.raw.campaign();
  drain(node);
  assert.equal(node.raw.status().softState.role, StateRole.Leader);
  node.raw.propose(new TextEncoder().encode("x"));
  const rd = node.raw.ready();
  assert.equal(rd.entries.length, 1);
  assert.equal(rd.committedEntries.length, 0, "not committed before it is persisted");
  node.storage.append(rd.entries);
  node.engine.syncNow();
  node.raw.advance(rd);
  assert.equal(drain(node), 1, "committed and applied once persisted");
});

test("a learner never campaigns", () => {
  const node = newNode(2, confState([1], [2]));
  for (let i = 0; i < 100; i++) node.raw.tick();
  assert.equal(node.raw.status().softState.role, StateRole.Follower);
  node.raw.campaign();
  assert.equal(node.raw.status().softState.role, StateRole.Follower);
});

test("proposals beyond the uncommitted-bytes limit are dropped, then accepted once committed", () => {
  const node = newNode(1, confState([1]), { maxUncommittedEntriesSize: 100 });
  node.raw.campaign();
  drain(node);
  const big = new Uint8Array(60);
  node.raw.propose(big);
  assert.throws(() => node.raw.propose(big), ProposalDroppedError);
  drain(node);
  node.raw.propose(big);
});

test("ready() may not be taken twice before advance()", () => {
  const node = newNode(1, confState([1]));
  node.raw.campaign();
  const rd = node.raw.ready();
  assert.equal(node.raw.hasReady(), false);
  assert.throws(() => node.raw.ready(), RaftInvariantError);
  node.raw.advance(rd);
  assert.throws(() => node.raw.advance(rd), RaftInvariantError);
});

test("a follower with no leader refuses proposals and reads at once", () => {
  const node = newNode(1, confState([1, 2, 3]));
  assert.throws(() => node.raw.propose(new Uint8Array([1])), /no leader/);
  assert.throws(() => node.raw.readIndex(new Uint8Array([1])), /no leader/);
});

test("a restarted node recovers its term, vote and commit from storage", () => {
  const node = newNode(1, confState([1]));
  node.raw.campaign();
  drain(node);
  node.raw.propose(new Uint8Array([7]));
  drain(node);
  const before = node.raw.status().hardState;
  const restarted = new RawNode({
    id: 1,
    electionTick: 10,
    heartbeatTick: 1,
    storage: node.storage,
    random: new SeededRandom(9),
  });
  assert.deepEqual(restarted.status().hardState, before);
  assert.equal(restarted.status().softState.role, StateRole.Follower);
});

test("a restart accepts a durable snapshot ahead of the durable commit index", () => {
  // The snapshot is written before the hard state that commits it; a crash can fall between.
  const engine = new MemoryStorageEngine();
  const storage = engine.replica(1);
  storage.setHardState({ term: 2, vote: 1, commit: 0 });
  storage.saveSnapshot({
    metadata: { index: 5, term: 2, confState: confState([1, 2, 3]) },
    data: new Uint8Array(),
  });
  engine.syncNow();
  const raw = new RawNode({
    id: 1,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    random: new SeededRandom(1),
    applied: 5,
  });
  assert.equal(raw.status().hardState.commit, 5);
});

test("advance without durability: entries are handed out once, and a leader counts them only once persisted", () => {
  const node = newNode(1, confState([1]));
  node.raw.campaign();
  drain(node);
  assert.equal(node.raw.status().softState.role, StateRole.Leader);
  const committedBefore = node.raw.status().hardState.commit;

  node.raw.propose(new TextEncoder().encode("x"));
  const rd = node.raw.ready();
  assert.equal(rd.entries.length, 1);
  const [entry] = rd.entries;
  node.storage.append(rd.entries);
  node.raw.advance(rd, false);
  // Written, not durable: not handed out again, and the one-voter quorum (itself) does not count it.
  assert.equal(node.raw.hasReady(), false);
  assert.equal(node.raw.status().hardState.commit, committedBefore);

  node.engine.syncNow();
  node.raw.persisted(entry!.index, entry!.term);
  assert.equal(node.raw.status().hardState.commit, entry!.index);
  const next = node.raw.ready();
  assert.equal(next.entries.length, 0);
  assert.deepEqual(
    next.committedEntries.map((e) => e.index),
    [entry!.index],
  );
  node.raw.advance(next);
});

test("a Ready with a snapshot cannot be advanced before it is durable", () => {
  const node = newNode(1, confState([1]));
  node.raw.campaign();
  const rd = node.raw.ready();
  assert.throws(
    () => node.raw.advance({ ...rd, snapshot: node.storage.snapshot() }, false),
    RaftInvariantError,
  );
});

test("unstable entries replaced after they were handed out are handed out again", () => {
  const log = new UnstableLog(1);
  const entry = (index: number, term: number) => ({
    index,
    term,
    type: EntryType.Normal,
    data: new Uint8Array(),
  });
  log.truncateAndAppend([entry(1, 1), entry(2, 1), entry(3, 1)]);
  log.writtenUpTo(3);
  assert.deepEqual(log.entriesToWrite(), []);
  // A new leader replaces 2 and 3: they must be written again; 1 stays handed out.
  log.truncateAndAppend([entry(2, 2), entry(3, 2)]);
  assert.deepEqual(
    log.entriesToWrite().map((e) => [e.index, e.term]),
    [
      [2, 2],
      [3, 2],
    ],
  );
  // A durability report for a replaced entry is ignored; one for the new entry moves it out.
  log.stableTo(3, 1);
  assert.equal(log.offset, 1);
  log.writtenUpTo(3);
  log.stableTo(3, 2);
  assert.equal(log.offset, 4);
  assert.deepEqual(log.entriesToWrite(), []);
});

test("a restarted core with check-quorum refuses votes for its first election timeout", () => {
  // A follower that answered a leader's heartbeats, then crashed and came back at once, must
  // not help elect anyone while that leader's lease on its answers may still run.
  const voteFrom = (candidate: number) =>
    message({ type: MessageType.Vote, from: candidate, to: 2, term: 3, logTerm: 0, index: 0 });
  const granted = (node: { readonly raw: RawNode }): boolean => {
    const rd = node.raw.ready();
    node.raw.advance(rd);
    return rd.messages.some((m) => m.type === MessageType.VoteResp && !m.reject);
  };
  const stored = (restarted: boolean, checkQuorum = true) => {
    const node = newNode(2, confState([1, 2, 3]), { checkQuorum, restarted });
    node.storage.setHardState({ term: 2, vote: 1, commit: 0 });
    node.engine.syncNow();
    return newNodeOver(node.storage, { checkQuorum, restarted });
  };
  const restarted = stored(true);
  restarted.raw.step(voteFrom(3));
  assert.equal(restarted.raw.hasReady() && granted(restarted), false, "voted within the election timeout");
  for (let i = 0; i < 10; i++) restarted.raw.tick();
  restarted.raw.step(voteFrom(3));
  assert.equal(granted(restarted), true, "an election timeout after the restart it votes again");

  for (const [isRestarted, checkQuorum] of [
    [false, true],
    [true, false],
  ] as const) {
    const node = stored(isRestarted, checkQuorum);
    node.raw.step(voteFrom(3));
    assert.equal(granted(node), true, `restarted ${isRestarted}, checkQuorum ${checkQuorum}`);
  }
});
