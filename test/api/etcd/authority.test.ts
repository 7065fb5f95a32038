// The client port's lenient :authority (src/api/etcd/authority-rewrite.ts, http2-preface.ts
// and hpack.ts): etcdctl --cluster sends a whole URL as :authority, which Node's HTTP/2 layer
// resets unless the port rewrites it. Checked end to end with node:http2's client (Huffman-coded
// literal, then the dynamic-table reference on later requests, padded and split header blocks);
// the port's choice of raw socket or rewriting for clients that send their first request at
// once, after the server's SETTINGS (node:http2, and a hand-written grpc-go-like client), or
// only after the port stopped waiting; and piece by piece: HPACK integers and Huffman strings
// (RFC 7541 Appendix C vectors), header block rewriting with dynamic-table names, frame parsing
// fed in any chunking, and the preface reader (ACK removal, verdicts).
import assert from "node:assert/strict";
import {
  connect as connectHttp2,
  constants,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from "node:http2";
import { connect as connectTcp, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import {
  AuthorityRewritingParser,
  HeaderBlockRewriter,
  lenientAuthority,
} from "../../../src/api/etcd/authority-rewrite.js";
import { ClientPort, type ClientPortConnectionCounts } from "../../../src/api/etcd/client-port.js";
import {
  ClientPrefaceReader,
  EMPTY_SETTINGS_FRAME,
  MAX_PREFACE_READ_BYTES,
} from "../../../src/api/etcd/http2-preface.js";
import { EtcdServer } from "../../../src/api/etcd/server.js";
import { NativeServer } from "../../../src/api/native/server.js";
import {
  decodeHuffman,
  encodeInteger,
  encodeRawStringLiteral,
  HpackError,
  readInteger,
} from "../../../src/api/etcd/hpack.js";
import { waitFor } from "../helpers.js";
import { EtcdCluster, within } from "./harness.js";

const hex = (text: string) => Buffer.from(text.replace(/\s/g, ""), "hex");
/** An empty gRPC message: uncompressed, length 0 (a StatusRequest has no fields). */
const EMPTY_GRPC_MESSAGE = Buffer.alloc(5);

interface CallOutcome {
  readonly grpcStatus: string | undefined;
  readonly responseBytes: number;
  readonly rstCode: number | undefined;
}

/** One Maintenance.Status call on `session` with the given :authority and extra headers. */
async function statusCall(
  session: ClientHttp2Session,
  authority: string,
  extraHeaders: Record<string, string> = {},
): Promise<CallOutcome> {
  const stream = session.request({
    ":method": "POST",
    ":path": "/etcdserverpb.Maintenance/Status",
    ":authority": authority,
    "content-type": "application/grpc",
    te: "trailers",
    ...extraHeaders,
  });
  stream.end(EMPTY_GRPC_MESSAGE);
  return within(
    new Promise<CallOutcome>((resolve) => {
      let grpcStatus: string | undefined;
      let responseBytes = 0;
      stream.on("response", (headers) => (grpcStatus ??= headers["grpc-status"] as string | undefined));
      stream.on(
        "trailers",
        (headers: IncomingHttpHeaders) => (grpcStatus ??= headers["grpc-status"] as string | undefined),
      );
      stream.on("data", (chunk: Buffer) => (responseBytes += chunk.length));
      // A reset stream also emits "error"; its code is in rstCode.
      stream.on("error", () => undefined);
      stream.on("close", () => resolve({ grpcStatus, responseBytes, rstCode: stream.rstCode }));
    }),
    `a Status call with :authority ${authority}`,
  );
}

describe("a URL-shaped :authority on the client port", () => {
  let cluster: EtcdCluster;
  const sessions: ClientHttp2Session[] = [];
  const open = (options: SecureClientSessionOptions = {}) => {
    const session = connectHttp2(`http://${cluster.endpoint(1)}`, options);
    session.on("error", () => undefined);
    sessions.push(session);
    return session;
  };

  before(async () => {
    cluster = await EtcdCluster.start(1);
  });

  after(async () => {
    for (const session of sessions) session.destroy();
    await cluster.close();
  });

  test("is answered, on the first request and on later ones of the same connection", async () => {
    const session = open();
    const url = `http://${cluster.endpoint(1)}`;
    // The first request carries the value as a Huffman-coded literal that the client adds
    // to its dynamic table; the next ones send only that entry's index.
    for (let call = 0; call < 3; call++) {
      const outcome = await statusCall(session, url);
      assert.equal(outcome.grpcStatus, "0", `call ${call}: ${JSON.stringify(outcome)}`);
      assert.ok(outcome.responseBytes > EMPTY_GRPC_MESSAGE.length, `call ${call}: an empty response`);
    }
    // A plain host:port on the same connection is untouched and answered as well.
    assert.equal((await statusCall(session, cluster.endpoint(1))).grpcStatus, "0");
  });

  test("is answered in padded HEADERS frames and in a header block split over CONTINUATION frames", async () => {
    const padded = open({ paddingStrategy: constants.PADDING_STRATEGY_MAX });
    assert.equal((await statusCall(padded, `http://${cluster.endpoint(1)}`)).grpcStatus, "0");
    const split = open();
    // Random bytes as hex do not compress, so the block exceeds one 16 KiB frame.
    const filler = Buffer.from(Array.from({ length: 14_000 }, (_, i) => (i * 7919) % 256)).toString("hex");
    const outcome = await statusCall(split, `https://${cluster.endpoint(1)}/`, { "x-filler": filler });
    assert.equal(outcome.grpcStatus, "0", JSON.stringify(outcome));
    assert.ok(outcome.responseBytes > EMPTY_GRPC_MESSAGE.length, "an empty response");
  });

  test("that is not a URL is still refused by the HTTP/2 layer, as before", async () => {
    const outcome = await statusCall(open(), "no such host");
    assert.equal(outcome.rstCode, constants.NGHTTP2_PROTOCOL_ERROR, JSON.stringify(outcome));
    assert.equal(outcome.grpcStatus, undefined);
  });
});

describe("HPACK pieces", () => {
  test("integers: RFC 7541 C.1 examples, both ways", () => {
    assert.deepEqual(readInteger(hex("0a"), 0, 5), { value: 10, next: 1 });
    assert.deepEqual(readInteger(hex("1f9a0a"), 0, 5), { value: 1337, next: 3 });
    assert.deepEqual(readInteger(hex("2a"), 0, 8), { value: 42, next: 1 });
    assert.deepEqual(encodeInteger(1337, 5, 0), [0x1f, 0x9a, 0x0a]);
    assert.deepEqual(encodeInteger(10, 5, 0xe0), [0xea]);
    assert.throws(() => readInteger(hex("1f9a"), 0, 5), HpackError);
    assert.throws(() => readInteger(hex("1fffffffff7f"), 0, 5), HpackError);
  });

  test("Huffman strings: RFC 7541 C.4 and C.6 examples; bad padding and EOS are refused", () => {
    const vectors: [string, string][] = [
      ["f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"],
      ["a8eb 1064 9cbf", "no-cache"],
      ["25a8 49e9 5ba9 7d7f", "custom-key"],
      ["25a8 49e9 5bb8 e8b4 bf", "custom-value"],
      ["6402", "302"],
      ["aec3 771a 4b", "private"],
      ["d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3", "https://www.example.com"],
      ["", ""],
    ];
    for (const [coded, text] of vectors) assert.equal(decodeHuffman(hex(coded)), text);
    // Eight or more padding bits, or padding with a zero bit, or the EOS code itself.
    assert.throws(() => decodeHuffman(hex("6402 ff")), HpackError);
    assert.throws(() => decodeHuffman(hex("a8eb 1064 9cbe")), HpackError);
    assert.throws(() => decodeHuffman(hex("ffff ffff")), HpackError);
  });

  test("lenientAuthority: only a URL with a host, replaced by its host[:port]", () => {
    assert.equal(lenientAuthority("http://127.0.0.1:2379"), "127.0.0.1:2379");
    assert.equal(lenientAuthority("https://[::1]:2379/"), "[::1]:2379");
    assert.equal(lenientAuthority("http://example.com"), "example.com");
    assert.equal(lenientAuthority("127.0.0.1:2379"), undefined);
    assert.equal(lenientAuthority("unix:///run/etcd.sock"), undefined);
    assert.equal(lenientAuthority("no such host"), undefined);
  });
});

/** A literal header field representation: pattern bits, name (static/dynamic index or literal), raw value. */
function literal(pattern: "indexed" | "plain", name: number | string, value: string): Buffer {
  const [prefix, bits] = pattern === "indexed" ? [6, 0x40] : [4, 0x00];
  const nameIndex = typeof name === "number" ? name : 0;
  return Buffer.concat([
    Buffer.from(encodeInteger(nameIndex, prefix, bits)),
    typeof name === "string" ? encodeRawStringLiteral(name) : Buffer.alloc(0),
    encodeRawStringLiteral(value),
  ]);
}

describe("HeaderBlockRewriter", () => {
  test("leaves valid authorities and other headers with URL values alone", () => {
    const rewriter = new HeaderBlockRewriter();
    // RFC 7541 C.4.1: :method GET, :scheme http, :path /, :authority www.example.com (Huffman).
    assert.equal(rewriter.rewrite(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), null);
    assert.equal(rewriter.rewrite(literal("plain", "x-url", "http://example.com:1")), null);
    assert.equal(rewriter.rewrite(literal("indexed", 4, "http://example.com:1/")), null); // :path
  });

  test("rewrites a URL by static name, literal name and dynamic name; indexed references stay", () => {
    const rewriter = new HeaderBlockRewriter();
    // :authority (static 1) with the Huffman-coded "https://www.example.com", added to the table.
    const huffmanUrl = hex("41 91 9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3");
    assert.deepEqual(
      rewriter.rewrite(Buffer.concat([hex("82"), huffmanUrl, hex("86")])),
      Buffer.concat([hex("82"), literal("indexed", 1, "www.example.com"), hex("86")]),
    );
    // Index 62 is that entry: the server's copy already holds the rewritten value.
    assert.equal(rewriter.rewrite(hex("82 be 86")), null);
    // A literal naming :authority by that dynamic entry (62), then a literal name ":authority".
    assert.deepEqual(rewriter.rewrite(literal("plain", 62, "http://a:1")), literal("plain", 62, "a:1"));
    assert.deepEqual(
      rewriter.rewrite(literal("plain", ":authority", "http://b:2")),
      literal("plain", ":authority", "b:2"),
    );
    // A newer entry (content-type) shifts the :authority entry to 63; 62 is not :authority.
    assert.equal(rewriter.rewrite(literal("indexed", 31, "application/grpc")), null);
    assert.equal(rewriter.rewrite(literal("plain", 62, "http://c:3")), null);
    assert.deepEqual(rewriter.rewrite(literal("plain", 63, "http://c:3")), literal("plain", 63, "c:3"));
  });

  test("refuses a truncated block", () => {
    assert.throws(() => new HeaderBlockRewriter().rewrite(hex("41 91 9d29")), HpackError);
  });
});

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** Everything the parser hands on for `input` fed in pieces of `pieceLength` bytes. */
function parseInPieces(input: Buffer, pieceLength: number): Buffer {
  const parser = new AuthorityRewritingParser();
  const out: Buffer[] = [];
  for (let offset = 0; offset < input.length; offset += pieceLength) {
    out.push(...parser.push(input.subarray(offset, offset + pieceLength)));
  }
  out.push(...parser.flush());
  return Buffer.concat(out);
}

describe("AuthorityRewritingParser", () => {
  const settings = frame(0x4, 0, 0, hex("0003 0000 0064"));
  const data = frame(0x0, 0x1, 1, Buffer.from("gRPC message bytes"));
  const block = Buffer.concat([hex("83 86"), literal("indexed", 1, "http://127.0.0.1:2379"), hex("84")]);
  const expectedBlock = Buffer.concat([hex("83 86"), literal("indexed", 1, "127.0.0.1:2379"), hex("84")]);
  const priority = hex("0000 0003 0f");

  test("rewrites a padded, prioritised HEADERS + CONTINUATION block into one unpadded frame", () => {
    const headers = frame(
      0x1,
      0x8 | 0x20,
      1,
      Buffer.concat([hex("04"), priority, block.subarray(0, 5), hex("00000000")]),
    );
    const continuation = frame(0x9, 0x4, 1, block.subarray(5));
    const input = Buffer.concat([PREFACE, settings, headers, continuation, data]);
    const expected = Buffer.concat([
      PREFACE,
      settings,
      frame(0x1, 0x20 | 0x4, 1, Buffer.concat([priority, expectedBlock])),
      data,
    ]);
    for (const pieceLength of [1, 7, 9, 64, input.length]) {
      assert.deepEqual(parseInPieces(input, pieceLength), expected, `pieces of ${pieceLength}`);
    }
  });

  test("hands on a connection that needs no rewrite byte for byte", () => {
    const plain = Buffer.concat([hex("83 86"), literal("indexed", 1, "127.0.0.1:2379"), hex("84")]);
    const input = Buffer.concat([
      PREFACE,
      settings,
      frame(0x1, 0x5, 1, plain),
      data,
      frame(0x1, 0x5, 3, hex("83 86 be 84")),
    ]);
    for (const pieceLength of [1, 10, input.length])
      assert.deepEqual(parseInPieces(input, pieceLength), input);
  });

  test("passes the rest through untouched after a frame interleaved into a header block", () => {
    const headers = frame(0x1, 0x0, 1, block.subarray(0, 5));
    const continuation = frame(0x9, 0x4, 1, block.subarray(5));
    const input = Buffer.concat([PREFACE, headers, data, continuation, frame(0x1, 0x5, 3, block)]);
    assert.deepEqual(parseInPieces(input, 3), input);
  });
});

const SETTINGS_ACK = frame(0x4, 0x1, 0, Buffer.alloc(0));

/** The request header block of a Maintenance.Status call, literals without indexing. */
function statusHeaderBlock(authority: string): Buffer {
  return Buffer.concat([
    hex("83 86"), // :method POST, :scheme http (static table)
    literal("plain", 4, "/etcdserverpb.Maintenance/Status"),
    literal("plain", 1, authority),
    literal("plain", 31, "application/grpc"),
    literal("plain", "te", "trailers"),
  ]);
}

interface RawCallOutcome {
  readonly responseDataBytes: number;
  /** Whether stream 1 ended with a HEADERS frame (the gRPC trailers). */
  readonly trailersReceived: boolean;
  /** Types of the RST_STREAM (0x3) and GOAWAY (0x7) frames received. */
  readonly errorFrames: number[];
}

/**
 * One Maintenance.Status call the way grpc-go makes it: the preface and SETTINGS, then nothing
 * until the server's SETTINGS has arrived (acknowledged, as every later one), then the request.
 */
async function grpcGoLikeStatusCall(address: string, authority: string): Promise<RawCallOutcome> {
  const [host, port] = address.split(":");
  const socket: Socket = connectTcp(Number(port), host);
  try {
    return await within(
      new Promise<RawCallOutcome>((resolve, reject) => {
        let received = Buffer.alloc(0);
        let requestSent = false;
        let responseDataBytes = 0;
        const errorFrames: number[] = [];
        socket.on("error", reject);
        socket.on("close", () => reject(new Error("the server closed the connection")));
        socket.write(Buffer.concat([PREFACE, frame(0x4, 0, 0, Buffer.alloc(0))]));
        socket.on("data", (chunk: Buffer) => {
          received = Buffer.concat([received, chunk]);
          while (received.length >= 9 && received.length >= 9 + received.readUIntBE(0, 3)) {
            const length = received.readUIntBE(0, 3);
            const [type, flags] = [received[3] ?? 0, received[4] ?? 0];
            const streamId = received.readUInt32BE(5) & 0x7fffffff;
            received = received.subarray(9 + length);
            if (type === 0x4 && (flags & 0x1) === 0) {
              socket.write(SETTINGS_ACK);
              if (!requestSent) {
                requestSent = true;
                socket.write(frame(0x1, 0x4, 1, statusHeaderBlock(authority)));
                socket.write(frame(0x0, 0x1, 1, EMPTY_GRPC_MESSAGE));
              }
            } else if (type === 0x0 && streamId === 1) {
              responseDataBytes += length;
            } else if (type === 0x3 || type === 0x7) {
              errorFrames.push(type);
              resolve({ responseDataBytes, trailersReceived: false, errorFrames });
            } else if (type === 0x1 && streamId === 1 && (flags & 0x1) !== 0) {
              resolve({ responseDataBytes, trailersReceived: true, errorFrames });
            }
          }
        });
      }),
      `a grpc-go-like Status call with :authority ${authority}`,
    );
  } finally {
    socket.destroy();
  }
}

describe("the client port's choice of raw socket or :authority rewriting", () => {
  let cluster: EtcdCluster;
  let port: ClientPort;
  let endpoint: string;
  const sessions: ClientHttp2Session[] = [];
  const open = () => {
    const session = connectHttp2(`http://${endpoint}`);
    session.on("error", () => undefined);
    sessions.push(session);
    return session;
  };
  const openAfterServerSettings = async () => {
    const session = open();
    await within(
      new Promise<void>((resolve) => session.once("remoteSettings", () => resolve())),
      "the server's SETTINGS",
    );
    return session;
  };
  /** `action`'s effect on the port's connection counts. */
  const countsDuring = async (action: () => Promise<void>): Promise<ClientPortConnectionCounts> => {
    const before = port.connectionCounts();
    await action();
    const after = port.connectionCounts();
    return {
      native: after.native - before.native,
      grpcRaw: after.grpcRaw - before.grpcRaw,
      grpcLenient: after.grpcLenient - before.grpcLenient,
    };
  };
  const answered = (outcome: CallOutcome) => {
    assert.equal(outcome.grpcStatus, "0", JSON.stringify(outcome));
    assert.ok(outcome.responseBytes > EMPTY_GRPC_MESSAGE.length, "an empty response");
  };

  before(async () => {
    cluster = await EtcdCluster.start(1);
    const host = cluster.member(1).host;
    const logger = { warn: () => undefined, info: () => undefined };
    // A port of its own on the member, to read its counts and shorten the preface timeout.
    port = new ClientPort({
      listen: { host: "127.0.0.1", port: 0 },
      etcd: new EtcdServer({ host, clusterId: 1n }),
      native: new NativeServer({ host, logger }),
      logger,
      http2PrefaceTimeoutMs: 300,
    });
    await port.start();
    endpoint = `${port.address().host}:${port.address().port}`;
  });

  after(async () => {
    for (const session of sessions) session.destroy();
    await port.close();
    await cluster.close();
  });

  test("a client sending its first request at once: raw socket for host:port, rewriting for a URL", async () => {
    const plain = await countsDuring(async () => answered(await statusCall(open(), endpoint)));
    assert.deepEqual(plain, { native: 0, grpcRaw: 1, grpcLenient: 0 });
    const url = await countsDuring(async () => {
      const session = open();
      answered(await statusCall(session, `http://${endpoint}`));
      answered(await statusCall(session, `http://${endpoint}`));
    });
    assert.deepEqual(url, { native: 0, grpcRaw: 0, grpcLenient: 1 });
  });

  test("a client waiting for the server's SETTINGS first (node:http2) is served both ways", async () => {
    const plain = await countsDuring(async () => {
      const session = await openAfterServerSettings();
      answered(await statusCall(session, endpoint));
      answered(await statusCall(session, endpoint));
    });
    assert.deepEqual(plain, { native: 0, grpcRaw: 1, grpcLenient: 0 });
    const url = await countsDuring(async () =>
      answered(await statusCall(await openAfterServerSettings(), `http://${endpoint}`)),
    );
    assert.deepEqual(url, { native: 0, grpcRaw: 0, grpcLenient: 1 });
  });

  test("a grpc-go-like client (request only after the server's SETTINGS, ACK first) is served both ways", async () => {
    for (const [authority, expected] of [
      [endpoint, { native: 0, grpcRaw: 1, grpcLenient: 0 }],
      [`http://${endpoint}`, { native: 0, grpcRaw: 0, grpcLenient: 1 }],
    ] as const) {
      let outcome: RawCallOutcome | undefined;
      const counts = await countsDuring(async () => {
        outcome = await grpcGoLikeStatusCall(endpoint, authority);
      });
      assert.deepEqual(outcome?.errorFrames, [], `${authority}: ${JSON.stringify(outcome)}`);
      assert.equal(outcome?.trailersReceived, true, authority);
      assert.ok((outcome?.responseDataBytes ?? 0) > EMPTY_GRPC_MESSAGE.length, `${authority}: no response`);
      assert.deepEqual(counts, expected, authority);
    }
  });

  test("a client silent after its SETTINGS gets the raw socket when the port stops waiting, and is served", async () => {
    const before = port.connectionCounts();
    const session = await openAfterServerSettings();
    await waitFor(() => port.connectionCounts().grpcRaw > before.grpcRaw, "the port to stop waiting");
    answered(await statusCall(session, endpoint));
    const after = port.connectionCounts();
    assert.equal(after.grpcRaw - before.grpcRaw, 1);
    assert.equal(after.grpcLenient, before.grpcLenient);
  });

  test("a native-protocol client still reaches the native server", async () => {
    const nativeBefore = port.connectionCounts().native;
    const counts = await countsDuring(async () => {
      const [host, portNumber] = endpoint.split(":");
      const socket = connectTcp(Number(portNumber), host);
      socket.on("error", () => undefined);
      // A frame length prefix (first byte 0x00); the count changes as soon as it is handed on.
      socket.write(Buffer.from([0, 0, 0, 1]));
      await waitFor(() => port.connectionCounts().native > nativeBefore, "the native hand-over");
      socket.destroy();
    });
    assert.equal(counts.native, 1);
  });
});

describe("ClientPrefaceReader", () => {
  const clientSettings = frame(0x4, 0, 0, hex("0003 0000 0064"));
  const windowUpdate = frame(0x8, 0, 0, hex("0000 ffff"));
  const ping = frame(0x6, 0, 0, Buffer.alloc(8));
  const plainHeaders = frame(0x1, 0x4, 1, statusHeaderBlock("127.0.0.1:2379"));
  const urlHeaders = frame(0x1, 0x4, 1, statusHeaderBlock("http://127.0.0.1:2379"));
  const data = frame(0x0, 0x1, 1, EMPTY_GRPC_MESSAGE);

  /** The reader after `input` fed in pieces of `pieceLength`: its verdicts and whether it asked to send SETTINGS. */
  function read(input: Buffer, pieceLength: number) {
    const reader = new ClientPrefaceReader();
    const verdicts: string[] = [];
    let settingsReadAt: number | undefined;
    for (let offset = 0; offset < input.length; offset += pieceLength) {
      verdicts.push(reader.push(input.subarray(offset, offset + pieceLength)));
      if (reader.clientSettingsRead) settingsReadAt ??= offset + pieceLength;
    }
    return { reader, verdict: verdicts.at(-1), settingsReadAt };
  }

  test("decides on the first header block and the ACK, in either order, and removes only the ACK", () => {
    const cases: [Buffer[], string][] = [
      [[PREFACE, clientSettings, windowUpdate, SETTINGS_ACK, plainHeaders, data], "raw"],
      [[PREFACE, clientSettings, windowUpdate, urlHeaders, data, ping, SETTINGS_ACK], "lenient"],
      [[PREFACE, clientSettings, SETTINGS_ACK, urlHeaders], "lenient"],
    ];
    for (const [frames, expected] of cases) {
      const input = Buffer.concat(frames);
      for (const pieceLength of [1, 9, 50, input.length]) {
        const { reader, verdict, settingsReadAt } = read(input, pieceLength);
        assert.equal(verdict, expected, `pieces of ${pieceLength}`);
        assert.deepEqual(reader.bytes(), Buffer.concat(frames.filter((f) => f !== SETTINGS_ACK)));
        assert.ok(settingsReadAt !== undefined && settingsReadAt >= PREFACE.length + clientSettings.length);
      }
    }
  });

  test("waits while the ACK or the end of the header block is missing", () => {
    const noAck = read(Buffer.concat([PREFACE, clientSettings, plainHeaders, data]), 13);
    assert.equal(noAck.verdict, "pending");
    const headers = frame(0x1, 0x0, 1, statusHeaderBlock("http://a:1").subarray(0, 10));
    const unfinished = read(Buffer.concat([PREFACE, clientSettings, SETTINGS_ACK, headers]), 13);
    assert.equal(unfinished.verdict, "pending");
    // Giving up: the rewriting only for a first block read whole that needs it.
    assert.equal(noAck.reader.giveUp(), "raw");
    assert.equal(unfinished.reader.giveUp(), "raw");
    assert.equal(read(Buffer.concat([PREFACE, clientSettings, urlHeaders]), 7).reader.giveUp(), "lenient");
  });

  test("a header block split over CONTINUATION frames is read whole", () => {
    const block = statusHeaderBlock("http://127.0.0.1:2379");
    const input = Buffer.concat([
      PREFACE,
      clientSettings,
      SETTINGS_ACK,
      frame(0x1, 0x0, 1, block.subarray(0, 40)),
      frame(0x9, 0x0, 1, block.subarray(40, 45)),
      frame(0x9, 0x4, 1, block.subarray(45)),
    ]);
    assert.equal(read(input, 5).verdict, "lenient");
  });

  test("anything it cannot follow goes to the raw socket, as received", () => {
    const cases: [string, Buffer][] = [
      ["not a preface", Buffer.from("PRI * HTTP/1.1\r\n\r\n", "latin1")],
      ["a first frame that is not SETTINGS", Buffer.concat([PREFACE, windowUpdate])],
      [
        "a SETTINGS ACK with a payload",
        Buffer.concat([PREFACE, clientSettings, frame(0x4, 0x1, 0, hex("00"))]),
      ],
      [
        "a frame inside the header block",
        Buffer.concat([PREFACE, clientSettings, frame(0x1, 0, 1, hex("83")), ping]),
      ],
      [
        "a CONTINUATION without HEADERS",
        Buffer.concat([PREFACE, clientSettings, frame(0x9, 0x4, 1, hex("83"))]),
      ],
      ["bad HPACK", Buffer.concat([PREFACE, clientSettings, frame(0x1, 0x4, 1, hex("41 91 9d"))])],
    ];
    for (const [what, input] of cases) {
      const { reader, verdict } = read(input, 4);
      assert.equal(verdict, "raw", what);
      assert.deepEqual(reader.bytes(), input, what);
    }
    // The ACK of the port's SETTINGS, once read, stays removed on the raw socket too.
    const badHpack = frame(0x1, 0x4, 1, hex("41 91 9d"));
    const afterAck = read(Buffer.concat([PREFACE, clientSettings, SETTINGS_ACK, badHpack]), 4);
    assert.equal(afterAck.verdict, "raw");
    assert.deepEqual(afterAck.reader.bytes(), Buffer.concat([PREFACE, clientSettings, badHpack]));
    const endless = read(
      Buffer.concat([PREFACE, clientSettings, Buffer.alloc(MAX_PREFACE_READ_BYTES)]),
      64 * 1024,
    );
    assert.equal(endless.verdict, "raw");
  });

  test("the port's SETTINGS frame is an empty SETTINGS on stream 0", () => {
    assert.deepEqual(EMPTY_SETTINGS_FRAME, frame(0x4, 0, 0, Buffer.alloc(0)));
  });
});
