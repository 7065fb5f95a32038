/**
 * `MetricsPort`: a plain HTTP port for Prometheus and probes alone, as etcd's
 * `--listen-metrics-urls` opens one: every connection is served by http-endpoints.ts
 * (`GET /metrics`, `/health`, `/version`), the same answers as on the client port, which keeps
 * serving them too. Scrapes then need no access to the port clients write through.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../../transport/transport.js";
import { boundAddress, listenAt, stopListening } from "../address.js";
import { serveHttpEndpoint } from "./http-endpoints.js";
import type { EtcdServer } from "./server.js";

export class MetricsPort {
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  private listening = false;

  constructor(
    private readonly listen: { readonly host: string; readonly port: number },
    etcd: EtcdServer,
    logger: Logger,
  ) {
    this.server = createServer((socket) => {
      this.open.add(socket);
      socket.once("close", () => this.open.delete(socket));
      serveHttpEndpoint(socket, etcd.context, etcd.metrics);
    });
    this.server.on("error", (error) => logger.warn({ error: error.message }, "metrics port error"));
  }

  async start(): Promise<void> {
    await listenAt(this.server, this.listen);
    this.listening = true;
  }

  /** The bound address; only after `start()`. */
  address(): { host: string; port: number } {
    return boundAddress(this.server, this.listening, "the metrics port");
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const stopped = stopListening(this.server, this.listening);
    this.listening = false;
    for (const socket of this.open) socket.destroy();
    this.open.clear();
    await stopped;
  }
}
