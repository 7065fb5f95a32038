// A watch whose client stops reading: the server writes only as fast as the stream drains, so
// the events pile up in the member's watch hub, which cancels the watch as overloaded (a final
// canceled response with the reason) instead of buffering without bound. Driven by a raw
// HTTP/2 client that pauses its response stream; the load is bounded (140 txns).
import assert from "node:assert/strict";
import { connect as connectHttp2 } from "node:http2";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Etcd3 } from "etcd3";
import {
  WatchCreateRequestSchema,
  WatchRequestSchema,
  WatchResponseSchema,
  type WatchResponse,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { waitFor } from "../helpers.js";
import { EtcdCluster } from "./harness.js";

let cluster: EtcdCluster;
let etcd: Etcd3;

before(async () => {
  cluster = await EtcdCluster.start(1);
  etcd = cluster.client(1);
});

after(async () => {
  await cluster.close();
});

/** gRPC's length-prefixed message framing. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Decodes gRPC-framed responses as the bytes arrive. */
class FrameReader {
  readonly responses: WatchResponse[] = [];
  private pending = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + length) return;
      this.responses.push(fromBinary(WatchResponseSchema, this.pending.subarray(5, 5 + length)));
      this.pending = this.pending.subarray(5 + length);
    }
  }
}

test("a watch that is not read is cancelled as overloaded, not buffered without bound", async () => {
  const session = connectHttp2(`http://${cluster.endpoint(1)}`);
  // Closing the stream cancels it; the session reports that as an error nobody needs.
  session.on("error", () => {});
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": "/etcdserverpb.Watch/Watch",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("error", () => {});
    const reader = new FrameReader();
    const onData = (chunk: Buffer) => reader.push(chunk);
    stream.on("data", onData);
    const request = create(WatchRequestSchema, {
      requestUnion: {
        case: "createRequest",
        value: create(WatchCreateRequestSchema, { key: Buffer.from("p/"), rangeEnd: Buffer.from("p0") }),
      },
    });
    stream.write(grpcFrame(toBinary(WatchRequestSchema, request)));
    await waitFor(() => reader.responses.some((r) => r.created), "the created response");
    // Stop reading: HTTP/2 flow control stops the server's writes once the window is full.
    stream.off("data", onData);
    stream.pause();

    const value = "v".repeat(64);
    let txns = 0;
    let eventsWritten = 0;
    // Each txn writes 128 keys (one revision, 128 events); the hub keeps 10,000 unread at most,
    // and some responses are in flight when the stream stops draining.
    while (txns < 140) {
      const ops = Array.from({ length: 128 }, (_, i) => etcd.put(`p/${txns}/${i}`).value(value));
      await etcd
        .if("p/none", "Version", "==", 0)
        .then(...ops)
        .commit();
      txns++;
      eventsWritten += 128;
    }

    stream.on("data", onData);
    stream.resume();
    const responses = reader.responses;
    await waitFor(() => responses.some((r) => r.canceled), "the overload cancellation");
    const canceled = responses.find((r) => r.canceled);
    assert.match(canceled?.cancelReason ?? "", /overloaded/);
    const delivered = responses.reduce((sum, r) => sum + r.events.length, 0);
    assert.ok(
      delivered < eventsWritten,
      `${delivered} of ${eventsWritten} events delivered before the cancellation`,
    );
    stream.close();
  } finally {
    session.close();
  }
});
