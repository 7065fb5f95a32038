/**
 * A small typed etcd v3 gRPC client for the CLI, written client-side over the generated
 * protobuf-es service descriptors (src/api/etcd/gen): one grpc-js channel per endpoint, calls
 * serialized with toBinary/fromBinary, failover across --endpoints, and grpc errors mapped to
 * the CLI's exit codes. It works against Concord and against etcd alike.
 *
 * Failover rule: a request moves to the next endpoint when its channel never became ready
 * (the request certainly did not reach a server); a request marked idempotent (reads, status,
 * lists) also moves on when the server answered UNAVAILABLE, and so does a write the server
 * refused before proposing it ("etcdserver: no leader", retried with backoff while a leader
 * is elected). A write that was sent is otherwise never resent: its failure is reported,
 * unavailable (exit 3) when its effect is unknown.
 */
import * as grpc from "@grpc/grpc-js";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescMethodBiDiStreaming,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { CommandError, UnavailableError } from "./errors.js";

export interface ConnectionOptions {
  /** "host:port" or "http://host:port", tried in order. */
  readonly endpoints: readonly string[];
  readonly dialTimeoutMs: number;
  /** Deadline of one unary request (streams have none). */
  readonly commandTimeoutMs: number;
}

export interface UnaryOptions {
  /** Safe to send again to another endpoint after the server answered UNAVAILABLE. */
  readonly idempotent: boolean;
}

/** A bidirectional stream: write requests, iterate responses, end or cancel it. */
export interface BidiStream<I extends DescMessage, O extends DescMessage> {
  readonly endpoint: string;
  write(request: MessageInitShape<I>): void;
  /** Responses until the server ends the stream; a failure is thrown mapped (see mapGrpcError). */
  responses(): AsyncGenerator<MessageShape<O>>;
  /** Half-closes the stream (no more requests). */
  end(): void;
  cancel(): void;
}

/**
 * UNAVAILABLE answers etcd gives before it proposes anything: the request certainly had no
 * effect, so even a write may be sent again (after a backoff, within --command-timeout).
 */
const NOT_APPLIED: readonly string[] = ["etcdserver: no leader"];
const INITIAL_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1000;

/** "http://127.0.0.1:2379" → "127.0.0.1:2379"; a bare host:port is kept. */
export function grpcTarget(endpoint: string): string {
  const match = /^https?:\/\/([^/]+)\/?$/.exec(endpoint);
  return match?.[1] ?? endpoint;
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === "number";
}

/** A grpc failure as the error the CLI prints and the exit code it maps to. */
export function mapGrpcError(error: unknown, endpoint: string): Error {
  if (!isServiceError(error)) return error instanceof Error ? error : new Error(String(error));
  switch (error.code) {
    case grpc.status.DEADLINE_EXCEEDED:
      return new UnavailableError(`context deadline exceeded (${endpoint})`);
    case grpc.status.UNAVAILABLE:
      return new UnavailableError(`${endpoint}: ${error.details || "unavailable"}`);
    case grpc.status.CANCELLED:
      return new UnavailableError(`${endpoint}: request cancelled (${error.details})`);
    default:
      return new CommandError(error.details || grpc.status[error.code] || `grpc status ${error.code}`);
  }
}

function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function serializerOf<I extends DescMessage>(schema: I): (value: MessageShape<I>) => Buffer {
  return (value) => Buffer.from(toBinary(schema, value));
}

function deserializerOf<O extends DescMessage>(schema: O): (bytes: Buffer) => MessageShape<O> {
  return (bytes) => fromBinary(schema, bytes);
}

export class EtcdConnection {
  private readonly clients = new Map<string, grpc.Client>();
  private current = 0;

  constructor(readonly options: ConnectionOptions) {
    if (options.endpoints.length === 0) throw new RangeError("no endpoints");
  }

