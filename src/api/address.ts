/** The "host:port" addresses of the client API's options, parsed once where they come in. */
import type { PeerAddress } from "../transport/tcp.js";

/** Parses "host:port" (the host may be a bracketed IPv6 address). */
export function parseAddress(address: string): PeerAddress {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !Number.isInteger(port) || port > 65_535) {
    throw new RangeError(`"${address}" is not a host:port address`);
  }
  return { host, port };
}
