/**
 * The sequential specification of one key: a register that is absent or holds a string.
 * Values are interned to small integers so the search can compare and memoise states cheaply;
 * each operation is compiled once into a step function over those integers.
 */
import type { Operation, RegisterValue } from "./history.js";

/** A register state: an interned value. */
export type RegisterState = number;

/** The state of a key that was never written. */
export const ABSENT: RegisterState = 0;

/** What a step function returns when the operation's recorded output cannot happen in that state. */
export const ILLEGAL = -1;

/** The state after applying an operation in `state`, or ILLEGAL. */
export type StepFunction = (state: RegisterState) => RegisterState;

export interface CompiledOperation {
  readonly step: StepFunction;
  /** The state after it never depends on the state before it: a blind write (put). */
  readonly overwrites: boolean;
  /** Equal for operations whose step functions are identical (same kind, arguments, output). */
  readonly effectKey: string;
}

export class RegisterModel {
  private readonly idsByValue = new Map<string, RegisterState>();
  private readonly valuesById: RegisterValue[] = [null];

  stateOf(value: RegisterValue): RegisterState {
    if (value === null) return ABSENT;
    const known = this.idsByValue.get(value);
    if (known !== undefined) return known;
    const id = this.valuesById.length;
    this.valuesById.push(value);
    this.idsByValue.set(value, id);
    return id;
  }

  valueOf(state: RegisterState): RegisterValue {
    const value = this.valuesById[state];
    if (value === undefined) throw new Error(`register state ${state} was never interned`);
    return value;
  }

  /**
   * A pending put or cas is compiled with its output unconstrained: linearising it means it
   * took effect there. (Never taking effect is covered by linearising it after everything else,
   * which the search does implicitly by stopping once every completed operation is placed.)
   */
  compile(operation: Operation): CompiledOperation {
    switch (operation.kind) {
      case "put": {
        const written = this.stateOf(operation.value);
        return { step: () => written, overwrites: true, effectKey: `put ${written}` };
      }
      case "get": {
        if (operation.output === undefined)
          throw new Error(
            `pending get #${operation.id} constrains nothing and must be dropped before compiling`,
          );
        const seen = this.stateOf(operation.output.value);
        return {
          step: (state) => (state === seen ? state : ILLEGAL),
          overwrites: false,
          effectKey: `get ${seen}`,
        };
      }
      case "cas": {
        const expected = this.stateOf(operation.expected);
        const next = this.stateOf(operation.next);
        const outcome = operation.output === undefined ? "pending" : String(operation.output.swapped);
        const effectKey = `cas ${expected} ${next} ${outcome}`;
        const step: StepFunction =
          operation.output === undefined
            ? (state) => (state === expected ? next : state)
            : operation.output.swapped
              ? (state) => (state === expected ? next : ILLEGAL)
              : (state) => (state === expected ? ILLEGAL : state);
        return { step, overwrites: false, effectKey };
      }
    }
  }
}
