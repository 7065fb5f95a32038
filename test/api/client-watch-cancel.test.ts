// The remote client against a scripted native-protocol server: watch responses that were
// already on their way when the client cancelled the watch must be dropped quietly — they
// once made the client close the connection ("response to unknown request"), failing a write
// in flight on it as ambiguous.
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, test } from "node:test";
import { Concord } from "../../src/api/index.js";
import { FramedSocket } from "../../src/api/native/framed-socket.js";
import {
  DEFAULT_MAX_NATIVE_FRAME_BYTES,
  Method,
  NativeFrameKind,
  decodeRequest,
  encodeResponse,
  type NativeRequest,
  type ResponseBody,
} from "../../src/api/native/protocol.js";
import type { WatchResponse } from "../../src/kv/watch.js";

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

function watchResponse(watchId: number, revision: bigint): ResponseBody {
  const response: WatchResponse = {
    watchId,
    events: [],
    revision,
    compactRevision: 0n,
    canceled: false,
    cancelReason: "",
    fragment: false,
  };
  return { kind: "watch", response };
}

/**
 * Answers a watch with one response; holds a write's answer; on the watch's cancel sends one
 * more watch response for the cancelled watch (as if it had been on the wire already), then
 * the cancel's answer, then the held write's answer. Counts the connections it accepted.
 */
async function scriptedServer(): Promise<{
  endpoint: string;
  connections: () => number;
  writeReceived: Promise<void>;
}> {
  let connections = 0;
  let markWriteReceived: () => void = () => undefined;
  const writeReceived = new Promise<void>((resolve) => {
    markWriteReceived = resolve;
  });
  const server = createServer((socket: Socket) => {
    connections += 1;
    let watchId = 0;
    let heldWrite: NativeRequest | null = null;
    const framed: FramedSocket = new FramedSocket(socket, DEFAULT_MAX_NATIVE_FRAME_BYTES, {
      frame: (frame) => {
        const request = decodeRequest(frame.payload);
        const respond = (id: number, body: ResponseBody) =>
          framed.send(NativeFrameKind.Response, encodeResponse({ id, body }));
        switch (request.method) {
          case Method.Watch:
            watchId = request.id;
            respond(request.id, watchResponse(request.id, 5n));
            return;
          case Method.Write:
            heldWrite = request;
            markWriteReceived();
            return;
          case Method.WatchCancel:
            respond(watchId, watchResponse(watchId, 6n));
            respond(request.id, { kind: "watchCancelled" });
            if (heldWrite !== null) {
              respond(heldWrite.id, {
                kind: "write",
                result: { revision: 7n, response: { kind: "put", prevKv: null } },
              });
            }
            return;
          default:
            respond(request.id, { kind: "failure", code: 9, message: "not scripted", kvErrorCode: 0 });
        }
      },
      closed: () => undefined,
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { endpoint: `127.0.0.1:${address.port}`, connections: () => connections, writeReceived };
}

test("watch responses in flight when a watch is cancelled do not break the connection", async () => {
  const server = await scriptedServer();
  const db = Concord.connect({ endpoints: [server.endpoint], retry: { maxAttempts: 1 } });
  try {
    const watch = await db.watch("k");
    const iterator = watch[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done === true ? null : first.value.revision, 5n);
    const write = db.put("k", "v");
    await server.writeReceived;
    // Leaving the watch sends WatchCancel; the server answers the write only after it.
    await iterator.return?.();
    assert.equal((await write).revision, 7n, "the write in flight is answered, not failed as ambiguous");
    assert.equal(server.connections(), 1, "the client kept its one connection");
  } finally {
    await db.close();
  }
});
