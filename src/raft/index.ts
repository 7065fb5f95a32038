/** Public surface of the consensus core. */
export * from "./types.js";
export * from "./storage.js";
export { ReadOnlyOption, RaftConfigError, type InjectedBugs, type RaftConfig } from "./config.js";
export { ProposalDroppedError } from "./raft.js";
export { RawNode, type RaftStatus, type ProgressStatus } from "./rawnode.js";
export { RaftInvariantError } from "./assert.js";
export { encodeConfChange, decodeConfChange } from "./confchange/codec.js";
