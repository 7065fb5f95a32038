/**
 * The check placement's components make of the counts and intervals in their options: a bad
 * value is refused with a RangeError naming the option, before anything starts.
 */

/** `value` when it is a positive safe integer; a RangeError naming `name` otherwise. */
export function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
