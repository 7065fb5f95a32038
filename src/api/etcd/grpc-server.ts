/**
 * `GrpcServer`: gRPC over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md) on this server's own HTTP/2
 * connections (http2/connection.ts), serving services described by grpc-js `ServiceDefinition`s
 * (paths, streaming flags, (de)serializers; grpc-service.ts builds them from the generated
 * descriptors). grpc-js stays the client library; the server side is here because it is the
 * hottest code of a member under the etcd API (see http2/connection.ts for the figures).
 *
 * A call:
 * - request: POST with `content-type: application/grpc[+proto|;...]` (anything else gets HTTP
 *   415), messages framed as 1 byte compressed flag, 4 bytes big-endian length, the bytes.
 *   Compressed messages are refused (UNIMPLEMENTED): this server advertises no encoding and
 *   clients send none. A message above `maxReceiveMessageBytes` fails the call with
 *   RESOURCE_EXHAUSTED; bytes the deserializer refuses with INTERNAL "Error deserializing
 *   request"; an unknown path with UNIMPLEMENTED.
 * - response: HEADERS (`:status 200`, `content-type: application/grpc`), the messages, and
 *   trailers with `grpc-status` and `grpc-message` (percent-encoded); an error before any
 *   message is one trailers-only HEADERS frame.
 * - deadlines (`grpc-timeout`) are the client's to enforce: gRPC clients reset the stream when
 *   theirs passes, and a reset cancels the call here (`cancelled`, the "cancelled" event).
 * - counts: each served method counts its calls as they start and end, by status code, and
 *   the bytes of its messages each way (`methodCalls()`, read by the member's metrics): a few
 *   additions per call, nothing allocated.
 *
 * Handlers: a unary method's handler takes the request and the call and returns a promise of
 * the response (rejecting with an Error that has a numeric gRPC `code`); a streaming method's handler
 * takes the call (with `request` set first for server streaming) and writes, ends or fails it.
 */
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { status as GrpcStatus, type ServiceDefinition } from "@grpc/grpc-js";
import { Http2ServerConnection, type Http2ServerStream } from "./http2/connection.js";
import { encodeInteger, STATIC_INDEX, type HeaderField } from "./http2/hpack.js";

/** A gRPC status to end a call with. */
export interface GrpcStatusError {
  readonly code: number;
  readonly message: string;
}

/** A method's kind, named as go-grpc-prometheus's `grpc_type` label names it. */
export type GrpcMethodType = "unary" | "client_stream" | "server_stream" | "bidi_stream";

/**
 * The calls of one served method, counted as they start and end (a few increments on this
 * object per call; metrics read it when scraped). Paths nothing serves are not counted.
 */
export interface GrpcMethodCalls {
  /** The full service name ("etcdserverpb.KV") and the method ("Range") of the path. */
  readonly service: string;
  readonly method: string;
  readonly type: GrpcMethodType;
  /** Calls begun: a stream opened on the method's path with a gRPC request. */
  started: number;
  /** Calls ended, indexed by gRPC status code (a client's reset counts as CANCELLED). */
  readonly handled: number[];
  /** Bytes of the request messages received and of the response messages sent (without framing). */
  receivedBytes: number;
  sentBytes: number;
}

export type UnaryHandler = (request: never, call: GrpcCall) => Promise<unknown>;
export type StreamHandler = (call: GrpcCall) => void;
export type ServiceHandlers = Readonly<Record<string, UnaryHandler | StreamHandler>>;

interface Method {
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly deserialize: (bytes: Buffer) => unknown;
  readonly serialize: (message: unknown) => Uint8Array;
  readonly handler: UnaryHandler | StreamHandler;
  readonly calls: GrpcMethodCalls;
}

export interface GrpcServerOptions {
  /** The largest request message accepted (RESOURCE_EXHAUSTED above it). */
  readonly maxReceiveMessageBytes: number;
  /** Told when a handler's event listener throws (a bug; the call and connection go on). */
  readonly onHandlerError?: (error: unknown) => void;
  /** Request bytes a connection may hold before GOAWAY (default 256 MiB; see http2/connection.ts). */
  readonly maxBufferedRequestBytes?: number;
}

const MESSAGE_PREFIX_LENGTH = 5;
/** gRPC's status codes are 0 (OK) to 16 (UNAUTHENTICATED). */
const STATUS_CODES = 17;

/** A literal header field without indexing, new name (RFC 7541 6.2.2). */
function literalField(name: string, value: string): Buffer {
  const nameBytes = Buffer.from(name, "latin1");
  const valueBytes = Buffer.from(value, "latin1");
  return Buffer.concat([
    Buffer.from([0x00]),
    Buffer.from(encodeInteger(nameBytes.length, 7, 0)),
    nameBytes,
    Buffer.from(encodeInteger(valueBytes.length, 7, 0)),
    valueBytes,
  ]);
}

