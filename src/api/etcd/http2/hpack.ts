/**
 * HPACK (RFC 7541) as the server side of an HTTP/2 connection needs it: the decoder of the
 * client's header blocks (static and dynamic tables, prefixed integers, string literals, the
 * static Huffman code), and the encoding primitives the server's own header blocks are built
 * from. The server never inserts into the client's dynamic table: its blocks use static
 * indexes and literals without indexing only (grpc-server.ts pre-encodes them).
 */

/** A header block that is not valid HPACK (truncated, overlong integer, bad Huffman code). */
export class HpackError extends Error {}

/**
 * The bit length of each symbol's code (bytes 0..255, then EOS = 256), RFC 7541 Appendix B.
 * The code is canonical: codes of one length are consecutive in symbol order and each length
 * starts at (last code of the shorter length + 1) shifted left, so the lengths define it.
 */
const HUFFMAN_CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28,
  28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7,
  8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19,
  13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13,
  28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21,
  22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23,
  22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25,
  25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];
const HUFFMAN_EOS = 256;
const HUFFMAN_MAX_CODE_LENGTH = 30;

/**
 * Canonical decoding tables: per code length, its first code, how many codes, and where its
 * symbols start. Typed arrays: the decoder reads them for every bit of every coded header.
 */
interface HuffmanDecoder {
  readonly firstCode: Int32Array;
  readonly count: Int32Array;
  readonly firstSymbolIndex: Int32Array;
  /** Symbols ordered by (code length, symbol). */
  readonly symbols: Uint16Array;
}

function buildHuffmanDecoder(): HuffmanDecoder {
  const symbols = HUFFMAN_CODE_LENGTHS.map((_, symbol) => symbol).sort(
    (a, b) => (HUFFMAN_CODE_LENGTHS[a] ?? 0) - (HUFFMAN_CODE_LENGTHS[b] ?? 0) || a - b,
  );
  const count = new Int32Array(HUFFMAN_MAX_CODE_LENGTH + 1);
  for (const length of HUFFMAN_CODE_LENGTHS) count[length]! += 1;
  const firstCode = new Int32Array(HUFFMAN_MAX_CODE_LENGTH + 1);
  const firstSymbolIndex = new Int32Array(HUFFMAN_MAX_CODE_LENGTH + 1);
  let code = 0;
  let index = 0;
  for (let length = 1; length <= HUFFMAN_MAX_CODE_LENGTH; length++) {
    code = length === 1 ? 0 : (code + count[length - 1]!) * 2;
    firstCode[length] = code;
    firstSymbolIndex[length] = index;
    index += count[length]!;
  }
  return { firstCode, count, firstSymbolIndex, symbols: Uint16Array.from(symbols) };
}

const huffman = buildHuffmanDecoder();

/**
 * Decodes a Huffman-coded string literal (as latin1 text). The padding after the last symbol
 * must be fewer than 8 bits, all ones (a prefix of EOS), and EOS itself must not appear.
 * Codes are at most 30 bits long, so they fit 32-bit integer arithmetic.
 */
export function decodeHuffman(bytes: Uint8Array): string {
  const { firstCode, count, firstSymbolIndex, symbols } = huffman;
  // The shortest code is 5 bits long.
  const out = Buffer.allocUnsafe(Math.ceil((bytes.length * 8) / 5));
  let written = 0;
  let code = 0;
  let length = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      length++;
      const offset = code - firstCode[length]!;
      if (offset >= 0 && offset < count[length]!) {
        const symbol = symbols[firstSymbolIndex[length]! + offset]!;
        if (symbol === HUFFMAN_EOS) throw new HpackError("Huffman string contains EOS");
        out[written++] = symbol;
        code = 0;
        length = 0;
      } else if (length >= HUFFMAN_MAX_CODE_LENGTH) {
        throw new HpackError("invalid Huffman code");
      }
    }
  }
  if (length >= 8 || code !== (1 << length) - 1) throw new HpackError("invalid Huffman padding");
  return out.toString("latin1", 0, written);
}

