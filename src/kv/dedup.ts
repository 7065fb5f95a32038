/**
 * The dedup table: for each client id, the sequence number and result of its last applied
 * command, so that a retried command (proposed again after a lost reply, or duplicated in the
 * log) is answered from the table instead of being applied twice.
 *
 * It lives in the store's keyspace, so it is written in the same batch as the command's
 * effects, survives restarts and travels in snapshots — every replica holds the same table.
 * It is bounded: when more than `maxClients` clients are recorded, the ones whose last command
 * is oldest (lowest entry index) are evicted until the bound less a tenth of it (rounded down)
 * remain. An evicted client's retry is indistinguishable from a new request and would apply
 * again, so the bound must comfortably exceed the clients that are active within a retry window.
 *
 * The eviction order is not stored: an eviction reads the whole table and sorts it by entry
 * index. Keeping an order row per client cost every applied command a delete and a put (a
 * third of the engine writes of a put); an eviction, which only a client new to a full table
 * causes, evicts a tenth of the table at once, so one read of the table serves that many new
 * clients. (Stores written before this kept order rows under tag 0x03; nothing reads them.)
 *
 * Inherited records (entry index 0): a split copies the table into the new right-hand range,
 * whose entry indexes start afresh, so the copies cannot keep their place in the eviction
 * order. They carry entry index 0, are not counted against the bound and are never evicted;
 * the client's next command on the new range replaces its record with an ordinary one. So a
 * split never makes a retry apply twice, and the table of a range exceeds its bound by at most
 * what it inherited.
 *
 * A merge imports the right-hand range's records the same way (inherited), keeping per client
 * the record with the higher sequence (on a tie, this range's own).
 */
import { ByteReader, ByteWriter, fromUtf8 } from "./bytes.js";
import { BatchOverlay, type KvReader, type WriteBatch } from "./engine.js";
import type { KeyLayout } from "./keys.js";
import { decodeCommandResult, encodeCommandResult, type CommandResult } from "./results.js";

/** The entry index of a record inherited from the range this one was split from. */
export const INHERITED_ENTRY_INDEX = 0;

export interface DedupRecord {
  readonly sequence: number;
  /** Raft index of the entry that applied the command (orders clients for eviction); 0: inherited. */
  readonly entryIndex: number;
  readonly result: CommandResult;
}

const RECORD_FORMAT = 1;

function encodeRecord(record: DedupRecord): Uint8Array {
  return new ByteWriter()
    .u8(RECORD_FORMAT)
    .count(record.sequence)
    .count(record.entryIndex)
    .raw(encodeCommandResult(record.result))
    .finish();
}

/** A stored record; its result is decoded only when asked for (only a retry needs it). */
export interface StoredDedupRecord {
  readonly sequence: number;
  readonly entryIndex: number;
  result(): CommandResult;
}

function decodeRecord(bytes: Uint8Array): StoredDedupRecord {
  const r = new ByteReader(bytes, "dedup record");
  const format = r.u8();
  if (format !== RECORD_FORMAT) r.fail("unknown-version", `dedup record format ${format}`);
  const sequence = r.count();
  const entryIndex = r.count();
  // A view: the record's bytes are the engine's own copy, and only a retry decodes them.
  return new DecodedDedupRecord(sequence, entryIndex, r.restView());
}

/**
 * A class, not an object with a closure: every applied command looks its client's record up,
 * and a closure made per lookup costs more than the lookup's decoding (tsx names each one).
 */
class DecodedDedupRecord implements StoredDedupRecord {
  constructor(
    readonly sequence: number,
    readonly entryIndex: number,
    private readonly resultBytes: Uint8Array,
  ) {}

  result(): CommandResult {
    return decodeCommandResult(this.resultBytes);
  }
}

export class DedupTable {
  constructor(
    private readonly layout: KeyLayout,
    readonly maxClients: number,
  ) {
    if (!Number.isSafeInteger(maxClients) || maxClients < 1) {
      throw new RangeError(`maxDedupClients must be a positive integer, got ${maxClients}`);
    }
  }

