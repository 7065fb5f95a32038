// The encoding of the lease commands and their results: round trips, and the malformed
// values both sides refuse (negative lease ids, TTLs that are not safe integers).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DecodeError } from "../../src/kv/bytes.js";
import {
  decodeCommand,
  decodeEnvelope,
  encodeCommand,
  encodeEnvelope,
  leaseGrantRequest,
  leaseRevokeRequest,
} from "../../src/kv/commands.js";
import { decodeCommandResult, encodeCommandResult, type CommandResult } from "../../src/kv/results.js";

const leaseId = fc.bigInt({ min: 0n, max: (1n << 63n) - 1n });
const ttl = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });

function failure(decode: () => unknown): string {
  try {
    decode();
  } catch (error) {
    assert.ok(error instanceof DecodeError, String(error));
    return error.failure;
  }
  assert.fail("decoded");
}

describe("lease command encoding", () => {
  it("round-trips grants and revocations, alone and in envelopes", () => {
    fc.assert(
      fc.property(leaseId, ttl, (id, ttlSeconds) => {
        for (const command of [leaseGrantRequest(ttlSeconds, id), leaseRevokeRequest(id)]) {
          assert.deepEqual(decodeCommand(encodeCommand(command)), command);
          const envelope = { clientId: "c", sequence: 3, timestamp: 9n, command };
          assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
        }
      }),
    );
  });

  it("refuses negative lease ids and TTLs that are not safe integers on both sides", () => {
    assert.throws(() => encodeCommand(leaseRevokeRequest(-1n)), RangeError);
    assert.throws(() => encodeCommand(leaseGrantRequest(10, -1n)), RangeError);
    assert.throws(() => encodeCommand(leaseGrantRequest(1.5)), RangeError);
    const revoke = encodeCommand(leaseRevokeRequest(1n));
    revoke[2] = 0x80; // version, kind, then the id's top byte
    assert.equal(
      failure(() => decodeCommand(revoke)),
      "invalid-field",
    );
    const grant = encodeCommand(leaseGrantRequest(1, 1n));
    grant[10] = 0x7f; // version, kind, 8 id bytes, then the TTL's top byte
    assert.equal(
      failure(() => decodeCommand(grant)),
      "invalid-field",
    );
  });
});

describe("lease result encoding", () => {
  it("round-trips grant and revoke responses", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: (1n << 63n) - 1n }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        (id, ttlSeconds) => {
          const results: CommandResult[] = [
            { revision: 4n, response: { kind: "leaseGrant", id, ttlSeconds } },
            { revision: 4n, response: { kind: "leaseRevoke" } },
          ];
          for (const result of results)
            assert.deepEqual(decodeCommandResult(encodeCommandResult(result)), result);
        },
      ),
    );
  });

  it("refuses a granted id or TTL that no grant can produce", () => {
    const encoded = encodeCommandResult({
      revision: 4n,
      response: { kind: "leaseGrant", id: 1n, ttlSeconds: 5 },
    });
    const zeroId = encoded.slice();
    zeroId.fill(0, 10, 18); // version, revision, kind, then the id
    assert.equal(
      failure(() => decodeCommandResult(zeroId)),
      "invalid-field",
    );
    const zeroTtl = encoded.slice();
    zeroTtl.fill(0, 18, 26);
    assert.equal(
      failure(() => decodeCommandResult(zeroTtl)),
      "invalid-field",
    );
  });
});
