/**
 * Pending ReadIndex requests on the leader. A read is safe to serve at index `i` (the commit
 * index when the request arrived) once a quorum has answered a heartbeat sent after the request:
 * that proves no other leader had been elected at that moment. Requests are confirmed in arrival
 * order, so one heartbeat round confirms every request queued before it — which is how many
 * reads share one round (see Raft.flushReadIndexBroadcast).
 */
import type { Message, NodeId } from "./types.js";

export interface PendingRead {
  readonly request: Message;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

/** ReadIndex contexts are compared as strings: a cheap, exact key for small byte strings. */
export function contextKey(context: Uint8Array): string {
  let key = "";
  for (const byte of context) key += String.fromCharCode(byte);
  return key;
}

export class ReadOnlyQueue {
  private readonly pending = new Map<string, PendingRead>();
  private readonly queue: string[] = [];

  get size(): number {
    return this.queue.length;
  }

  /** Queue a read at `index`; a second request with the same context is ignored. */
  add(index: number, request: Message): void {
    const key = contextKey(request.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { request, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Record that `from` answered the heartbeat carrying `context`; returns its acks so far. */
  recordAck(from: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const read = this.pending.get(contextKey(context));
    if (!read) return undefined;
    read.acks.add(from);
    return read.acks;
  }

  /** Remove and return every request up to and including the one with `context`. */
  confirmThrough(context: Uint8Array): PendingRead[] {
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const confirmed = this.queue.splice(0, at + 1).map((k) => {
      const read = this.pending.get(k)!;
      this.pending.delete(k);
      return read;
    });
    return confirmed;
  }

  lastContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.request.context;
  }
}
