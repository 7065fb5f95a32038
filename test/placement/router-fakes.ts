// Fakes for the RangeRouter tests: ranges that are real MvccStores in namespaces of one
// MemoryOrderedKv, each wrapped in a FakeReplica that checks its bounds as a split range does
// (a command with a key outside: error result KeyOutsideRange, nothing applied; a read
// outside: KvError thrown), can be write-fenced, implements floorRevision and leaseKeys,
// stamps every write from one shared clock (so revisions are comparable across ranges and
// with a reference store) and logs the calls it gets.
import {
  boundsContainSpan,
  boundsEqual,
  spanOfRequest,
  type KeySpan,
  type RangeBounds,
} from "../../src/kv/bounds.js";
import type { KvCommand, RangeRequest } from "../../src/kv/commands.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { errorResponse, type CommandResult, type RangeResult } from "../../src/kv/results.js";
import { MvccStore } from "../../src/kv/store.js";
import type { ReadConsistency, RequestId } from "../../src/node/types.js";
import type { RouteDescriptor } from "../../src/placement/catalog/descriptor.js";
import { txnSpans } from "../../src/placement/router/command-spans.js";
import type { ReplicaDirectory, RoutedReplica } from "../../src/placement/router/routed-replica.js";

/** One clock for every range: each write takes the next stamp. */
export class SharedClock {
  last = 0n;
  next(): bigint {
    this.last += 1n;
    return this.last;
  }
}

function commandSpans(command: KvCommand): KeySpan[] {
  switch (command.kind) {
    case "put":
      return [spanOfRequest(command.key, new Uint8Array(0))];
    case "deleteRange":
      return [spanOfRequest(command.key, command.rangeEnd)];
    case "txn":
      return txnSpans(command);
    default:
      return [];
  }
}

export type ReplicaCall =
  | { readonly kind: "propose"; readonly command: KvCommand; readonly request: RequestId | undefined }
  | { readonly kind: "floor"; readonly revision: bigint }
  | { readonly kind: "range"; readonly request: RangeRequest; readonly consistency: ReadConsistency }
  | { readonly kind: "leaseKeys"; readonly id: bigint };

export class FakeReplica implements RoutedReplica {
  readonly store: MvccStore;
  readonly calls: ReplicaCall[] = [];
  /** Writes are refused with RangeFenced while true. */
  fenced = false;
  /**
   * While true, `revision` reports 0 (a follower that has not applied its leader's writes
   * yet); the next linearizable read catches it up.
   */
  lagging = false;
  floor = 0n;
  private nextIndex = 1;

  constructor(
    readonly rangeId: number,
    engine: MemoryOrderedKv,
    public bounds: RangeBounds,
    private readonly clock: SharedClock,
  ) {
    this.store = new MvccStore(engine, { namespace: Uint8Array.of(0, 0, 0, rangeId) });
  }

  get revision(): bigint {
    if (this.lagging) return 0n;
    return this.store.revision > this.floor ? this.store.revision : this.floor;
  }

  /** Applies without any check (what a range holding system data would have written). */
  write(command: KvCommand): CommandResult {
    const stamp = this.clock.next();
    const timestamp = stamp > this.floor ? stamp : this.floor + 1n;
    return this.store.apply(this.nextIndex++, { clientId: "", sequence: 0, timestamp, command }).result;
  }

  propose(command: KvCommand, request?: RequestId): Promise<CommandResult> {
    this.calls.push({ kind: "propose", command, request });
    if (!commandSpans(command).every((span) => boundsContainSpan(this.bounds, span.start, span.end))) {
      return Promise.resolve({
        revision: this.revision,
        response: errorResponse(KvErrorCode.KeyOutsideRange),
      });
    }
    if (this.fenced) {
      return Promise.resolve({ revision: this.revision, response: errorResponse(KvErrorCode.RangeFenced) });
    }
    const stamp = this.clock.next();
    const timestamp = stamp > this.floor ? stamp : this.floor + 1n;
    // A store floored above its last write: compacting up to the floor is compacting what it
    // has (nothing at all when it has nothing past its compacted revision).
    const beyondWrites =
      command.kind === "compact" && command.revision > this.store.revision && command.revision <= this.floor;
    if (beyondWrites && this.store.revision <= this.store.compactedRevision) {
      return Promise.resolve({ revision: this.revision, response: { kind: "compact" } });
    }
    const floored = beyondWrites ? { ...command, revision: this.store.revision } : command;
    const envelope = {
      clientId: request?.clientId ?? "",
      sequence: request?.sequence ?? 0,
      timestamp,
      command: floored,
    };
    return Promise.resolve(this.store.apply(this.nextIndex++, envelope).result);
  }

  range(request: RangeRequest, consistency: ReadConsistency = "linearizable"): Promise<RangeResult> {
    this.calls.push({ kind: "range", request, consistency });
    if (consistency === "linearizable") this.lagging = false;
    return new Promise((resolve) => {
      const span = spanOfRequest(request.key, request.rangeEnd);
      if (!boundsContainSpan(this.bounds, span.start, span.end))
        throw new KvError(KvErrorCode.KeyOutsideRange);
      // Between the store's revision and the floor nothing can commit: reading there is reading now.
      const floored = request.revision > this.store.revision && request.revision <= this.floor;
      const result = this.store.range(floored ? { ...request, revision: 0n } : request);
      resolve({ ...result, revision: this.revision });
    });
  }

  floorRevision(revision: bigint): Promise<void> {
    this.calls.push({ kind: "floor", revision });
    if (revision > this.floor) this.floor = revision;
    return Promise.resolve();
  }

  leaseKeys(id: bigint, span: KeySpan): Promise<readonly Uint8Array[]> {
    this.calls.push({ kind: "leaseKeys", id });
    return new Promise((resolve) => {
      if (!boundsEqual(span, this.bounds)) throw new KvError(KvErrorCode.KeyOutsideRange);
      resolve(this.store.lease(id, { keys: true })?.keys ?? []);
    });
  }

  callKinds(): string[] {
    return this.calls.map((call) => call.kind);
  }
}

export class FakeDirectory implements ReplicaDirectory {
  readonly replicas = new Map<number, FakeReplica>();
  replica(rangeId: number): FakeReplica | undefined {
    return this.replicas.get(rangeId);
  }
}

/** A fake range per route (bounds = the route's span), sharing one engine and one clock. */
export function fakeRanges(
  routes: readonly RouteDescriptor[],
  clock = new SharedClock(),
  engine = new MemoryOrderedKv(),
): FakeDirectory {
  const directory = new FakeDirectory();
  for (const route of routes) {
    directory.replicas.set(
      route.groupId,
      new FakeReplica(route.groupId, engine, { start: route.start, end: route.end }, clock),
    );
  }
  return directory;
}