/** An integer with an N-bit prefix (RFC 7541 5.1) read at `offset`, and the offset after it. */
export function readInteger(
  block: Uint8Array,
  offset: number,
  prefixBits: number,
): { value: number; next: number } {
  const first = block[offset];
  if (first === undefined) throw new HpackError("header block truncated in an integer");
  const prefixMax = 2 ** prefixBits - 1;
  let value = first & prefixMax;
  let next = offset + 1;
  if (value < prefixMax) return { value, next };
  for (let shift = 0; ; shift += 7) {
    // Anything beyond 2^28 is far past any header block or table size a peer may use.
    if (shift > 21) throw new HpackError("HPACK integer too large");
    const byte = block[next++];
    if (byte === undefined) throw new HpackError("header block truncated in an integer");
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next };
  }
}

/** Encodes `value` with an N-bit prefix; `firstByteBits` are the representation's pattern bits. */
export function encodeInteger(value: number, prefixBits: number, firstByteBits: number): number[] {
  const prefixMax = 2 ** prefixBits - 1;
  if (value < prefixMax) return [firstByteBits | value];
  const bytes = [firstByteBits | prefixMax];
  let rest = value - prefixMax;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return bytes;
}

/** A string literal (RFC 7541 5.2) at `offset`: its bytes as sent, whether Huffman-coded, the offset after it. */
export function readStringLiteral(
  block: Uint8Array,
  offset: number,
): { bytes: Uint8Array; huffman: boolean; next: number } {
  const first = block[offset];
  if (first === undefined) throw new HpackError("header block truncated in a string");
  const { value: length, next: start } = readInteger(block, offset, 7);
  const end = start + length;
  if (end > block.length) throw new HpackError("header block truncated in a string");
  return { bytes: block.subarray(start, end), huffman: (first & 0x80) !== 0, next: end };
}

/** The text of a string literal read by `readStringLiteral`. */
export function stringLiteralText(literal: { bytes: Uint8Array; huffman: boolean }): string {
  return literal.huffman ? decodeHuffman(literal.bytes) : Buffer.from(literal.bytes).toString("latin1");
}

/** One header field: lowercase name and value, as latin1 text. */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/** RFC 7541 Appendix A: the static table, index 1..61. */
const STATIC_TABLE: readonly HeaderField[] = (
  [
    [":authority", ""],
    [":method", "GET"],
    [":method", "POST"],
    [":path", "/"],
    [":path", "/index.html"],
    [":scheme", "http"],
    [":scheme", "https"],
    [":status", "200"],
    [":status", "204"],
    [":status", "206"],
    [":status", "304"],
    [":status", "400"],
    [":status", "404"],
    [":status", "500"],
    ["accept-charset", ""],
    ["accept-encoding", "gzip, deflate"],
    ["accept-language", ""],
    ["accept-ranges", ""],
    ["accept", ""],
    ["access-control-allow-origin", ""],
    ["age", ""],
    ["allow", ""],
    ["authorization", ""],
    ["cache-control", ""],
    ["content-disposition", ""],
    ["content-encoding", ""],
    ["content-language", ""],
    ["content-length", ""],
    ["content-location", ""],
    ["content-range", ""],
    ["content-type", ""],
    ["cookie", ""],
    ["date", ""],
    ["etag", ""],
    ["expect", ""],
    ["expires", ""],
    ["from", ""],
    ["host", ""],
    ["if-match", ""],
    ["if-modified-since", ""],
    ["if-none-match", ""],
    ["if-range", ""],
    ["if-unmodified-since", ""],
    ["last-modified", ""],
    ["link", ""],
    ["location", ""],
    ["max-forwards", ""],
    ["proxy-authenticate", ""],
    ["proxy-authorization", ""],
    ["range", ""],
    ["referer", ""],
    ["refresh", ""],
    ["retry-after", ""],
    ["server", ""],
    ["set-cookie", ""],
    ["strict-transport-security", ""],
    ["transfer-encoding", ""],
    ["user-agent", ""],
    ["vary", ""],
    ["via", ""],
    ["www-authenticate", ""],
  ] as const
).map(([name, value]) => ({ name, value }));

