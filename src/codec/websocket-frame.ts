/**
 * WebSocket frames (RFC 6455 section 5): measuring and reading headers, unmasking, encoding.
 *
 * Stateless: measureFrame reads one header into a FrameHeader the caller owns (one per
 * parser, re-filled per frame), so measuring allocates nothing. What spans frames (the
 * message a continuation belongs to, UTF-8 state, compression) is the connection layer's
 * (src/websocket). The checks here are those a header alone decides: reserved bits, unknown
 * opcodes, control-frame rules, the mask, payload lengths.
 */

// Opcodes (RFC 6455 section 5.2).
/** Opcode of a frame that continues a fragmented message. */
export const OP_CONTINUATION = 0x0;
/** Opcode of a text message's first (or only) frame: UTF-8 payload. */
export const OP_TEXT = 0x1;
/** Opcode of a binary message's first (or only) frame. */
export const OP_BINARY = 0x2;
/** Opcode of a close frame: optional 2-byte code, then an optional UTF-8 reason. */
export const OP_CLOSE = 0x8;
/** Opcode of a ping, to be answered by a pong with the same payload. */
export const OP_PING = 0x9;
/** Opcode of a pong (an answer to a ping, or unsolicited as a heartbeat). */
export const OP_PONG = 0xa;

// First-byte bits.
/** Set on the last frame of a message. */
export const FIN = 0x80;
/** Reserved bit 1: set on a compressed message's first frame under permessage-deflate, else an error. */
export const RSV1 = 0x40;
/** Reserved bit 2: no extension here uses it, so a frame with it set is refused. */
export const RSV2 = 0x20;
/** Reserved bit 3: no extension here uses it, so a frame with it set is refused. */
export const RSV3 = 0x10;

// Close codes (RFC 6455 section 7.4.1) that this server sends or reports.
/** Close code: the purpose of the connection is fulfilled. */
export const CLOSE_NORMAL = 1000;
/** Close code: the endpoint is going away (server shutdown, page left). */
export const CLOSE_GOING_AWAY = 1001;
/** Close code: the peer broke the protocol (bad framing, unmasked client frame, bad opcode...). */
export const CLOSE_PROTOCOL_ERROR = 1002;
/** Close code: a message of a type the endpoint cannot accept. */
export const CLOSE_UNSUPPORTED_DATA = 1003;
/** Reported (never sent) when a close frame carried no code. */
export const CLOSE_NO_STATUS = 1005;
/** Reported (never sent) when the connection ended without a close frame. */
export const CLOSE_ABNORMAL = 1006;
/** Close code: payload inconsistent with the message type (invalid UTF-8 in text or a close reason). */
export const CLOSE_INVALID_PAYLOAD = 1007;
/** Close code: a message broke the endpoint's policy (no more specific code fits). */
export const CLOSE_POLICY_VIOLATION = 1008;
/** Close code: a message over the size limit (maxFrameBytes, after inflation). */
export const CLOSE_MESSAGE_TOO_BIG = 1009;
/** Close code: an unexpected condition kept the endpoint from serving the connection. */
export const CLOSE_INTERNAL_ERROR = 1011;

/** Largest payload of a control frame (ping, pong, close). */
export const MAX_CONTROL_PAYLOAD_BYTES = 125;
/** Largest close reason: 125 bytes of payload less the 2-byte code. */
export const MAX_CLOSE_REASON_BYTES = 123;
/** Largest frame header: 2 bytes, 8 of extended length, 4 of mask key. */
export const MAX_FRAME_HEADER_BYTES = 14;

/**
 * True for a close code an endpoint may send (and so accept in a close frame): 1000-1003,
 * 1007-1014 (the IANA-registered ones that are not reserved for local use), 3000-4999
 * (libraries, frameworks, applications). 1004, 1005, 1006, 1015 and everything else are not.
 */
export function isValidCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}

/** The fields of the header measureFrame last read; one instance per parser, reused. */
export class FrameHeader {
  /** The first byte: FIN, RSV1-3, opcode. */
  b0 = 0;
  /** b0 & 0x0f. */
  opcode = 0;
  /** Header bytes, mask key included: 2..14; 0 when measureFrame did not see a whole header. */
  headerBytes = 0;
  /** Payload bytes. */
  payloadBytes = 0;
  /** True when the mask bit is set (the key is the 4 bytes before the payload). */
  masked = false;
}

// measureFrame results below 0 are negated close codes.
/** measureFrame result: the header breaks the protocol; close with 1002. */
export const MEASURE_PROTOCOL_ERROR = -CLOSE_PROTOCOL_ERROR;
/** measureFrame result: the payload is over the limit; close with 1009. */
export const MEASURE_TOO_BIG = -CLOSE_MESSAGE_TOO_BIG;