/**
 * Every header block this server sends starts with a dynamic table size update to 0: it never
 * indexes, and so it honours any SETTINGS_HEADER_TABLE_SIZE the client sets, whenever it sets it.
 */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);
const STATUS_200 = Buffer.from([0x80 | STATIC_INDEX.status200]);
const CONTENT_TYPE_GRPC = Buffer.concat([
  Buffer.from(encodeInteger(STATIC_INDEX.contentType, 4, 0x00)),
  Buffer.from(encodeInteger("application/grpc".length, 7, 0)),
  Buffer.from("application/grpc", "latin1"),
]);
const RESPONSE_HEADERS = Buffer.concat([TABLE_SIZE_ZERO, STATUS_200, CONTENT_TYPE_GRPC]);
const OK_TRAILERS = Buffer.concat([TABLE_SIZE_ZERO, literalField("grpc-status", "0")]);
const OK_TRAILERS_ONLY = Buffer.concat([RESPONSE_HEADERS, literalField("grpc-status", "0")]);
const UNSUPPORTED_MEDIA_TYPE = Buffer.concat([
  TABLE_SIZE_ZERO,
  Buffer.from(encodeInteger(STATIC_INDEX.status200, 4, 0x00)),
  Buffer.from([3]),
  Buffer.from("415", "latin1"),
]);

/** grpc-message's percent-encoding: bytes outside printable ASCII, and "%". */
function percentEncode(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(byte);
  }
  return out;
}

function statusFields(error: GrpcStatusError): Buffer {
  return Buffer.concat([
    literalField("grpc-status", String(error.code)),
    literalField("grpc-message", percentEncode(error.message)),
  ]);
}

function isGrpcContentType(value: string | undefined): boolean {
  return (
    value !== undefined &&
    value.startsWith("application/grpc") &&
    (value.length === 16 || value[16] === "+" || value[16] === ";")
  );
}

function methodType(requestStream: boolean, responseStream: boolean): GrpcMethodType {
  if (requestStream) return responseStream ? "bidi_stream" : "client_stream";
  return responseStream ? "server_stream" : "unary";
}

function lengthPrefixed(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(MESSAGE_PREFIX_LENGTH + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, MESSAGE_PREFIX_LENGTH);
  return framed;
}

/** A status from whatever a handler threw: an Error's own numeric `code` and message, else INTERNAL. */
function asStatus(error: unknown): GrpcStatusError {
  const code = error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
  if (error instanceof Error && typeof code === "number") return { code, message: error.message };
  return { code: GrpcStatus.INTERNAL, message: error instanceof Error ? error.message : String(error) };
}

/**
 * One call. Events: "data" (a request message, streaming requests), "end" (the client finished
 * sending), "drain" (after `write` returned false), "cancelled" (the client reset the stream or
 * the connection went before the call ended), "close" (the call is over, for any reason).
 */
export class GrpcCall extends EventEmitter {
  /** The request message of a unary or server-streaming call. */
  request: unknown = undefined;
  cancelled = false;
  private over = false;
  private headersSent = false;
  private messages = 0;
  /** Bytes of a request message not complete yet. */
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** Bytes of a unary request message held until the request ends (counted as buffered). */
  private heldBytes = 0;

  constructor(
    private readonly stream: Http2ServerStream,
    private readonly method: Method,
    private readonly headers: readonly HeaderField[],
    private readonly maxMessageBytes: number,
  ) {
    super();
    stream.onData = (data) => this.receive(data);
    stream.onEnd = () => this.remoteEnd();
    stream.onAbort = () => this.aborted();
    stream.onDrain = () => this.emit("drain");
  }

  /** The value of request header `name` (lowercase; the first, when repeated). */
  metadata(name: string): string | undefined {
    return this.headers.find((field) => field.name === name)?.value;
  }

