/**
 * Deleting a destroyed range's store from the node's state-machine engine: every key under
 * the store's namespace, in one engine write, then synced. NodeHost.destroyReplica calls it
 * after the range's Raft storage is dropped (see host.ts for the order and why).
 */
import { WriteBatch } from "../kv/engine.js";
import { KeyLayout } from "../kv/keys.js";
import type { StateMachineStorage } from "./options.js";

/** The first range: it holds the catalog and the system span, and is never merged away. */
export const FIRST_RANGE_ID = 1;

/**
 * Deletes every key of the store that `storage` describes and makes the deletion durable;
 * returns how many keys went. A store without a namespace owns its whole engine (one engine
 * per range), so then every key goes.
 */
export async function deleteStoreNamespace(storage: StateMachineStorage): Promise<number> {
  const layout = new KeyLayout(storage.storeOptions?.namespace ?? new Uint8Array(0));
  const batch = new WriteBatch();
  const view = storage.kv.view();
  try {
    for (const { key } of view.scan(layout.start, layout.end)) batch.delete(key.slice());
  } finally {
    view.release();
  }
  if (batch.size === 0) return 0;
  storage.kv.write(batch);
  await storage.sync();
  return batch.size;
}
