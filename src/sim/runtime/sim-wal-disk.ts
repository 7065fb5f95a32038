/**
 * SimWalDisk: the production Raft log engine (src/storage/wal, WalStorageEngine) on a
 * simulated disk, for `--wal` runs, so the simulator checks the real engine's group commit,
 * framing and recovery under crashes.
 *
 * The disk (SimWalDirectory) holds segment files in memory. A write takes a random virtual
 * latency and is durable once it completes, as an O_DSYNC write is. A crash (power loss) hits
 * the writes in flight: each one lands whole, not at all, or torn (a random prefix of it), and
 * the engine is reopened on what the disk holds, through its own recovery. A sync whose write
 * did not complete before the crash was never acknowledged, so whatever a crash does to it is
 * allowed; the checks (no lost acknowledged write, linearizability) judge the outcome.
 *
 * Small writes complete at once (INSTANT_WRITE_BYTES), so the engine's syncNow path runs too.
 * A full filesystem (`full`) fails every write and new segment with ENOSPC, landing nothing:
 * the engine refuses writes from then on (DiskFullError) and the node's host stops on it.
 *
 * With `lazyWriteBack` (the deliberate `--ack-before-sync` bug) a write resolves at once and
 * reaches the disk that many latencies later, as a lying write cache would.
 */
import type { ReplicaStorage, StorageEngine } from "../../storage/contracts.js";
import type { StorageLogger } from "../../storage/errors.js";
import { WalStorageEngine } from "../../storage/wal/engine.js";
import type { SegmentFile, WalDirectory } from "../../storage/wal/files.js";
import type { SeededRandom } from "../random.js";
import type { Scheduler } from "../scheduler.js";

import type { MsRange } from "../profiles.js";

/**
 * Writes up to this size complete at once (SegmentFile.writeNow), in no virtual time, as a
 * small inline write does on a real node; larger ones take the disk's latency, and a crash can
 * catch them in flight. A lying disk (lazyWriteBack) makes every write wait instead.
 */
const INSTANT_WRITE_BYTES = 256;

/** A write in flight: lands whole, torn or not at all if the power fails before it completes. */
interface InFlightWrite {
  readonly sequence: number;
  readonly bytes: Uint8Array;
  readonly position: number;
}

/** Segment files in memory; see the file header for what a crash does. */
class SimWalDirectory implements WalDirectory {
  readonly path: string;
  private readonly files = new Map<number, Uint8Array>();
  private readonly inFlight = new Set<InFlightWrite>();
  /** Bumped by every crash: a write issued before it never completes. */
  private generation = 0;
  /** How the process learns of a completed write: at once, or held while it is frozen (SimTimers.deliver). */
  gate: (run: () => void, source: string) => void = (run) => run();
  /** The filesystem has no room: writes and new segments fail with ENOSPC, nothing lands. */
  full = false;

  constructor(
    name: string,
    private readonly scheduler: Scheduler,
    private readonly random: SeededRandom,
    private readonly latencyMs: MsRange,
    private readonly lazyWriteBack: number | null,
  ) {
    this.path = `sim://${name}/raft-log`;
  }

  segments(): number[] {
    return [...this.files.keys()].sort((a, b) => a - b);
  }

  read(sequence: number): Uint8Array {
    return this.file(sequence).slice();
  }

  truncate(sequence: number, length: number): void {
    this.files.set(sequence, this.file(sequence).slice(0, length));
  }

  openSegment(sequence: number): SegmentFile {
    this.file(sequence);
    return this.segmentFile(sequence);
  }

  async createSegment(sequence: number): Promise<SegmentFile> {
    if (this.full) throw noSpace(this.path);
    if (this.files.has(sequence)) throw new Error(`${this.path}: segment ${sequence} exists`);
    this.files.set(sequence, new Uint8Array(0));
    await this.latency();
    return this.segmentFile(sequence);
  }

  async removeSegments(sequences: readonly number[]): Promise<void> {
    for (const sequence of sequences) this.files.delete(sequence);
    await this.latency();
  }

  freeBytes(): number {
    return this.full ? 0 : Number.MAX_SAFE_INTEGER;
  }

  /** Power loss: every write in flight lands whole, torn or not at all. Returns how many did not land whole. */
  crash(): number {
    this.generation++;
    let damaged = 0;
    for (const write of this.inFlight) {
      const kept = this.random.intBetween(0, write.bytes.byteLength);
      if (kept < write.bytes.byteLength) damaged++;
      if (kept > 0) this.land(write.sequence, write.bytes.subarray(0, kept), write.position);
    }
    this.inFlight.clear();
    return damaged;
  }