/**
 * Length of the complete frame at buf[start], reading no further than buf[end - 1]: header
 * plus payload, > 0. 0 while the bytes so far are a valid but incomplete frame. `h` is
 * filled in as soon as the header is complete (also when 0 is returned because the payload
 * is not: then h.headerBytes > 0, else h.headerBytes is 0). A negated close code as soon as the header's bytes show the frame must be refused:
 * MEASURE_PROTOCOL_ERROR (-1002) for reserved bits outside `allowedRsv`, an unknown opcode, a
 * fragmented or over-125-byte control frame, a missing mask when `requireMask` (a client's
 * frame) or a present one when not (a server's), a 64-bit length with its top bit set;
 * MEASURE_TOO_BIG (-1009) for a payload over maxPayloadBytes. The bytes held before either
 * answer are at most MAX_FRAME_HEADER_BYTES + maxPayloadBytes. Allocates nothing.
 */
export function measureFrame(
  buf: Uint8Array,
  start: number,
  end: number,
  maxPayloadBytes: number,
  allowedRsv: number,
  requireMask: boolean,
  h: FrameHeader,
): number {
  h.headerBytes = 0;
  const have = end - start;
  if (have < 2) {
    if (have === 1) return checkFirstByte(buf[start]!, allowedRsv);
    return 0;
  }
  const b0 = buf[start]!;
  const first = checkFirstByte(b0, allowedRsv);
  if (first < 0) return first;
  const b1 = buf[start + 1]!;
  const masked = (b1 & 0x80) !== 0;
  if (masked !== requireMask) return MEASURE_PROTOCOL_ERROR;
  const opcode = b0 & 0x0f;
  let len = b1 & 0x7f;
  let headerBytes = 2;
  if (opcode >= OP_CLOSE && len > MAX_CONTROL_PAYLOAD_BYTES) return MEASURE_PROTOCOL_ERROR;
  if (len === 126) {
    if (have < 4) return 0;
    len = (buf[start + 2]! << 8) | buf[start + 3]!;
    headerBytes = 4;
  } else if (len === 127) {
    // The most significant bit must be 0; the high 32 bits (as far as we have them) bound
    // the length from below, so an oversized frame is refused before its 8 bytes are in.
    if (have >= 3 && (buf[start + 2]! & 0x80) !== 0) return MEASURE_PROTOCOL_ERROR;
    let known = 0;
    const avail = have - 2 < 8 ? have - 2 : 8;
    for (let i = 0; i < avail; i++) known = known * 256 + buf[start + 2 + i]!;
    for (let i = avail; i < 8; i++) known *= 256;
    if (known > maxPayloadBytes) return MEASURE_TOO_BIG;
    if (have < 10) return 0;
    len = known;
    headerBytes = 10;
  }
  if (len > maxPayloadBytes) return MEASURE_TOO_BIG;
  if (masked) headerBytes += 4;
  if (have < headerBytes) return 0;
  h.b0 = b0;
  h.opcode = opcode;
  h.headerBytes = headerBytes;
  h.payloadBytes = len;
  h.masked = masked;
  return have < headerBytes + len ? 0 : headerBytes + len;
}

