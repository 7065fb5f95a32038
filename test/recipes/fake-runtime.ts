// A virtual clock for recipe unit tests: timers run only when the test advances time, in
// deadline order, so deadlines can be checked to the millisecond without real waiting.
import type { RecipeRuntime, RecipeTimer } from "../../src/recipes/index.js";

interface Pending {
  readonly at: number;
  readonly order: number;
  readonly callback: () => void;
  cancelled: boolean;
}

export class FakeRuntime implements RecipeRuntime {
  private now = 0;
  private order = 0;
  private timers: Pending[] = [];

  monotonicNow(): number {
    return this.now;
  }

  setTimeout(callback: () => void, delayMs: number): RecipeTimer {
    const timer: Pending = {
      at: this.now + Math.max(0, delayMs),
      order: this.order++,
      callback,
      cancelled: false,
    };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Moves the clock to `target`, running due timers in order and letting promises settle between them. */
  async advanceTo(target: number): Promise<void> {
    for (;;) {
      await settle();
      this.timers = this.timers.filter((timer) => !timer.cancelled);
      this.timers.sort((x, y) => x.at - y.at || x.order - y.order);
      const next = this.timers[0];
      if (next === undefined || next.at > target) break;
      this.timers.shift();
      this.now = Math.max(this.now, next.at);
      next.callback();
    }
    this.now = Math.max(this.now, target);
    await settle();
  }
}

/** Lets pending promise callbacks run (a bounded number of macrotask turns). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
