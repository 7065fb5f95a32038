/**
 * One native-protocol socket seen as frames, for both the server and the client: decoding,
 * writing frames, and closing with a reason — told to the other side in a Goodbye frame when
 * the close is this side's decision. Nothing the other side sends can throw out of a socket
 * callback: whatever a frame handler throws closes this connection only.
 */
import type { Socket } from "node:net";
import { NativeProtocolError } from "./errors.js";
import {
  decodeGoodbye,
  encodeGoodbye,
  encodeNativeFrame,
  NativeFrameDecoder,
  NativeFrameKind,
  type NativeFrame,
} from "./protocol.js";

/** Who ended a connection: this side, the other side (or the network), or a protocol violation. */
export type CloseCause = "local" | "remote" | "protocol";

export interface FramedSocketEvents {
  /** A Request or Response frame; throwing NativeProtocolError closes the connection. */
  frame(frame: NativeFrame): void;
  /**
   * Called exactly once, whoever closed the connection, saying why and who decided; with the
   * other side's word on which requests it never read, when its Goodbye gave one.
   */
  closed(reason: string, cause: CloseCause, firstUnreadId?: number): void;
}

export class FramedSocket {
  private readonly decoder: NativeFrameDecoder;
  private open = true;

  constructor(
    private readonly socket: Socket,
    maxFrameBytes: number,
    private readonly events: FramedSocketEvents,
  ) {
    this.decoder = new NativeFrameDecoder(maxFrameBytes);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", (error: NodeJS.ErrnoException) =>
      this.close(`socket error: ${error.code ?? error.message}`, "remote"),
    );
    socket.on("close", () => this.close("the other side closed the connection", "remote"));
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Writes one frame; false when the connection is already closed (nothing was written). */
  send(kind: NativeFrameKind, payload: Uint8Array): boolean {
    if (!this.open) return false;
    this.socket.write(encodeNativeFrame(kind, payload));
    return true;
  }

  /** Resolves once the socket has room for more writes (at once unless its buffer is full). */
  whenWritable(): Promise<void> {
    if (!this.open || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  /**
   * Closes the connection; a close decided here ("local", "protocol") tells the reason in a
   * Goodbye, and `firstUnreadId` when given (nothing is read after this call).
   */
  close(reason: string, cause: CloseCause = "local", firstUnreadId?: number): void {
    if (!this.open) return;
    this.open = false;
    if (cause !== "remote") {
      const goodbye = firstUnreadId === undefined ? { reason } : { reason, firstUnreadId };
      this.socket.end(encodeNativeFrame(NativeFrameKind.Goodbye, encodeGoodbye(goodbye)));
      this.socket.destroySoon();
    } else {
      this.socket.destroy();
    }
    this.events.closed(reason, cause, firstUnreadId);
  }

  private receive(chunk: Uint8Array): void {
    if (!this.open) return;
    try {
      for (const frame of this.decoder.push(chunk)) {
        if (frame.kind === NativeFrameKind.Goodbye) {
          const goodbye = decodeGoodbye(frame.payload);
          this.close(`closed by the other side: ${goodbye.reason}`, "remote", goodbye.firstUnreadId);
          return;
        }
        this.events.frame(frame);
        if (!this.open) return;
      }
    } catch (error) {
      // Nothing may escape a socket callback: an unexpected failure costs this connection only.
      if (error instanceof NativeProtocolError) this.close(error.reason, "protocol");
      else this.close(`internal error: ${String(error)}`, "local");
    }
  }
}
