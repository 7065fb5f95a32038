// Tests for the linearizability checker: hand-written histories with known verdicts, properties
// over generated executions (sequential, concurrent, with pending operations), a cross-check
// against a brute-force search on small random histories, and the search budget.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkLinearizability,
  formatOperation,
  renderTimeline,
} from "../../src/sim/linearizability/index.js";
import type { LinearizabilityResult, Operation, RegisterValue } from "../../src/sim/linearizability/index.js";

// ---------------------------------------------------------------------------------------------
// Building histories by hand: each builder takes the id the history assigns it.

type Build = (id: number) => Operation;

function history(...builds: Build[]): Operation[] {
  return builds.map((build, index) => build(index + 1));
}

function put(key: string, value: string, call: number, ret: number, clientId = 1): Build {
  return (id) => ({
    id,
    clientId,
    key,
    kind: "put",
    value,
    call,
    ret,
    ...(ret === Infinity ? {} : { output: { ok: true } }),
  });
}

/** `read` undefined: a pending get. */
function get(key: string, read: RegisterValue | undefined, call: number, ret: number, clientId = 1): Build {
  return (id) => ({
    id,
    clientId,
    key,
    kind: "get",
    call,
    ret,
    ...(read === undefined ? {} : { output: { value: read } }),
  });
}

/** `swapped` undefined: a pending cas. */
function cas(
  key: string,
  expected: RegisterValue,
  next: string,
  swapped: boolean | undefined,
  call: number,
  ret: number,
  clientId = 1,
): Build {
  return (id) => ({
    id,
    clientId,
    key,
    kind: "cas",
    expected,
    next,
    call,
    ret,
    ...(swapped === undefined ? {} : { output: { swapped } }),
  });
}

const P = Infinity;

function assertOk(result: LinearizabilityResult): void {
  assert.deepEqual(result, { outcome: "ok" }, JSON.stringify(result, null, 2));
}

function assertViolation(result: LinearizabilityResult, key: string): string {
  assert.equal(result.outcome, "violation", JSON.stringify(result));
  if (result.outcome !== "violation") throw new Error("unreachable");
  assert.equal(result.key, key);
  return result.explanation;
}

// ---------------------------------------------------------------------------------------------
// Hand-written linearizable histories

test("an empty history and a history of only pending gets are linearizable", () => {
  assertOk(checkLinearizability([]));
  assertOk(checkLinearizability(history(get("k", undefined, 0, P), get("k", undefined, 3, P))));
});

test("sequential reads observe the latest write", () => {
  assertOk(
    checkLinearizability(
      history(
        get("k", null, 0, 1),
        put("k", "a", 2, 3),
        get("k", "a", 4, 5),
        put("k", "b", 6, 7),
        get("k", "b", 8, 9),
      ),
    ),
  );
});

test("reads overlapping a write may see the old or the new value, in a consistent order", () => {
  assertOk(
    checkLinearizability(
      history(
        put("k", "a", 0, 10, 1),
        get("k", null, 2, 3, 2),
        get("k", "a", 5, 6, 2),
        get("k", "a", 4, 12, 3),
      ),
    ),
  );
  // Two concurrent writes; readers agree on which one came last.
  assertOk(
    checkLinearizability(
      history(
        put("k", "a", 0, 10, 1),
        put("k", "b", 0, 10, 2),
        get("k", "b", 1, 2, 3),
        get("k", "a", 11, 12, 3),
      ),
    ),
  );
});

test("cas swaps only on the expected value, and null means absent", () => {
  assertOk(
    checkLinearizability(
      history(
        cas("k", "a", "x", false, 0, 1),
        cas("k", null, "a", true, 2, 3),
        cas("k", null, "z", false, 4, 5),
        cas("k", "a", "b", true, 6, 7),
        cas("k", "a", "c", false, 8, 9),
        get("k", "b", 10, 11),
      ),
    ),
  );
});

test("of two concurrent cas on the same expected value one wins and the reads agree", () => {
  assertOk(
    checkLinearizability(
      history(
        put("k", "0", 0, 1),
        cas("k", "0", "1", false, 2, 10, 1),
        cas("k", "0", "2", true, 3, 9, 2),
        get("k", "2", 11, 12, 3),
      ),
    ),
  );
});

