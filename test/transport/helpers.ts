/**
 * Test support for the transport layer: fast-check arbitraries for Raft values, a logger that
 * records, a bounded event wait, and TcpTransport nodes on 127.0.0.1 wired to each other.
 */
import fc from "fast-check";
import {
  EntryType,
  MessageType,
  message,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Snapshot,
} from "../../src/raft/types.js";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/tcp.js";
import type { Envelope, Logger } from "../../src/transport/transport.js";

// ------------------------------------------------------------------------------ arbitraries

/** Plain objects, as the decoder builds them (fast-check may otherwise pick a null prototype). */
const RECORD = { noNullPrototype: true } as const;

const MESSAGE_TYPES = Object.values(MessageType).filter((v): v is MessageType => typeof v === "number");

export const safeUintArb = fc.oneof(fc.nat(1000), fc.maxSafeNat());
export const nodeIdArb = fc.oneof(
  fc.integer({ min: 1, max: 9 }),
  fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
);
const bytesArb = fc.uint8Array({ maxLength: 48 });

export const entryArb: fc.Arbitrary<Entry> = fc.record(
  {
    term: safeUintArb,
    index: safeUintArb,
    type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
    data: bytesArb,
  },
  RECORD,
);

const idsArb = fc.array(nodeIdArb, { maxLength: 5 });
export const confStateArb: fc.Arbitrary<ConfState> = fc.record(
  {
    voters: idsArb,
    learners: idsArb,
    votersOutgoing: idsArb,
    learnersNext: idsArb,
    autoLeave: fc.boolean(),
  },
  RECORD,
);

export const snapshotArb: fc.Arbitrary<Snapshot> = fc.record(
  {
    metadata: fc.record({ index: safeUintArb, term: safeUintArb, confState: confStateArb }, RECORD),
    data: bytesArb,
  },
  RECORD,
);

export const messageArb: fc.Arbitrary<Message> = fc
  .record(
    {
      type: fc.constantFrom(...MESSAGE_TYPES),
      to: nodeIdArb,
      from: nodeIdArb,
      term: safeUintArb,
      logTerm: safeUintArb,
      index: safeUintArb,
      entries: fc.array(entryArb, { maxLength: 4 }),
      commit: safeUintArb,
      snapshot: fc.option(snapshotArb, { nil: null }),
      reject: fc.boolean(),
      rejectHint: safeUintArb,
      context: bytesArb,
    },
    RECORD,
  )
  .chain((m) =>
    // A Snap message always carries a snapshot; the codec rejects one without.
    m.type === MessageType.Snap && m.snapshot === null
      ? snapshotArb.map((snapshot) => ({ ...m, snapshot }))
      : fc.constant(m),
  );

export const envelopeArb: fc.Arbitrary<Envelope> = fc.record(
  {
    groupId: safeUintArb,
    from: nodeIdArb,
    to: nodeIdArb,
    messages: fc.array(messageArb, { maxLength: 5 }),
  },
  RECORD,
);

// ------------------------------------------------------------------------------ logging

export interface LogRecord {
  readonly level: "warn" | "info" | "debug";
  readonly fields: object;
  readonly message: string;
}

/** Keeps every record; prints them too when TRANSPORT_LOG is set. */
export function recordingLogger(name: string): Logger & { readonly records: LogRecord[]; text(): string } {
  const records: LogRecord[] = [];
  const record = (level: LogRecord["level"]) => (fields: object, message: string) => {
    records.push({ level, fields, message });
    if (process.env["TRANSPORT_LOG"] !== undefined) console.log(name, level, message, fields);
  };
  return {
    records,
    warn: record("warn"),
    info: record("info"),
    debug: record("debug"),
    text: () => records.map((r) => `${r.level} ${r.message} ${JSON.stringify(r.fields)}`).join("\n"),
  };
}

// ------------------------------------------------------------------------------ waiting

/**
 * Resolves once `condition()` holds, checking every few milliseconds; fails after `timeoutMs`
 * (generous: it bounds a hung test, it does not assert how fast anything is).
 */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// ------------------------------------------------------------------------------ nodes

export interface TestNode {
  readonly id: NodeId;
  readonly transport: TcpTransport;
  readonly received: Envelope[];
  readonly unreachable: NodeId[];
  readonly logger: ReturnType<typeof recordingLogger>;
}

export const CLUSTER = "test-cluster";

/** A started TcpTransport on 127.0.0.1 that records what it receives. */
export async function startNode(id: NodeId, options: Partial<TcpTransportOptions> = {}): Promise<TestNode> {
  const logger = recordingLogger(`node${id}`);
  const transport = new TcpTransport({
    clusterId: CLUSTER,
    nodeId: id,
    listen: { host: "127.0.0.1", port: 0 },
    logger,
    backoff: { initialMs: 10, maxMs: 200 },
    ...options,
  });
  const received: Envelope[] = [];
  const unreachable: NodeId[] = [];
  transport.onReceive((envelope) => received.push(envelope));
  transport.onUnreachable((peer) => unreachable.push(peer));
  await transport.start();
  return { id, transport, received, unreachable, logger };
}

/** Tells every node where every other one listens. */
export function introduce(nodes: readonly TestNode[]): void {
  for (const a of nodes) {
    for (const b of nodes) if (a !== b) a.transport.addPeer(b.id, b.transport.address());
  }
}

export async function waitConnected(nodes: readonly TestNode[]): Promise<void> {
  await waitFor("all nodes connected", () =>
    nodes.every((n) => n.transport.connectedPeers().length === nodes.length - 1),
  );
}

/** One App message from `from` to `to` carrying `payload` as its only entry. */
export function appEnvelope(groupId: number, from: NodeId, to: NodeId, payload: string): Envelope {
  const data = new TextEncoder().encode(payload);
  return {
    groupId,
    from,
    to,
    messages: [
      message({
        type: MessageType.App,
        from,
        to,
        term: 1,
        entries: [{ term: 1, index: 1, type: EntryType.Normal, data }],
      }),
    ],
  };
}

export function payloadOf(envelope: Envelope): string {
  const data = envelope.messages[0]?.entries[0]?.data;
  return data === undefined ? "" : new TextDecoder().decode(data);
}
