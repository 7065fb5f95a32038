// Member and cluster ids derived from names, tokens and peer URLs: stable across runs and processes, distinct per
// name and token, always a positive safe integer.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { etcdClusterId } from "../../src/api/etcd/context.js";
import { canonicalPeerUrl, joinedMemberIdOf } from "../../src/api/etcd/member-ids.js";
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

test("the cluster id depends on the token alone, so a joining member can compute it", () => {
  assert.equal(clusterIdOf("t"), clusterIdOf("t"));
  assert.notEqual(clusterIdOf("t"), clusterIdOf("u"));
  assert.match(clusterIdOf("t"), /^[0-9a-f]{16}$/);
});

test("a joined member's id comes from its first canonical peer URL and the cluster id", () => {
  const t = etcdClusterId(clusterIdOf("t"));
  const id = joinedMemberIdOf(t, ["http://127.0.0.1:2380"]);
  assert.ok(Number.isSafeInteger(id) && id > 0 && id < 2 ** 48);
  // The same place spelled differently, and the order of several URLs, do not matter.
  assert.equal(joinedMemberIdOf(t, ["HTTP://127.0.0.1:2380/"]), id);
  assert.equal(joinedMemberIdOf(t, ["http://127.0.0.2:2380", "http://127.0.0.1:2380"]), id);
  assert.notEqual(joinedMemberIdOf(etcdClusterId(clusterIdOf("u")), ["http://127.0.0.1:2380"]), id);
  assert.notEqual(joinedMemberIdOf(t, ["http://127.0.0.1:2381"]), id);
  assert.equal(canonicalPeerUrl("http://LocalHost"), "http://localhost:80");
  assert.equal(canonicalPeerUrl("http://[::1]:7"), "http://[::1]:7");
  for (const bad of ["", "127.0.0.1:2380", "ftp://h:1", "http://h:1/path", "http://u:p@h:1"]) {
    assert.throws(() => joinedMemberIdOf(t, [bad]), RangeError, bad);
  }
  assert.throws(() => joinedMemberIdOf(t, []), RangeError);
});

test("member ids print as 12 hex digits", () => {
  assert.equal(formatMemberId(1), "000000000001");
});