  /** Sends a response message; false when the caller should wait for "drain". */
  write(message: unknown): boolean {
    if (this.over) return true;
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.sendHeaders(RESPONSE_HEADERS);
    }
    const bytes = this.method.serialize(message);
    this.method.calls.sentBytes += bytes.length;
    return this.stream.sendData(lengthPrefixed(bytes));
  }

  /** Ends the call with status OK. */
  end(): void {
    if (this.over) return;
    this.over = true;
    this.stream.end(this.headersSent ? OK_TRAILERS : OK_TRAILERS_ONLY);
    this.finished(GrpcStatus.OK);
  }

  /** Ends the call with an error status. */
  fail(error: GrpcStatusError): void {
    if (this.over) return;
    this.over = true;
    const status = statusFields(error);
    this.stream.end(Buffer.concat([this.headersSent ? TABLE_SIZE_ZERO : RESPONSE_HEADERS, status]));
    this.finished(error.code);
  }

  /** A unary call's answer: headers, the message and OK trailers, in one write when the windows allow. */
  private respond(response: unknown): void {
    if (this.over) return;
    let body: Buffer;
    try {
      const bytes = this.method.serialize(response);
      this.method.calls.sentBytes += bytes.length;
      body = lengthPrefixed(bytes);
    } catch (error) {
      return this.fail({
        code: GrpcStatus.INTERNAL,
        message: `Error serializing response: ${String(error)}`,
      });
    }
    this.over = true;
    this.stream.respond(RESPONSE_HEADERS, body, OK_TRAILERS);
    this.finished(GrpcStatus.OK);
  }

  private finished(code: number): void {
    this.countHandled(code);
    this.release();
    this.emit("close");
  }

  private aborted(): void {
    if (this.over) return;
    this.over = true;
    this.cancelled = true;
    this.countHandled(GrpcStatus.CANCELLED);
    this.release();
    this.emit("cancelled");
    this.emit("close");
  }

  /** A code outside gRPC's (a handler's error with a code of its own) counts as UNKNOWN. */
  private countHandled(code: number): void {
    const known = Number.isInteger(code) && code >= 0 && code < STATUS_CODES;
    this.method.calls.handled[known ? code : GrpcStatus.UNKNOWN]!++;
  }

  private release(): void {
    const held = this.chunkBytes + this.heldBytes;
    if (held > 0) this.stream.connection.adjustBufferedRequestBytes(-held);
    this.chunks = [];
    this.chunkBytes = 0;
    this.heldBytes = 0;
  }

  private receive(data: Buffer): void {
    if (this.over) return;
    if (this.chunkBytes > 0) {
      this.chunks.push(data);
      this.chunkBytes += data.length;
      this.stream.connection.adjustBufferedRequestBytes(data.length);
      const length = this.chunkBytes >= MESSAGE_PREFIX_LENGTH ? this.pendingMessageLength() : undefined;
      if (length === undefined || this.chunkBytes < MESSAGE_PREFIX_LENGTH + length) {
        if (length !== undefined && length > this.maxMessageBytes) this.tooLarge(length);
        return;
      }
      data = Buffer.concat(this.chunks, this.chunkBytes);
      this.stream.connection.adjustBufferedRequestBytes(-this.chunkBytes);
      this.chunks = [];
      this.chunkBytes = 0;
    }
    let offset = 0;
    while (data.length - offset >= MESSAGE_PREFIX_LENGTH) {
      const length = data.readUInt32BE(offset + 1);
      if (length > this.maxMessageBytes) return this.tooLarge(length);
      const end = offset + MESSAGE_PREFIX_LENGTH + length;
      if (end > data.length) break;
      const compressed = data[offset] !== 0;
      const bytes = data.subarray(offset + MESSAGE_PREFIX_LENGTH, end);
      offset = end;
      this.message(compressed, bytes);
      if (this.over) return;
    }
    if (offset < data.length) {
      // A copy: a view would pin the whole read buffer for the few bytes counted here.
      const rest = Buffer.from(data.subarray(offset));
      this.chunks.push(rest);
      this.chunkBytes = rest.length;
      this.stream.connection.adjustBufferedRequestBytes(rest.length);
    }
  }

  /** The length in the prefix of the buffered partial message (at least 5 bytes buffered). */
  private pendingMessageLength(): number {
    let head = this.chunks[0]!;
    if (head.length < MESSAGE_PREFIX_LENGTH) {
      head = Buffer.concat(this.chunks, this.chunkBytes);
      this.chunks = [head];
    }
    return head.readUInt32BE(1);
  }

  private tooLarge(length: number): void {
    this.fail({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      message: `Received message larger than max (${length} vs. ${this.maxMessageBytes})`,
    });
  }

  private message(compressed: boolean, bytes: Buffer): void {
    if (compressed) {
      return this.fail({ code: GrpcStatus.UNIMPLEMENTED, message: "compressed messages are not supported" });
    }
    this.method.calls.receivedBytes += bytes.length;
    let request: unknown;
    try {
      request = this.method.deserialize(bytes);
    } catch {
      return this.fail({ code: GrpcStatus.INTERNAL, message: "Error deserializing request" });
    }
    this.messages++;
    if (this.method.requestStream) {
      this.emit("data", request);
      return;
    }
    if (this.messages > 1) {
      return this.fail({
        code: GrpcStatus.UNIMPLEMENTED,
        message: "more than one request message for a unary request",
      });
    }
    this.request = request;
    // Counted until the request ends: else a client could park a whole request on every stream.
    this.heldBytes = bytes.length;
    this.stream.connection.adjustBufferedRequestBytes(bytes.length);
  }

  private remoteEnd(): void {
    if (this.over) return;
    if (this.chunkBytes > 0) {
      return this.fail({ code: GrpcStatus.INTERNAL, message: "the request ended inside a message" });
    }
    if (this.method.requestStream) {
      this.emit("end");
      return;
    }
    if (this.messages === 0) {
      return this.fail({ code: GrpcStatus.UNIMPLEMENTED, message: "no request message for a unary request" });
    }
    this.stream.connection.adjustBufferedRequestBytes(-this.heldBytes);
    this.heldBytes = 0;
    if (this.method.responseStream) {
      this.callStreamHandler();
      return;
    }
    let response: Promise<unknown>;
    try {
      response = (this.method.handler as UnaryHandler)(this.request as never, this);
    } catch (error) {
      return this.fail(asStatus(error));
    }
    response.then(
      (response) => this.respond(response),
      (error: unknown) => this.fail(asStatus(error)),
    );
  }

  /** Runs a streaming handler; what it throws synchronously fails the call. */
  callStreamHandler(): void {
    try {
      (this.method.handler as StreamHandler)(this);
    } catch (error) {
      this.fail(asStatus(error));
    }
  }
}

