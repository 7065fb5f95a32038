// Free loopback ports for tests that start servers on fixed ports (process clusters, etcd,
// gRPC members, client commands): one implementation, so every test stays clear of the ports
// the kernel hands to outgoing connections, and no two test processes get the same port.
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One file per port handed out, shared by every test process of this machine. */
const RESERVATIONS_DIR = join(tmpdir(), "concord-test-ports");
/** A reservation older than this is taken to belong to a test run that has ended. */
const RESERVATION_MS = 20 * 60_000;

/**
 * Claims `port` for this process, unless another test process claimed it within
 * RESERVATION_MS. Why: a port probed free is handed to the test and used a moment later; test
 * files run in parallel processes, and two of them once drew the same port, so the second
 * member to bind it failed with EADDRINUSE (test/recipes/process-election.test.ts, 2026-11-23).
 */
function reserve(port: number): boolean {
  mkdirSync(RESERVATIONS_DIR, { recursive: true });
  const path = join(RESERVATIONS_DIR, String(port));
  try {
    writeFileSync(path, String(process.pid), { flag: "wx" });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  if (Date.now() - statSync(path).mtimeMs < RESERVATION_MS) return false;
  writeFileSync(path, String(process.pid));
  return true;
}

/**
 * A loopback port that was free a moment ago and that no other test process was given
 * recently, below the kernel's ephemeral range. A port the
 * kernel hands out by `listen(0)` lies in the range it also takes outgoing connections' local
 * ports from: while a killed member was down, some connection of another test took its port,
 * and the restart failed with EADDRINUSE. Falls back to `listen(0)` where the range is unknown.
 */
export async function freePort(): Promise<number> {
  const ephemeralStart = ephemeralPortRangeStart();
  if (ephemeralStart === undefined) return listenedPort(0);
  const low = Math.max(1024, ephemeralStart - 12_000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = low + Math.floor(Math.random() * (ephemeralStart - low));
    if (!reserve(candidate)) continue;
    try {
      return await listenedPort(candidate);
    } catch {
      // Taken: try another.
    }
  }
  return listenedPort(0);
}

/** The first port of Linux's ephemeral range, or undefined when it cannot be read. */
function ephemeralPortRangeStart(): number | undefined {
  try {
    const first = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
    );
    return Number.isInteger(first) && first > 2048 ? first : undefined;
  } catch {
    return undefined;
  }
}

/** Binds `port` (0: any) on 127.0.0.1, closes it again and returns the port it had. */
async function listenedPort(port: number): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("the probe socket has no port");
  return address.port;
}
