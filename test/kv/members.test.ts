// The replicated member table: MemberSet / MemberRemove applied by the store (no revision, in
// the dedup table like any command), carried by snapshots, and a codec that refuses bad bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecodeError } from "../../src/kv/bytes.js";
import {
  decodeCommand,
  decodeEnvelope,
  encodeCommand,
  encodeEnvelope,
  putRequest,
} from "../../src/kv/commands.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import {
  MAX_MEMBER_URLS,
  memberRemoveRequest,
  memberSetRequest,
  type MemberAttributes,
} from "../../src/kv/members.js";
import { decodeCommandResult, encodeCommandResult } from "../../src/kv/results.js";
import { MvccStore } from "../../src/kv/store.js";
import { b, dump } from "./helpers.js";
import { KvHarness } from "./kv-harness.js";

const n1: MemberAttributes = {
  id: 0x1234_5678_9abc,
  name: "n1",
  peerUrls: ["http://127.0.0.1:2380"],
  clientUrls: ["http://127.0.0.1:2379", "http://10.0.0.1:2379"],
};
const n2: MemberAttributes = { id: 7, name: "", peerUrls: ["http://127.0.0.1:2480"], clientUrls: [] };

describe("member table", () => {
  it("sets, replaces and removes records without creating a revision", () => {
    const h = new KvHarness();
    h.ok(putRequest({ key: b("k"), value: b("v") }), "put");
    const revision = h.store.revision;
    const set = h.apply(memberSetRequest(n1));
    assert.deepEqual(set.result, { revision, response: { kind: "member" } });
    assert.deepEqual(set.events, []);
    h.apply(memberSetRequest(n2));
    assert.deepEqual(h.store.members(), [n2, n1]);
    const renamed = { ...n2, name: "n2", clientUrls: ["http://127.0.0.1:2479"] };
    h.apply(memberSetRequest(renamed));
    assert.deepEqual(h.store.members(), [renamed, n1]);
    h.apply(memberRemoveRequest(n1.id));
    h.apply(memberRemoveRequest(12345)); // an unknown id is no error
    assert.deepEqual(h.store.members(), [renamed]);
    assert.equal(h.store.revision, revision);
    assert.equal(h.store.appliedIndex, h.nextEntryIndex - 1);
  });

  it("refuses a malformed record at apply and changes nothing", () => {
    const h = new KvHarness();
    h.apply(memberSetRequest(n1));
    const before = dump(h.kv);
    const index = h.nextEntryIndex;
    const bad = [
      { ...n1, id: 0 },
      { ...n1, id: 1.5 },
      { ...n1, peerUrls: [""] },
      { ...n1, clientUrls: Array.from({ length: MAX_MEMBER_URLS + 1 }, (_, i) => `http://h:${i + 1}`) },
      { ...n1, name: "x".repeat(2000) },
    ];
    for (const member of bad) {
      assert.throws(
        () =>
          h.store.apply(index, {
            clientId: "",
            sequence: 0,
            timestamp: 0n,
            command: memberSetRequest(member),
          }),
        RangeError,
      );
    }
    assert.deepEqual(dump(h.kv), before);
  });

  it("travels in a snapshot to another store", async () => {
    const h = new KvHarness();
    h.apply(memberSetRequest(n1));
    h.apply(memberSetRequest(n2));
    const chunks: Uint8Array[] = [];
    for await (const chunk of h.store.snapshot(16)) chunks.push(chunk);
    const other = new MvccStore(new MemoryOrderedKv(), { namespace: b("r2"), enforceLeases: true });
    await other.restore(chunks);
    assert.deepEqual(other.members(), [n2, n1]);
    assert.equal(other.appliedIndex, h.store.appliedIndex);
  });
});

describe("member command codec", () => {
  it("round-trips both commands, alone and in an envelope, and their result", () => {
    for (const command of [memberSetRequest(n1), memberSetRequest(n2), memberRemoveRequest(n1.id)]) {
      assert.deepEqual(decodeCommand(encodeCommand(command)), command);
      const envelope = { clientId: "c", sequence: 3, timestamp: 5n, command };
      assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
    }
    const result = { revision: 9n, response: { kind: "member" as const } };
    assert.deepEqual(decodeCommandResult(encodeCommandResult(result)), result);
  });

  it("refuses to encode what it could not decode", () => {
    assert.throws(() => encodeCommand(memberRemoveRequest(0)), RangeError);
    assert.throws(() => encodeCommand(memberSetRequest({ ...n1, id: -3 })), RangeError);
    assert.throws(() => encodeCommand(memberSetRequest({ ...n1, peerUrls: [""] })), RangeError);
  });

  it("rejects truncation, trailing bytes, a zero id and oversized lists", () => {
    const bytes = encodeCommand(memberSetRequest(n1));
    for (let cut = 1; cut < bytes.length; cut++) {
      assert.throws(() => decodeCommand(bytes.subarray(0, cut)), DecodeError);
    }
    assert.throws(() => decodeCommand(Uint8Array.of(...bytes, 0)), DecodeError);
    const remove = encodeCommand(memberRemoveRequest(1));
    const zeroId = remove.slice();
    zeroId[zeroId.length - 1] = 0;
    assert.throws(() => decodeCommand(zeroId), /member id 0/);
    // version, kind, id (8), name "" (u32 0), peer URL count 2^32-1
    const manyUrls = Uint8Array.of(1, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff);
    assert.throws(() => decodeCommand(manyUrls), /peer URLs, at most/);
  });
});
