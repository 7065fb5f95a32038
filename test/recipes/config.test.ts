// Election config validation and the stored records' encodings: bad input gets a clear
// error and changes nothing (checked against a real store too); records round-trip; the
// term encoding orders as the numbers do.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEFAULT_ELECTION_CONFIG,
  decodeCandidateRecord,
  decodeLeaderRecord,
  decodeTerm,
  Election,
  encodeTerm,
  guard,
  mergeElectionConfig,
  RecipeConfigError,
  RecipeRecordError,
  validateElectionConfig,
  type ElectionConfig,
} from "../../src/recipes/index.js";
import { encodeCandidateRecord, encodeLeaderRecord } from "../../src/recipes/election/records.js";
import { decodeElectionConfig, encodeElectionConfig } from "../../src/recipes/election/config.js";
import { withStore } from "./helpers.js";

function rejectsWith(run: () => unknown, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof RecipeConfigError, String(error));
    assert.match(error.message, message);
    return true;
  });
}

test("config validation names the bad field", () => {
  const base = DEFAULT_ELECTION_CONFIG;
  rejectsWith(() => mergeElectionConfig(base, { leaseSeconds: 0 }), /leaseSeconds must be an integer/);
  rejectsWith(() => mergeElectionConfig(base, { leaseSeconds: 2.5 }), /leaseSeconds must be an integer/);
  rejectsWith(() => mergeElectionConfig(base, { renewIntervalMs: -5 }), /renewIntervalMs must be an integer/);
  rejectsWith(() => mergeElectionConfig(base, { candidateTimeoutMs: 0 }), /candidateTimeoutMs/);
  rejectsWith(
    () => mergeElectionConfig(base, { leaseSeconds: 2, renewIntervalMs: 1_000 }),
    /more than twice renewIntervalMs/,
  );
  rejectsWith(
    () => mergeElectionConfig(base, { electionEnabled: "yes" as unknown as boolean }),
    /electionEnabled must be true or false/,
  );
  rejectsWith(() => validateElectionConfig({ ...base, extra: 1 }), /unknown field "extra"/);
  const merged = mergeElectionConfig(base, {
    leaseSeconds: 3,
    renewIntervalMs: 1_000,
    preemptionAllowed: true,
  });
  assert.deepEqual(merged, { ...base, leaseSeconds: 3, renewIntervalMs: 1_000, preemptionAllowed: true });
  assert.deepEqual(decodeElectionConfig(encodeElectionConfig(merged), "c"), merged);
  assert.throws(() => decodeElectionConfig(new TextEncoder().encode('{"format":2}'), "c"), RecipeRecordError);
});

test("names, priorities and terms are checked", async () => {
  await withStore(async (db) => {
    rejectsWith(() => new Election(db, { subspace: "", candidateId: "a" }), /subspace must be/);
    rejectsWith(() => new Election(db, { subspace: "svc/", candidateId: "a" }), /subspace must be/);
    rejectsWith(() => new Election(db, { subspace: "svc", candidateId: "a/b" }), /candidate id must be/);
    rejectsWith(() => new Election(db, { subspace: "svc", candidateId: "" }), /candidate id must be/);
    const election = new Election(db, { subspace: "svc", candidateId: "a" });
    await assert.rejects(election.campaign("v", { priority: 1.5 }), RecipeConfigError);
    await assert.rejects(election.transferTo("x/y"), RecipeConfigError);
    assert.throws(() => guard("svc", 0n), RangeError);
    assert.equal(await db.get("svc/candidates/a"), null, "a refused campaign registers nothing");
    await election.close();
  });
});

test("configure creates the config, refuses bad changes and leaves the stored one alone", async () => {
  await withStore(async (db) => {
    const election = new Election(db, { subspace: "svc", candidateId: "a" });
    assert.equal(await db.get("svc/config"), null);
    const created = await election.config();
    assert.deepEqual(created, DEFAULT_ELECTION_CONFIG);
    const stored = await db.get("svc/config");
    assert.ok(stored !== null, "created when missing");

    const changed: ElectionConfig = await election.configure({ leaseSeconds: 4, renewIntervalMs: 500 });
    assert.equal(changed.leaseSeconds, 4);
    const before = await db.get("svc/config");
    await assert.rejects(election.configure({ renewIntervalMs: 2_000 }), /more than twice/);
    await assert.rejects(election.configure({ leaseSeconds: -1 }), RecipeConfigError);
    const after = await db.get("svc/config");
    assert.equal(after?.modRevision, before?.modRevision, "nothing written");
    assert.deepEqual(await election.config(), changed);
    await election.close();
  });
});

test("records round-trip and reject what they cannot read", () => {
  const leader = { holder: "a", term: 12n, priority: -3, lease: 99n, value: Uint8Array.of(0, 255, 7) };
  assert.deepEqual(decodeLeaderRecord(encodeLeaderRecord(leader), "l"), leader);
  const candidate = { id: "b", priority: 4, lease: 5n, value: new Uint8Array(0) };
  assert.deepEqual(decodeCandidateRecord(encodeCandidateRecord(candidate), "c"), candidate);
  const bad = ["not json", '{"format":1}', '{"format":9,"id":"b"}', "[]"];
  for (const text of bad) {
    assert.throws(() => decodeCandidateRecord(new TextEncoder().encode(text), "c"), RecipeRecordError);
  }
});

test("terms: fixed width, ordered like the numbers, strict decoding", () => {
  const terms = [0n, 1n, 9n, 10n, 123456789n, (1n << 63n) - 1n];
  for (let i = 1; i < terms.length; i++) {
    const low = Buffer.from(encodeTerm(terms[i - 1]!));
    const high = Buffer.from(encodeTerm(terms[i]!));
    assert.ok(Buffer.compare(low, high) < 0);
    assert.equal(decodeTerm(encodeTerm(terms[i]!)), terms[i]);
  }
  assert.equal(decodeTerm(undefined), 0n);
  assert.throws(() => decodeTerm(new TextEncoder().encode("12")), RecipeRecordError);
  assert.throws(() => encodeTerm(-1n), RangeError);
});
