// The client port's lenient :authority (src/api/etcd/authority-rewrite.ts and hpack.ts):
// etcdctl --cluster sends a whole URL as :authority, which Node's HTTP/2 layer resets unless
// the port rewrites it. Checked end to end with node:http2's client (Huffman-coded literal,
// then the dynamic-table reference on later requests, padded and split header blocks), and
// piece by piece: HPACK integers and Huffman strings (RFC 7541 Appendix C vectors), header
// block rewriting with dynamic-table names, and frame parsing fed in any chunking.
import assert from "node:assert/strict";
import {
  connect as connectHttp2,
  constants,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from "node:http2";
import { after, before, describe, test } from "node:test";
import {
  AuthorityRewritingParser,
  HeaderBlockRewriter,
  lenientAuthority,
} from "../../../src/api/etcd/authority-rewrite.js";
import {
  decodeHuffman,
  encodeInteger,
  encodeRawStringLiteral,
  HpackError,
  readInteger,
} from "../../../src/api/etcd/hpack.js";
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