  private segmentFile(sequence: number): SegmentFile {
    return {
      write: (bytes, position) => {
        if (this.full) return Promise.reject(noSpace(this.path));
        const write: InFlightWrite = { sequence, bytes: bytes.slice(), position };
        this.inFlight.add(write);
        const generation = this.generation;
        return new Promise<void>((resolve) => {
          const landAfter = this.delay() * (this.lazyWriteBack ?? 1);
          this.scheduler.after(landAfter, () => {
            if (generation !== this.generation) return;
            this.inFlight.delete(write);
            this.land(sequence, write.bytes, position);
            this.gate(resolve, "disk");
          });
          if (this.lazyWriteBack !== null) resolve();
        });
      },
      writeNow: (bytes, position) => {
        if (this.full) throw noSpace(this.path);
        if (bytes.byteLength > INSTANT_WRITE_BYTES || this.lazyWriteBack !== null) return false;
        this.land(sequence, bytes, position);
        return true;
      },
      close: () => Promise.resolve(),
    };
  }

  private land(sequence: number, bytes: Uint8Array, position: number): void {
    const file = this.files.get(sequence);
    if (file === undefined) return;
    const grown = new Uint8Array(Math.max(file.byteLength, position + bytes.byteLength));
    grown.set(file);
    grown.set(bytes, position);
    this.files.set(sequence, grown);
  }

  private file(sequence: number): Uint8Array {
    const file = this.files.get(sequence);
    if (file === undefined) throw new Error(`${this.path}: no segment ${sequence}`);
    return file;
  }

  private delay(): number {
    const [low, high] = this.latencyMs;
    return this.random.intBetween(low, high);
  }

  /** Resolves after a disk latency unless a crash comes first (then never). */
  private latency(): Promise<void> {
    const generation = this.generation;
    return new Promise((resolve) => {
      this.scheduler.after(this.delay(), () => {
        if (generation === this.generation) this.gate(resolve, "disk");
      });
    });
  }
}

/** What a write on a full filesystem fails with (errno ENOSPC, as Node reports it). */
function noSpace(path: string): Error {
  return Object.assign(new Error(`ENOSPC: no space left on device, write (${path})`), {
    code: "ENOSPC",
    errno: -28,
  });
}

const SILENT: StorageLogger = { warn: () => undefined };

/**
 * The Raft storage engine of a `--wal` node: the real write-ahead log on SimWalDirectory. After
 * a crash the engine reopens when the restarted node first uses it, so a log that refuses to
 * open fails the restart (the run reports it) rather than the crash.
 */
export class SimWalDisk implements StorageEngine {
  private readonly directory: SimWalDirectory;
  private engine: WalStorageEngine | null;

  constructor(
    name: string,
    scheduler: Scheduler,
    random: SeededRandom,
    latencyMs: MsRange,
    lazyWriteBack: number | null,
  ) {
    this.directory = new SimWalDirectory(name, scheduler, random, latencyMs, lazyWriteBack);
    this.engine = this.open();
  }

  replica(groupId: number): ReplicaStorage {
    return this.current().replica(groupId);
  }

  groups(): number[] {
    return this.current().groups();
  }

  dropGroup(groupId: number): void {
    this.current().dropGroup(groupId);
  }

  sync(): Promise<void> {
    return this.current().sync();
  }

  syncNow(): boolean {
    return this.current().syncNow();
  }

  /** How the process learns of a completed write (see SimWalDirectory.gate). */
  set gate(gate: (run: () => void, source: string) => void) {
    this.directory.gate = gate;
  }

  /** Whether the filesystem is full (see SimWalDirectory.full); a full one fails every write. */
  get full(): boolean {
    return this.directory.full;
  }

  set full(full: boolean) {
    this.directory.full = full;
  }

  /** Power loss: writes in flight land whole, torn or not at all. Returns the damaged writes. */
  crash(): number {
    this.engine = null;
    return this.directory.crash();
  }

  private current(): WalStorageEngine {
    this.engine ??= this.open();
    return this.engine;
  }

  /** Small segments and checkpoints, so that runs roll segments over and checkpoint. */
  private open(): WalStorageEngine {
    return WalStorageEngine.openDirectory(this.directory, {
      logger: SILENT,
      segmentBytes: 4 * 1024,
      checkpointBytes: 8 * 1024,
    });
  }
}
