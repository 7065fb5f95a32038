/**
 * PullStream: the consumer side of a watch-like stream whose responses are pulled from a
 * `poll()` — what `Watcher` (one range) and `RoutedWatch` (many) share. The owner calls
 * `pump()` whenever something became pollable and `endAll()` once closed. A consumer takes the
 * responses one of two ways, for the stream's whole life:
 *
 * - iteration (`iterator()`): `next()` takes what `poll()` has now, else waits; every waiting
 *   consumer is answered in order and none waits on a closed stream;
 * - push (`listen(wake)`): `wake` is called from a microtask after anything became pollable
 *   (one call for any number of pumps before it runs), and the consumer polls until `poll()`
 *   has nothing. It skips a promise, an iterator result and an async resumption per response
 *   and per hop, which a watch fan-out pays for every event of every watch (a routed watch
 *   over a range watch, under a Watch stream, is two hops).
 */
export class PullStream<T> {
  private readonly waiters: ((result: IteratorResult<T>) => void)[] = [];
  private mode: "none" | "iterated" | "pushed" = "none";
  private wake: (() => void) | null = null;
  private wakeQueued = false;

  constructor(
    private readonly poll: () => T | undefined,
    private readonly isClosed: () => boolean,
    private readonly cancel: () => void,
  ) {}

  iterator(): AsyncIterator<T> {
    this.take("iterated");
    return {
      next: () => this.next(),
      return: () => {
        this.cancel();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** Push mode: `wake` is called (from a microtask) now and whenever the stream may have more. */
  listen(wake: () => void): void {
    this.take("pushed");
    this.wake = wake;
    this.queueWake();
  }

  /** Hands whatever can be had now to waiting consumers; ends them if the stream is closed. */
  pump(): void {
    if (this.mode === "pushed") {
      this.queueWake();
      return;
    }
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

  /** Answers every waiting consumer "done" (a listener learns of the end from its last response, or ended it). */
  endAll(): void {
    for (const waiter of this.waiters.splice(0)) waiter({ done: true, value: undefined });
  }

  private take(mode: "iterated" | "pushed"): void {
    if (this.mode !== "none") throw new Error("a watch is consumed once: iterated or listened to");
    this.mode = mode;
  }

  private queueWake(): void {
    if (this.wakeQueued || this.isClosed()) return;
    this.wakeQueued = true;
    // The deferral iteration has too (a resolved promise's continuation): the owner pumps in
    // the middle of its own step (a publish during an apply), and the consumer runs after it.
    void Promise.resolve().then(() => {
      this.wakeQueued = false;
      if (!this.isClosed()) this.wake!();
    });
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