  /** Sends one unary request, failing over as the module comment says. */
  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
    options: UnaryOptions,
  ): Promise<{ readonly response: MessageShape<O>; readonly endpoint: string }> {
    const failures: string[] = [];
    const deadline = Date.now() + this.options.commandTimeoutMs;
    let backoffMs = INITIAL_BACKOFF_MS;
    for (;;) {
      let electing = false;
      for (const endpoint of this.rotation()) {
        const client = await this.readyClient(endpoint, failures);
        if (client === null) continue;
        try {
          const response = await this.callUnary(client, method, request);
          return { response, endpoint };
        } catch (error) {
          const refusedUnapplied = isServiceError(error) && NOT_APPLIED.includes(error.details);
          const unavailable = isServiceError(error) && error.code === grpc.status.UNAVAILABLE;
          if (!(unavailable && (options.idempotent || refusedUnapplied))) throw mapGrpcError(error, endpoint);
          failures.push(`${endpoint}: ${error.details}`);
          electing ||= refusedUnapplied;
          this.advancePast(endpoint);
        }
      }
      // A member answered that it has no leader yet: try again while the command's time lasts.
      if (!electing || Date.now() + backoffMs > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
    throw new UnavailableError(
      `no endpoint answered (${failures.slice(-this.options.endpoints.length).join("; ")})`,
    );
  }

  /** One unary request to exactly `endpoint`, no failover (per-endpoint status and health). */
  async unaryAt<I extends DescMessage, O extends DescMessage>(
    endpoint: string,
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
  ): Promise<MessageShape<O>> {
    const failures: string[] = [];
    const client = await this.readyClient(endpoint, failures);
    if (client === null) throw new UnavailableError(failures.join("; "));
    try {
      return await this.callUnary(client, method, request);
    } catch (error) {
      throw mapGrpcError(error, endpoint);
    }
  }

  /** A server stream from the first endpoint that becomes ready; each chunk as it arrives. */
  async *serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    request: MessageInitShape<I>,
    onEndpoint?: (endpoint: string) => void,
  ): AsyncGenerator<MessageShape<O>> {
    const { client, endpoint } = await this.firstReady();
    onEndpoint?.(endpoint);
    const call = client.makeServerStreamRequest(
      methodPath(method),
      serializerOf(method.input),
      deserializerOf(method.output),
      create(method.input, request),
      new grpc.Metadata(),
    );
    try {
      for await (const response of call as AsyncIterable<MessageShape<O>>) yield response;
    } catch (error) {
      throw mapGrpcError(error, endpoint);
    } finally {
      call.cancel();
    }
  }

  /** Opens a bidirectional stream on the first endpoint that becomes ready. */
  async bidi<I extends DescMessage, O extends DescMessage>(
    method: DescMethodBiDiStreaming<I, O>,
  ): Promise<BidiStream<I, O>> {
    const { client, endpoint } = await this.firstReady();
    const call = client.makeBidiStreamRequest(
      methodPath(method),
      serializerOf(method.input),
      deserializerOf(method.output),
      new grpc.Metadata(),
    );
    // A cancelled or failed call emits "error"; the iterator reports it, so never unhandled.
    call.on("error", () => {});
    return {
      endpoint,
      write: (request) => {
        call.write(create(method.input, request));
      },
      responses: async function* () {
        try {
          for await (const response of call as AsyncIterable<MessageShape<O>>) yield response;
        } catch (error) {
          throw mapGrpcError(error, endpoint);
        }
      },
      end: () => {
        call.end();
      },
      cancel: () => {
        call.cancel();
      },
    };
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private async firstReady(): Promise<{ client: grpc.Client; endpoint: string }> {
    const failures: string[] = [];
    for (const endpoint of this.rotation()) {
      const client = await this.readyClient(endpoint, failures);
      if (client !== null) return { client, endpoint };
    }
    throw new UnavailableError(`no endpoint answered (${failures.join("; ")})`);
  }

  /** The endpoints starting at the one that last answered. */
  private rotation(): string[] {
    const endpoints = this.options.endpoints;
    return endpoints.map((_, i) => endpoints[(this.current + i) % endpoints.length]!);
  }

  private advancePast(endpoint: string): void {
    const index = this.options.endpoints.indexOf(endpoint);
    this.current = (index + 1) % this.options.endpoints.length;
  }

  private client(endpoint: string): grpc.Client {
    let client = this.clients.get(endpoint);
    if (client === undefined) {
      client = new grpc.Client(grpcTarget(endpoint), grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": 64 * 1024 * 1024,
        "grpc.initial_reconnect_backoff_ms": 100,
      });
      this.clients.set(endpoint, client);
    }
    return client;
  }

  /** The endpoint's client once its channel is ready, or null (the reason added to `failures`). */
  private async readyClient(endpoint: string, failures: string[]): Promise<grpc.Client | null> {
    const client = this.client(endpoint);
    try {
      await waitReady(client.getChannel(), Date.now() + this.options.dialTimeoutMs);
      this.current = this.options.endpoints.indexOf(endpoint);
      return client;
    } catch (error) {
      failures.push(`${endpoint}: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    }
  }

  private callUnary<I extends DescMessage, O extends DescMessage>(
    client: grpc.Client,
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
  ): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        methodPath(method),
        serializerOf(method.input),
        deserializerOf(method.output),
        create(method.input, request),
        new grpc.Metadata(),
        { deadline: Date.now() + this.options.commandTimeoutMs },
        (error, response) => {
          if (error !== null || response === undefined) reject(error ?? new Error("empty response"));
          else resolve(response);
        },
      );
    });
  }
}

/**
 * Resolves when the channel is READY; rejects as soon as it fails to connect (nothing was
 * sent, so the caller may try another endpoint) or at the deadline.
 */
function waitReady(channel: ReturnType<grpc.Client["getChannel"]>, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.TRANSIENT_FAILURE) return reject(new Error("connection refused"));
      if (state === grpc.connectivityState.SHUTDOWN) return reject(new Error("channel closed"));
      if (Date.now() >= deadline) return reject(new Error("dial timeout"));
      channel.watchConnectivityState(state, deadline, (error) => {
        if (error === undefined) check();
        else reject(new Error("dial timeout"));
      });
    };
    check();
  });
}
