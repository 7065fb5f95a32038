/**
 * `concord snapshot save <file>`: streams Maintenance.Snapshot from one endpoint into
 * `<file>.part`, fsyncs it, renames it over `<file>` and fsyncs the directory, so the file is
 * either absent or whole even after a crash; a failed transfer removes the part file. A
 * progress bar goes to stderr only when it is a terminal.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import cliProgress from "cli-progress";
import { Maintenance } from "../../api/etcd/gen/rpc_pb.js";
import type { ClientContext } from "./context.js";
import { CommandError, UsageError } from "./errors.js";
import { jsonText } from "./render.js";

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A byte-count progress bar on stderr, or nothing when stderr is not a terminal. */
export function progressBar(enabled: boolean, label: string) {
  if (!enabled) return { update: (_done: number, _total: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} bytes`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (done: number, total: number) => {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

export function fsyncDir(dir: string): void {
  const handle = openSync(dir, "r");
  try {
    fsyncSync(handle);
  } finally {
    closeSync(handle);
  }
}

export async function runSnapshotSave(ctx: ClientContext, fileArg: string): Promise<void> {
  if (fileArg === "") throw new UsageError("snapshot save needs a file name");
  if (ctx.options.endpoints.length !== 1)
    throw new UsageError(
      `snapshot must be requested to one selected node, not multiple [${ctx.options.endpoints.join(" ")}]`,
    );
  const file = resolve(ctx.io.cwd, fileArg);
  const partFile = `${file}.part`;
  let handle: number;
  try {
    handle = openSync(partFile, "w", 0o600);
  } catch (error) {
    throw new CommandError(`cannot create ${partFile}: ${errorText(error)}`);
  }
  const bar = progressBar(ctx.io.stderrIsTTY, "snapshot save");
  let written = 0;
  let revision = 0n;
  try {
    try {
      for await (const chunk of ctx.connect().serverStream(Maintenance.method.snapshot, {})) {
        if (chunk.header !== undefined && chunk.header.revision > revision) revision = chunk.header.revision;
        let offset = 0;
        while (offset < chunk.blob.length) offset += writeSync(handle, chunk.blob, offset);
        written += chunk.blob.length;
        bar.update(written, written + Number(chunk.remainingBytes));
      }
      fsyncSync(handle);
    } finally {
      closeSync(handle);
      bar.stop();
    }
    if (written === 0) throw new CommandError("the server sent an empty snapshot");
    renameSync(partFile, file);
    fsyncDir(dirname(file));
  } catch (error) {
    rmSync(partFile, { force: true });
    throw error;
  }
  if (ctx.format === "json") ctx.out(`${jsonText({ path: file, size: written, revision })}\n`);
  else ctx.out(`Snapshot saved at ${fileArg}\n`);
}
