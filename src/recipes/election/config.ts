/**
 * The election's configuration record `<subspace>/config`: what it holds, its defaults, its
 * validation (every field checked, with a message naming the field, before anything is
 * written), and its versioned JSON encoding.
 */
import { bytesOf, textOf } from "../client.js";
import { RecipeConfigError, RecipeRecordError } from "../errors.js";

export interface ElectionConfig {
  /** TTL of each candidate's session lease, in whole seconds (>= 1). */
  readonly leaseSeconds: number;
  /** Time between keep-alives of a session, in ms; less than half the lease. */
  readonly renewIntervalMs: number;
  /**
   * Longest time a waiting campaign goes without re-reading the election state, in ms: a
   * bound on how long a missed or delayed watch event can delay an election.
   */
  readonly candidateTimeoutMs: number;
  /** When false nobody can be elected (`disable()` also removes the holder). */
  readonly electionEnabled: boolean;
  /** When true a strictly higher registered priority takes over at the holder's next renewal. */
  readonly preemptionAllowed: boolean;
}

export const DEFAULT_ELECTION_CONFIG: ElectionConfig = {
  leaseSeconds: 10,
  renewIntervalMs: 2_000,
  candidateTimeoutMs: 5_000,
  electionEnabled: true,
  preemptionAllowed: false,
};

const CONFIG_FORMAT = 1;
const FIELDS = Object.keys(DEFAULT_ELECTION_CONFIG) as (keyof ElectionConfig)[];
const MAX_LEASE_SECONDS = 9_000_000_000;

function positiveInteger(value: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new RecipeConfigError(
      `election config: ${field} must be an integer in 1..${max}, got ${String(value)}`,
    );
  }
  return value;
}

function flag(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") {
    throw new RecipeConfigError(`election config: ${field} must be true or false, got ${String(value)}`);
  }
  return value;
}

/** Checks every field of a whole config; throws RecipeConfigError naming the first bad one. */
export function validateElectionConfig(config: Record<string, unknown>): ElectionConfig {
  for (const field of Object.keys(config)) {
    if (!(FIELDS as string[]).includes(field)) {
      throw new RecipeConfigError(`election config: unknown field ${JSON.stringify(field)}`);
    }
  }
  const leaseSeconds = positiveInteger(config.leaseSeconds, "leaseSeconds", MAX_LEASE_SECONDS);
  const renewIntervalMs = positiveInteger(config.renewIntervalMs, "renewIntervalMs");
  const candidateTimeoutMs = positiveInteger(config.candidateTimeoutMs, "candidateTimeoutMs");
  if (leaseSeconds * 1000 <= 2 * renewIntervalMs) {
    throw new RecipeConfigError(
      `election config: leaseSeconds (${leaseSeconds} s) must be more than twice renewIntervalMs (${renewIntervalMs} ms)`,
    );
  }
  return {
    leaseSeconds,
    renewIntervalMs,
    candidateTimeoutMs,
    electionEnabled: flag(config.electionEnabled, "electionEnabled"),
    preemptionAllowed: flag(config.preemptionAllowed, "preemptionAllowed"),
  };
}

/** `base` with the fields of `changes` applied, validated as a whole. */
export function mergeElectionConfig(base: ElectionConfig, changes: Partial<ElectionConfig>): ElectionConfig {
  if (typeof changes !== "object" || changes === null) {
    throw new RecipeConfigError("election config: changes must be an object");
  }
  const defined = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
  return validateElectionConfig({ ...base, ...defined });
}

export function encodeElectionConfig(config: ElectionConfig): Uint8Array {
  return bytesOf(JSON.stringify({ format: CONFIG_FORMAT, ...config }));
}

export function decodeElectionConfig(value: Uint8Array, key: string): ElectionConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textOf(value));
  } catch {
    throw new RecipeRecordError(key, "config is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null)
    throw new RecipeRecordError(key, "config is not an object");
  const { format, ...fields } = parsed as Record<string, unknown>;
  if (format !== CONFIG_FORMAT) throw new RecipeRecordError(key, `unknown config format ${String(format)}`);
  try {
    return validateElectionConfig(fields);
  } catch (error) {
    throw new RecipeRecordError(key, (error as Error).message);
  }
}
