/**
 * How a client command fails and which exit code a script sees: 1 when the server or the
 * operation said no (printed as etcdctl does, `Error: etcdserver: ...`), 2 for a bad command
 * line (the program's usage code), 3 when no endpoint answered in time (unavailable, dial or
 * command timeout) — the request may or may not have taken effect.
 */
import { EXIT_RUNTIME, UsageError } from "../errors.js";

export { UsageError };

/** No endpoint could be reached, or the request timed out. */
export const EXIT_UNAVAILABLE = 3;

/** The server answered with an error, or the command's own work (a file, a data dir) failed. */
export class CommandError extends Error {
  override readonly name = "CommandError";
  readonly exitCode = EXIT_RUNTIME;
}

/** No endpoint answered: connection refused, dial timeout, command deadline exceeded. */
export class UnavailableError extends Error {
  override readonly name = "UnavailableError";
  readonly exitCode = EXIT_UNAVAILABLE;
}

export const EXIT_CODES_HELP = `Exit codes: 0 ok; 1 the server or the operation refused (stderr: "Error: <reason>");
2 usage error (bad flags or arguments); 3 unavailable: no endpoint answered within
--dial-timeout, or the request timed out after --command-timeout (its effect is unknown).`;
