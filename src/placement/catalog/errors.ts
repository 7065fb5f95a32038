/**
 * The errors of the route catalog: a proposed catalog that breaks a rule (with the rule as a
 * machine-readable reason), an optimistic save whose expected version is stale, a stored or
 * received record that does not decode, contention that outlasted the bounded retries, and
 * an error answered by the meta range itself. Every one is an exported class so callers can
 * tell them apart with `instanceof`; `retryable` says whether trying again (after reloading)
 * can succeed.
 */
import type { DecodeFailure } from "../../kv/bytes.js";
import type { KvErrorCode } from "../../kv/errors.js";

/** The catalog rule a proposed set of routes breaks. */
export type InvalidCatalogReason =
  | "empty"
  | "invalid-route-id"
  | "duplicate-route-id"
  | "invalid-group-id"
  | "invalid-state"
  | "invalid-parent"
  | "invalid-split-at"
  | "invalid-key"
  | "empty-range"
  | "not-from-empty-key"
  | "unsorted"
  | "overlap"
  | "gap"
  | "not-to-infinity";

/** The proposed catalog breaks a rule; nothing was written. */
export class InvalidCatalogError extends Error {
  readonly retryable = false;
  constructor(
    readonly reason: InvalidCatalogReason,
    /** The route at fault, when one is. */
    readonly routeId: number | null,
    detail: string,
  ) {
    super(`invalid route catalog: ${reason}: ${detail}`);
    this.name = "InvalidCatalogError";
  }
}

/** An optimistic save expected another catalog version than the stored one; nothing was written. */
export class CatalogVersionMismatchError extends Error {
  readonly retryable = true;
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`route catalog version mismatch: expected ${expected}, found ${actual}; reload and retry`);
    this.name = "CatalogVersionMismatchError";
  }
}

/** Bytes are not a valid encoding of a catalog record (descriptor, version, next id or delta). */
export class CatalogDecodeError extends Error {
  readonly retryable = false;
  constructor(
    readonly what: string,
    readonly failure: DecodeFailure,
    detail: string,
  ) {
    super(`cannot decode ${what}: ${failure}: ${detail}`);
    this.name = "CatalogDecodeError";
  }
}

/** Concurrent writers kept changing a record this operation compares on; it gave up after `attempts`. */
export class CatalogConflictError extends Error {
  readonly retryable = true;
  constructor(
    readonly operation: string,
    readonly attempts: number,
  ) {
    super(`route catalog ${operation} lost ${attempts} races with concurrent writers; try again`);
    this.name = "CatalogConflictError";
  }
}

/** The meta range answered a catalog request with an error result (nothing of it was applied). */
export class CatalogStoreError extends Error {
  readonly retryable = false;
  constructor(
    /** The store's error code; null when the answer was not an error but of the wrong kind. */
    readonly code: KvErrorCode | null,
    message: string,
  ) {
    super(`route catalog request failed in the meta range: ${message}`);
    this.name = "CatalogStoreError";
  }
}