/** Static table indexes the server's own header blocks use. */
export const STATIC_INDEX = { status200: 8, contentType: 31 } as const;

/** The size an entry counts against the dynamic table (RFC 7541 4.1). */
function entrySize(field: HeaderField): number {
  return field.name.length + field.value.length + 32;
}

/**
 * Decodes the header blocks of one connection, in order: the dynamic table is the
 * connection's, so every block must pass through here, even one whose stream is ignored.
 * Throws HpackError on anything that is not valid HPACK (a connection error: the table can no
 * longer be trusted).
 */
export class HpackDecoder {
  /** Newest first: dynamic index 62 is entries[0]. */
  private readonly entries: HeaderField[] = [];
  private tableSize = 0;
  private maxTableSize: number;

  /** `settingsMaxTableSize`: this side's SETTINGS_HEADER_TABLE_SIZE, the most a size update may ask for. */
  constructor(private readonly settingsMaxTableSize: number) {
    this.maxTableSize = settingsMaxTableSize;
  }

  /**
   * The fields of one complete header block. Fields past `maxListSize` (RFC 9113's header list
   * size: name + value + 32 per field) are decoded for the table's sake and dropped; `overflow`
   * says so.
   */
  decode(block: Uint8Array, maxListSize: number): { fields: HeaderField[]; overflow: boolean } {
    const fields: HeaderField[] = [];
    let listSize = 0;
    let overflow = false;
    let offset = 0;
    let fieldSeen = false;
    while (offset < block.length) {
      const first = block[offset] ?? 0;
      let field: HeaderField;
      if (first & 0x80) {
        const { value: index, next } = readInteger(block, offset, 7);
        offset = next;
        field = this.field(index);
      } else if ((first & 0xe0) === 0x20) {
        // A dynamic table size update: only before the block's first field.
        if (fieldSeen) throw new HpackError("dynamic table size update after a header field");
        const { value: size, next } = readInteger(block, offset, 5);
        offset = next;
        if (size > this.settingsMaxTableSize)
          throw new HpackError("dynamic table size update above the limit");
        this.maxTableSize = size;
        this.evictTo(size);
        continue;
      } else {
        const indexing = (first & 0xc0) === 0x40;
        const { value: nameIndex, next } = readInteger(block, offset, indexing ? 6 : 4);
        offset = next;
        let name: string;
        if (nameIndex === 0) {
          const literal = readStringLiteral(block, offset);
          offset = literal.next;
          name = stringLiteralText(literal);
        } else {
          name = this.field(nameIndex).name;
        }
        const literal = readStringLiteral(block, offset);
        offset = literal.next;
        field = { name, value: stringLiteralText(literal) };
        if (indexing) this.insert(field);
      }
      fieldSeen = true;
      listSize += entrySize(field);
      if (listSize > maxListSize) overflow = true;
      else fields.push(field);
    }
    return { fields, overflow };
  }

  private field(index: number): HeaderField {
    if (index === 0) throw new HpackError("header field index 0");
    const field =
      index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.entries[index - STATIC_TABLE.length - 1];
    if (field === undefined) throw new HpackError(`header field index ${index} is not in the table`);
    return field;
  }

  private insert(field: HeaderField): void {
    const size = entrySize(field);
    // An entry larger than the whole table empties it and is not added (RFC 7541 4.4).
    this.evictTo(this.maxTableSize - size);
    if (size > this.maxTableSize) return;
    this.entries.unshift(field);
    this.tableSize += size;
  }

  private evictTo(size: number): void {
    while (this.tableSize > Math.max(size, 0)) {
      const evicted = this.entries.pop();
      if (evicted === undefined) break;
      this.tableSize -= entrySize(evicted);
    }
  }
}
