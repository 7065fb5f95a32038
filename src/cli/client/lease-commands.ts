/**
 * `concord lease grant|revoke|timetolive|list|keep-alive`, over the Lease service. Lease ids
 * are hex, as etcdctl prints and takes them. keep-alive renews every third of the TTL over
 * one bidirectional stream until SIGINT/SIGTERM (exit 0), or once with --once; a lease that
 * is gone ends it with exit 1.
 */
import { Lease } from "../../api/etcd/gen/rpc_pb.js";
import type { ClientContext } from "./context.js";
import { CommandError, UsageError } from "./errors.js";
import {
  printKeepAlive,
  printLeaseGrant,
  printLeaseList,
  printLeaseRevoke,
  printTimeToLive,
  requireFormat,
} from "./printers.js";
import { leaseHex } from "./render.js";
import { parseCount, parseLeaseId } from "./requests.js";

export async function runLeaseGrant(ctx: ClientContext, ttlText: string): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "lease grant");
  const ttl = parseCount(ttlText, "TTL");
  if (ttl === 0n) throw new UsageError("TTL must be above 0 seconds");
  const { response } = await ctx
    .connect()
    .unary(Lease.method.leaseGrant, { TTL: ttl }, { idempotent: false });
  if (response.error !== "") throw new CommandError(response.error);
  ctx.out(printLeaseGrant(ctx.format, response));
}

export async function runLeaseRevoke(ctx: ClientContext, idText: string): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "lease revoke");
  const id = parseLeaseId(idText);
  const { response } = await ctx.connect().unary(Lease.method.leaseRevoke, { ID: id }, { idempotent: false });
  ctx.out(printLeaseRevoke(ctx.format, id, response.header));
}

export async function runLeaseTimeToLive(
  ctx: ClientContext,
  idText: string,
  withKeys: boolean,
): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "lease timetolive");
  const id = parseLeaseId(idText);
  const { response } = await ctx
    .connect()
    .unary(Lease.method.leaseTimeToLive, { ID: id, keys: withKeys }, { idempotent: true });
  ctx.out(printTimeToLive(ctx.format, response, withKeys));
}

export async function runLeaseList(ctx: ClientContext): Promise<void> {
  const { response } = await ctx.connect().unary(Lease.method.leaseLeases, {}, { idempotent: true });
  ctx.out(printLeaseList(ctx.format, response));
}

const MIN_RENEW_MS = 500;

export async function runLeaseKeepAlive(ctx: ClientContext, idText: string, once: boolean): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "lease keep-alive");
  const id = parseLeaseId(idText);
  const interrupt = ctx.io.interrupt();
  const stream = await ctx.connect().bidi(Lease.method.leaseKeepAlive);
  let timer: NodeJS.Timeout | null = null;
  const stop = () => {
    if (timer !== null) clearTimeout(timer);
    stream.cancel();
  };
  interrupt.signal.addEventListener("abort", stop);
  try {
    stream.write({ ID: id });
    for await (const response of stream.responses()) {
      if (response.TTL <= 0n) throw new CommandError(`lease ${leaseHex(id)} expired or revoked`);
      ctx.out(printKeepAlive(ctx.format, response));
      if (once) return;
      const renewMs = Math.max(MIN_RENEW_MS, (Number(response.TTL) * 1000) / 3);
      timer = setTimeout(() => stream.write({ ID: id }), renewMs);
    }
    if (!interrupt.signal.aborted)
      throw new CommandError(`the keep-alive stream of lease ${leaseHex(id)} ended`);
  } catch (error) {
    if (!interrupt.signal.aborted) throw error;
  } finally {
    interrupt.signal.removeEventListener("abort", stop);
    interrupt.dispose();
    stop();
  }
}
