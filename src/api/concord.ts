/**
 * `Concord`: the entry point. `Concord.open` runs a member in this process (embedded.ts),
 * `Concord.connect` talks to a cluster over the native protocol (client.ts); both return a
 * ConcordDb. The transaction builders ride along so `db.txn` reads naturally.
 */
import { connectRemote } from "./client.js";
import { openEmbedded } from "./embedded.js";
import { compareNumber, compareValue, deleteOp, getOp, putOp } from "./ops.js";

export const Concord = {
  open: openEmbedded,
  connect: connectRemote,
  compareValue,
  compareNumber,
  put: putOp,
  get: getOp,
  delete: deleteOp,
} as const;
