/**
 * HTTP/2 framing (RFC 9113 section 4 and 6): frame types, flags, error codes, settings
 * identifiers and the writers of the frames a server sends. Pure functions over bytes; the
 * connection (connection.ts) decides what to send.
 */

/** The client connection preface (RFC 9113 3.4). */
export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME_HEADER_LENGTH = 9;

export const FrameType = {
  data: 0x0,
  headers: 0x1,
  priority: 0x2,
  rstStream: 0x3,
  settings: 0x4,
  pushPromise: 0x5,
  ping: 0x6,
  goAway: 0x7,
  windowUpdate: 0x8,
  continuation: 0x9,
} as const;

export const Flag = {
  endStream: 0x1,
  /** SETTINGS and PING: the same bit as END_STREAM. */
  ack: 0x1,
  endHeaders: 0x4,
  padded: 0x8,
  priority: 0x20,
} as const;

export const Http2ErrorCode = {
  noError: 0x0,
  protocol: 0x1,
  internal: 0x2,
  flowControl: 0x3,
  streamClosed: 0x5,
  frameSize: 0x6,
  refusedStream: 0x7,
  cancel: 0x8,
  compression: 0x9,
  enhanceYourCalm: 0xb,
} as const;

export const Setting = {
  headerTableSize: 0x1,
  enablePush: 0x2,
  maxConcurrentStreams: 0x3,
  initialWindowSize: 0x4,
  maxFrameSize: 0x5,
  maxHeaderListSize: 0x6,
} as const;

/** SETTINGS_MAX_FRAME_SIZE's initial value and lower bound: the frame size every peer accepts. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_ALLOWED_FRAME_SIZE = 2 ** 24 - 1;
/** The initial flow-control window of a connection and of every stream (until SETTINGS say otherwise). */
export const DEFAULT_WINDOW_SIZE = 65_535;
export const MAX_WINDOW_SIZE = 2 ** 31 - 1;

/** Writes a frame header at `offset` of `target`. */
function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  target[offset] = (length >>> 16) & 0xff;
  target[offset + 1] = (length >>> 8) & 0xff;
  target[offset + 2] = length & 0xff;
  target[offset + 3] = type;
  target[offset + 4] = flags;
  target[offset + 5] = (streamId >>> 24) & 0x7f;
  target[offset + 6] = (streamId >>> 16) & 0xff;
  target[offset + 7] = (streamId >>> 8) & 0xff;
  target[offset + 8] = streamId & 0xff;
}

/** A whole frame: header and payload in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payload.length);
  writeFrameHeader(bytes, 0, payload.length, type, flags, streamId);
  bytes.set(payload, FRAME_HEADER_LENGTH);
  return bytes;
}

function u32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes;
}

export function settingsFrame(settings: readonly (readonly [id: number, value: number])[]): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], index) => {
    payload.writeUInt16BE(id, index * 6);
    payload.writeUInt32BE(value, index * 6 + 2);
  });
  return frame(FrameType.settings, 0, 0, payload);
}

export const SETTINGS_ACK_FRAME = frame(FrameType.settings, Flag.ack, 0, new Uint8Array(0));

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  return frame(FrameType.windowUpdate, 0, streamId, u32(increment));
}

export function rstStreamFrame(streamId: number, errorCode: number): Buffer {
  return frame(FrameType.rstStream, 0, streamId, u32(errorCode));
}

export function goAwayFrame(lastStreamId: number, errorCode: number, debug: string): Buffer {
  return frame(
    FrameType.goAway,
    0,
    0,
    Buffer.concat([u32(lastStreamId), u32(errorCode), Buffer.from(debug, "utf8")]),
  );
}

export function pingAckFrame(payload: Uint8Array): Buffer {
  return frame(FrameType.ping, Flag.ack, 0, payload);
}
