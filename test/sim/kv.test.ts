// Unit tests for the simulator's replicated KV state machine and its encodings.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  KvStateMachine,
  decodeCommand,
  decodeRequestIdText,
  encodeCommand,
  encodeRequestId,
  type KvCommand,
} from "../../src/sim/kv.js";

const put = (client: number, seq: number, key: string, value: string): KvCommand => ({
  kind: "put",
  id: { client, seq },
  key,
  value,
});

test("commands round-trip through their byte encoding", () => {
  const cas: KvCommand = { kind: "cas", id: { client: 2, seq: 9 }, key: "k1", expected: null, value: "v" };
  assert.deepEqual(decodeCommand(encodeCommand(cas)), cas);
  assert.deepEqual(decodeCommand(encodeCommand(put(1, 2, "k0", "x"))), put(1, 2, "k0", "x"));
  assert.throws(() => decodeCommand(new TextEncoder().encode('{"kind":"del"}')));
  assert.equal(decodeRequestIdText(encodeRequestId({ client: 3, seq: 4 })), "c3#4");
});

test("put and cas change state; cas only swaps on a match", () => {
  const kv = new KvStateMachine();
  assert.deepEqual(kv.apply(put(1, 1, "a", "x")), { kind: "put" });
  assert.equal(kv.get("a"), "x");
  assert.deepEqual(
    kv.apply({ kind: "cas", id: { client: 1, seq: 2 }, key: "a", expected: "y", value: "z" }),
    {
      kind: "cas",
      swapped: false,
    },
  );
  assert.equal(kv.get("a"), "x");
  assert.deepEqual(
    kv.apply({ kind: "cas", id: { client: 1, seq: 3 }, key: "a", expected: "x", value: "z" }),
    {
      kind: "cas",
      swapped: true,
    },
  );
  assert.equal(kv.get("a"), "z");
  assert.deepEqual(
    kv.apply({ kind: "cas", id: { client: 2, seq: 1 }, key: "b", expected: null, value: "n" }),
    {
      kind: "cas",
      swapped: true,
    },
  );
  assert.equal(kv.get("b"), "n");
});

test("a duplicated or stale command takes effect at most once", () => {
  const kv = new KvStateMachine();
  kv.apply(put(1, 5, "a", "first"));
  kv.apply(put(2, 1, "a", "second"));
  assert.equal(kv.apply(put(1, 5, "a", "first")), null);
  assert.equal(kv.apply(put(1, 4, "a", "older")), null);
  assert.equal(kv.get("a"), "second");
});

test("a snapshot restores the same state, sessions included", () => {
  const kv = new KvStateMachine();
  kv.apply(put(1, 1, "b", "1"));
  kv.apply(put(2, 7, "a", "2"));
  const restored = KvStateMachine.fromSnapshot(kv.encodeSnapshot());
  assert.equal(restored.digest(), kv.digest());
  assert.equal(restored.get("a"), "2");
  assert.equal(restored.apply(put(2, 7, "a", "dup")), null, "the session table survives the snapshot");
  assert.equal(KvStateMachine.fromSnapshot(new Uint8Array(0)).digest(), new KvStateMachine().digest());
});

test("the digest does not depend on insertion order", () => {
  const a = new KvStateMachine();
  const b = new KvStateMachine();
  a.apply(put(1, 1, "x", "1"));
  a.apply(put(2, 1, "y", "2"));
  b.apply(put(2, 1, "y", "2"));
  b.apply(put(1, 1, "x", "1"));
  assert.equal(a.digest(), b.digest());
});
