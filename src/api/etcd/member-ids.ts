/**
 * The id of a member added to a running cluster (etcd's MemberAdd, `concord start
 * --initial-cluster-state existing`): derived from the cluster id (etcd's uint64; `concord
 * start` derives it from the cluster token alone) and the member's first peer URL in canonical form, so the cluster that adds it and the member that starts with that
 * peer URL agree on the id without talking. (Founding members derive theirs from their name;
 * MemberAdd carries no name.) Also the canonical form of peer URLs, used to compare them.
 *
 * id = the first 48 bits of SHA-256("concord-joined-member\0" + 16 hex digits of the cluster id +
 * "\0" + canonical URL):
 * a positive safe integer, as every Concord member id.
 */
import { createHash } from "node:crypto";

const MEMBER_ID_BYTES = 6;

/**
 * `http://host:port` (or https) with the port spelled out and the host as URL parsing writes
 * it (lower case, IPv6 in brackets). Throws RangeError for anything but a bare http(s) URL.
 */
export function canonicalPeerUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new RangeError(`"${text}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new RangeError(`"${text}" is not an http:// or https:// URL`);
  }
  if (
    url.hostname === "" ||
    url.username !== "" ||
    url.password !== "" ||
    (url.pathname !== "/" && url.pathname !== "") ||
    url.search !== "" ||
    url.hash !== ""
  ) {
    throw new RangeError(`"${text}" must be just scheme://host:port`);
  }
  const port = url.port !== "" ? url.port : url.protocol === "http:" ? "80" : "443";
  return `${url.protocol}//${url.hostname}:${port}`;
}

/** The id of a member added with `peerUrls` (at least one) to the cluster `clusterId`. */
export function joinedMemberIdOf(clusterId: bigint, peerUrls: readonly string[]): number {
  const cluster = clusterId.toString(16).padStart(16, "0");
  const first = peerUrls.map(canonicalPeerUrl).sort()[0];
  if (first === undefined) throw new RangeError("a member needs at least one peer URL");
  const digest = createHash("sha256").update(`concord-joined-member\0${cluster}\0${first}`).digest();
  const id = digest.readUIntBE(0, MEMBER_ID_BYTES);
  if (id === 0) throw new RangeError(`peer URL ${first} hashes to member id 0; use another`);
  return id;
}
