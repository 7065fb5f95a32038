/**
 * Virtual time for the simulator: a priority queue of callbacks ordered by due time, then by
 * the order they were scheduled. Nothing here reads a real clock; time only moves when the
 * next event is taken off the queue, so a run is a pure function of its seed.
 */

/** A scheduled callback. `cancel()` keeps it from running (it is discarded lazily). */
export interface ScheduledEvent {
  readonly time: number;
  readonly seq: number;
  cancel(): void;
  readonly cancelled: boolean;
}

class QueuedEvent implements ScheduledEvent {
  cancelled = false;
  constructor(
    readonly time: number,
    readonly seq: number,
    readonly run: () => void,
  ) {}
  cancel(): void {
    this.cancelled = true;
  }
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

export class Scheduler {
  private readonly heap: QueuedEvent[] = [];
  private nextSeq = 0;
  private currentTime = 0;
  private executed = 0;

  /** The virtual time of the event being run (or of the last one run). */
  get now(): number {
    return this.currentTime;
  }

  /** How many events have run so far. */
  get eventsRun(): number {
    return this.executed;
  }

  /** Run `run` at virtual time `now + delay` (delay ≥ 0; ties keep scheduling order). */
  after(delay: number, run: () => void): ScheduledEvent {
    if (!(delay >= 0) || !Number.isFinite(delay)) {
      throw new Error(`scheduler: delay must be a finite non-negative number, got ${delay}`);
    }
    return this.at(this.currentTime + delay, run);
  }

  /** Run `run` at absolute virtual time `time`, which must not be in the past. */
  at(time: number, run: () => void): ScheduledEvent {
    if (time < this.currentTime) {
      throw new Error(`scheduler: cannot schedule at ${time}, the time is already ${this.currentTime}`);
    }
    const event = new QueuedEvent(time, this.nextSeq++, run);
    this.push(event);
    return event;
  }

  /** The due time of the next live event, or undefined when nothing is queued. */
  peekTime(): number | undefined {
    this.dropCancelledHead();
    return this.heap[0]?.time;
  }

  /** Run the next live event; returns false when the queue is empty. */
  step(): boolean {
    this.dropCancelledHead();
    const event = this.pop();
    if (event === undefined) return false;
    this.currentTime = event.time;
    this.executed++;
    event.run();
    return true;
  }

  private dropCancelledHead(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
  }

  private push(event: QueuedEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = event;
  }

  private pop(): QueuedEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
