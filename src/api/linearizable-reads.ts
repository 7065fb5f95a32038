/**
 * The ways a range's leader may confirm a linearizable read (OpenOptions.linearizableReads,
 * `concord start --linearizable-reads`). A module of its own so that the command line can
 * check the flag without loading the storage and server code behind the embedded API.
 */
export const LINEARIZABLE_READS = ["lease", "read-index"] as const;
export type LinearizableReads = (typeof LINEARIZABLE_READS)[number];
