/**
 * The "host:port" addresses of the client API's options, parsed once where they come in, and
 * the steps every server of this layer takes with one: listening on it, saying where it
 * listens once bound (port 0 resolved), and stopping.
 */
import type { Server } from "node:net";
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

/** Starts `server` listening at `address`; rejects with the listen error (e.g. EADDRINUSE). */
export function listenAt(server: Server, address: PeerAddress): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Where `server` is bound; throws naming `what` unless it is listening. */
export function boundAddress(server: Server, listening: boolean, what: string): PeerAddress {
  const address = server.address();
  if (!listening || address === null || typeof address === "string") {
    throw new Error(`${what} is not listening`);
  }
  return { host: address.address, port: address.port };
}

/**
 * Stops `server` accepting connections (nothing to stop unless `listening`); resolves once the
 * connections it still has are closed, so callers destroy theirs before awaiting it.
 */
export function stopListening(server: Server, listening: boolean): Promise<void> {
  return listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
}
