/**
 * The process-backed parts of a client command's I/O for when the caller injects none: stdin
 * read line by line, the environment, SIGINT/SIGTERM as an AbortSignal, and whether stderr is
 * a terminal.
 */
import { createInterface } from "node:readline";
import type { ClientIo } from "./context.js";

export function processStdinLines(): AsyncIterable<string> {
  return createInterface({ input: process.stdin, crlfDelay: Infinity });
}

export function processInterrupt(): ReturnType<ClientIo["interrupt"]> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** The I/O parts the program's caller left out, taken from the process. */
export function processClientIo(): Pick<ClientIo, "stdinLines" | "env" | "interrupt" | "stderrIsTTY"> {
  return {
    stdinLines: processStdinLines,
    env: process.env,
    interrupt: processInterrupt,
    stderrIsTTY: process.stderr.isTTY === true,
  };
}
