/**
 * Which keys a write command touches, as spans: the key of a put, the span of a delete-range,
 * and for a transaction every op's and every compare's key or span, nested transactions
 * included (both branches: which one runs is decided at apply time, so all of them must live
 * in the range the transaction is sent to).
 */
import { spanOfRequest, type KeySpan } from "../../kv/bounds.js";
import type { TxnOp, TxnRequest } from "../../kv/commands.js";

/** Every key / span a transaction names, nested transactions included, in the order met. */
export function txnSpans(txn: TxnRequest): KeySpan[] {
  const out: KeySpan[] = [];
  collectTxn(txn, out);
  return out;
}

function collectTxn(txn: TxnRequest, out: KeySpan[]): void {
  for (const compare of txn.compares) out.push(spanOfRequest(compare.key, compare.rangeEnd));
  for (const op of txn.success) collectOp(op, out);
  for (const op of txn.failure) collectOp(op, out);
}

function collectOp(op: TxnOp, out: KeySpan[]): void {
  switch (op.kind) {
    case "put":
      out.push(spanOfRequest(op.key, new Uint8Array(0)));
      return;
    case "range":
    case "deleteRange":
      out.push(spanOfRequest(op.key, op.rangeEnd));
      return;
    case "txn":
      collectTxn(op, out);
      return;
  }
}
