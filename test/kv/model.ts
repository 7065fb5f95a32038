// A deliberately simple reference model of the MVCC store for model-based tests: a map from
// key to its list of versions, linear scans everywhere, and etcd's rules written out
// directly. It shares no code with src/kv beyond the request and result types.
import {
  CompareResult,
  CompareTarget,
  SortOrder,
  SortTarget,
  type Command,
  type CommandEnvelope,
  type Compare,
  type RangeRequest,
  type TxnOp,
  type TxnRequest,
} from "../../src/kv/commands.js";
import { KV_ERROR_MESSAGES, KvErrorCode } from "../../src/kv/errors.js";
import type {
  CommandResponse,
  CommandResult,
  DeleteRangeResponse,
  KeyValue,
  KvEvent,
  OpResponse,
  PutResponse,
  RangeResponse,
} from "../../src/kv/results.js";

interface Version {
  readonly revision: bigint;
  readonly tombstone: boolean;
  readonly value: Uint8Array;
  readonly lease: bigint;
  readonly createRevision: bigint;
  readonly version: bigint;
}

const EMPTY = new Uint8Array(0);

function cmp(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function hex(key: Uint8Array): string {
  return Array.from(key, (x) => x.toString(16).padStart(2, "0")).join("");
}

function inRange(key: Uint8Array, start: Uint8Array, rangeEnd: Uint8Array): boolean {
  if (rangeEnd.length === 0) return cmp(key, start) === 0;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return cmp(key, start) >= 0;
  return cmp(key, start) >= 0 && cmp(key, rangeEnd) < 0;
}

function error(code: KvErrorCode): { kind: "error"; code: KvErrorCode; message: string } {
  return { kind: "error", code, message: KV_ERROR_MESSAGES[code] };
}

class Failure {
  constructor(readonly code: KvErrorCode) {}
}

type Write = { put: Uint8Array } | { del: Uint8Array; rangeEnd: Uint8Array };

export class ModelStore {
  private readonly history = new Map<string, { key: Uint8Array; versions: Version[] }>();
  revision = 0n;
  compacted = 0n;
  private readonly clients = new Map<string, { sequence: number; result: CommandResult }>();

  apply(envelope: CommandEnvelope): { result: CommandResult; events: KvEvent[] } {
    const client = envelope.clientId === "" ? undefined : this.clients.get(envelope.clientId);
    if (client !== undefined && envelope.sequence === client.sequence)
      return { result: client.result, events: [] };
    if (client !== undefined && envelope.sequence < client.sequence) {
      return { result: { revision: this.revision, response: error(KvErrorCode.StaleSequence) }, events: [] };
    }
    const { result, events } = this.execute(envelope);
    if (envelope.clientId !== "")
      this.clients.set(envelope.clientId, { sequence: envelope.sequence, result });
    return { result, events };
  }

  /** etcd's Range; a Failure for errors. `current` lets a transaction read its own writes. */
  range(r: RangeRequest, current = this.revision): RangeResponse | Failure {
    if (r.key.length === 0) return new Failure(KvErrorCode.EmptyKey);
    if (r.revision > current) return new Failure(KvErrorCode.FutureRevision);
    if (r.revision > 0n && r.revision < this.compacted) return new Failure(KvErrorCode.Compacted);
    const at = r.revision > 0n ? r.revision : current;
    const all = this.sortedKeys()
      .filter((k) => inRange(k, r.key, r.rangeEnd))
      .map((k) => this.kvAt(k, at))
      .filter((kv): kv is KeyValue => kv !== undefined);
    if (r.countOnly) return { kind: "range", kvs: [], more: false, count: all.length };
    let kvs = all.filter(
      (kv) =>
        (r.maxModRevision === 0n || kv.modRevision <= r.maxModRevision) &&
        (r.minModRevision === 0n || kv.modRevision >= r.minModRevision) &&
        (r.maxCreateRevision === 0n || kv.createRevision <= r.maxCreateRevision) &&
        (r.minCreateRevision === 0n || kv.createRevision >= r.minCreateRevision),
    );
    const order =
      r.sortOrder === SortOrder.None && r.sortTarget !== SortTarget.Key ? SortOrder.Ascend : r.sortOrder;
    if (order !== SortOrder.None) {
      const field = (kv: KeyValue): bigint | Uint8Array =>
        [kv.key, kv.version, kv.createRevision, kv.modRevision, kv.value][r.sortTarget]!;
      const by = (a: KeyValue, b: KeyValue) => {
        const x = field(a);
        const y = field(b);
        return typeof x === "bigint"
          ? x < (y as bigint)
            ? -1
            : x > (y as bigint)
              ? 1
              : 0
          : cmp(x, y as Uint8Array);
      };
      kvs = [...kvs].sort(order === SortOrder.Descend ? (a, b) => by(b, a) : by);
    }
    const more = r.limit > 0 && kvs.length > r.limit;
    if (more) kvs = kvs.slice(0, r.limit);
    if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
    return { kind: "range", kvs, more, count: all.length };
  }

  private execute(envelope: CommandEnvelope): { result: CommandResult; events: KvEvent[] } {
    const command = envelope.command;
    const fail = (code: KvErrorCode) => ({
      result: { revision: this.revision, response: error(code) },
      events: [],
    });
    const shape = this.shapeError(command);
    if (shape !== null) return fail(shape);
    if (command.kind === "compact") {
      if (command.revision <= this.compacted) return fail(KvErrorCode.Compacted);
      if (command.revision > this.revision) return fail(KvErrorCode.FutureRevision);
      this.compact(command.revision);
      return { result: { revision: this.revision, response: { kind: "compact" } }, events: [] };
    }
    const revision = envelope.timestamp > this.revision + 1n ? envelope.timestamp : this.revision + 1n;
    const events: KvEvent[] = [];
    let response: CommandResponse;
    if (command.kind === "txn") {
      const plan = this.plan(command);
      const failure = this.check(plan);
      if (failure !== null) return fail(failure);
      response = this.runTxn(plan, revision, events);
    } else {
      const outcome =
        command.kind === "put" ? this.put(command, revision, events) : this.del(command, revision, events);
      if (outcome instanceof Failure) return fail(outcome.code);
      response = outcome;
    }
    if (events.length > 0) this.revision = revision;
    return { result: { revision: this.revision, response }, events };
  }

  private shapeError(command: Command): KvErrorCode | null {
    const opError = (op: TxnOp | Command): KvErrorCode | null => {
      switch (op.kind) {
        case "compact":
          return null;
        case "range":
        case "deleteRange":
          return op.key.length === 0 ? KvErrorCode.EmptyKey : null;
        case "put":
          if (op.key.length === 0) return KvErrorCode.EmptyKey;
          if (op.ignoreValue && op.value.length > 0) return KvErrorCode.ValueProvided;
          if (op.ignoreLease && op.lease !== 0n) return KvErrorCode.LeaseProvided;
          return null;
        case "txn":
          if (op.compares.some((c) => c.key.length === 0)) return KvErrorCode.EmptyKey;
          for (const sub of [...op.success, ...op.failure]) {
            const e = opError(sub);
            if (e !== null) return e;
          }
          return null;
      }
    };
    const shape = opError(command);
    if (shape !== null || command.kind !== "txn") return shape;
    // A key may not be written twice along any path the transaction can take.
    for (const branch of [command.success, command.failure]) {
      for (const path of this.paths(branch)) {
        const puts = path.flatMap((w) => ("put" in w ? [w.put] : []));
        const dels = path.flatMap((w) => ("del" in w ? [w] : []));
        const putKeys = puts.map(hex);
        if (new Set(putKeys).size !== putKeys.length) return KvErrorCode.DuplicateKey;
        if (puts.some((k) => dels.some((d) => inRange(k, d.del, d.rangeEnd))))
          return KvErrorCode.DuplicateKey;
      }
    }
    return null;
  }

  private paths(ops: readonly TxnOp[]): Write[][] {
    let paths: Write[][] = [[]];
    for (const op of ops) {
      if (op.kind === "put") paths = paths.map((p) => [...p, { put: op.key }]);
      else if (op.kind === "deleteRange")
        paths = paths.map((p) => [...p, { del: op.key, rangeEnd: op.rangeEnd }]);
      else if (op.kind === "txn") {
        const nested = [...this.paths(op.success), ...this.paths(op.failure)];
        paths = paths.flatMap((p) => nested.map((n) => [...p, ...n]));
      }
    }
    return paths;
  }

  private plan(txn: TxnRequest): {
    succeeded: boolean;
    ops: { op: TxnOp; nested?: ReturnType<ModelStore["plan"]> }[];
  } {
    const succeeded = txn.compares.every((c) => this.compareHolds(c));
    const ops = (succeeded ? txn.success : txn.failure).map((op) =>
      op.kind === "txn" ? { op, nested: this.plan(op) } : { op },
    );
    return { succeeded, ops };
  }

  private check(plan: ReturnType<ModelStore["plan"]>): KvErrorCode | null {
    for (const { op, nested } of plan.ops) {
      if (op.kind === "range") {
        if (op.revision > this.revision) return KvErrorCode.FutureRevision;
        if (op.revision > 0n && op.revision < this.compacted) return KvErrorCode.Compacted;
      } else if (
        op.kind === "put" &&
        (op.ignoreValue || op.ignoreLease) &&
        this.kvAt(op.key, this.revision) === undefined
      ) {
        return KvErrorCode.KeyNotFound;
      } else if (nested !== undefined) {
        const e = this.check(nested);
        if (e !== null) return e;
      }
    }
    return null;
  }

  private compareHolds(c: Compare): boolean {
    const kvs = this.sortedKeys()
      .filter((k) => inRange(k, c.key, c.rangeEnd))
      .map((k) => this.kvAt(k, this.revision))
      .filter((kv): kv is KeyValue => kv !== undefined);
    if (kvs.length === 0) {
      if (c.target === CompareTarget.Value) return false;
      kvs.push({ key: c.key, value: EMPTY, createRevision: 0n, modRevision: 0n, version: 0n, lease: 0n });
    }
    return kvs.every((kv) => {
      let order: number;
      if (c.target === CompareTarget.Value) order = Math.sign(cmp(kv.value, c.value));
      else {
        const actual = {
          [CompareTarget.Version]: kv.version,
          [CompareTarget.Create]: kv.createRevision,
          [CompareTarget.Mod]: kv.modRevision,
          [CompareTarget.Lease]: kv.lease,
        }[c.target];
        order = actual < c.operand ? -1 : actual > c.operand ? 1 : 0;
      }
      return {
        [CompareResult.Equal]: order === 0,
        [CompareResult.Greater]: order > 0,
        [CompareResult.Less]: order < 0,
        [CompareResult.NotEqual]: order !== 0,
      }[c.result];
    });
  }

  private runTxn(
    plan: ReturnType<ModelStore["plan"]>,
    revision: bigint,
    events: KvEvent[],
  ): OpResponse & { kind: "txn" } {
    const responses = plan.ops.map(({ op, nested }): OpResponse => {
      switch (op.kind) {
        case "range": {
          const r = this.range(op, revision);
          if (r instanceof Failure) throw new Error("model: a checked range failed");
          return r;
        }
        case "put": {
          const r = this.put(op, revision, events);
          if (r instanceof Failure) throw new Error("model: a checked put failed");
          return r;
        }
        case "deleteRange":
          return this.del(op, revision, events);
        case "txn":
          return this.runTxn(nested!, revision, events);
      }
    });
    return { kind: "txn", succeeded: plan.succeeded, responses };
  }

  private put(
    op: {
      key: Uint8Array;
      value: Uint8Array;
      lease: bigint;
      prevKv: boolean;
      ignoreValue: boolean;
      ignoreLease: boolean;
    },
    revision: bigint,
    events: KvEvent[],
  ): PutResponse | Failure {
    const prev = this.kvAt(op.key, revision);
    if ((op.ignoreValue || op.ignoreLease) && prev === undefined) return new Failure(KvErrorCode.KeyNotFound);
    const version: Version = {
      revision,
      tombstone: false,
      value: op.ignoreValue ? prev!.value : op.value,
      lease: op.ignoreLease ? prev!.lease : op.lease,
      createRevision: prev?.createRevision ?? revision,
      version: (prev?.version ?? 0n) + 1n,
    };
    this.push(op.key, version);
    events.push({ type: "put", kv: this.kvAt(op.key, revision)!, prevKv: prev ?? null });
    return { kind: "put", prevKv: op.prevKv ? (prev ?? null) : null };
  }

  private del(
    op: { key: Uint8Array; rangeEnd: Uint8Array; prevKv: boolean },
    revision: bigint,
    events: KvEvent[],
  ): DeleteRangeResponse {
    const victims = this.sortedKeys()
      .filter((k) => inRange(k, op.key, op.rangeEnd))
      .map((k) => this.kvAt(k, revision))
      .filter((kv): kv is KeyValue => kv !== undefined);
    for (const prev of victims) {
      this.push(prev.key, {
        revision,
        tombstone: true,
        value: EMPTY,
        lease: 0n,
        createRevision: 0n,
        version: 0n,
      });
      const kv = {
        key: prev.key,
        value: EMPTY,
        createRevision: 0n,
        modRevision: revision,
        version: 0n,
        lease: 0n,
      };
      events.push({ type: "delete", kv, prevKv: prev });
    }
    return { kind: "deleteRange", deleted: victims.length, prevKvs: op.prevKv ? victims : [] };
  }

  private compact(revision: bigint): void {
    for (const [name, entry] of this.history) {
      const atOrBelow = entry.versions.filter((v) => v.revision <= revision);
      const newest = atOrBelow[atOrBelow.length - 1];
      const keep = entry.versions.filter((v) => v.revision > revision || (v === newest && !v.tombstone));
      if (keep.length === 0) this.history.delete(name);
      else entry.versions = keep;
    }
    this.compacted = revision;
  }

  private push(key: Uint8Array, version: Version): void {
    const name = hex(key);
    const entry = this.history.get(name) ?? { key, versions: [] };
    entry.versions.push(version);
    this.history.set(name, entry);
  }

  private kvAt(key: Uint8Array, revision: bigint): KeyValue | undefined {
    const versions = this.history.get(hex(key))?.versions ?? [];
    const v = versions.filter((x) => x.revision <= revision).pop();
    if (v === undefined || v.tombstone) return undefined;
    return {
      key,
      value: v.value,
      createRevision: v.createRevision,
      modRevision: v.revision,
      version: v.version,
      lease: v.lease,
    };
  }

  private sortedKeys(): Uint8Array[] {
    return [...this.history.values()].map((e) => e.key).sort(cmp);
  }
}

export function isFailure(value: unknown): value is Failure {
  return value instanceof Failure;
}