  lookup(reader: KvReader, clientId: string): StoredDedupRecord | undefined {
    const bytes = reader.get(this.layout.dedupClientKey(clientId));
    return bytes === undefined ? undefined : decodeRecord(bytes);
  }

  /**
   * Stages `record` as `clientId`'s latest, replacing `previous` (what lookup returned), and
   * evicts the least recently used clients when the table outgrows its bound. `clients` is the
   * table's current size; returns its new size.
   */
  record(
    reader: KvReader,
    batch: WriteBatch,
    clientId: string,
    record: DedupRecord,
    previous: StoredDedupRecord | undefined,
    clients: number,
  ): number {
    const counted = previous !== undefined && previous.entryIndex !== INHERITED_ENTRY_INDEX;
    batch.put(this.layout.dedupClientKey(clientId), encodeRecord(record));
    const size = counted ? clients : clients + 1;
    return size > this.maxClients ? this.evictOldest(new BatchOverlay(reader, batch), batch, size) : size;
  }

  /**
   * Stages the eviction of the counted clients whose last command is oldest, from a table of
   * `size` clients (as `staged` shows it) down to the bound less a tenth; returns the new size.
   */
  private evictOldest(staged: KvReader, batch: WriteBatch, size: number): number {
    const counted: { key: Uint8Array; entryIndex: number }[] = [];
    for (const { key, value } of staged.scan(this.layout.dedupClientsStart, this.layout.dedupClientsEnd)) {
      const { entryIndex } = decodeRecord(value);
      if (entryIndex !== INHERITED_ENTRY_INDEX) counted.push({ key, entryIndex });
    }
    if (counted.length !== size) {
      throw new Error(
        `invariant violated: the dedup table counts ${size} clients but holds ${counted.length}`,
      );
    }
    // Entry indexes are unique (one record per applied command), so the order is total.
    counted.sort((a, b) => a.entryIndex - b.entryIndex);
    const keep = this.maxClients - Math.floor(this.maxClients / 10);
    const evicted = counted.slice(0, size - keep);
    for (const { key } of evicted) batch.delete(key);
    return size - evicted.length;
  }

  /**
   * Stages a copy of every record of this table in `target`'s table as an inherited record
   * (see the file comment), leaving target's count alone.
   */
  stageInheritedCopy(reader: KvReader, batch: WriteBatch, target: DedupTable): void {
    const prefix = this.layout.dedupClientsStart.length;
    for (const { key, value } of reader.scan(this.layout.dedupClientsStart, this.layout.dedupClientsEnd)) {
      const clientId = fromUtf8(key.subarray(prefix), "dedup client key");
      const record = decodeRecord(value);
      const inherited = { ...record, entryIndex: INHERITED_ENTRY_INDEX, result: record.result() };
      batch.put(target.layout.dedupClientKey(clientId), encodeRecord(inherited));
    }
  }

  /**
   * Stages a merge's import of `source`'s records (read through `sourceReader`): per client
   * the record with the higher sequence wins, this table's own on a tie; an imported record
   * becomes inherited, and an ordinary record of this table it replaces stops counting.
   * `clients` is this table's current size; returns its new size.
   */
  stageMergeFrom(
    reader: KvReader,
    batch: WriteBatch,
    source: DedupTable,
    sourceReader: KvReader,
    clients: number,
  ): number {
    const { dedupClientsStart, dedupClientsEnd } = source.layout;
    let size = clients;
    for (const { key, value } of sourceReader.scan(dedupClientsStart, dedupClientsEnd)) {
      const clientId = fromUtf8(key.subarray(dedupClientsStart.length), "dedup client key");
      const imported = decodeRecord(value);
      const own = this.lookup(reader, clientId);
      if (own !== undefined && own.sequence >= imported.sequence) continue;
      if (own !== undefined && own.entryIndex !== INHERITED_ENTRY_INDEX) size -= 1;
      const inherited = { ...imported, entryIndex: INHERITED_ENTRY_INDEX, result: imported.result() };
      batch.put(this.layout.dedupClientKey(clientId), encodeRecord(inherited));
    }
    return size;
  }
}
