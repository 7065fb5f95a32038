/**
 * The tiny replicated key-value state machine the simulator runs on top of Raft: put and
 * compare-and-set over a handful of keys, commands encoded to bytes with the client's id and
 * sequence number, and snapshot encode/decode of the whole state.
 *
 * The network may duplicate a forwarded proposal, so the same command can land in the log
 * twice. Like a Raft session table, the state machine remembers the highest sequence number
 * applied per client and ignores anything at or below it: each command takes effect at most
 * once. (A client has one operation outstanding at a time and numbers them increasingly.)
 */

/** Identifies one client operation across the cluster. */
export interface RequestId {
  readonly client: number;
  readonly seq: number;
}

export type KvCommand =
  | { readonly kind: "put"; readonly id: RequestId; readonly key: string; readonly value: string }
  | {
      readonly kind: "cas";
      readonly id: RequestId;
      readonly key: string;
      /** The value the key must hold for the swap to happen; null means "absent". */
      readonly expected: string | null;
      readonly value: string;
    };

export type KvResult = { readonly kind: "put" } | { readonly kind: "cas"; readonly swapped: boolean };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function requestIdText(id: RequestId): string {
  return `c${id.client}#${id.seq}`;
}

export function encodeCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

function isRequestId(v: unknown): v is RequestId {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return Number.isSafeInteger(r["client"]) && Number.isSafeInteger(r["seq"]);
}

export function decodeCommand(data: Uint8Array): KvCommand {
  const parsed: unknown = JSON.parse(decoder.decode(data));
  if (typeof parsed === "object" && parsed !== null) {
    const c = parsed as Record<string, unknown>;
    const common = isRequestId(c["id"]) && typeof c["key"] === "string" && typeof c["value"] === "string";
    if (common && c["kind"] === "put") return parsed as KvCommand;
    if (common && c["kind"] === "cas" && (c["expected"] === null || typeof c["expected"] === "string")) {
      return parsed as KvCommand;
    }
  }
  throw new Error(`kv: undecodable command ${decoder.decode(data)}`);
}

/** The request id carried by a command's bytes (used for readIndex contexts as well). */
export function encodeRequestId(id: RequestId): Uint8Array {
  return encoder.encode(requestIdText(id));
}

export function decodeRequestIdText(data: Uint8Array): string {
  return decoder.decode(data);
}

interface KvImage {
  readonly data: [string, string][];
  readonly sessions: [number, number][];
}

export class KvStateMachine {
  private readonly data = new Map<string, string>();
  /** Highest sequence number applied per client. */
  private readonly sessions = new Map<number, number>();

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  /** The highest sequence number applied for `client` (-1 if none). */
  lastApplied(client: number): number {
    return this.sessions.get(client) ?? -1;
  }

  /** Apply a committed command; null when it is a duplicate of one already applied. */
  apply(command: KvCommand): KvResult | null {
    if (command.id.seq <= this.lastApplied(command.id.client)) return null;
    this.sessions.set(command.id.client, command.id.seq);
    switch (command.kind) {
      case "put":
        this.data.set(command.key, command.value);
        return { kind: "put" };
      case "cas": {
        const swapped = this.get(command.key) === command.expected;
        if (swapped) this.data.set(command.key, command.value);
        return { kind: "cas", swapped };
      }
    }
  }

  /** A canonical image of the whole state (keys sorted), equal for equal states. */
  encodeSnapshot(): Uint8Array {
    return encoder.encode(this.canonicalJson());
  }

  static fromSnapshot(bytes: Uint8Array): KvStateMachine {
    const kv = new KvStateMachine();
    if (bytes.byteLength === 0) return kv;
    const image = JSON.parse(decoder.decode(bytes)) as KvImage;
    if (!Array.isArray(image.data) || !Array.isArray(image.sessions)) {
      throw new Error("kv: malformed snapshot image");
    }
    for (const [k, v] of image.data) kv.data.set(k, v);
    for (const [client, seq] of image.sessions) kv.sessions.set(client, seq);
    return kv;
  }

  /** A short string that is equal for equal states, for cross-node comparison. */
  digest(): string {
    return this.canonicalJson();
  }

  private canonicalJson(): string {
    const image: KvImage = {
      data: [...this.data.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
      sessions: [...this.sessions.entries()].sort((a, b) => a[0] - b[0]),
    };
    return JSON.stringify(image);
  }
}
