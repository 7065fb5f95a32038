/**
 * The errors the recipes throw, and the reasons they give when a session or a leadership ends
 * (the `reason` of the `lost` AbortSignals). Messages that have an etcd counterpart use etcd's
 * wording so the etcd services can pass them through.
 */

/** A configuration, option or argument was rejected; nothing was written. */
export class RecipeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecipeConfigError";
  }
}

/** A stored record could not be decoded (written by something else, or a newer format). */
export class RecipeRecordError extends Error {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`recipe record ${key}: ${problem}`);
    this.name = "RecipeRecordError";
  }
}

/** The caller does not hold the leadership it acts on (never elected, or lost it). */
export class NotLeaderError extends Error {
  constructor(detail?: string) {
    super(detail === undefined ? "election: not leader" : `election: not leader (${detail})`);
    this.name = "NotLeaderError";
  }
}

/** Why a session ended. */
export type SessionLossReason =
  /** A keep-alive said the lease no longer exists (it expired or was revoked). */
  | "lease-gone"
  /** No keep-alive succeeded in time: the conservative local deadline passed. */
  | "deadline-passed"
  /** The session's records vanished (revoked by someone else), seen by a reader of them. */
  | "records-gone"
  /** `close()` was called. */
  | "closed";

export class SessionLostError extends Error {
  constructor(
    readonly reason: SessionLossReason,
    readonly leaseId: bigint,
  ) {
    super(`session (lease ${leaseId.toString(16)}) lost: ${reason}`);
    this.name = "SessionLostError";
  }
}

/** Why a leadership (or a held lock) ended. */
export type LeadershipLossReason =
  | SessionLossReason
  /** A strictly higher registered priority is waiting and preemption is allowed. */
  | "preempted"
  | "resigned"
  | "transferred"
  /** The leader record changed or vanished without this holder doing it (evict, fence-all, disable). */
  | "leader-changed"
  /** The term moved past this holder's term. */
  | "term-changed";

export class LeadershipLostError extends Error {
  constructor(
    readonly reason: LeadershipLossReason,
    readonly term: bigint,
  ) {
    super(`leadership of term ${term} lost: ${reason}`);
    this.name = "LeadershipLostError";
  }
}

/** A campaign was given up before it was elected. */
export class CampaignAbortedError extends Error {
  constructor(
    readonly reason: "signal" | "evicted" | "resigned" | "closed" | SessionLossReason,
    options?: { cause?: unknown },
  ) {
    super(`campaign aborted: ${reason}`, options);
    this.name = "CampaignAbortedError";
  }
}

/** The election handle was closed. */
export class ElectionClosedError extends Error {
  constructor() {
    super("the election handle is closed");
    this.name = "ElectionClosedError";
  }
}
