// Running Debian's `etcdctl` (etcd-client 3.4) against a cluster: one-shot commands with a
// bounded run time that return stdout, stderr and the exit code; long-running children (watch,
// lease keep-alive, lock, elect) whose output lines a test waits on; parsing etcdctl's `-w json`
// output without losing the precision of 64-bit numbers (Concord's revisions are HLC
// timestamps, far above 2^53). Nothing here knows about Concord.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { within } from "../process/process-cluster.js";

/** A one-shot etcdctl command gets this long before it is SIGKILLed and reported as timed out. */
const DEFAULT_RUN_MS = 30_000;
/** etcdctl's own per-request timeout (its default 5 s is short on a loaded two-core machine). */
const COMMAND_TIMEOUT = "15s";
const DIAL_TIMEOUT = "5s";
const CHILD_EXIT_WAIT_MS = 20_000;

export interface EtcdctlResult {
  readonly stdout: string;
  readonly stderr: string;
  /** The exit code; null when the process was killed (see `timedOut`). */
  readonly code: number | null;
  readonly timedOut: boolean;
}

export interface EtcdctlOptions {
  readonly endpoints: readonly string[];
  /** Written to etcdctl's stdin, which is then closed (`txn -i`). */
  readonly stdin?: string;
  readonly timeoutMs?: number;
}

/** True when an `etcdctl` binary answers `etcdctl version`. */
export function etcdctlInstalled(): boolean {
  const probe = spawnSync("etcdctl", ["version"], { env: etcdctlEnv(), encoding: "utf8", timeout: 10_000 });
  return probe.status === 0 && probe.stdout.includes("etcdctl version: 3.");
}

/**
 * Why the etcdctl tests cannot run here, or undefined when they can. Under CI they always run
 * (the CI script installs etcd-client), so a missing binary fails them there instead.
 */
export function etcdctlSkipReason(): string | undefined {
  if (etcdctlInstalled() || process.env["CI"] !== undefined) return undefined;
  return "etcdctl is not installed (Debian package etcd-client; .ci/run installs it under CI)";
}

/** The environment etcdctl runs in: API v3, and none of the caller's ETCDCTL_* settings. */
function etcdctlEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("ETCDCTL_")) env[name] = value;
  }
  env["ETCDCTL_API"] = "3";
  return env;
}

function argv(endpoints: readonly string[], args: readonly string[]): string[] {
  if (endpoints.length === 0) throw new Error("etcdctl needs at least one endpoint");
  return [
    `--endpoints=${endpoints.join(",")}`,
    `--command-timeout=${COMMAND_TIMEOUT}`,
    `--dial-timeout=${DIAL_TIMEOUT}`,
    ...args,
  ];
}

/** Runs one etcdctl command to its end (or its time limit) and returns what it printed. */
export async function etcdctl(args: readonly string[], options: EtcdctlOptions): Promise<EtcdctlResult> {
  const child = spawn("etcdctl", argv(options.endpoints, args), {
    env: etcdctlEnv(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on("error", () => {
    // etcdctl may exit before reading its input; what it printed says why.
  });
  child.stdin.end(options.stdin ?? "");
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, options.timeoutMs ?? DEFAULT_RUN_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode) => resolve(exitCode));
  }).finally(() => clearTimeout(timer));
  return { stdout, stderr, code, timedOut };
}

