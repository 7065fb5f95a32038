/**
 * The linearization search for one key's history: Wing & Gong's backtracking search with Lowe's
 * memoisation of (set of linearized operations, model state), as popularised by porcupine.
 *
 * The history is a doubly linked list of call and return events sorted by time. At each step
 * the search may linearize any operation whose call comes before the first remaining return
 * event (every operation that returned earlier has already been placed). Linearizing lifts the
 * operation's events out of the list; backtracking puts them back (LIFO, so in O(1)).
 *
 * Pending operations (ret = Infinity) have no return event and live in a list of their own.
 * They are tried only after every completed candidate at a step, and once every completed
 * operation is placed the search stops: the pending operations still unplaced are taken to have
 * never taken effect (or, equivalently, to take effect after everything else).
 *
 * Pruning by dominance. Say configuration D dominates C when both have placed the same completed
 * operations and reached the same state, and D has placed a subset of C's pending operations.
 * Any completion of C is then a completion of D too: a pending operation has no return, so no
 * operation has to follow it in real time, and an unused pending operation simply never took
 * effect. The search therefore never explores a configuration dominated by another one that
 * it explores instead or has already refuted:
 * - a pending operation that would leave the state unchanged is not placed (its parent
 *   dominates the result);
 * - a blind write is not placed right after a pending operation (placing the write alone
 *   dominates: the pending operation's effect would be erased before anyone saw it);
 * - identical pending operations (same effect) are interchangeable once all are candidates,
 *   and a pending operation stays a candidate for the rest of a path, so of several identical
 *   ones only the earliest invoked unplaced one is tried: the placed ones always form a prefix
 *   of each group (in call order) instead of an arbitrary subset;
 * - the cache is keyed by (completed set, state), each entry remembering its pending set; a
 *   configuration is skipped if the cache holds it, or holds a *fully explored, failed* entry
 *   with a subset of its pending operations. (An entry on the current path has not failed yet,
 *   so it may not be used to dominate.)
 * Without these, k pending writes that were overwritten would multiply the search by up to 2^k.
 */
import { ABSENT, ILLEGAL } from "./register-model.js";
import type { CompiledOperation, RegisterState } from "./register-model.js";

export interface SearchOperation extends CompiledOperation {
  readonly call: number;
  /** Infinity for a pending operation. */
  readonly ret: number;
}

export type SearchOutcome =
  | { readonly kind: "linearizable" }
  /** `longestPrefix`: indexes of the operations of the first longest prefix found, in order. */
  | { readonly kind: "not-linearizable"; readonly longestPrefix: readonly number[] }
  | { readonly kind: "budget-exceeded"; readonly statesExplored: number };

interface EventNode {
  /** Index into the operations; -1 for a list's sentinel head. */
  readonly operation: number;
  readonly isCall: boolean;
  /** The return event of a completed operation's call event; null otherwise. */
  match: EventNode | null;
  /** For a pending call: the closest earlier pending call with the same effect, if any. */
  twin: EventNode | null;
  /** Whether the operation is currently linearized (its events lifted out of the list). */
  placed: boolean;
  prev: EventNode | null;
  next: EventNode | null;
}

/** The configurations seen with one completed set and state, told apart by their pending sets. */
interface CacheGroup {
  readonly completed: Uint32Array;
  readonly state: RegisterState;
  readonly variants: CacheEntry[];
}

interface CacheEntry {
  readonly pending: Uint32Array;
  /** Set once the configuration's whole subtree has been searched without success. */
  finished: boolean;
}

interface Frame {
  readonly node: EventNode;
  readonly previousState: RegisterState;
  readonly entry: CacheEntry;
  /** The return time that bounded the candidates when this operation was chosen. */
  readonly blockingRet: number;
}

function eventNode(operation: number, isCall: boolean): EventNode {
  return { operation, isCall, match: null, twin: null, placed: false, prev: null, next: null };
}

function appendAll(head: EventNode, nodes: readonly EventNode[]): void {
  let last = head;
  for (const node of nodes) {
    last.next = node;
    node.prev = last;
    last = node;
  }
}

