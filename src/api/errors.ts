/**
 * The errors a Concord client handle throws. The node's typed request errors and the store's
 * KvError are re-exported unchanged, so embedded and remote handles fail with the same
 * classes; this file adds what only a client can see (unreachable endpoints, a closed handle,
 * a lost connection, a server that broke the protocol).
 */
import type { KvCommand } from "../kv/commands.js";
import { AmbiguousResultError } from "../node/errors.js";
import type { RequestId } from "../node/types.js";

export { KvError, KvErrorCode } from "../kv/errors.js";
export {
  AmbiguousResultError,
  NotLeaderError,
  ProposalDroppedError,
  ReadTimeoutError,
  ReplicaRequestError,
  ReplicaStoppedError,
} from "../node/errors.js";

/** A write whose outcome is unknown, with what is needed to retry it exactly once more. */
export interface PendingWrite {
  readonly rangeId: number;
  readonly request: RequestId;
  readonly command: KvCommand;
}

/**
 * The write may or may not have applied. `db.retry(error)` sends it again with the same
 * client id and sequence; the store answers a write that did apply with its original result.
 * Retry before the handle's next write: afterwards the store only says the result is gone.
 */
export class AmbiguousWriteError extends AmbiguousResultError {
  constructor(
    readonly write: PendingWrite,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(write.rangeId, reason, options);
  }
}

/** The reason inside an AmbiguousResultError's message (whose prefix names the range again). */
export function ambiguityReason(rangeId: number, message: string): string {
  const prefix = `range ${rangeId}: result unknown: `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

/** The handle was closed; nothing was sent. */
export class ClientClosedError extends Error {
  readonly retryable = false;

  constructor() {
    super("the Concord handle is closed");
    this.name = "ClientClosedError";
  }
}

/** No endpoint accepted a connection; the request was not sent anywhere. */
export class EndpointsUnavailableError extends Error {
  readonly retryable = true;

  constructor(
    readonly endpoints: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`no Concord endpoint reachable (tried ${endpoints.join(", ")})`, options);
    this.name = "EndpointsUnavailableError";
  }
}

/**
 * The connection broke before a read's answer arrived. Reads have no effect, so this is
 * retryable (a write in the same situation is an AmbiguousWriteError instead).
 */
export class ConnectionLostError extends Error {
  readonly retryable = true;

  constructor(reason: string) {
    super(`connection lost: ${reason}`);
    this.name = "ConnectionLostError";
  }
}

/** The server answered something the protocol does not allow, or refused a request as invalid. */
export class ServerProtocolError extends Error {
  readonly retryable = false;

  constructor(message: string) {
    super(message);
    this.name = "ServerProtocolError";
  }
}

/** Whether `error` says the request certainly had no effect and may be sent again. */
export function isRetryable(error: unknown): boolean {
  return (
    error instanceof Error && "retryable" in error && (error as { retryable: unknown }).retryable === true
  );
}