test("a pending write may have taken effect later, or never", () => {
  // Observed long after its invocation.
  assertOk(
    checkLinearizability(history(put("k", "a", 0, P, 1), get("k", null, 5, 6, 2), get("k", "a", 7, 8, 2))),
  );
  // Never observed.
  assertOk(
    checkLinearizability(history(put("k", "a", 0, P, 1), get("k", null, 5, 6, 2), get("k", null, 9, 10, 2))),
  );
  // Takes effect between two completed operations that came after its invocation.
  assertOk(
    checkLinearizability(
      history(put("k", "a", 0, 1), put("k", "b", 2, P, 2), get("k", "a", 3, 4), get("k", "b", 5, 6)),
    ),
  );
  // A pending cas, applied and not applied.
  assertOk(checkLinearizability(history(cas("k", null, "a", undefined, 0, P, 1), get("k", "a", 5, 6, 2))));
  assertOk(checkLinearizability(history(cas("k", null, "a", undefined, 0, P, 1), get("k", null, 5, 6, 2))));
});

test("an operation invoked at the instant another returned is concurrent with it", () => {
  assertOk(checkLinearizability(history(put("k", "a", 0, 5, 1), get("k", null, 5, 6, 2))));
  assertViolation(checkLinearizability(history(put("k", "a", 0, 5, 1), get("k", null, 6, 7, 2))), "k");
});

test("keys are independent registers", () => {
  assertOk(
    checkLinearizability(
      history(
        put("x", "1", 0, 1),
        put("y", "2", 2, 3),
        get("x", "1", 4, 5),
        get("y", "2", 4, 5),
        get("z", null, 6, 7),
      ),
    ),
  );
});

// ---------------------------------------------------------------------------------------------
// Hand-written violations

test("a stale read after a completed write is a violation, explained from the longest prefix", () => {
  const ops = history(put("k", "a", 0, 1), put("k", "b", 2, 3), get("k", "a", 4, 5));
  const explanation = assertViolation(checkLinearizability(ops), "k");
  assert.match(explanation, /2 of 3 completed operations/);
  assert.match(explanation, /Then the key holds "b"/);
  assert.ok(explanation.includes(`${formatOperation(ops[2] as Operation)}: the key holds "b"`), explanation);
});

test("reading a value that was never written is a violation", () => {
  const explanation = assertViolation(
    checkLinearizability(history(put("k", "a", 0, 1), get("k", "zz", 2, 3))),
    "k",
  );
  assert.match(explanation, /"zz"/);
  // Written only after the read returned: still a phantom.
  assertViolation(checkLinearizability(history(get("k", "a", 0, 1), put("k", "a", 2, 3))), "k");
});

test("two sequential cas both succeeding on the same expected value is a violation", () => {
  const explanation = assertViolation(
    checkLinearizability(
      history(put("k", "a", 0, 1), cas("k", "a", "b", true, 2, 3), cas("k", "a", "c", true, 4, 5)),
    ),
    "k",
  );
  assert.match(explanation, /it swapped, but the key holds "b"/);
});

test("concurrent cas both succeeding on the same expected value is a lost update", () => {
  assertViolation(
    checkLinearizability(
      history(put("k", "0", 0, 1), cas("k", "0", "1", true, 2, 10, 1), cas("k", "0", "1", true, 3, 9, 2)),
    ),
    "k",
  );
});

test("an acknowledged write that later reads do not see was lost", () => {
  assertViolation(checkLinearizability(history(put("k", "a", 0, 1), get("k", null, 2, 3))), "k");
});

test("readers disagreeing on the order of two writes is a violation", () => {
  assertViolation(
    checkLinearizability(
      history(
        put("k", "a", 0, 10, 1),
        put("k", "b", 0, 10, 2),
        get("k", "b", 11, 12, 3),
        get("k", "a", 13, 14, 3),
      ),
    ),
    "k",
  );
});

