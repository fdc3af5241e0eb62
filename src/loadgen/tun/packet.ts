/**
 * IPv4 + TCP segments for the userland TCP client (see engine.ts): only what a client that
 * opens, holds and resets connections needs. No options beyond MSS, no IP fragments, no IPv6.
 *
 * Every function works on a caller's buffer at offset 0 and allocates nothing: the engine
 * builds and parses one packet at a time in one reused buffer.
 */

/** TCP flag FIN (byte 13 of the TCP header). */
export const TCP_FIN = 0x01;
/** TCP flag SYN. */
export const TCP_SYN = 0x02;
/** TCP flag RST. */
export const TCP_RST = 0x04;
/** TCP flag PSH. */
export const TCP_PSH = 0x08;
/** TCP flag ACK. */
export const TCP_ACK = 0x10;

const IPV4_HEADER_BYTES = 20;
const TCP_HEADER_BYTES = 20;
/** A SYN carries one option, MSS (4 bytes). */
const SYN_OPTION_BYTES = 4;
/** The MSS our SYNs announce: a 1,500-byte MTU less the IPv4 and TCP headers. */
const CLIENT_MSS = 1460;
/** The receive window our segments announce (no window scaling: 16 bits). */
export const CLIENT_WINDOW = 65535;

/** Ones' complement sum of `len` bytes of `b` from `off`, folded to 16 bits (not inverted), starting from `sum`. */
export function onesSum(b: Uint8Array, off: number, len: number, sum = 0): number {
  let i = off;
  const end = off + len - 1;
  for (; i < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if ((len & 1) === 1) sum += b[off + len - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * Writes one IPv4/TCP segment into `b` (from offset 0) and returns its length in bytes.
 * Addresses are IPv4 as unsigned 32-bit numbers; seq/ack as unsigned 32-bit; `payloadBytes`
 * of payload must already sit at offset 40 (44 for a SYN). A SYN gets the MSS option.
 * Both checksums are computed.
 */
export function writeSegment(
  b: Uint8Array,
  srcIp: number,
  dstIp: number,
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  payloadBytes = 0,
): number {
  const optionBytes = (flags & TCP_SYN) !== 0 ? SYN_OPTION_BYTES : 0;
  const tcpBytes = TCP_HEADER_BYTES + optionBytes + payloadBytes;
  const total = IPV4_HEADER_BYTES + tcpBytes;
  // IPv4 header: version 4, IHL 5, DF, TTL 64, protocol 6.
  b[0] = 0x45;
  b[1] = 0;
  b[2] = total >>> 8;
  b[3] = total & 0xff;
  b[4] = 0;
  b[5] = 0;
  b[6] = 0x40;
  b[7] = 0;
  b[8] = 64;
  b[9] = 6;
  b[10] = 0;
  b[11] = 0;
  writeU32(b, 12, srcIp);
  writeU32(b, 16, dstIp);
  const ipSum = onesSum(b, 0, IPV4_HEADER_BYTES);
  b[10] = (~ipSum >>> 8) & 0xff;
  b[11] = ~ipSum & 0xff;
  // TCP header.
  const t = IPV4_HEADER_BYTES;
  b[t] = srcPort >>> 8;
  b[t + 1] = srcPort & 0xff;
  b[t + 2] = dstPort >>> 8;
  b[t + 3] = dstPort & 0xff;
  writeU32(b, t + 4, seq);
  writeU32(b, t + 8, (flags & TCP_ACK) !== 0 ? ack : 0);
  b[t + 12] = ((TCP_HEADER_BYTES + optionBytes) / 4) << 4;
  b[t + 13] = flags;
  b[t + 14] = CLIENT_WINDOW >>> 8;
  b[t + 15] = CLIENT_WINDOW & 0xff;
  b[t + 16] = 0;
  b[t + 17] = 0;
  b[t + 18] = 0;
  b[t + 19] = 0;
  if (optionBytes !== 0) {
    b[t + 20] = 2;
    b[t + 21] = 4;
    b[t + 22] = CLIENT_MSS >>> 8;
    b[t + 23] = CLIENT_MSS & 0xff;
  }
  // Pseudo-header: source, destination, protocol, TCP length; then the segment itself.
  let sum = onesSum(b, 12, 8);
  sum += 6 + tcpBytes;
  const tcpSum = onesSum(b, t, tcpBytes, sum);
  b[t + 16] = (~tcpSum >>> 8) & 0xff;
  b[t + 17] = ~tcpSum & 0xff;
  return total;
}

function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** Reads a big-endian unsigned 32-bit number. */
export function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** Reads a big-endian unsigned 16-bit number. */
export function readU16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

/**
 * Where the TCP header of an IPv4 packet of `len` bytes starts, or -1 when it is not a
 * whole, unfragmented IPv4/TCP packet with valid header lengths (the caller drops it).
 */
export function tcpOffset(b: Uint8Array, len: number): number {
  if (len < IPV4_HEADER_BYTES + TCP_HEADER_BYTES || b[0]! >>> 4 !== 4 || b[9] !== 6) return -1;
  const ihl = (b[0]! & 0x0f) * 4;
  const total = readU16(b, 2);
  // Fragments (MF set or a fragment offset) never arrive for segments this small; drop them.
  if (ihl < IPV4_HEADER_BYTES || total > len || total < ihl + TCP_HEADER_BYTES || (readU16(b, 6) & 0x3fff) !== 0) return -1;
  const doff = (b[ihl + 12]! >>> 4) * 4;
  if (doff < TCP_HEADER_BYTES || ihl + doff > total) return -1;
  return ihl;
}

/** True when the IPv4 header checksum and the TCP checksum of the packet in `b` (TCP at `t`) are right. */
export function checksumsValid(b: Uint8Array, t: number): boolean {
  if (onesSum(b, 0, t) !== 0xffff) return false;
  const total = readU16(b, 2);
  const tcpBytes = total - t;
  const sum = onesSum(b, 12, 8) + 6 + tcpBytes;
  return onesSum(b, t, tcpBytes, sum) === 0xffff;
}
