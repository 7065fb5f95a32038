// Shared pieces of the CLI tests: temporary directories, a snapshot of a directory tree to
// prove "nothing changed on disk", a stub node starter and a signal source the test fires.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeLaunch, NodeStarter, RunningNode, SignalWaiter, StopSignal } from "../../src/cli/start.js";
import {
  resolveStartConfig,
  START_DEFAULTS,
  type StartConfig,
  type StartFlags,
} from "../../src/cli/start-config.js";

export function withTempDir<T>(body: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "concord-cli-"));
  try {
    return body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function withTempDirAsync<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "concord-cli-"));
  try {
    return await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every path under `root` with its file contents (directories map to "<dir>"). */
export function snapshotTree(root: string): Map<string, string> {
  const tree = new Map<string, string>();
  const walk = (path: string, relative: string) => {
    if (statSync(path).isDirectory()) {
      tree.set(relative, "<dir>");
      for (const entry of readdirSync(path).sort()) walk(join(path, entry), join(relative, entry));
    } else {
      tree.set(relative, readFileSync(path, "base64"));
    }
  };
  walk(root, ".");
  return tree;
}

export const FLAG_DEFAULTS: StartFlags = { ...START_DEFAULTS };

export function configFor(flags: Partial<StartFlags>, cwd = "/work"): StartConfig {
  return resolveStartConfig({ ...FLAG_DEFAULTS, ...flags }, cwd);
}

/** A starter that records launches and hands out nodes whose close is counted. */
export class StubStarter {
  readonly launches: NodeLaunch[] = [];
  closes = 0;
  failWith: Error | null = null;
  closeFailure: Error | null = null;
  private markStarted: () => void = () => {};
  /** Resolves once a node has been handed out. */
  readonly started = new Promise<void>((resolve) => {
    this.markStarted = resolve;
  });
  private markFailed: (error: Error) => void = () => {};
  /** Makes the running node report that it stopped on an unrecoverable error. */
  failRunningNode(error: Error): void {
    this.markFailed(error);
  }
  private markRemoved: () => void = () => {};
  /** Makes the running node report that it was removed from the cluster. */
  removeRunningNode(): void {
    this.markRemoved();
  }
  /** Runs inside the start, before it succeeds or fails (e.g. to write files like a real node). */
  duringStart: (launch: NodeLaunch) => void = () => {};

  readonly start: NodeStarter = (launch) => {
    this.launches.push(launch);
    this.duringStart(launch);
    if (this.failWith !== null) return Promise.reject(this.failWith);
    const node: RunningNode = {
      clientAddress: { host: launch.listenClient.host, port: launch.listenClient.port || 41000 },
      peerAddress: { host: launch.listenPeer.host, port: launch.listenPeer.port || 42000 },
      metricsAddresses: launch.listenMetrics.map((address, i) => ({
        host: address.host,
        port: address.port || 43000 + i,
      })),
      failed: new Promise<Error>((resolve) => {
        this.markFailed = resolve;
      }),
      removed: new Promise<void>((resolve) => {
        this.markRemoved = resolve;
      }),
      close: () => {
        this.closes += 1;
        return this.closeFailure === null ? Promise.resolve() : Promise.reject(this.closeFailure);
      },
    };
    this.markStarted();
    return Promise.resolve(node);
  };
}

/** A signal source that delivers a signal when the test says so (or at once, if pre-armed). */
export class ManualSignals {
  private deliver: ((signal: StopSignal) => void) | null = null;
  private pending: StopSignal | null = null;
  disposed = 0;

  constructor(immediate: StopSignal | null = null) {
    this.pending = immediate;
  }

  readonly waitForSignal = (): SignalWaiter => {
    const received = new Promise<StopSignal>((resolve) => {
      this.deliver = resolve;
      if (this.pending !== null) resolve(this.pending);
    });
    return {
      received,
      dispose: () => {
        this.disposed += 1;
      },
    };
  };

  fire(signal: StopSignal): void {
    if (this.deliver === null) throw new Error("nothing is waiting for a signal");
    this.deliver(signal);
  }
}
