/**
 * What `db.watch()` returns, and its remote implementation: an async iterable of a watch's
 * responses fed by the connection it was opened on. Iteration ends after a cancelled response
 * (the store's reason and the revision to resume after are in it) or after `cancel()`; it
 * throws when the watch failed or its connection was lost (resume from the last response's
 * revision + 1). Leaving a for-await loop early cancels the watch.
 */
import type { WatchResponse } from "../kv/watch.js";

export interface ConcordWatch extends AsyncIterable<WatchResponse> {
  /** Stops the watch; responses not read yet are dropped and iteration ends. */
  cancel(): void;
}

export class RemoteWatch implements ConcordWatch {
  private readonly queue: WatchResponse[] = [];
  private waiter: (() => void) | null = null;
  private finished = false;
  private failure: Error | null = null;
  private iterated = false;

  /** @param cancelRemote tells the server to stop the watch */
  constructor(private readonly cancelRemote: () => void) {}

  /** A response arrived. */
  push(response: WatchResponse): void {
    if (this.finished) return;
    this.queue.push(response);
    if (response.canceled) this.finished = true;
    this.wake();
  }

  /** The watch failed, or its connection broke; iteration throws `error` after the queued responses. */
  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.wake();
  }

  cancel(): void {
    if (this.finished && this.queue.length === 0) return;
    const wasFinished = this.finished;
    this.finished = true;
    this.queue.length = 0;
    this.failure = null;
    if (!wasFinished) this.cancelRemote();
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchResponse> {
    if (this.iterated) throw new Error("a watch can be iterated once");
    this.iterated = true;
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next !== undefined) {
          yield next;
          if (next.canceled) return;
          continue;
        }
        if (this.failure !== null) throw this.failure;
        if (this.finished) return;
        await new Promise<void>((resolve) => (this.waiter = resolve));
      }
    } finally {
      this.cancel();
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}
