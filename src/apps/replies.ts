/**
 * RESP2 replies of the apps, as byte arrays to hand to conn.write.
 *
 * The apps keep no reply buffer of their own: the reactor gathers every write made during a
 * connection's data event into one send at the end of the event (its cork), so a pipelined
 * read of 16 requests still goes out in one write, and an app writes each reply as soon as
 * it has it. What that costs per reply is one conn.write of a shared constant (+OK, $-1,
 * small integers) or of one small array built here.
 *
 * Strings are latin1 (one byte per char): keys, channel names and the arguments quoted in
 * error texts are latin1 strings of the request's bytes, and go back byte for byte, as redis
 * echoes them. Every shared array is read-only: never modify one.
 */
import { resp } from "../codec/index.ts";

/** "+OK\r\n" (shared). */
export const OK: Uint8Array = resp.ok;
/** "+PONG\r\n" (shared). */
export const PONG: Uint8Array = resp.pong;
/** "$-1\r\n", the RESP2 null bulk string (shared). */
export const NIL: Uint8Array = resp.nullBulk;
/** "$0\r\n\r\n" (shared). */
export const EMPTY_BULK: Uint8Array = resp.emptyBulk;

/** Array headers "*<n>\r\n" for small n, made once. */
const ARRAY_HEADERS: Uint8Array[] = [];
for (let n = 0; n < 16; n++) ARRAY_HEADERS.push(latin1Line(42, String(n)));

/** type byte, latin1 text, "\r\n" in a new array (CR and LF inside text become spaces). */
function latin1Line(type: number, text: string): Uint8Array {
  const n = text.length;
  const out = new Uint8Array(n + 3);
  out[0] = type;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i) & 0xff;
    out[i + 1] = c === 13 || c === 10 ? 32 : c;
  }
  out[n + 1] = 13;
  out[n + 2] = 10;
  return out;
}

/** "$<len>\r\n<v>\r\n" in a new array (the codec's resp.bulk). */
export const bulk: (v: Uint8Array) => Uint8Array = resp.bulk;

/** A bulk string of a latin1 string's bytes (one byte per char), in a new array. */
export function bulkLatin1(s: string): Uint8Array {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i) & 0xff;
  return resp.bulk(bytes);
}

/** ":<n>\r\n" for a safe integer n (shared for -1..1023, new beyond). */
export function integer(n: number): Uint8Array {
  return resp.integer(n);
}

/** ":<text>\r\n" for an integer given as decimal text (a bigint's String()). */
export function integerText(text: string): Uint8Array {
  return latin1Line(58, text);
}

/** "-<message>\r\n"; message is latin1 and carries its prefix ("ERR ..."); CR and LF become spaces, as redis does. */
export function error(message: string): Uint8Array {
  return latin1Line(45, message);
}

/** "*<n>\r\n": an array header; the caller writes n elements after it. */
export function arrayHeader(n: number): Uint8Array {
  return n < ARRAY_HEADERS.length ? ARRAY_HEADERS[n]! : latin1Line(42, String(n));
}