/** Describes a result for an assertion message. */
export function explain(args: readonly string[], result: EtcdctlResult): string {
  const ending = result.timedOut ? "timed out" : `exit ${result.code}`;
  return `etcdctl ${args.join(" ")} (${ending})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
}

/** Runs a command that must succeed and returns its stdout; throws with everything it printed otherwise. */
export async function etcdctlOk(args: readonly string[], options: EtcdctlOptions): Promise<string> {
  const result = await etcdctl(args, options);
  if (result.code !== 0) throw new Error(`expected success: ${explain(args, result)}`);
  return result.stdout;
}

/** An etcdctl process that runs until stopped (watch, lease keep-alive, lock, elect). */
export class EtcdctlChild {
  private stdoutText = "";
  private stderrText = "";
  private readonly exitedPromise: Promise<number | null>;
  private exitCode: number | null | undefined;
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly args: readonly string[],
  ) {
    child.stdout?.on("data", (chunk: Buffer) => {
      this.stdoutText += chunk.toString();
      this.notify();
    });
    child.stderr?.on("data", (chunk: Buffer) => (this.stderrText += chunk.toString()));
    this.exitedPromise = new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code) => {
        this.exitCode = code;
        this.notify();
        resolve(code);
      });
    });
  }

  static spawn(args: readonly string[], endpoints: readonly string[]): EtcdctlChild {
    const child = spawn("etcdctl", argv(endpoints, args), {
      env: etcdctlEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new EtcdctlChild(child, args);
  }

  get stdout(): string {
    return this.stdoutText;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** Complete lines printed so far. */
  get lines(): string[] {
    const lines = this.stdoutText.split("\n");
    lines.pop();
    return lines;
  }

  /** Waits until `ready(stdout)` holds, or fails (naming `what` and the output) after `ms`. */
  async waitFor(what: string, ready: (stdout: string) => boolean, ms: number): Promise<void> {
    let check = () => {};
    const satisfied = new Promise<void>((resolve, reject) => {
      check = () => {
        if (ready(this.stdoutText)) resolve();
        else if (this.exitCode !== undefined) {
          reject(new Error(`etcdctl ${this.args.join(" ")} exited (${this.exitCode}) before ${what}`));
        }
      };
      this.listeners.add(check);
      check();
    });
    try {
      await within(satisfied, ms, what);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nstdout: ${this.stdoutText}\nstderr: ${this.stderrText}`, {
        cause: error,
      });
    } finally {
      this.listeners.delete(check);
    }
  }

  /** Sends `signal` (SIGINT lets lock/elect release what they hold) and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGINT"): Promise<number | null> {
    if (this.exitCode === undefined) this.child.kill(signal);
    return within(this.exitedPromise, CHILD_EXIT_WAIT_MS, `etcdctl ${this.args.join(" ")} to exit`);
  }

  /** SIGKILLs the process if it still runs (for `finally`). */
  kill(): void {
    if (this.exitCode === undefined) this.child.kill("SIGKILL");
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/**
 * Parses etcdctl's JSON output, turning every integer of 16 or more digits (revisions, member
 * and cluster ids, lease ids) into a decimal string, so nothing is rounded to a double.
 */
export function parseEtcdJson(text: string): unknown {
  let quoted = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] ?? "";
    if (inString) {
      quoted += char;
      if (char === "\\") quoted += text[++i] ?? "";
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
      quoted += char;
    } else if (/[-0-9]/.test(char)) {
      let end = i + 1;
      while (end < text.length && /[0-9.eE+-]/.test(text[end] ?? "")) end++;
      const token = text.slice(i, end);
      quoted += /^-?[0-9]{16,}$/.test(token) ? `"${token}"` : token;
      i = end - 1;
    } else {
      quoted += char;
    }
  }
  return JSON.parse(quoted);
}

/** A JSON integer read by parseEtcdJson (a number or a long decimal string) as a bigint. */
export function big(value: unknown): bigint {
  if (typeof value === "number" && Number.isInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^-?[0-9]+$/.test(value)) return BigInt(value);
  throw new Error(`expected an integer, got ${JSON.stringify(value)}`);
}

/** Follows `path` (property names and array indices) into a parsed JSON value. */
export function field(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const step of path) {
    if (current === null || typeof current !== "object") {
      throw new Error(`no ${String(step)} in ${JSON.stringify(current)}`);
    }
    current = (current as Record<string | number, unknown>)[step];
  }
  return current;
}

export function base64(text: string): string {
  return Buffer.from(text).toString("base64");
}
