/**
 * A micro-benchmark of what the gRPC layer alone costs a server: the same unary etcd `KV/Put`
 * handler, answered from memory (a Map, no Raft, no disk), served (a) by grpc-js, (b) by a
 * lean gRPC server on `node:http2` (5-byte message framing, `grpc-status` trailer), and (c) by
 * Concord's own gRPC server on its own HTTP/2 (src/api/etcd/grpc-server.ts, what members run).
 * All use the generated protobuf-es codecs, so the difference is the server framework. Each server
 * runs in its own child process (so its CPU is its own, read from /proc); this process drives
 * both with one grpc-js client at a fixed concurrency, alternating, and prints CPU per request.
 *
 *   npx tsx bench/etcd-compare/grpc-overhead.ts [--seconds 5] [--reps 3] [--concurrency 64]
 *   (a child runs this file with `--serve grpc-js|http2|concord` and prints "listening <port>")
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  PutRequestSchema,
  PutResponseSchema,
  type PutRequest,
  type PutResponse,
} from "../../src/api/etcd/gen/rpc_pb.js";
import { GrpcServer } from "../../src/api/etcd/grpc-server.js";
import { clientCpuMicros, serverCpuMicros } from "./cpu.js";
import { median } from "./stats.js";
import { percentile } from "../stats.js";

const PUT_PATH = "/etcdserverpb.KV/Put";
const SERVER_KINDS = ["grpc-js", "http2", "concord"] as const;
type ServerKind = (typeof SERVER_KINDS)[number];
const START_LIMIT_MS = 30_000;
const MAX_REQUESTS_PER_RUN = 2_000_000;
/** Unmeasured load on each server before the first repetition (JIT, connection). */
const WARM_UP_SECONDS = 3;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function encode(response: PutResponse): Buffer {
  const bytes = toBinary(PutResponseSchema, response);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The in-memory Put both servers answer with: store the value, bump the revision. */
function memoryPut(): (request: PutRequest) => PutResponse {
  const store = new Map<string, Uint8Array>();
  let revision = 1n;
  return (request) => {
    store.set(Buffer.from(request.key).toString("latin1"), request.value);
    revision++;
    return create(PutResponseSchema, { header: { clusterId: 1n, memberId: 1n, revision, raftTerm: 1n } });
  };
}

/** The one-method service both grpc-js and Concord's server serve (node:http2 frames by hand). */
const PUT_SERVICE = {
  Put: {
    path: PUT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (message: PutRequest) => Buffer.from(toBinary(PutRequestSchema, message)),
    requestDeserialize: (bytes: Buffer) => fromBinary(PutRequestSchema, bytes),
    responseSerialize: encode,
    responseDeserialize: (bytes: Buffer) => fromBinary(PutResponseSchema, bytes),
  },
};

async function serveGrpcJs(): Promise<number> {
  const put = memoryPut();
  const server = new grpc.Server();
  server.addService(PUT_SERVICE, {
    Put: (call: grpc.ServerUnaryCall<PutRequest, PutResponse>, callback: grpc.sendUnaryData<PutResponse>) =>
      callback(null, put(call.request)),
  });
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
      error === null ? resolve(port) : reject(error),
    ),
  );
}

/** One gRPC message frame: a 0 (not compressed) flag byte, a 4-byte big-endian length, the message. */
function frame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

async function serveHttp2(): Promise<number> {
  const put = memoryPut();
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      const body = Buffer.concat(chunks);
      let status = 0;
      let reply: Buffer | undefined;
      if (headers[":path"] !== PUT_PATH) status = 12;
      else if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) status = 13;
      else {
        try {
          reply = frame(encode(put(fromBinary(PutRequestSchema, body.subarray(5)))));
        } catch {
          status = 13;
        }
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": String(status) }));
      stream.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the http2 server bound no port");
  return address.port;
}

