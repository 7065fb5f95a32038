// The remote client against a scripted native-protocol server that closes the connection with
// a Goodbye while a write is in flight: a write the Goodbye says was never read had no effect
// and is retried (the cluster test "a remote client fails over when the member it talks to
// closes" once failed with an ambiguous write here, the client having sent its write just as
// the member shut down); a write the server read stays ambiguous. A server session names the
// id after the last request it read; the codec round trip of that id is here too.
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, test } from "node:test";
import { AmbiguousWriteError, Concord, ConnectionLostError } from "../../src/api/index.js";
import { FramedSocket } from "../../src/api/native/framed-socket.js";
import {
  DEFAULT_MAX_NATIVE_FRAME_BYTES,
  Method,
  NativeFrameDecoder,
  NativeFrameKind,
  decodeGoodbye,
  decodeRequest,
  decodeResponse,
  encodeGoodbye,
  encodeNativeFrame,
  encodeRequest,
  type Goodbye,
} from "../../src/api/native/protocol.js";
import { ClientSession } from "../../src/api/native/session.js";
import type { NodeHost } from "../../src/node/host.js";

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

/**
 * Closes every connection with a Goodbye as soon as a write arrives, naming as the first
 * unread id the write's own id (`unread`: it was never read) or the next one (`read`).
 * Counts the writes it received.
 */
async function closingServer(mode: "read" | "unread"): Promise<{ endpoint: string; writes: () => number }> {
  let writes = 0;
  const server = createServer((socket: Socket) => {
    const framed: FramedSocket = new FramedSocket(socket, DEFAULT_MAX_NATIVE_FRAME_BYTES, {
      frame: (frame) => {
        const request = decodeRequest(frame.payload);
        if (request.method !== Method.Write) throw new Error(`unexpected method ${request.method}`);
        writes += 1;
        framed.close("the server is shutting down", "local", mode === "unread" ? request.id : request.id + 1);
      },
      closed: () => undefined,
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { endpoint: `127.0.0.1:${address.port}`, writes: () => writes };
}

test("a write the closing server never read is retried, not reported ambiguous", async () => {
  const server = await closingServer("unread");
  const db = Concord.connect({
    endpoints: [server.endpoint],
    retry: { maxAttempts: 3, initialBackoffMs: 1 },
  });
  try {
    await assert.rejects(db.put("k", "v"), (error: unknown) => {
      assert.ok(error instanceof ConnectionLostError, `got ${String(error)}`);
      assert.match(error.message, /the server is shutting down/);
      return true;
    });
    assert.equal(server.writes(), 3, "every attempt reached the server and was retried");
  } finally {
    await db.close();
  }
});

test("a write the closing server read before its Goodbye is ambiguous", async () => {
  const server = await closingServer("read");
  const db = Concord.connect({
    endpoints: [server.endpoint],
    retry: { maxAttempts: 3, initialBackoffMs: 1 },
  });
  try {
    await assert.rejects(db.put("k", "v"), AmbiguousWriteError);
    assert.equal(server.writes(), 1, "an ambiguous write is not retried on its own");
  } finally {
    await db.close();
  }
});

test("a Goodbye carries its first unread id when it has one, and refuses an id below 1", () => {
  assert.deepEqual(decodeGoodbye(encodeGoodbye({ reason: "bye" })), { reason: "bye" });
  assert.deepEqual(decodeGoodbye(encodeGoodbye({ reason: "bye", firstUnreadId: 7 })), {
    reason: "bye",
    firstUnreadId: 7,
  });
  assert.throws(() => encodeGoodbye({ reason: "bye", firstUnreadId: 0 }), RangeError);
});

test("a server session closing names the id after the last request it read as the first unread one", async () => {
  // A host without replicas: the session answers every request with UnknownRange.
  const host = { replica: () => undefined } as unknown as NodeHost;
  let session: ClientSession | undefined;
  const server = createServer((socket) => {
    session = new ClientSession(socket, DEFAULT_MAX_NATIVE_FRAME_BYTES, host, undefined, () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  const socket = connect({ host: "127.0.0.1", port: address.port });
  const decoder = new NativeFrameDecoder(DEFAULT_MAX_NATIVE_FRAME_BYTES);
  const answered: number[] = [];
  const goodbye = new Promise<Goodbye>((resolve) => {
    socket.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.kind === NativeFrameKind.Response) {
          answered.push(decodeResponse(frame.payload).id);
          // Both answered: the session has read both requests; now it closes.
          if (answered.length === 2) session?.close("the server is shutting down");
        }
        if (frame.kind === NativeFrameKind.Goodbye) resolve(decodeGoodbye(frame.payload));
      }
    });
  });
  for (const id of [3, 8]) {
    socket.write(
      encodeNativeFrame(NativeFrameKind.Request, encodeRequest({ id, method: Method.Status, rangeId: 99 })),
    );
  }
  try {
    assert.deepEqual(await goodbye, { reason: "the server is shutting down", firstUnreadId: 9 });
    assert.deepEqual(answered, [3, 8]);
  } finally {
    socket.destroy();
  }
});
