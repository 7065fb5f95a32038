/**
 * What every client command runs with: the injected I/O (stdout, stderr, stdin, environment,
 * interrupt signal, whether stderr is a terminal) and etcdctl's global options resolved —
 * `--endpoints` (else ETCDCTL_ENDPOINTS, else 127.0.0.1:2379), `--dial-timeout`,
 * `--command-timeout` (Go durations: 2s, 500ms, 1m30s) and `-w/--write-out`.
 */
import { UsageError } from "./errors.js";
import { OUTPUT_FORMATS, type OutputFormat } from "./printers.js";
import { EtcdConnection } from "./rpc.js";

export interface ClientIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Standard input line by line, without line ends (txn scripts). */
  readonly stdinLines: () => AsyncIterable<string>;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Resolves relative paths (snapshot files, data dirs). */
  readonly cwd: string;
  /** A signal aborted on SIGINT/SIGTERM while a long command (watch, keep-alive) runs. */
  readonly interrupt: () => { readonly signal: AbortSignal; readonly dispose: () => void };
  /** Progress bars are drawn only on a terminal. */
  readonly stderrIsTTY: boolean;
}

/** The global flags as commander hands them over. */
export interface GlobalFlags {
  readonly endpoints?: string;
  readonly dialTimeout: string;
  readonly commandTimeout: string;
  readonly writeOut: string;
}

export const GLOBAL_DEFAULTS = {
  endpoints: "127.0.0.1:2379",
  dialTimeout: "2s",
  commandTimeout: "5s",
  writeOut: "simple",
} as const;

export interface GlobalOptions {
  readonly endpoints: readonly string[];
  readonly dialTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly format: OutputFormat;
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration ("2s", "500ms", "1m30s") in milliseconds; must be positive. */
export function parseDuration(value: string, flag: string): number {
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < value.length) {
    part.lastIndex = at;
    const match = part.exec(value);
    if (match === null) break;
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    at = part.lastIndex;
  }
  if (value.length === 0 || at !== value.length || !(total > 0))
    throw new UsageError(`bad ${flag} "${value}": expected a positive duration such as 2s, 500ms or 1m30s`);
  return total;
}

/** "a:1, http://b:2" → ["a:1", "http://b:2"]; each must name a port. */
export function parseEndpoints(value: string): string[] {
  const endpoints = value
    .split(",")
    .map((endpoint) => endpoint.trim())
    .filter((endpoint) => endpoint !== "");
  if (endpoints.length === 0) throw new UsageError("--endpoints names no endpoint");
  for (const endpoint of endpoints) {
    if (
      !/^(https?:\/\/)?[^\s/:]+:\d{1,5}\/?$/.test(endpoint) &&
      !/^(https?:\/\/)?\[[0-9a-fA-F:]+\]:\d{1,5}\/?$/.test(endpoint)
    )
      throw new UsageError(`bad endpoint "${endpoint}": expected host:port or http://host:port`);
    if (endpoint.startsWith("https://"))
      throw new UsageError(`bad endpoint "${endpoint}": TLS is not supported`);
  }
  return endpoints;
}

export function resolveGlobals(flags: GlobalFlags, env: ClientIo["env"]): GlobalOptions {
  const format = flags.writeOut as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format))
    throw new UsageError(`bad --write-out "${flags.writeOut}": one of ${OUTPUT_FORMATS.join(", ")}`);
  const fromEnv = env["ETCDCTL_ENDPOINTS"];
  const endpoints =
    flags.endpoints ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : GLOBAL_DEFAULTS.endpoints);
  return {
    endpoints: parseEndpoints(endpoints),
    dialTimeoutMs: parseDuration(flags.dialTimeout, "--dial-timeout"),
    commandTimeoutMs: parseDuration(flags.commandTimeout, "--command-timeout"),
    format,
  };
}

/** A command's running context: I/O, options and a lazily opened connection. */
export class ClientContext {
  private connection: EtcdConnection | null = null;

  constructor(
    readonly io: ClientIo,
    readonly options: GlobalOptions,
  ) {}

  get format(): OutputFormat {
    return this.options.format;
  }

  out(text: string): void {
    this.io.stdout(text);
  }

  /** The connection over --endpoints (or `endpoints`, e.g. every member's for --cluster). */
  connect(endpoints: readonly string[] = this.options.endpoints): EtcdConnection {
    if (endpoints !== this.options.endpoints)
      return this.track(new EtcdConnection({ ...this.options, endpoints }));
    this.connection ??= this.track(new EtcdConnection(this.options));
    return this.connection;
  }

  private readonly opened: EtcdConnection[] = [];

  private track(connection: EtcdConnection): EtcdConnection {
    this.opened.push(connection);
    return connection;
  }

  close(): void {
    for (const connection of this.opened) connection.close();
  }
}
