/**
 * The errors of splitting and merging: an operation refused before anything happens (with the
 * rule it breaks as a machine-readable reason), one whose range and catalog disagree in a way
 * roll-forward cannot repair, and one held up by catalog races or by another split or merge
 * still in flight. Each is an exported class for `instanceof`; `retryable` says whether trying
 * again later can succeed.
 */

/** Why a split was refused before anything was changed. */
export type SplitRefusal =
  /** No route has the given id. */
  | "unknown-route"
  /** The route is write-fenced (another split commits) or migrating. */
  | "not-active"
  /** The key is the route's start, not strictly inside it. */
  | "key-at-boundary"
  /** The key is outside the route. */
  | "key-outside-route"
  /** The key is at or below the end of the system span, which range 1 always holds. */
  | "system-span";

/** A split was refused; nothing was changed. Only `not-active` can succeed later as it is. */
export class SplitRefusedError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly reason: SplitRefusal,
    readonly routeId: number,
    detail: string,
  ) {
    super(`split of route ${routeId} refused: ${reason}: ${detail}`);
    this.name = "SplitRefusedError";
    this.retryable = reason === "not-active";
  }
}

/**
 * The catalog and the range disagree in a way roll-forward does not repair (for example the
 * range is fenced for a split key outside the route the catalog gives it). Needs an operator.
 */
export class SplitStateError extends Error {
  readonly retryable = false;
  constructor(
    readonly routeId: number,
    detail: string,
  ) {
    super(`split of route ${routeId} cannot proceed: ${detail}`);
    this.name = "SplitStateError";
  }
}

/**
 * Concurrent catalog saves kept winning, or a merge into the range applied and the catalog does
 * not show it yet: the split stands where it is and recover() finishes it.
 */
export class SplitConflictError extends Error {
  readonly retryable = true;
  constructor(
    readonly routeId: number,
    readonly attempts: number,
    detail = `lost ${attempts} catalog races`,
  ) {
    super(`split of route ${routeId} ${detail}; recover() rolls it forward`);
    this.name = "SplitConflictError";
  }
}

/** Why a merge was refused before anything was changed. */
export type MergeRefusal =
  /** No route has the given id. */
  | "unknown-route"
  /** The route starts at the empty key: the first route is never merged away. */
  | "first-route"
  /** The route is not active in the catalog (fenced, migrating). */
  | "not-active"
  /** Its left neighbour is not active in the catalog. */
  | "left-not-active"
  /** Its range is fenced for a split, or a split or merge of it applied and the catalog lags. */
  | "fenced"
  /** Its range is larger than one Raft entry may carry (the node measures it before asking). */
  | "too-large";

/** A merge was refused; nothing was changed. `not-active`, `left-not-active` and `fenced` may succeed later. */
export class MergeRefusedError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly reason: MergeRefusal,
    readonly routeId: number,
    detail: string,
  ) {
    super(`merge of route ${routeId} refused: ${reason}: ${detail}`);
    this.name = "MergeRefusedError";
    this.retryable = reason === "not-active" || reason === "left-not-active" || reason === "fenced";
  }
}

/** The catalog and the ranges disagree in a way the merge's roll-forward does not repair. Needs an operator. */
export class MergeStateError extends Error {
  readonly retryable = false;
  constructor(
    readonly routeId: number,
    detail: string,
  ) {
    super(`merge of route ${routeId} cannot proceed: ${detail}`);
    this.name = "MergeStateError";
  }
}

/**
 * The merge is held up (catalog races kept winning, or the left neighbour is busy with a split or
 * merge of its own); it stands where it is, the right range fenced, and recover() finishes it.
 */
export class MergeConflictError extends Error {
  readonly retryable = true;
  constructor(
    readonly routeId: number,
    readonly attempts: number,
    detail = `lost ${attempts} catalog races`,
  ) {
    super(`merge of route ${routeId} ${detail}; recover() rolls it forward`);
    this.name = "MergeConflictError";
  }
}
