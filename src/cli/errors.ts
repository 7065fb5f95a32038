/**
 * The two ways the `concord` command fails, and the exit code each maps to: a usage error
 * (bad flags; exit 2, like commander's own parse errors) and a runtime error (the flags were
 * fine but the data dir or the node said no; exit 1).
 */

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

/** The command line itself is wrong; nothing was touched. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly exitCode = EXIT_USAGE;
}

/** The command line was valid but the command could not do its job. */
export class RuntimeError extends Error {
  override readonly name = "RuntimeError";
  readonly exitCode = EXIT_RUNTIME;
}