test("a pending write takes effect at most once", () => {
  const explanation = assertViolation(
    checkLinearizability(
      history(put("k", "a", 0, 1), put("k", "b", 2, P, 2), get("k", "b", 3, 4), get("k", "a", 5, 6)),
    ),
    "k",
  );
  assert.match(explanation, /taken to have taken effect here/);
});

test("a violation names its key and returns that key's whole history sorted by call", () => {
  const ops = history(
    put("good", "1", 0, 1),
    get("bad", "x", 7, 8, 2),
    put("bad", "x", 5, 6, 2),
    get("bad", undefined, 6, P, 3),
    put("bad", "y", 9, 10),
    get("bad", "x", 11, 12),
  );
  const result = checkLinearizability(ops);
  assertViolation(result, "bad");
  if (result.outcome !== "violation") throw new Error("unreachable");
  assert.deepEqual(
    result.operations.map((op) => op.id),
    [3, 4, 2, 5, 6],
  );
});

test("a malformed history is rejected loudly", () => {
  const ok = put("k", "a", 0, 1)(1);
  assert.throws(() => checkLinearizability([ok, ok]), /two operations with id 1/);
  assert.throws(() => checkLinearizability([{ ...ok, ret: P }]), /pending but has an output/);
  assert.throws(
    () => checkLinearizability([{ id: 1, clientId: 1, key: "k", kind: "get", call: 0, ret: 1 }]),
    /no output/,
  );
  assert.throws(() => checkLinearizability([{ ...ok, call: 2 }]), /before it is called/);
  assert.throws(() => checkLinearizability([ok], { maxStatesPerKey: 0 }), /must be positive/);
});

test("renderTimeline groups by key and lines operations up by call time", () => {
  const ops = history(
    get("k", "a", 30, 31),
    put("k", "a", 10, 25),
    cas("k", null, "b", undefined, 12, P, 2),
    put("j", "z", 1, 2, 3),
  );
  assert.equal(
    renderTimeline(ops),
    [
      'key "j" (1 operation)',
      '  [ 1,       2] #4 c3 put(key "j", "z") -> ok',
      'key "k" (3 operations)',
      '  [10,      25] #2 c1 put(key "k", "a") -> ok',
      '  [12, pending] #3 c2 cas(key "k", absent -> "b") -> pending',
      '  [30,      31] #1 c1 get(key "k") -> "a"',
    ].join("\n"),
  );
});

// ---------------------------------------------------------------------------------------------
// Generated executions

const VALUES = ["v0", "v1", "v2"] as const;
const KEYS = ["k0", "k1", "k2"] as const;

interface OpSpec {
  readonly clientId: number;
  readonly key: string;
  readonly kind: "put" | "get" | "cas";
  readonly value: string;
  readonly expected: RegisterValue;
}

const opSpec = (clients: number): fc.Arbitrary<OpSpec> =>
  fc.record({
    clientId: fc.integer({ min: 1, max: clients }),
    key: fc.constantFrom(...KEYS),
    kind: fc.constantFrom("put" as const, "get" as const, "cas" as const),
    value: fc.constantFrom(...VALUES),
    expected: fc.constantFrom<RegisterValue>(null, ...VALUES),
  });

/** A reference register store: applies one operation and returns its output. */
function applyToModel(store: Map<string, RegisterValue>, spec: OpSpec): Operation["output"] {
  const current = store.get(spec.key) ?? null;
  switch (spec.kind) {
    case "put":
      store.set(spec.key, spec.value);
      return { ok: true };
    case "get":
      return { value: current };
    case "cas":
      if (current !== spec.expected) return { swapped: false };
      store.set(spec.key, spec.value);
      return { swapped: true };
  }
}

/** The operation record for `spec`; `output` undefined makes it pending-shaped. */
function record(spec: OpSpec, id: number, call: number, ret: number, output: Operation["output"]): Operation {
  const base = { id, clientId: spec.clientId, key: spec.key, call, ret };
  const mismatch = (): Error => new Error(`output ${JSON.stringify(output)} does not fit a ${spec.kind}`);
  switch (spec.kind) {
    case "put":
      if (output !== undefined && !("ok" in output)) throw mismatch();
      return { ...base, kind: "put", value: spec.value, output };
    case "get":
      if (output !== undefined && !("value" in output)) throw mismatch();
      return { ...base, kind: "get", output };
    case "cas":
      if (output !== undefined && !("swapped" in output)) throw mismatch();
      return { ...base, kind: "cas", expected: spec.expected, next: spec.value, output };
  }
}

