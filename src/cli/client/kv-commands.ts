/**
 * The key-value commands: put, get, del, txn and compaction. Each validates its arguments
 * and output format before it sends anything, sends one request (get, being a read, may fail
 * over to another endpoint; writes only when they never left) and prints the response.
 */
import { KV } from "../../api/etcd/gen/rpc_pb.js";
import type { ClientContext } from "./context.js";
import { UsageError } from "./errors.js";
import { printCompaction, printDelete, printGet, printPut, printTxn, requireFormat } from "./printers.js";
import {
  deleteRequest,
  parseCount,
  putRequest,
  rangeRequest,
  type DelFlags,
  type GetFlags,
  type PutFlags,
} from "./requests.js";
import { parseTxnScript } from "./txn-script.js";

const WRITE = { idempotent: false } as const;
const READ = { idempotent: true } as const;

export async function runPut(ctx: ClientContext, key: string, value: string, flags: PutFlags): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "put");
  const request = putRequest(key, value, flags);
  const { response } = await ctx.connect().unary(KV.method.put, request, WRITE);
  ctx.out(printPut(ctx.format, response));
}

export interface GetCommandFlags extends GetFlags {
  readonly printValueOnly?: boolean;
}

export async function runGet(
  ctx: ClientContext,
  key: string,
  rangeEnd: string | undefined,
  flags: GetCommandFlags,
): Promise<void> {
  if (flags.printValueOnly === true && ctx.format !== "simple")
    throw new UsageError("--print-value-only is only for the simple output format");
  const request = rangeRequest(key, rangeEnd, flags);
  const { response } = await ctx.connect().unary(KV.method.range, request, READ);
  ctx.out(
    printGet(ctx.format, response, {
      printValueOnly: flags.printValueOnly === true,
      countOnly: flags.countOnly === true,
    }),
  );
}

export async function runDel(
  ctx: ClientContext,
  key: string,
  rangeEnd: string | undefined,
  flags: DelFlags,
): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "del");
  const request = deleteRequest(key, rangeEnd, flags);
  const { response } = await ctx.connect().unary(KV.method.deleteRange, request, WRITE);
  ctx.out(printDelete(ctx.format, response));
}

const TXN_PROMPTS = [
  "compares:\n",
  "success requests (get, put, del):\n",
  "failure requests (get, put, del):\n",
];

/** Reads the script from stdin; with `interactive`, prompts for each section as etcdctl does. */
export async function runTxn(ctx: ClientContext, interactive: boolean): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "txn");
  const lines: string[] = [];
  let section = 0;
  if (interactive) ctx.out(TXN_PROMPTS[0]!);
  for await (const line of ctx.io.stdinLines()) {
    lines.push(line);
    if (line.trim() !== "") continue;
    section += 1;
    if (section === TXN_PROMPTS.length) break;
    if (interactive) ctx.out(`\n${TXN_PROMPTS[section]!}`);
  }
  const request = parseTxnScript(lines.join("\n"));
  const { response } = await ctx.connect().unary(KV.method.txn, request, WRITE);
  ctx.out(printTxn(ctx.format, response));
}

export async function runCompaction(
  ctx: ClientContext,
  revisionText: string,
  physical: boolean,
): Promise<void> {
  requireFormat(ctx.format, ["simple", "json"], "compaction");
  const revision = parseCount(revisionText, "revision");
  if (revision === 0n) throw new UsageError("revision must be above 0");
  const { response } = await ctx.connect().unary(KV.method.compact, { revision, physical }, WRITE);
  ctx.out(printCompaction(ctx.format, response, revision));
}