export class GrpcServer {
  private readonly methods = new Map<string, Method>();
  private readonly connections = new Set<Http2ServerConnection>();

  constructor(private readonly options: GrpcServerOptions) {}

  /** Serves `definition`'s methods with `handlers` (keyed by method name, as the definition). */
  addService(definition: ServiceDefinition, handlers: ServiceHandlers): void {
    for (const [name, method] of Object.entries(definition)) {
      const handler = handlers[name];
      if (handler === undefined) continue;
      const slash = method.path.lastIndexOf("/");
      this.methods.set(method.path, {
        requestStream: method.requestStream,
        responseStream: method.responseStream,
        deserialize: method.requestDeserialize,
        serialize: method.responseSerialize,
        handler,
        calls: {
          service: method.path.slice(1, slash),
          method: method.path.slice(slash + 1),
          type: methodType(method.requestStream, method.responseStream),
          started: 0,
          handled: new Array<number>(STATUS_CODES).fill(0),
          receivedBytes: 0,
          sentBytes: 0,
        },
      });
    }
  }

  /** The call counts of every method served, in the order the services were added. */
  methodCalls(): readonly GrpcMethodCalls[] {
    return [...this.methods.values()].map((method) => method.calls);
  }

  /** Serves an accepted connection (bytes already read must have been unshifted). */
  injectConnection(socket: Duplex): void {
    const connection: Http2ServerConnection = new Http2ServerConnection(socket, {
      onRequest: (stream, headers) => this.request(stream, headers),
      onClose: () => this.connections.delete(connection),
      ...(this.options.onHandlerError === undefined ? {} : { onCallbackError: this.options.onHandlerError }),
      ...(this.options.maxBufferedRequestBytes === undefined
        ? {}
        : { maxBufferedRequestBytes: this.options.maxBufferedRequestBytes }),
    });
    if (!connection.isClosed) this.connections.add(connection);
  }

  /** Closes every connection at once (GOAWAY; calls in flight are cancelled). */
  close(): void {
    for (const connection of [...this.connections]) connection.close();
  }

  private request(stream: Http2ServerStream, headers: readonly HeaderField[]): void {
    let path: string | undefined;
    let method: string | undefined;
    let contentType: string | undefined;
    for (const field of headers) {
      if (field.name === ":path") path = field.value;
      else if (field.name === ":method") method = field.value;
      else if (field.name === "content-type") contentType = field.value;
    }
    if (method !== "POST" || !isGrpcContentType(contentType)) {
      stream.end(UNSUPPORTED_MEDIA_TYPE);
      return;
    }
    const served = path === undefined ? undefined : this.methods.get(path);
    if (served === undefined) {
      const status = statusFields({
        code: GrpcStatus.UNIMPLEMENTED,
        message: `The server does not implement the method ${path ?? "(no :path)"}`,
      });
      stream.end(Buffer.concat([RESPONSE_HEADERS, status]));
      return;
    }
    served.calls.started++;
    const call = new GrpcCall(stream, served, headers, this.options.maxReceiveMessageBytes);
    if (served.requestStream) call.callStreamHandler();
  }
}
