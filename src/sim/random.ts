/**
 * The simulator's only source of randomness: a seeded xoshiro128** generator.
 *
 * Every random choice in a simulation run descends from one seed. Sub-systems draw from their
 * own labelled sub-streams (`fork("network")`, `fork("faults/crash")`, ...) derived from the
 * parent's seed key rather than from its position in the stream, so adding a draw in one
 * sub-system never shifts the numbers another sub-system sees.
 */
import type { RandomSource } from "../raft/types.js";

const UINT32_RANGE = 0x1_0000_0000;

/** MurmurHash3's 32-bit finaliser: a cheap bijective mix with good avalanche. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a label; only used to name sub-streams. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Four words of generator key, never all zero (xoshiro's one forbidden state). */
type SeedKey = readonly [number, number, number, number];

function keyFromSeed(seed: number): SeedKey {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`seed must be a non-negative safe integer, got ${seed}`);
  }
  const low = seed >>> 0;
  const high = Math.floor(seed / UINT32_RANGE) >>> 0;
  // Every key word depends on all bits of the seed (xoshiro's first outputs depend on single
  // words), the way splitmix derives a sequence from one counter.
  const base = mix32(low ^ mix32(high ^ 0x6a09e667));
  const word = (i: number): number => mix32((base + Math.imul(i, 0x9e3779b9)) >>> 0);
  return nonZeroKey([word(1), word(2), word(3), word(4)]);
}

function nonZeroKey(key: SeedKey): SeedKey {
  return key[0] === 0 && key[1] === 0 && key[2] === 0 && key[3] === 0 ? [1, 0, 0, 0] : key;
}

export class SeededRandom implements RandomSource {
  private key: SeedKey;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    this.key = keyFromSeed(seed);
    [this.s0, this.s1, this.s2, this.s3] = this.key;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniformly distributed integer in [0, bound), without modulo bias. */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > UINT32_RANGE) {
      throw new Error(`nextInt bound must be an integer in [1, 2^32], got ${bound}`);
    }
    const limit = UINT32_RANGE - (UINT32_RANGE % bound);
    for (;;) {
      const draw = this.nextUint32();
      if (draw < limit) return draw % bound;
    }
  }

  /** A uniformly distributed integer in [low, high] (both inclusive). */
  intBetween(low: number, high: number): number {
    if (high < low) throw new Error(`intBetween: empty range [${low}, ${high}]`);
    return low + this.nextInt(high - low + 1);
  }

  /** A float in [0, 1) with 53 bits of precision. */
  float(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** True with probability `p` (p ≤ 0 never draws true, p ≥ 1 always does). */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.float() < p;
  }

  /** An exponentially distributed delay with the given mean, rounded up to a whole unit. */
  exponential(mean: number): number {
    return Math.max(1, Math.ceil(-Math.log(1 - this.float()) * mean));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty array");
    return items[this.nextInt(items.length)]!;
  }

  /** A new array with the items in a uniformly random order (Fisher–Yates). */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = out[i]!;
      out[i] = out[j]!;
      out[j] = tmp;
    }
    return out;
  }

  /**
   * An independent generator for the named sub-stream. It depends only on this generator's
   * seed key and the label, never on how many numbers were drawn so far, so the same label
   * always yields the same stream.
   */
  fork(label: string): SeededRandom {
    const h = hashLabel(label);
    const [k0, k1, k2, k3] = this.key;
    const childKey = nonZeroKey([
      mix32(k0 ^ h),
      mix32(k1 ^ Math.imul(h, 0x9e3779b1)),
      mix32(k2 ^ rotl(h, 13)),
      mix32(k3 ^ Math.imul(rotl(h, 7), 0x85ebca77)),
    ]);
    const child = new SeededRandom(0);
    child.key = childKey;
    [child.s0, child.s1, child.s2, child.s3] = childKey;
    return child;
  }
}
