/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven, as used by zlib and
 * gzip. Node 20 has no zlib.crc32; snapshot chunks and whole snapshots carry one each.
 */

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * The CRC-32 of `data`; pass the CRC of the bytes before `data` as `previous` to continue a
 * running checksum (crc32(b, crc32(a)) === crc32(a ++ b)).
 */
export function crc32(data: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  for (let i = 0; i < data.length; i++) {
    crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return ~crc >>> 0;
}
