/**
 * The `concord` process: runs the command line with the real stdout/stderr, working
 * directory, node starter and process signals, then exits with its code. A second SIGINT or
 * SIGTERM while the node is closing exits at once with code 1.
 */
import { EXIT_RUNTIME } from "./errors.js";
import { runCli } from "./program.js";
import type { SignalWaiter, StopSignal } from "./start.js";

const STOP_SIGNALS: readonly StopSignal[] = ["SIGINT", "SIGTERM"];

function processSignals(): SignalWaiter {
  let resolveReceived: (signal: StopSignal) => void = () => {};
  const received = new Promise<StopSignal>((resolve) => {
    resolveReceived = resolve;
  });
  let stopping = false;
  const onSignal = (signal: StopSignal) => {
    if (stopping) {
      process.stderr.write(`concord: ${signal} received again while closing; exiting now\n`);
      process.exit(EXIT_RUNTIME);
    }
    stopping = true;
    resolveReceived(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return {
    received,
    dispose: () => {
      for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
    },
  };
}

const writeStderr = (text: string) => {
  process.stderr.write(text);
};
const code = await runCli(process.argv.slice(2), {
  stdout: (text) => {
    process.stdout.write(text);
  },
  stderr: writeStderr,
  cwd: process.cwd(),
  // Loaded only to start a node: help, version and flag errors need neither lmdb's native
  // module nor the server code.
  startNode: async (launch) => {
    const { startEmbeddedNode, stderrLogger } = await import("./node-starter.js");
    return startEmbeddedNode(launch, stderrLogger(writeStderr));
  },
  waitForSignal: processSignals,
});
// Exit explicitly: a closed node may still hold a timer or socket that would keep the
// process alive. Writes to a pipe or file are synchronous on Linux, so nothing is cut short.
process.exit(code);
