// What lmdb-crash-child.ts writes, shared with the test that checks what survived.
import { EntryType, type Entry } from "../../src/raft/types.js";

export const CRASH_GROUPS = [1, 2, 3] as const;

/** Entry `round` of `groupId`: its payload names both, so a misplaced entry cannot pass. */
export function crashEntry(groupId: number, round: number): Entry {
  const data = new TextEncoder().encode(`group ${groupId} round ${round} `.padEnd(64, "."));
  return { index: round, term: 1, type: EntryType.Normal, data };
}