function unlink(node: EventNode): void {
  if (node.prev === null) throw new Error("cannot lift an event that is not in a list");
  node.prev.next = node.next;
  if (node.next !== null) node.next.prev = node.prev;
}

function relink(node: EventNode): void {
  if (node.prev === null) throw new Error("cannot restore an event that was never in a list");
  node.prev.next = node;
  if (node.next !== null) node.next.prev = node;
}

function lift(call: EventNode): void {
  unlink(call);
  if (call.match !== null) unlink(call.match);
  call.placed = true;
}

/** Undoes `lift`; correct only in reverse order of lifting. */
function unlift(call: EventNode): void {
  if (call.match !== null) relink(call.match);
  relink(call);
  call.placed = false;
}

/** A well-mixed 32-bit value per slot (Zobrist hashing of the completed set). */
function slotHash(slot: number): number {
  let x = Math.imul(slot + 1, 0x9e3779b1);
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function stateHash(state: RegisterState): number {
  return slotHash(0x40000000 + state);
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isSubset(small: Uint32Array, large: Uint32Array): boolean {
  for (let i = 0; i < small.length; i++) if (((small[i] ?? 0) & ~(large[i] ?? 0)) !== 0) return false;
  return true;
}

function toggle(bits: Uint32Array, slot: number): void {
  const word = slot >>> 5;
  bits[word] = (bits[word] ?? 0) ^ (1 << (slot & 31));
}

/** Searches for a linearization of `operations`, starting from an absent register. */
export function searchLinearization(
  operations: readonly SearchOperation[],
  maxStates: number,
): SearchOutcome {
  return new LinearizationSearch(operations, maxStates).run();
}

class LinearizationSearch {
  private readonly mainHead = eventNode(-1, false);
  private readonly pendingHead = eventNode(-1, false);
  /** Per operation: its bit position among the completed or among the pending operations. */
  private readonly slots: number[] = [];
  private readonly completedCount: number;
  private readonly completedBits: Uint32Array;
  private readonly pendingBits: Uint32Array;
  private completedHash = 0;
  private readonly cache = new Map<number, CacheGroup[]>();
  private statesExplored = 0;

  constructor(
    private readonly operations: readonly SearchOperation[],
    private readonly maxStates: number,
  ) {
    const completedEvents: EventNode[] = [];
    const pendingCalls: EventNode[] = [];
    operations.forEach((operation, index) => {
      const call = eventNode(index, true);
      if (operation.ret === Infinity) {
        this.slots.push(pendingCalls.length);
        pendingCalls.push(call);
      } else {
        this.slots.push(completedEvents.length / 2);
        call.match = eventNode(index, false);
        completedEvents.push(call, call.match);
      }
    });
    this.completedCount = completedEvents.length / 2;
    // Calls sort before returns at equal times: an operation invoked at the instant another
    // returned is concurrent with it, never ordered after it.
    completedEvents.sort(
      (a, b) =>
        this.timeOf(a) - this.timeOf(b) ||
        (a.isCall ? 0 : 1) - (b.isCall ? 0 : 1) ||
        a.operation - b.operation,
    );
    pendingCalls.sort((a, b) => this.timeOf(a) - this.timeOf(b) || a.operation - b.operation);
    const latestByEffect = new Map<string, EventNode>();
    for (const call of pendingCalls) {
      const effect = this.operationAt(call).effectKey;
      call.twin = latestByEffect.get(effect) ?? null;
      latestByEffect.set(effect, call);
    }
    appendAll(this.mainHead, completedEvents);
    appendAll(this.pendingHead, pendingCalls);
    this.completedBits = new Uint32Array(Math.ceil(this.completedCount / 32));
    this.pendingBits = new Uint32Array(Math.ceil(pendingCalls.length / 32));
  }

  run(): SearchOutcome {
    if (this.completedCount === 0) return { kind: "linearizable" };
    const stack: Frame[] = [];
    let state: RegisterState = ABSENT;
    let completedLeft = this.completedCount;
    let longestPrefix: number[] = [];
    let longestPrefixCompleted = 0;
    let inPendingPhase = false;
    let blockingRet = Number.NaN;
    let cursor: EventNode | null = this.mainHead.next;

    for (;;) {
      let candidate: EventNode;
      if (!inPendingPhase) {
        if (cursor === null) throw new Error("event list ended while a completed operation was unplaced");
        if (!cursor.isCall) {
          // Every operation returned by now must already be placed: the completed candidates
          // are exhausted, so try the pending operations invoked no later than this return.
          blockingRet = this.timeOf(cursor);
          inPendingPhase = true;
          cursor = this.pendingHead.next;
          continue;
        }
        candidate = cursor;
      } else if (cursor !== null && this.timeOf(cursor) <= blockingRet) {
        candidate = cursor;
      } else {
        const frame = stack.pop();
        if (frame === undefined) return { kind: "not-linearizable", longestPrefix };
        frame.entry.finished = true;
        unlift(frame.node);
        this.flip(frame.node);
        if (frame.node.match !== null) completedLeft++;
        state = frame.previousState;
        inPendingPhase = frame.node.match === null;
        blockingRet = frame.blockingRet;
        cursor = frame.node.next;
        continue;
      }

      const operation = this.operationAt(candidate);
      const nextState = operation.step(state);
      if (nextState === ILLEGAL || this.isDominatedStep(candidate, state, nextState, stack)) {
        cursor = candidate.next;
        continue;
      }
      this.flip(candidate);
      const entry = this.admit(nextState);
      if (entry === null) {
        this.flip(candidate);
        cursor = candidate.next;
        continue;
      }
      if (this.statesExplored > this.maxStates)
        return { kind: "budget-exceeded", statesExplored: this.statesExplored };
      stack.push({ node: candidate, previousState: state, entry, blockingRet });
      lift(candidate);
      state = nextState;
      if (candidate.match !== null) {
        completedLeft--;
        if (completedLeft === 0) return { kind: "linearizable" };
        if (this.completedCount - completedLeft > longestPrefixCompleted) {
          longestPrefixCompleted = this.completedCount - completedLeft;
          longestPrefix = stack.map((f) => f.node.operation);
        }
      }
      inPendingPhase = false;
      cursor = this.mainHead.next;
    }
  }

  /** The pruning rules of the header that need no cache lookup. */
  private isDominatedStep(
    candidate: EventNode,
    state: RegisterState,
    nextState: RegisterState,
    stack: readonly Frame[],
  ): boolean {
    if (candidate.match === null) {
      if (nextState === state) return true;
      if (candidate.twin !== null && !candidate.twin.placed) return true;
    }
    const previous = stack[stack.length - 1];
    return this.operationAt(candidate).overwrites && previous !== undefined && previous.node.match === null;
  }

  /** Caches the current configuration; null if it (or a dominating failed one) is known. */
  private admit(state: RegisterState): CacheEntry | null {
    const key = (this.completedHash ^ stateHash(state)) >>> 0;
    let groups = this.cache.get(key);
    if (groups === undefined) {
      groups = [];
      this.cache.set(key, groups);
    }
    let group = groups.find((g) => g.state === state && sameBits(g.completed, this.completedBits));
    if (group === undefined) {
      group = { completed: this.completedBits.slice(), state, variants: [] };
      groups.push(group);
    }
    for (const variant of group.variants) {
      if (sameBits(variant.pending, this.pendingBits)) return null;
      if (variant.finished && isSubset(variant.pending, this.pendingBits)) return null;
    }
    const entry: CacheEntry = { pending: this.pendingBits.slice(), finished: false };
    group.variants.push(entry);
    this.statesExplored++;
    return entry;
  }

  private flip(node: EventNode): void {
    const slot = this.slots[node.operation];
    if (slot === undefined) throw new Error(`no slot for operation ${node.operation}`);
    if (node.match === null) {
      toggle(this.pendingBits, slot);
    } else {
      toggle(this.completedBits, slot);
      this.completedHash ^= slotHash(slot);
    }
  }

  private operationAt(node: EventNode): SearchOperation {
    const operation = this.operations[node.operation];
    if (operation === undefined) throw new Error(`event refers to unknown operation ${node.operation}`);
    return operation;
  }

  private timeOf(node: EventNode): number {
    const operation = this.operationAt(node);
    return node.isCall ? operation.call : operation.ret;
  }
}