interface TimedSpec {
  readonly spec: OpSpec;
  readonly gap: number;
  readonly duration: number;
  /** Where inside [call, ret] the operation takes effect, as a fraction. */
  readonly effectAt: number;
  /** Pending: the client never learns the result. */
  readonly pending: boolean;
  /** For a pending operation: whether it took effect at all, and how long after `call`. */
  readonly appliedLate: boolean;
  readonly lateBy: number;
}

const timedSpec = (clients: number, pendingRate: number): fc.Arbitrary<TimedSpec> =>
  fc.record({
    spec: opSpec(clients),
    gap: fc.integer({ min: 0, max: 4 }),
    duration: fc.integer({ min: 0, max: 12 }),
    effectAt: fc.double({ min: 0, max: 1, noNaN: true }),
    pending: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < pendingRate),
    appliedLate: fc.boolean(),
    lateBy: fc.integer({ min: 0, max: 40 }),
  });

/**
 * Simulates a concurrent execution: each client issues its operations one after another, each
 * operation takes effect atomically at an instant inside its [call, ret] interval (a pending one
 * at any instant after its call, or never), and outputs come from applying the effects to a
 * reference store in time order. The result is linearizable by construction.
 */
function simulate(specs: readonly TimedSpec[]): Operation[] {
  const clientClock = new Map<number, number>();
  const timed = specs.map((t, index) => {
    const call = (clientClock.get(t.spec.clientId) ?? 0) + t.gap;
    const ret = call + t.duration;
    clientClock.set(t.spec.clientId, ret);
    const effect = !t.pending
      ? call + Math.floor(t.effectAt * t.duration)
      : t.appliedLate
        ? call + t.lateBy
        : null;
    return { t, id: index + 1, call, ret, effect };
  });
  const outputs = new Map<number, Operation["output"]>();
  const store = new Map<string, RegisterValue>();
  const effective = timed.filter((x) => x.effect !== null);
  effective.sort((a, b) => (a.effect ?? 0) - (b.effect ?? 0) || a.id - b.id);
  for (const x of effective) outputs.set(x.id, applyToModel(store, x.t.spec));
  return timed.map((x) =>
    x.t.pending
      ? record(x.t.spec, x.id, x.call, P, undefined)
      : record(x.t.spec, x.id, x.call, x.ret, outputs.get(x.id)),
  );
}

test("property: a sequential execution is accepted, with disjoint or consistently overlapping intervals", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(opSpec(5), fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 25 })), {
        maxLength: 80,
      }),
      fc.boolean(),
      (steps, overlapping) => {
        const store = new Map<string, RegisterValue>();
        // Operation i takes effect at 100 * i; overlapping intervals still contain that instant.
        const ops = steps.map(([spec, before, after], i) => {
          const output = applyToModel(store, spec);
          const at = 100 * i;
          return overlapping
            ? record(spec, i + 1, at - before * 5, at + after * 5, output)
            : record(spec, i + 1, at, at + 50, output);
        });
        assertOk(checkLinearizability(ops));
      },
    ),
    { numRuns: 200 },
  );
});

test("property: a simulated concurrent execution is accepted, with or without pending operations", () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 5 })
        .chain((clients) => fc.array(timedSpec(clients, 0.15), { maxLength: 120 })),
      (specs) => {
        assertOk(checkLinearizability(simulate(specs)));
      },
    ),
    { numRuns: 300 },
  );
});

test("property: a get that returns a value never written is rejected", () => {
  fc.assert(
    fc.property(fc.array(timedSpec(4, 0.1), { maxLength: 80 }), fc.nat(), (specs, pick) => {
      const ops = simulate(specs);
      const gets = ops.filter((op) => op.kind === "get" && op.output !== undefined);
      const victim =
        gets[pick % Math.max(1, gets.length)] ??
        record({ clientId: 1, key: "k0", kind: "get", value: "v0", expected: null }, ops.length + 1, 0, 1, {
          value: null,
        });
      const tampered: Operation = { ...victim, kind: "get", output: { value: "never-written" } };
      const withTamper = [...ops.filter((op) => op.id !== victim.id), tampered];
      assertViolation(checkLinearizability(withTamper), victim.key);
    }),
    { numRuns: 200 },
  );
});

