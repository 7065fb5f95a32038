/**
 * The client history the linearizability checker consumes: one record per operation a client
 * issued against the register-per-key store, with its invocation and response times.
 *
 * Recording rules (the caller's side of the contract):
 * - Times are virtual-clock numbers; only their order matters. Operation A precedes B in real
 *   time exactly when `A.ret < B.call`; equal times count as overlapping (concurrent), which
 *   is the conservative choice: it never invents an order the clients could not observe.
 * - A completed operation has a finite `ret` and an `output`.
 * - A pending operation (timed out, connection lost: the result is unknown) has
 *   `ret = Infinity` and no `output`. It may have taken effect at any instant after `call`, or
 *   never. The checker considers both for put and cas; a pending get constrains nothing and is
 *   ignored.
 * - An operation known to have failed without effect (rejected before it was proposed, a
 *   definite error) is not recorded at all.
 */

/** The value a key holds; `null` means the key is absent. */
export type RegisterValue = string | null;

export type OperationKind = "put" | "get" | "cas";

interface OperationBase {
  /** Unique across the whole history. */
  readonly id: number;
  readonly clientId: number;
  readonly key: string;
  /** Virtual time of invocation. */
  readonly call: number;
  /** Virtual time of the response; `Infinity` for a pending operation. */
  readonly ret: number;
}

export interface PutOutput {
  readonly ok: true;
}

export interface GetOutput {
  readonly value: RegisterValue;
}

export interface CasOutput {
  readonly swapped: boolean;
}

export interface PutOperation extends OperationBase {
  readonly kind: "put";
  readonly value: string;
  readonly output?: PutOutput;
}

export interface GetOperation extends OperationBase {
  readonly kind: "get";
  readonly output?: GetOutput;
}

/** Compare-and-swap: sets `next` only if the key holds `expected` (`null`: only if absent). */
export interface CasOperation extends OperationBase {
  readonly kind: "cas";
  readonly expected: RegisterValue;
  readonly next: string;
  readonly output?: CasOutput;
}

export type Operation = PutOperation | GetOperation | CasOperation;

/** The `ret` of an operation whose outcome the client never learned. */
export const PENDING = Infinity;

export function isPending(operation: Operation): boolean {
  return operation.ret === PENDING;
}

/** Orders operations by invocation time, then id: the order histories are shown and searched in. */
export function compareByCall(a: Operation, b: Operation): number {
  return a.call - b.call || a.id - b.id;
}

/**
 * Throws if the history breaks the recording rules above. A malformed history is a bug in
 * whoever recorded it, so it is reported loudly instead of being judged.
 */
export function validateHistory(history: readonly Operation[]): void {
  const seenIds = new Set<number>();
  for (const operation of history) {
    const where = `operation #${operation.id}`;
    if (seenIds.has(operation.id)) throw new Error(`history has two operations with id ${operation.id}`);
    seenIds.add(operation.id);
    if (!Number.isFinite(operation.call)) throw new Error(`${where} has a non-finite call time`);
    if (Number.isNaN(operation.ret) || operation.ret < operation.call)
      throw new Error(`${where} returns (${operation.ret}) before it is called (${operation.call})`);
    const hasOutput = operation.output !== undefined;
    if (isPending(operation) && hasOutput) throw new Error(`${where} is pending but has an output`);
    if (!isPending(operation) && !hasOutput) throw new Error(`${where} completed but has no output`);
  }
}
