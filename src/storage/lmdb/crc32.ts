/**
 * CRC-32 with the IEEE polynomial (the one zlib, gzip and PNG use), computed a byte at a time
 * from a 256-entry table. The lmdb layout stores one per record to catch bit rot and
 * misplaced values on open. (storage/ sits below transport/, so it keeps its own copy rather
 * than importing the transport's.)
 */

/** The polynomial x^32 + x^26 + ... + 1 with its bits reversed, as the table is built LSB first. */
const REVERSED_POLYNOMIAL = 0xedb88320;

/** TABLE[b]: the CRC remainder of byte b shifted through all eight bits. */
const TABLE: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let remainder = byte;
    for (let bit = 0; bit < 8; bit++) {
      remainder = remainder & 1 ? (remainder >>> 1) ^ REVERSED_POLYNOMIAL : remainder >>> 1;
    }
    table[byte] = remainder;
  }
  return table;
}

/**
 * The CRC-32 of `bytes`, continuing from `running` (the CRC of whatever came before them, 0 to
 * start), so crc32(b, crc32(a)) equals the CRC of a followed by b.
 */
export function crc32(bytes: Uint8Array, running = 0): number {
  let state = ~running >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    state = (state >>> 8) ^ TABLE[(state ^ bytes[i]!) & 0xff]!;
  }
  return ~state >>> 0;
}
