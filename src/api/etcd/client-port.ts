/**
 * `ClientPort`: one TCP port for both client protocols. It accepts connections itself, reads
 * the first bytes, and hands the connection (with those bytes put back) to the etcd gRPC
 * server when they begin the HTTP/2 client preface ("PRI * HTTP/2.0"), or to the native
 * protocol server otherwise: a native frame starts with its u32 big-endian length, whose first
 * byte is 0x00 or 0x01 under the frame size limit, never "P". A connection that sends nothing
 * within `firstByteTimeoutMs` is closed.
 *
 * An HTTP/2 connection is read on up to its first request (http2-preface.ts): only one whose
 * first `:authority` is URL-shaped (etcdctl --cluster) is read through the rewriting of
 * authority-rewrite.ts, a JS stream; every other one gets the raw socket, whose native handle
 * Node's HTTP/2 layer reads without any JS in between.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { NativeServer } from "../native/server.js";
import type { Logger } from "../../transport/transport.js";
import { withLenientAuthority } from "./authority-rewrite.js";
import { ClientPrefaceReader, EMPTY_SETTINGS_FRAME, type PrefaceVerdict } from "./http2-preface.js";
import type { EtcdServer } from "./server.js";

/** The first byte of the HTTP/2 client connection preface. */
const HTTP2_PREFACE_FIRST_BYTE = "P".charCodeAt(0);

export interface ClientPortOptions {
  /** Where to listen (port 0: a free port, see `address()`). */
  readonly listen: { readonly host: string; readonly port: number };
  readonly etcd: EtcdServer;
  readonly native: NativeServer;
  readonly logger: Logger;
  /** Close a connection that sends no byte for this long (default 10 s). */
  readonly firstByteTimeoutMs?: number;
  /**
   * How long an HTTP/2 connection is read for its first request before it is served on the
   * raw socket anyway (default 2 s; an idle client's later requests then keep their
   * `:authority` as sent).
   */
  readonly http2PrefaceTimeoutMs?: number;
}

/** How many connections the port has handed on, by where. */
export interface ClientPortConnectionCounts {
  readonly native: number;
  /** gRPC connections served on the raw socket. */
  readonly grpcRaw: number;
  /** gRPC connections read through the `:authority` rewriting. */
  readonly grpcLenient: number;
}

export class ClientPort {
  private readonly server: Server;
  /** Connections not handed to a server yet (first byte or HTTP/2 first request awaited). */
  private readonly undecided = new Set<Socket>();
  private listening = false;
  private readonly counts = { native: 0, grpcRaw: 0, grpcLenient: 0 };

  constructor(private readonly options: ClientPortOptions) {
    this.server = createServer((socket) => this.accept(socket));
    this.server.on("error", (error) => options.logger.warn({ error: error.message }, "client port error"));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.listen.port, this.options.listen.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.listening = true;
  }

  /** The bound address; only after `start()`. */
  address(): { host: string; port: number } {
    const address = this.server.address();
    if (!this.listening || address === null || typeof address === "string") {
      throw new Error("the client port is not listening");
    }
    return { host: address.address, port: address.port };
  }

  /** How many connections went where so far (tests and metrics). */
  connectionCounts(): ClientPortConnectionCounts {
    return { ...this.counts };
  }

  /** Stops listening and closes every connection, of both protocols. */
  async close(): Promise<void> {
    // Stop accepting first, so no connection is handed to a server that is closing.
    const stopped = this.listening
      ? new Promise<void>((resolve) => this.server.close(() => resolve()))
      : Promise.resolve();
    this.listening = false;
    for (const socket of this.undecided) socket.destroy();
    this.undecided.clear();
    await this.options.native.close();
    await this.options.etcd.close();
    await stopped;
  }

  private accept(socket: Socket): void {
    this.undecided.add(socket);
    let preface: ClientPrefaceReader | undefined;
    let prefaceTimer: NodeJS.Timeout | undefined;
    let settingsSent = false;
    const settle = () => {
      this.undecided.delete(socket);
      socket.off("readable", onReadable);
      socket.off("error", onError);
      socket.off("close", onClose);
      socket.setTimeout(0);
      socket.off("timeout", onTimeout);
      clearTimeout(prefaceTimer);
    };
    const serveGrpc = (reader: ClientPrefaceReader, verdict: PrefaceVerdict) => {
      settle();
      if (socket.destroyed || socket.readableEnded) {
        // Closed, or the client ended its side before its first request (seen when the timer
        // fires): bytes cannot be put back into an ended stream, and no answer can be asked for.
        socket.destroy();
        return;
      }
      const received = reader.bytes();
      if (received.length > 0) socket.unshift(received);
      if (verdict === "lenient") {
        // etcdctl's URL-shaped :authority (--cluster) would be refused by Node's HTTP/2
        // layer: read the connection through the rewriting (see authority-rewrite.ts).
        this.counts.grpcLenient++;
        this.options.etcd.injectConnection(withLenientAuthority(socket));
      } else {
        this.counts.grpcRaw++;
        this.options.etcd.injectConnection(socket);
      }
    };
    const onReadable = () => {
      for (
        let chunk = socket.read() as Buffer | null;
        chunk !== null;
        chunk = socket.read() as Buffer | null
      ) {
        if (chunk.length === 0) continue;
        if (preface === undefined && chunk[0] !== HTTP2_PREFACE_FIRST_BYTE) {
          settle();
          socket.unshift(chunk);
          this.counts.native++;
          this.options.native.injectConnection(socket);
          socket.resume();
          return;
        }
        if (preface === undefined) {
          const reader = new ClientPrefaceReader();
          preface = reader;
          socket.setTimeout(0);
          // Small HTTP/2 frames must not wait for the peer's delayed ACK: Node's HTTP/2 session
          // turns Nagle off only on the stream it is given, and only once given it.
          socket.setNoDelay(true);
          prefaceTimer = setTimeout(
            () => serveGrpc(reader, reader.giveUp()),
            this.options.http2PrefaceTimeoutMs ?? 2_000,
          );
        }
        const verdict = preface.push(chunk);
        if (preface.clientSettingsRead && !settingsSent) {
          // The server connection preface; grpc-go waits for it before its first request.
          settingsSent = true;
          socket.write(EMPTY_SETTINGS_FRAME);
        }
        if (verdict !== "pending") {
          serveGrpc(preface, verdict);
          return;
        }
      }
    };
    const onError = () => {
      settle();
      socket.destroy();
    };
    const onClose = () => settle();
    const onTimeout = () => {
      settle();
      socket.destroy();
    };
    socket.on("readable", onReadable);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.setTimeout(this.options.firstByteTimeoutMs ?? 10_000);
    socket.on("timeout", onTimeout);
  }
}
