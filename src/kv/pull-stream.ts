/**
 * PullStream: the async-iterator side of a watch-like stream whose responses are pulled from
 * a `poll()` — what `Watcher` (one range) and `RoutedWatch` (many) share. A consumer's `next()`
 * takes what `poll()` has now, else waits; the owner calls `pump()` whenever something became
 * pollable and `endAll()` once closed, so every waiting consumer is answered in order and none
 * waits on a closed stream.
 */
export class PullStream<T> {
  private readonly waiters: ((result: IteratorResult<T>) => void)[] = [];

  constructor(
    private readonly poll: () => T | undefined,
    private readonly isClosed: () => boolean,
    private readonly cancel: () => void,
  ) {}

  iterator(): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.cancel();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** Hands whatever can be had now to waiting consumers; ends them if the stream is closed. */
  pump(): void {
    while (this.waiters.length > 0) {
      const response = this.poll();
      if (response !== undefined) {
        this.waiters.shift()!({ done: false, value: response });
        continue;
      }
      if (this.isClosed()) this.endAll();
      return;
    }
  }

  /** Answers every waiting consumer "done". */
  endAll(): void {
    for (const waiter of this.waiters.splice(0)) waiter({ done: true, value: undefined });
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.waiters.length === 0) {
      const response = this.poll();
      if (response !== undefined) return Promise.resolve({ done: false, value: response });
    }
    if (this.isClosed()) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