async function serveConcord(): Promise<number> {
  const put = memoryPut();
  const server = new GrpcServer({ maxReceiveMessageBytes: 4 * 1024 * 1024 });
  server.addService(PUT_SERVICE, { Put: (request: PutRequest) => Promise.resolve(put(request)) });
  const listener = createServer((socket) => {
    socket.setNoDelay(true);
    server.injectConnection(socket);
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const address = listener.address();
  if (address === null || typeof address === "string") throw new Error("the concord server bound no port");
  return address.port;
}

interface ServerProcess {
  readonly kind: ServerKind;
  readonly child: ChildProcess;
  readonly port: number;
}

async function startServer(kind: ServerKind): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), "--serve", kind],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const deadline = performance.now() + START_LIMIT_MS;
  for (;;) {
    const port = /listening (\d+)/.exec(output)?.[1];
    if (port !== undefined) return { kind, child, port: Number(port) };
    if (child.exitCode !== null || performance.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the ${kind} server did not start: ${output}`);
    }
    await sleep(20);
  }
}

function makeClient(port: number): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function sendPut(client: grpc.Client, request: PutRequest): Promise<PutResponse> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      PUT_PATH,
      (message: PutRequest) => Buffer.from(toBinary(PutRequestSchema, message)),
      (bytes: Buffer) => fromBinary(PutResponseSchema, bytes),
      request,
      (error: grpc.ServiceError | null, response?: PutResponse) =>
        error === null && response !== undefined
          ? resolve(response)
          : reject(error ?? new Error("no response")),
    ),
  );
}

interface OverheadRun {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuUsPerRequest: number;
  readonly clientCpuUsPerRequest: number;
}

async function drive(server: ServerProcess, concurrency: number, seconds: number): Promise<OverheadRun> {
  const client = makeClient(server.port);
  const value = Buffer.alloc(256, "v");
  const latenciesMs: number[] = [];
  try {
    const serverBefore = serverCpuMicros([server.child.pid ?? -1]);
    const clientBefore = clientCpuMicros();
    const started = performance.now();
    const deadline = started + seconds * 1000;
    let issued = 0;
    const loop = async (): Promise<void> => {
      while (issued < MAX_REQUESTS_PER_RUN && performance.now() < deadline) {
        const key = Buffer.from(`bench/key/${issued++ % 1000}`);
        const sent = performance.now();
        await sendPut(client, create(PutRequestSchema, { key, value }));
        latenciesMs.push(performance.now() - sent);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    const elapsedMs = performance.now() - started;
    const requests = latenciesMs.length;
    return {
      requests,
      requestsPerSecond: (requests * 1000) / elapsedMs,
      p50Ms: percentile(latenciesMs, 50),
      p99Ms: percentile(latenciesMs, 99),
      serverCpuUsPerRequest: (serverCpuMicros([server.child.pid ?? -1]) - serverBefore) / requests,
      clientCpuUsPerRequest: (clientCpuMicros() - clientBefore) / requests,
    };
  } finally {
    client.close();
  }
}

async function compare(seconds: number, reps: number, concurrency: number): Promise<void> {
  const servers: ServerProcess[] = [];
  try {
    for (const kind of SERVER_KINDS) servers.push(await startServer(kind));
    for (const server of servers) await drive(server, concurrency, WARM_UP_SECONDS);
    const runs = new Map<ServerKind, OverheadRun[]>();
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? servers : [...servers].reverse();
      for (const server of order) {
        const run = await drive(server, concurrency, seconds);
        runs.set(server.kind, [...(runs.get(server.kind) ?? []), run]);
        console.log(
          `  rep ${rep + 1} ${server.kind}: ${run.requestsPerSecond.toFixed(0)} req/s, ` +
            `server ${run.serverCpuUsPerRequest.toFixed(1)} µs/req, client ${run.clientCpuUsPerRequest.toFixed(1)} µs/req`,
        );
      }
    }
    console.log(`\nunary Put from memory, concurrency ${concurrency}, medians of ${reps} x ${seconds} s:`);
    console.log("server    req/s  p50 ms  p99 ms  server CPU µs/req  client CPU µs/req");
    for (const kind of SERVER_KINDS) {
      const measured = runs.get(kind) ?? [];
      const m = (pick: (run: OverheadRun) => number): number => median(measured.map(pick));
      console.log(
        `${kind.padEnd(8)}  ${m((r) => r.requestsPerSecond)
          .toFixed(0)
          .padStart(5)}  ` +
          `${m((r) => r.p50Ms)
            .toFixed(2)
            .padStart(6)}  ${m((r) => r.p99Ms)
            .toFixed(2)
            .padStart(6)}  ` +
          `${m((r) => r.serverCpuUsPerRequest)
            .toFixed(1)
            .padStart(17)}  ${m((r) => r.clientCpuUsPerRequest)
            .toFixed(1)
            .padStart(17)}`,
      );
    }
  } finally {
    for (const server of servers) server.child.kill("SIGKILL");
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: "string" },
      seconds: { type: "string", default: "5" },
      reps: { type: "string", default: "3" },
      concurrency: { type: "string", default: "64" },
    },
  });
  if (values.serve !== undefined) {
    const serve = { "grpc-js": serveGrpcJs, http2: serveHttp2, concord: serveConcord }[values.serve];
    if (serve === undefined)
      throw new RangeError(`--serve takes grpc-js, http2 or concord, not "${values.serve}"`);
    const port = await serve();
    console.log(`listening ${port}`);
    return;
  }
  const seconds = Number(values.seconds);
  const reps = Number(values.reps);
  const concurrency = Number(values.concurrency);
  if (!(seconds > 0 && seconds <= 600))
    throw new RangeError(`--seconds must be in (0, 600], not ${values.seconds}`);
  if (!(Number.isInteger(reps) && reps >= 1 && reps <= 50))
    throw new RangeError(`--reps must be a whole number from 1 to 50, not ${values.reps}`);
  if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 4096))
    throw new RangeError(`--concurrency must be a whole number from 1 to 4096, not ${values.concurrency}`);
  await compare(seconds, reps, concurrency);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
