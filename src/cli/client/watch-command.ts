/**
 * `concord watch`: one watch over the Watch service's bidirectional stream, printing events
 * as they arrive until SIGINT/SIGTERM (exit 0), `--max-events n` events (exit 0), or the
 * server cancels it (exit 1: compacted start revision, overload). When the stream breaks, the
 * watch is opened again on the next endpoint from the revision after the last one printed,
 * so no event is lost or printed twice; it gives up after every endpoint failed in a row.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Watch, type WatchCreateRequestSchema, type WatchResponse } from "../../api/etcd/gen/rpc_pb.js";
import type { ClientContext } from "./context.js";
import { CommandError, UnavailableError, UsageError } from "./errors.js";
import { printWatch } from "./printers.js";
import { keyRange, parseCount, type KeyRangeFlags } from "./requests.js";

export interface WatchFlags extends KeyRangeFlags {
  readonly rev?: string;
  readonly prevKv?: boolean;
  readonly maxEvents?: string;
}

type WatchCreate = MessageInitShape<typeof WatchCreateRequestSchema>;

/** How one stream ended: the watch is finished, or it should be opened again. */
type StreamEnd = { readonly kind: "done" } | { readonly kind: "broken"; readonly error: Error };

export async function runWatch(
  ctx: ClientContext,
  key: string | undefined,
  rangeEnd: string | undefined,
  flags: WatchFlags,
): Promise<void> {
  if (key === undefined) throw new UsageError("watch needs a key (or a prefix with --prefix)");
  const maxEvents =
    flags.maxEvents === undefined ? null : Number(parseCount(flags.maxEvents, "--max-events"));
  if (maxEvents === 0) throw new UsageError("--max-events must be above 0");
  const create: WatchCreate = {
    ...keyRange(key, rangeEnd, flags),
    startRevision: flags.rev === undefined ? 0n : parseCount(flags.rev, "--rev"),
    prevKv: flags.prevKv === true,
  };
  const interrupt = ctx.io.interrupt();
  const state = { printed: 0, nextRevision: create.startRevision ?? 0n };
  let failuresInRow = 0;
  try {
    for (;;) {
      const printedBefore = state.printed;
      const request = { ...create, startRevision: state.nextRevision };
      const end = await watchOnce(ctx, request, maxEvents, state, interrupt.signal);
      if (end.kind === "done") return;
      failuresInRow = state.printed > printedBefore ? 1 : failuresInRow + 1;
      if (failuresInRow >= ctx.options.endpoints.length) throw end.error;
    }
  } finally {
    interrupt.dispose();
  }
}

async function watchOnce(
  ctx: ClientContext,
  create: WatchCreate,
  maxEvents: number | null,
  state: { printed: number; nextRevision: bigint },
  signal: AbortSignal,
): Promise<StreamEnd> {
  if (signal.aborted) return { kind: "done" };
  let stream;
  try {
    stream = await ctx.connect().bidi(Watch.method.watch);
  } catch (error) {
    if (error instanceof UnavailableError) return { kind: "broken", error };
    throw error;
  }
  const onAbort = () => stream.cancel();
  signal.addEventListener("abort", onAbort);
  try {
    stream.write({ requestUnion: { case: "createRequest", value: create } });
    for await (const response of stream.responses()) {
      if (response.canceled) {
        const reason =
          response.cancelReason ||
          (response.compactRevision > 0n
            ? `etcdserver: mvcc: required revision has been compacted (compacted at ${response.compactRevision})`
            : "canceled by the server");
        throw new CommandError(`watch was canceled (${reason})`);
      }
      if (response.events.length === 0) continue;
      const limited = limitEvents(response, maxEvents === null ? null : maxEvents - state.printed);
      ctx.out(printWatch(ctx.format, limited));
      state.printed += limited.events.length;
      const last = limited.events[limited.events.length - 1];
      if (last?.kv !== undefined) state.nextRevision = last.kv.modRevision + 1n;
      if (maxEvents !== null && state.printed >= maxEvents) return { kind: "done" };
    }
    if (signal.aborted) return { kind: "done" };
    return { kind: "broken", error: new UnavailableError(`${stream.endpoint}: the watch stream ended`) };
  } catch (error) {
    if (signal.aborted) return { kind: "done" };
    if (error instanceof UnavailableError) return { kind: "broken", error };
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
    stream.cancel();
  }
}

/** The response with at most `room` events (null: no limit). */
function limitEvents(response: WatchResponse, room: number | null): WatchResponse {
  if (room === null || response.events.length <= room) return response;
  return { ...response, events: response.events.slice(0, room) };
}
