/**
 * The errors of splitting: a split that is refused before anything happens (with the rule it
 * breaks as a machine-readable reason), a split whose range and catalog disagree in a way
 * roll-forward cannot repair, and a split that kept losing catalog races. Each is an exported
 * class for `instanceof`; `retryable` says whether trying again later can succeed.
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

/** Concurrent catalog saves kept winning; the split stands where it is and recover() finishes it. */
export class SplitConflictError extends Error {
  readonly retryable = true;
  constructor(
    readonly routeId: number,
    readonly attempts: number,
  ) {
    super(`split of route ${routeId} lost ${attempts} catalog races; recover() rolls it forward`);
    this.name = "SplitConflictError";
  }
}
