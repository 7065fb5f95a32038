/**
 * The receiving end of snapshot transfers: one assembler per transfer in progress on each
 * connection; a finished transfer goes to the receive handler and is acknowledged, a broken one
 * is discarded and answered with the reason. Chunks of a discarded transfer are ignored, so a
 * sender's retry (a fresh transfer id) starts clean.
 */
import type { FramedConnection } from "./connection.js";
import { ProtocolError } from "./connection.js";
import {
  encodeSnapshotStatus,
  SnapshotOutcome,
  type SnapshotChunk,
  type SnapshotStatus,
} from "./control-codec.js";
import { FrameKind } from "./frame.js";
import { SnapshotAssembler, SnapshotTransferError } from "./snapshot-stream.js";
import type { NodeId } from "../raft/types.js";
import type { Envelope, Logger, TransportCounters } from "./transport.js";

export interface SnapshotReceiverContext {
  readonly maxSnapshotBytes: number;
  readonly counters: TransportCounters;
  readonly logger: Logger;
  /** Throws ProtocolError unless `header` is addressed from the connection's peer to this node. */
  checkRoute(connection: FramedConnection, header: Envelope): void;
  /** Hands a complete snapshot to the receive handler; false if the handler failed. */
  deliver(envelope: Envelope): boolean;
  /** When a transfer starts, for `ended` (TcpTransport.observeSnapshots's clock). */
  now(): number;
  /** A transfer from `peer` that started at `startedAt` ended, taken or discarded. */
  ended(peer: NodeId | null, succeeded: boolean, startedAt: number): void;
}

/** A transfer in progress: its chunks so far, and when its first one came. */
interface IncomingTransfer {
  readonly assembler: SnapshotAssembler;
  readonly startedAt: number;
}

export class SnapshotReceiver {
  private readonly transfers = new Map<FramedConnection, Map<number, IncomingTransfer>>();

  constructor(private readonly context: SnapshotReceiverContext) {}

  onChunk(connection: FramedConnection, chunk: SnapshotChunk): void {
    let transfers = this.transfers.get(connection);
    if (transfers === undefined) {
      transfers = new Map();
      this.transfers.set(connection, transfers);
    }
    let transfer = transfers.get(chunk.transferId);
    if (chunk.header !== null) {
      if (transfer !== undefined)
        throw new ProtocolError(`snapshot transfer ${chunk.transferId} started twice`);
      this.context.checkRoute(connection, chunk.header);
      const startedAt = this.context.now();
      try {
        transfer = {
          assembler: new SnapshotAssembler(chunk.header, this.context.maxSnapshotBytes),
          startedAt,
        };
      } catch (error) {
        if (!(error instanceof SnapshotTransferError)) throw error;
        this.reject(connection, chunk.transferId, error.reason, startedAt);
        return;
      }
      transfers.set(chunk.transferId, transfer);
    } else if (transfer === undefined) {
      // The rest of a transfer already discarded (rejected here or cancelled by the sender).
      return;
    }
    let complete: Envelope | null;
    try {
      complete = transfer.assembler.add(chunk);
    } catch (error) {
      if (!(error instanceof SnapshotTransferError)) throw error;
      transfers.delete(chunk.transferId);
      this.reject(connection, chunk.transferId, error.reason, transfer.startedAt);
      return;
    }
    if (complete === null) return;
    transfers.delete(chunk.transferId);
    this.context.counters.snapshotsReceived++;
    this.context.counters.messagesReceived++;
    const taken = this.context.deliver(complete);
    this.context.ended(connection.peerId, taken, transfer.startedAt);
    const status: SnapshotStatus = taken
      ? { transferId: chunk.transferId, outcome: SnapshotOutcome.Accepted, reason: "" }
      : {
          transferId: chunk.transferId,
          outcome: SnapshotOutcome.Rejected,
          reason: "the receiver failed to take it",
        };
    connection.send(FrameKind.SnapshotStatus, encodeSnapshotStatus(status));
  }

  /** Transfers under way now, per peer they come from. */
  inFlight(): Map<NodeId, number> {
    const byPeer = new Map<NodeId, number>();
    for (const [connection, transfers] of this.transfers) {
      const peer = connection.peerId;
      if (peer !== null && transfers.size > 0) byPeer.set(peer, (byPeer.get(peer) ?? 0) + transfers.size);
    }
    return byPeer;
  }

  /** The sender gave up on a transfer. */
  onCancelled(connection: FramedConnection, status: SnapshotStatus): void {
    const transfers = this.transfers.get(connection);
    const transfer = transfers?.get(status.transferId);
    if (transfers === undefined || transfer === undefined) return;
    transfers.delete(status.transferId);
    this.context.counters.snapshotsDiscarded++;
    this.context.ended(connection.peerId, false, transfer.startedAt);
    this.context.logger.info(
      { peer: connection.peerId, transferId: status.transferId, reason: status.reason },
      "peer cancelled its snapshot transfer",
    );
  }

  /** The connection closed: every transfer in progress on it is discarded. */
  onConnectionClosed(connection: FramedConnection): void {
    const transfers = this.transfers.get(connection);
    if (transfers === undefined) return;
    this.context.counters.snapshotsDiscarded += transfers.size;
    for (const transfer of transfers.values())
      this.context.ended(connection.peerId, false, transfer.startedAt);
    this.transfers.delete(connection);
  }

  private reject(connection: FramedConnection, transferId: number, reason: string, startedAt: number): void {
    this.context.counters.snapshotsDiscarded++;
    this.context.ended(connection.peerId, false, startedAt);
    this.context.logger.warn({ peer: connection.peerId, transferId, reason }, "discarding incoming snapshot");
    const status: SnapshotStatus = { transferId, outcome: SnapshotOutcome.Rejected, reason };
    connection.send(FrameKind.SnapshotStatus, encodeSnapshotStatus(status));
  }
}
