/**
 * The linearizability checker for register-per-key histories: history types, the checker and
 * text rendering. The search engine and the register model are internal.
 */
export { compareByCall, isPending, PENDING, validateHistory } from "./history.js";
export type {
  CasOperation,
  CasOutput,
  GetOperation,
  GetOutput,
  Operation,
  OperationKind,
  PutOperation,
  PutOutput,
  RegisterValue,
} from "./history.js";
export { checkLinearizability, DEFAULT_MAX_STATES_PER_KEY } from "./checker.js";
export type { CheckOptions, LinearizabilityResult } from "./checker.js";
export { formatOperation, formatValue, renderTimeline } from "./timeline.js";