/** An independent, exhaustive search over orders of the whole history (tiny histories only). */
function bruteForceLinearizable(ops: readonly Operation[]): boolean {
  const relevant = ops.filter((op) => !(op.kind === "get" && op.output === undefined));
  const placed = relevant.map(() => false);
  const completedTotal = relevant.filter((op) => op.ret !== P).length;
  const apply = (
    store: ReadonlyMap<string, RegisterValue>,
    op: Operation,
  ): Map<string, RegisterValue> | null => {
    const current = store.get(op.key) ?? null;
    const next = new Map(store);
    if (op.kind === "put") next.set(op.key, op.value);
    else if (op.kind === "get") return op.output?.value === current ? next : null;
    else if (current === op.expected) {
      if (op.output?.swapped === false) return null;
      next.set(op.key, op.next);
    } else if (op.output?.swapped === true) return null;
    return next;
  };
  const search = (store: ReadonlyMap<string, RegisterValue>, completedPlaced: number): boolean => {
    if (completedPlaced === completedTotal) return true;
    return relevant.some((op, i) => {
      if (placed[i] === true) return false;
      if (relevant.some((other, j) => placed[j] !== true && other.ret < op.call)) return false;
      const next = apply(store, op);
      if (next === null) return false;
      placed[i] = true;
      const found = search(next, completedPlaced + (op.ret === P ? 0 : 1));
      placed[i] = false;
      return found;
    });
  };
  return search(new Map(), 0);
}

test("property: on small random histories the checker agrees with brute force", () => {
  const verdicts = { ok: 0, violation: 0 };
  const arbitraryOp = fc.record({
    spec: opSpec(3).map((spec) => ({ ...spec, key: spec.key === "k2" ? "k0" : spec.key })),
    call: fc.integer({ min: 0, max: 8 }),
    duration: fc.option(fc.integer({ min: 0, max: 6 }), { freq: 5 }),
    value: fc.constantFrom<RegisterValue>(null, ...VALUES),
    swapped: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(arbitraryOp, { maxLength: 7 }), (raw) => {
      const ops = raw.map((r, i) => {
        const ret = r.duration === null ? P : r.call + r.duration;
        const output =
          ret === P
            ? undefined
            : r.spec.kind === "put"
              ? { ok: true as const }
              : r.spec.kind === "get"
                ? { value: r.value }
                : { swapped: r.swapped };
        return record(r.spec, i + 1, r.call, ret, output);
      });
      const result = checkLinearizability(ops);
      assert.notEqual(result.outcome, "unknown");
      if (result.outcome === "ok") verdicts.ok++;
      else verdicts.violation++;
      assert.equal(result.outcome === "ok", bruteForceLinearizable(ops), renderTimeline(ops));
    }),
    { numRuns: 1500 },
  );
  assert.ok(verdicts.ok > 50 && verdicts.violation > 50, JSON.stringify(verdicts));
});

// ---------------------------------------------------------------------------------------------
// Scale and budget

