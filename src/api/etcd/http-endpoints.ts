/**
 * etcd's plain HTTP endpoints on the client port, for load balancers, probes, Prometheus and
 * people with curl: `GET /health` (200 `{"health":"true","reason":""}` once a linearizable
 * read of the keyspace succeeds, else 503 `{"health":"false","reason":...}`, as etcd answers),
 * `GET /version` (`{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}`) and `GET /metrics` (the
 * member's metrics in Prometheus's text format, metrics.ts). One request per connection (the
 * answer closes it; one unanswered for REQUEST_TIMEOUT_MS is closed). A request head that is
 * not `GET <path> HTTP/1.x`, or longer than HEAD_LIMIT_BYTES, gets 400; another path 404; a
 * request body is never read.
 */
import type { Socket } from "node:net";
import { rangeRequest } from "../../kv/commands.js";
import { errorMessage, type EtcdContext } from "./context.js";
import { ETCD_COMPATIBLE_VERSION } from "./maintenance-service.js";
import type { MemberMetrics } from "./metrics.js";

/** The longest request head read before it is refused. */
const HEAD_LIMIT_BYTES = 8 * 1024;
/** A connection that has not been answered within this is closed. */
const REQUEST_TIMEOUT_MS = 30_000;
/** The cluster version etcd reports beside its server version: major.minor.0. */
const CLUSTER_VERSION = `${ETCD_COMPATIBLE_VERSION.split(".").slice(0, 2).join(".")}.0`;
const REQUEST_LINE = /^GET (\S+) HTTP\/1\.[01]$/;

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  503: "Service Unavailable",
};

function respond(socket: Socket, status: number, body: string, type = "application/json"): void {
  const bytes = Buffer.from(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: ${type}\r\n` +
      `Content-Length: ${bytes.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** What `GET path` answers: a status, a body, and its type when it is not JSON. */
async function answer(
  path: string,
  ctx: EtcdContext,
  metrics: MemberMetrics,
): Promise<{ status: number; body: string; type?: string }> {
  const route = path.split("?")[0];
  if (route === "/metrics") {
    return { status: 200, body: await metrics.metrics(), type: metrics.contentType };
  }
  if (route === "/version") {
    return {
      status: 200,
      body: JSON.stringify({ etcdserver: ETCD_COMPATIBLE_VERSION, etcdcluster: CLUSTER_VERSION }),
    };
  }
  if (route === "/health") {
    try {
      // A linearizable read proves a leader and a quorum behind it, as etcd's check does.
      await ctx.kv().range(rangeRequest({ key: Uint8Array.of(0), countOnly: true }));
      return { status: 200, body: JSON.stringify({ health: "true", reason: "" }) };
    } catch (error) {
      return { status: 503, body: JSON.stringify({ health: "false", reason: errorMessage(error) }) };
    }
  }
  return { status: 404, body: JSON.stringify({ message: `no such endpoint: ${route}` }) };
}

/** Serves one HTTP/1 request on `socket` (its first bytes are "G"); the answer closes it. */
export function serveHttpEndpoint(socket: Socket, ctx: EtcdContext, metrics: MemberMetrics): void {
  let head = "";
  const onData = (chunk: Buffer): void => {
    head += chunk.toString("latin1");
    const end = head.indexOf("\r\n\r\n");
    if (end < 0 && head.length <= HEAD_LIMIT_BYTES) return;
    socket.off("data", onData);
    socket.pause();
    const line = end < 0 ? null : REQUEST_LINE.exec(head.slice(0, head.indexOf("\r\n")));
    if (line === null) {
      respond(socket, 400, JSON.stringify({ message: "expected GET <path> HTTP/1.1" }));
      return;
    }
    void answer(line[1]!, ctx, metrics).then(
      ({ status, body, type }) => respond(socket, status, body, type),
      (error: unknown) => respond(socket, 503, JSON.stringify({ message: errorMessage(error) })),
    );
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
  socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
}
