/**
 * Stable numeric identities derived from names, so every member of a static cluster computes
 * the same ids from the same flags with no coordination:
 *
 * - member id = the first 48 bits of SHA-256("concord-member\0" + token + "\0" + name), read as
 *   a big-endian unsigned integer. 48 bits keep it a JavaScript safe integer (the peer wire
 *   format's limit) while making a collision between two members of one cluster negligible
 *   (resolveStartConfig still rejects one). The token is part of the input so the same
 *   member name in two clusters gets two different ids.
 * - cluster id = hex SHA-256 of the token, truncated to 16 hex digits. The peer transport refuses
 *   connections from nodes with another cluster id. It depends on the token alone so that a
 *   member joining a running cluster (which knows the token, not the founders) can compute it;
 *   so two clusters need different tokens, as etcd advises. (Data dirs founded when the id also
 *   hashed the founding member ids keep the id recorded in their cluster.json.)
 * - a member added to a running cluster gets an id from its peer URL instead (MemberAdd has no
 *   name): `joinedMemberIdOf` in src/api/etcd/member-ids.ts, from the cluster id.
 */
import { createHash } from "node:crypto";
import type { NodeId } from "../raft/types.js";

const MEMBER_ID_BYTES = 6;

export function memberIdOf(name: string, clusterToken: string): NodeId {
  const digest = createHash("sha256").update(`concord-member\0${clusterToken}\0${name}`).digest();
  const id = digest.readUIntBE(0, MEMBER_ID_BYTES);
  // 0 is Raft's "no node"; a digest whose first six bytes are all zero is a 2^-48 event.
  if (id === 0) throw new Error(`member name "${name}" hashes to node id 0; choose another name`);
  return id;
}

export function clusterIdOf(clusterToken: string): string {
  return createHash("sha256").update(`concord-cluster\0${clusterToken}`).digest("hex").slice(0, 16);
}

/** Member ids print in hex, as etcd prints its member ids. */
export function formatMemberId(id: NodeId): string {
  return id.toString(16).padStart(MEMBER_ID_BYTES * 2, "0");
}
