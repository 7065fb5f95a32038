// Shared pieces of the client API tests: decoding values, free ports, bounded waits.
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const decoder = new TextDecoder();

export function text(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : decoder.decode(bytes);
}

/** A port that was free a moment ago: bound on port 0 and released. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port was bound");
  return address.port;
}

/** Polls `condition` until it holds; fails (never hangs) after a bounded number of tries. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let tries = 0; tries < 3_000; tries++) {
    if (await condition()) return;
    await sleep(10);
  }
  throw new Error(`gave up waiting for ${what}`);
}
