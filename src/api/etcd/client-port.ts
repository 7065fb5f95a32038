/**
 * `ClientPort`: one TCP port for both client protocols. It accepts connections itself, reads
 * the first byte, and hands the connection (with that byte put back) to the etcd gRPC server
 * when it begins the HTTP/2 client preface ("PRI * HTTP/2.0"), to etcd's plain HTTP endpoints
 * when it begins an HTTP/1 "GET" (http-endpoints.ts: /health, /version, /metrics), or to the native
 * protocol server otherwise: a native frame starts with its u32 big-endian length, whose first
 * byte is 0x00 or 0x01 under the frame size limit, never "P" or "G". A connection that sends nothing within
 * `firstByteTimeoutMs` is closed. It also runs the member's metrics ports, if any (metrics-port.ts).
 */
import { createServer, type Server, type Socket } from "node:net";
import type { NativeServer } from "../native/server.js";
import type { Logger } from "../../transport/transport.js";
import { boundAddress, listenAt, stopListening } from "../address.js";
import { serveHttpEndpoint } from "./http-endpoints.js";
import { MetricsPort } from "./metrics-port.js";
import type { EtcdServer } from "./server.js";

/** The first byte of the HTTP/2 client connection preface. */
const HTTP2_PREFACE_FIRST_BYTE = "P".charCodeAt(0);
/** The first byte of an HTTP/1 GET (etcd's /health, /version and /metrics, http-endpoints.ts). */
const HTTP_GET_FIRST_BYTE = "G".charCodeAt(0);

export interface ClientPortOptions {
  /** Where to listen (port 0: a free port, see `address()`). */
  readonly listen: { readonly host: string; readonly port: number };
  readonly etcd: EtcdServer;
  readonly native: NativeServer;
  readonly logger: Logger;
  /** Close a connection that sends no byte for this long (default 10 s). */
  readonly firstByteTimeoutMs?: number;
  /** Where plain HTTP ports for metrics and health also listen (`--listen-metrics-urls`; metrics-port.ts). */
  readonly metricsListen?: readonly { readonly host: string; readonly port: number }[];
}

/** How many connections the port has handed on, by protocol. */
export interface ClientPortConnectionCounts {
  readonly native: number;
  readonly grpc: number;
  readonly http: number;
}

export class ClientPort {
  private readonly server: Server;
  /** Connections whose first byte has not arrived yet. */
  private readonly undecided = new Set<Socket>();
  private listening = false;
  private readonly counts = { native: 0, grpc: 0, http: 0 };
  private readonly metricsPorts: MetricsPort[];

  constructor(private readonly options: ClientPortOptions) {
    this.metricsPorts = (options.metricsListen ?? []).map(
      (listen) => new MetricsPort(listen, options.etcd, options.logger),
    );
    this.server = createServer((socket) => this.accept(socket));
    this.server.on("error", (error) => options.logger.warn({ error: error.message }, "client port error"));
  }

  async start(): Promise<void> {
    await listenAt(this.server, this.options.listen);
    this.listening = true;
    // A metrics port that cannot listen fails the start; close() still closes everything.
    for (const port of this.metricsPorts) await port.start();
  }

  /** Where the metrics ports listen, in the order they were asked for; only after `start()`. */
  metricsAddresses(): { host: string; port: number }[] {
    return this.metricsPorts.map((port) => port.address());
  }

  /** The bound address; only after `start()`. */
  address(): { host: string; port: number } {
    return boundAddress(this.server, this.listening, "the client port");
  }

  /** How many connections went where so far (tests and metrics). */
  connectionCounts(): ClientPortConnectionCounts {
    return { ...this.counts };
  }

  /** Stops listening and closes every connection, of both protocols. */
  async close(): Promise<void> {
    // Stop accepting first, so no connection is handed to a server that is closing.
    const stopped = stopListening(this.server, this.listening);
    this.listening = false;
    for (const socket of this.undecided) socket.destroy();
    this.undecided.clear();
    for (const port of this.metricsPorts) await port.close();
    await this.options.native.close();
    await this.options.etcd.close();
    await stopped;
  }

  private accept(socket: Socket): void {
    this.undecided.add(socket);
    const settle = () => {
      this.undecided.delete(socket);
      socket.off("readable", onReadable);
      socket.off("error", onError);
      socket.off("close", onClose);
      socket.setTimeout(0);
      socket.off("timeout", onTimeout);
    };
    const onReadable = () => {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null || chunk.length === 0) return;
      settle();
      socket.unshift(chunk);
      // Small frames must not wait for the peer's delayed ACK.
      socket.setNoDelay(true);
      if (chunk[0] === HTTP2_PREFACE_FIRST_BYTE) {
        this.counts.grpc++;
        this.options.etcd.injectConnection(socket);
      } else if (chunk[0] === HTTP_GET_FIRST_BYTE) {
        this.counts.http++;
        serveHttpEndpoint(socket, this.options.etcd.context, this.options.etcd.metrics);
      } else {
        this.counts.native++;
        this.options.native.injectConnection(socket);
      }
      socket.resume();
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