/** A seeded generator for the large deterministic histories below. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

function largeSpecs(seed: number, count: number): TimedSpec[] {
  const next = lcg(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  return Array.from({ length: count }, () => ({
    spec: {
      clientId: 1 + Math.floor(next() * 5),
      key: pick(["a", "b", "c", "d", "e"]),
      kind: pick(["put", "get", "get", "cas"] as const),
      value: pick(VALUES),
      expected: pick([null, ...VALUES]),
    },
    gap: Math.floor(next() * 3),
    duration: Math.floor(next() * 20),
    effectAt: next(),
    pending: next() < 0.02,
    appliedLate: next() < 0.5,
    lateBy: Math.floor(next() * 200),
  }));
}

test("a few thousand operations over five keys and clients, some pending, are decided", () => {
  for (const seed of [1, 2, 3]) {
    const ops = simulate(largeSpecs(seed, 3000));
    assertOk(checkLinearizability(ops));
    // Then a write is lost at the very end: refuting that means exhausting the whole search.
    const end = Math.max(...ops.filter((op) => op.ret !== P).map((op) => op.ret)) + 1;
    const lost = history(
      put("a", "solid", end, end + 1),
      put("a", "fresh", end + 2, end + 3),
      get("a", "solid", end + 4, end + 5),
    );
    const broken = [...ops, ...lost.map((op) => ({ ...op, id: op.id + ops.length }))];
    assertViolation(checkLinearizability(broken), "a");
  }
});

test("pending writes that were overwritten do not blow up the search for a violation", () => {
  // 20 pending writes, each followed by an acknowledged write and a read of it, then a read
  // of a value overwritten long ago: exhausting every subset of pending writes would be 2^20.
  const builds: Build[] = [];
  for (let i = 0; i < 20; i++) {
    builds.push(
      put("k", `p${i}`, 10 * i, P, 2),
      put("k", `c${i}`, 10 * i + 1, 10 * i + 2),
      get("k", `c${i}`, 10 * i + 3, 10 * i + 4),
    );
  }
  builds.push(put("k", "final", 500, 501), get("k", "c0", 502, 503));
  const explanation = assertViolation(
    checkLinearizability(history(...builds), { maxStatesPerKey: 50_000 }),
    "k",
  );
  assert.match(explanation, /#62 c1 get\(key "k"\) -> "c0": the key holds "final"/);
});

test("a refuted configuration prunes the same one reached with more pending writes used", () => {
  // Each round's read can be explained by its acknowledged write or by its pending twin; both
  // branches end in the same state, differing only in pending writes used. The final stale
  // read is refuted once per round, not once per subset of rounds (2^20).
  const builds: Build[] = [];
  for (let i = 0; i < 20; i++) {
    const t = 10 * i;
    builds.push(
      put("k", `x${i}`, t, P, 2),
      put("k", `x${i}`, t + 1, t + 5, 1),
      get("k", `x${i}`, t + 2, t + 6, 3),
      put("k", `c${i}`, t + 7, t + 8, 1),
    );
  }
  builds.push(get("k", "c0", 300, 301, 3));
  assertViolation(checkLinearizability(history(...builds), { maxStatesPerKey: 20_000 }), "k");
});

test("identical pending writes each explain at most one later read, without trying every subset", () => {
  // 20 pending writes of "x", then rounds of "overwrite, read x": each round uses one up.
  const rounds = (count: number): Operation[] => {
    const builds: Build[] = [];
    for (let i = 0; i < 20; i++) builds.push(put("k", "x", i, P, 2));
    for (let i = 0; i < count; i++)
      builds.push(put("k", `c${i}`, 100 + 10 * i, 101 + 10 * i), get("k", "x", 102 + 10 * i, 103 + 10 * i));
    return history(...builds);
  };
  assertOk(checkLinearizability(rounds(20), { maxStatesPerKey: 20_000 }));
  assertViolation(checkLinearizability(rounds(21), { maxStatesPerKey: 20_000 }), "k");
});

test("a pathological history exhausts the budget and yields unknown instead of hanging", () => {
  // 24 fully concurrent writes, then two reads no single final value can explain: refuting it
  // means trying every subset of writes before the reads.
  const builds: Build[] = [];
  for (let i = 0; i < 24; i++) builds.push(put("k", `w${i}`, 0, 100, i + 1));
  builds.push(get("k", "w0", 101, 102), get("k", "w1", 103, 104));
  const result = checkLinearizability(history(...builds), { maxStatesPerKey: 5_000 });
  assert.equal(result.outcome, "unknown");
  if (result.outcome !== "unknown") throw new Error("unreachable");
  assert.equal(result.key, "k");
  assert.match(result.reason, /5001 search states/);
  // A violation elsewhere still wins over an undecided key.
  const withViolation = [...history(...builds), get("z", "nope", 0, 1)(99)];
  assert.equal(checkLinearizability(withViolation, { maxStatesPerKey: 5_000 }).outcome, "violation");
});
