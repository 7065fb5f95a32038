/**
 * Hybrid logical clock timestamps, which Concord uses as MVCC revisions, and the one rule
 * that turns a leader's stamp into the revision of an applied command.
 *
 * A timestamp is a 64-bit value: wall-clock milliseconds in the high 48 bits, a logical
 * counter in the low 16. Comparing timestamps as integers compares (wall, logical)
 * lexicographically, and a logical counter that overflows carries into the milliseconds.
 * etcd clients read revisions as signed int64, so the top bit must stay clear: the largest
 * timestamp is 2^63 - 1 (wall milliseconds below 2^47, i.e. before the year 6429).
 *
 * Nothing here reads a clock: HybridClock is handed its physical clock, so the simulator can
 * drive it on virtual time.
 */

export const LOGICAL_BITS = 16n;
const LOGICAL_MASK = (1n << LOGICAL_BITS) - 1n;

/** The largest timestamp (and revision): int64's maximum, for etcd compatibility. */
export const MAX_TIMESTAMP = (1n << 63n) - 1n;
/** The largest wall-clock millisecond value a timestamp can carry. */
export const MAX_WALL_MILLIS = Number(MAX_TIMESTAMP >> LOGICAL_BITS);
export const MAX_LOGICAL = Number(LOGICAL_MASK);

export function isTimestamp(value: bigint): boolean {
  return value >= 0n && value <= MAX_TIMESTAMP;
}

export function makeTimestamp(wallMillis: number, logical: number): bigint {
  if (!Number.isSafeInteger(wallMillis) || wallMillis < 0 || wallMillis > MAX_WALL_MILLIS) {
    throw new RangeError(`wall milliseconds out of range: ${wallMillis}`);
  }
  if (!Number.isInteger(logical) || logical < 0 || logical > MAX_LOGICAL) {
    throw new RangeError(`logical counter out of range: ${logical}`);
  }
  return (BigInt(wallMillis) << LOGICAL_BITS) | BigInt(logical);
}

export function wallMillisOf(timestamp: bigint): number {
  return Number(timestamp >> LOGICAL_BITS);
}

export function logicalOf(timestamp: bigint): number {
  return Number(timestamp & LOGICAL_MASK);
}

function requireTimestamp(value: bigint, what: string): void {
  if (!isTimestamp(value)) throw new RangeError(`${what} is not a valid timestamp: ${value}`);
}

/**
 * The revision of a write command at apply time: `max(lastAppliedRevision + 1, stamped)`.
 *
 * Every replica applies the same entries in the same order from the same state, so this is
 * deterministic; it is strictly increasing, so revisions order writes even when a leader's
 * clock is behind its predecessor's; and because a new leader observes the last applied
 * revision before it stamps anything, stamps normally exceed it already and revisions keep
 * tracking real time across leader changes.
 */
export function revisionForApply(lastAppliedRevision: bigint, stampedTimestamp: bigint): bigint {
  requireTimestamp(lastAppliedRevision, "last applied revision");
  requireTimestamp(stampedTimestamp, "stamped timestamp");
  if (lastAppliedRevision === MAX_TIMESTAMP) {
    throw new RangeError("revision space exhausted: the last applied revision is the largest timestamp");
  }
  const next = lastAppliedRevision + 1n;
  return stampedTimestamp > next ? stampedTimestamp : next;
}

/**
 * Issues strictly increasing timestamps that follow the physical clock where it allows and
 * never fall to or below anything issued or observed, even when the physical clock steps
 * backwards.
 */
export class HybridClock {
  private latest = 0n;

  /** @param physicalNow milliseconds since the epoch (fractions are dropped). */
  constructor(private readonly physicalNow: () => number) {}

  /** The largest timestamp issued or observed so far. */
  get last(): bigint {
    return this.latest;
  }

  now(): bigint {
    const physical = BigInt(this.physicalMillis()) << LOGICAL_BITS;
    if (physical > this.latest) {
      this.latest = physical;
    } else {
      if (this.latest === MAX_TIMESTAMP) throw new RangeError("hybrid clock exhausted");
      this.latest += 1n;
    }
    return this.latest;
  }

  /** Remembers `timestamp` (from a peer, or the last applied revision) so now() exceeds it. */
  observe(timestamp: bigint): void {
    requireTimestamp(timestamp, "observed timestamp");
    if (timestamp > this.latest) this.latest = timestamp;
  }

  private physicalMillis(): number {
    const raw = this.physicalNow();
    const millis = Math.floor(raw);
    if (!Number.isSafeInteger(millis) || millis < 0 || millis > MAX_WALL_MILLIS) {
      throw new RangeError(`physical clock returned ${raw} ms, outside 0..${MAX_WALL_MILLIS}`);
    }
    return millis;
  }
}
