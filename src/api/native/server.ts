/**
 * `NativeServer`: serves a NodeHost's replicas to native-protocol clients on a TCP port
 * (127.0.0.1 by default). Requests on one connection run concurrently and are answered by
 * request id in whatever order they finish. A member that does not lead a range serves its
 * requests anyway: the node forwards writes to the leader and reads through ReadIndex. Bad
 * bytes close only the connection they came on, with a Goodbye saying why. It can also serve
 * connections accepted elsewhere (`injectConnection`), e.g. by a port shared with the etcd
 * gRPC API, without listening itself.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { NodeHost } from "../../node/host.js";
import type { RoutedKv } from "../../placement/node-ranges.js";
import type { Logger } from "../../transport/transport.js";
import { boundAddress, listenAt, stopListening } from "../address.js";
import { DEFAULT_MAX_NATIVE_FRAME_BYTES } from "./protocol.js";
import { ClientSession } from "./session.js";

export { rangeStatus } from "./session.js";

export interface NativeServerOptions {
  readonly host: NodeHost;
  /** Routes writes, reads and watches over the ranges (default: the range a request names). */
  readonly kv?: RoutedKv;
  /** Where to listen (default 127.0.0.1, port 0: a free port, see `address()`). */
  readonly listen?: { readonly host?: string; readonly port?: number };
  readonly logger: Logger;
  readonly maxFrameBytes?: number;
}

export class NativeServer {
  private readonly server: Server;
  private readonly sessions = new Set<ClientSession>();
  private readonly maxFrameBytes: number;
  private listening = false;
  /** Connections closed because their bytes broke the protocol (for tests and metrics). */
  protocolViolations = 0;

  constructor(private readonly options: NativeServerOptions) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_NATIVE_FRAME_BYTES;
    this.server = createServer((socket) => this.injectConnection(socket));
    this.server.on("error", (error) => options.logger.warn({ error: error.message }, "native server error"));
  }

  async start(): Promise<void> {
    await listenAt(this.server, {
      host: this.options.listen?.host ?? "127.0.0.1",
      port: this.options.listen?.port ?? 0,
    });
    this.listening = true;
  }

  /** The bound address; only after `start()`. */
  address(): { host: string; port: number } {
    return boundAddress(this.server, this.listening, "the native server");
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  /** Stops listening and closes every connection (their requests in flight are left unanswered). */
  async close(): Promise<void> {
    for (const session of [...this.sessions]) session.close("the server is shutting down");
    const stopped = stopListening(this.server, this.listening);
    this.listening = false;
    await stopped;
  }

  /** Serves a native-protocol client on a connection accepted by someone else. */
  injectConnection(socket: Socket): void {
    const session = new ClientSession(
      socket,
      this.maxFrameBytes,
      this.options.host,
      this.options.kv,
      (closed, reason, cause) => {
        this.sessions.delete(closed);
        if (cause !== "protocol") return;
        this.protocolViolations++;
        this.options.logger.warn({ reason }, "native server closed a client connection");
      },
    );
    this.sessions.add(session);
  }
}