/** 0 when the first byte may start a frame, MEASURE_PROTOCOL_ERROR otherwise. */
function checkFirstByte(b0: number, allowedRsv: number): number {
  if ((b0 & 0x70 & ~allowedRsv) !== 0) return MEASURE_PROTOCOL_ERROR;
  const opcode = b0 & 0x0f;
  if (opcode > OP_BINARY && opcode < OP_CLOSE) return MEASURE_PROTOCOL_ERROR;
  if (opcode > OP_PONG) return MEASURE_PROTOCOL_ERROR;
  // Control frames may not be fragmented nor compressed (RSV1 is per message).
  if (opcode >= OP_CLOSE && (b0 & (FIN | RSV1)) !== FIN) return MEASURE_PROTOCOL_ERROR;
  return 0;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * XORs buf[start, start + len) in place with the 4-byte key at buf[keyAt, keyAt + 4) (the
 * mask key just before a masked payload). See xorMask.
 */
export function unmask(buf: Uint8Array, keyAt: number, start: number, len: number): void {
  xorMask(buf, start, len, buf[keyAt]!, buf[keyAt + 1]!, buf[keyAt + 2]!, buf[keyAt + 3]!);
}

/**
 * XORs buf[start, start + len) in place with the key bytes k0 k1 k2 k3, repeated, starting
 * with k0 (a payload unmasked in pieces passes the key rotated by the bytes done before).
 * Payloads of 64 bytes or more go 4 bytes at a time through one Int32Array view; smaller
 * ones byte by byte, allocating nothing.
 */
export function xorMask(buf: Uint8Array, start: number, len: number, k0: number, k1: number, k2: number, k3: number): void {
  let p = start;
  const end = start + len;
  if (len >= 64 && LITTLE_ENDIAN) {
    // Bytes until p is 4-aligned in the ArrayBuffer, then whole words, then the tail; the
    // key rotates by the bytes done so far.
    const keys = [k0, k1, k2, k3];
    let j = 0;
    while (((buf.byteOffset + p) & 3) !== 0) {
      buf[p] = buf[p]! ^ keys[j]!;
      p++;
      j++;
    }
    const words = (end - p) >>> 2;
    const key32 = keys[j & 3]! | (keys[(j + 1) & 3]! << 8) | (keys[(j + 2) & 3]! << 16) | (keys[(j + 3) & 3]! << 24);
    const w = new Int32Array(buf.buffer, buf.byteOffset + p, words);
    for (let i = 0; i < words; i++) w[i] = w[i]! ^ key32;
    p += words << 2;
    for (; p < end; p++, j++) buf[p] = buf[p]! ^ keys[j & 3]!;
    return;
  }
  for (; p + 4 <= end; p += 4) {
    buf[p] = buf[p]! ^ k0;
    buf[p + 1] = buf[p + 1]! ^ k1;
    buf[p + 2] = buf[p + 2]! ^ k2;
    buf[p + 3] = buf[p + 3]! ^ k3;
  }
  if (p < end) buf[p] = buf[p]! ^ k0;
  if (p + 1 < end) buf[p + 1] = buf[p + 1]! ^ k1;
  if (p + 2 < end) buf[p + 2] = buf[p + 2]! ^ k2;
}

/** Bytes of an unmasked header announcing payloadBytes: 2, 4 or 10. */
export function frameHeaderBytes(payloadBytes: number): number {
  return payloadBytes < 126 ? 2 : payloadBytes < 0x10000 ? 4 : 10;
}

/**
 * Writes an unmasked (server) frame header with first byte b0 (FIN | RSV | opcode) for a
 * payload of payloadBytes at dst[pos]; returns its length, frameHeaderBytes(payloadBytes).
 */
export function writeFrameHeader(dst: Uint8Array, pos: number, b0: number, payloadBytes: number): number {
  dst[pos] = b0;
  if (payloadBytes < 126) {
    dst[pos + 1] = payloadBytes;
    return 2;
  }
  if (payloadBytes < 0x10000) {
    dst[pos + 1] = 126;
    dst[pos + 2] = payloadBytes >>> 8;
    dst[pos + 3] = payloadBytes & 0xff;
    return 4;
  }
  dst[pos + 1] = 127;
  const hi = Math.floor(payloadBytes / 0x100000000);
  dst[pos + 2] = 0;
  dst[pos + 3] = 0;
  dst[pos + 4] = (hi >>> 8) & 0xff;
  dst[pos + 5] = hi & 0xff;
  dst[pos + 6] = (payloadBytes >>> 24) & 0xff;
  dst[pos + 7] = (payloadBytes >>> 16) & 0xff;
  dst[pos + 8] = (payloadBytes >>> 8) & 0xff;
  dst[pos + 9] = payloadBytes & 0xff;
  return 10;
}

/** One unmasked (server) frame: header with first byte b0, then payload (a new array). */
export function encodeFrame(b0: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const out = new Uint8Array(frameHeaderBytes(n) + n);
  out.set(payload, writeFrameHeader(out, 0, b0, n));
  return out;
}

/**
 * One masked (client) frame with first byte b0 and the given 4-byte mask key (a new array).
 * For clients: load generators and tests.
 */
export function encodeClientFrame(b0: number, payload: Uint8Array, maskKey: Uint8Array): Uint8Array {
  const n = payload.length;
  const hb = frameHeaderBytes(n);
  const out = new Uint8Array(hb + 4 + n);
  writeFrameHeader(out, 0, b0, n);
  out[1] = out[1]! | 0x80;
  out.set(maskKey.subarray(0, 4), hb);
  for (let i = 0; i < n; i++) out[hb + 4 + i] = payload[i]! ^ maskKey[i & 3]!;
  return out;
}

const encoder = new TextEncoder();

/**
 * The payload of a close frame: the code (big-endian) then the reason as UTF-8, cut to
 * MAX_CLOSE_REASON_BYTES at a character boundary. code 0 gives an empty payload (a close
 * frame without a status).
 */
export function closePayload(code: number, reason: string): Uint8Array {
  if (code === 0) return new Uint8Array(0);
  let text = encoder.encode(reason);
  if (text.length > MAX_CLOSE_REASON_BYTES) {
    let cut = MAX_CLOSE_REASON_BYTES;
    while (cut > 0 && (text[cut]! & 0xc0) === 0x80) cut--; // not inside a character
    text = text.subarray(0, cut);
  }
  const out = new Uint8Array(2 + text.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}
