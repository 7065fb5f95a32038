/**
 * The typed errors a replica's callers see. Each says whether the request certainly had no
 * effect (`retryable`: send it again, here or elsewhere) or whether its outcome is unknown.
 */
export abstract class ReplicaRequestError extends Error {
  /**
   * True when the request certainly had no effect, so it may be sent again as it is. False
   * when a write may or may not have applied: retry it only with the same clientId and
   * sequence, which the store's dedup table answers without applying twice.
   */
  abstract readonly retryable: boolean;

  constructor(
    readonly rangeId: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No leader is known to this replica (an election is under way), so nothing could be forwarded. */
export class NotLeaderError extends ReplicaRequestError {
  readonly retryable = true;

  constructor(rangeId: number) {
    super(rangeId, `range ${rangeId}: no leader is known here`);
  }
}

/**
 * The proposal was refused or its log entry was replaced by another leader's: it was not
 * applied and never will be.
 */
export class ProposalDroppedError extends ReplicaRequestError {
  readonly retryable = true;

  constructor(rangeId: number, reason: string) {
    super(rangeId, `range ${rangeId}: proposal dropped: ${reason}`);
  }
}

/** The write may or may not have applied (timeout, shutdown, or applied only via a snapshot). */
export class AmbiguousResultError extends ReplicaRequestError {
  readonly retryable = false;

  constructor(rangeId: number, reason: string, options?: { cause?: unknown }) {
    super(rangeId, `range ${rangeId}: result unknown: ${reason}`, options);
  }
}

/** A linearizable read got no read index in time (leader lost, messages lost). */
export class ReadTimeoutError extends ReplicaRequestError {
  readonly retryable = true;

  constructor(rangeId: number) {
    super(rangeId, `range ${rangeId}: linearizable read timed out waiting for a read index`);
  }
}

/** The replica is not running (its host was stopped or failed) and took nothing on. */
export class ReplicaStoppedError extends ReplicaRequestError {
  readonly retryable = true;

  constructor(rangeId: number, options?: { cause?: unknown }) {
    super(rangeId, `range ${rangeId}: the replica is not running`, options);
  }
}
