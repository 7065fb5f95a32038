// Member and cluster ids derived from names: stable across runs and processes, distinct per
// name and token, always a positive safe integer.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { clusterIdOf, formatMemberId, memberIdOf } from "../../src/cli/member-id.js";

test("member ids are pinned: the same name and token give the same id in every release", () => {
  // A changed derivation would give every existing data dir a new identity; this pin catches it.
  assert.equal(memberIdOf("default", "concord-cluster"), 0xa125154c3246);
  assert.equal(formatMemberId(memberIdOf("default", "concord-cluster")), "a125154c3246");
});

test("member ids depend on both the name and the token", () => {
  const base = memberIdOf("n1", "t");
  assert.notEqual(memberIdOf("n2", "t"), base);
  assert.notEqual(memberIdOf("n1", "u"), base);
  // The separator keeps ("n1x", "t") and ("n1", "xt")-style splits apart.
  assert.notEqual(memberIdOf("a", "bc"), memberIdOf("ab", "c"));
});

test("member ids are positive safe integers below 2^48", () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), (name, token) => {
      const id = memberIdOf(name, token);
      return Number.isSafeInteger(id) && id > 0 && id < 2 ** 48;
    }),
  );
});

test("the cluster id ignores member order but not the members or the token", () => {
  assert.equal(clusterIdOf("t", [3, 1, 2]), clusterIdOf("t", [1, 2, 3]));
  assert.notEqual(clusterIdOf("t", [1, 2]), clusterIdOf("t", [1, 2, 3]));
  assert.notEqual(clusterIdOf("t", [1, 2, 3]), clusterIdOf("u", [1, 2, 3]));
  assert.match(clusterIdOf("t", [1]), /^[0-9a-f]{16}$/);
});

test("member ids print as 12 hex digits", () => {
  assert.equal(formatMemberId(1), "000000000001");
});
