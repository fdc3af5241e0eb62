/**
 * RESP2 replies the proxy builds (its own answers and errors, merged replies of split
 * commands) and the little it reads of upstream replies (an array's elements, an integer).
 * Upstream replies otherwise pass through as the bytes the server sent.
 */
import { respReplyCodec } from "../codec/index.ts";

const enc = new TextEncoder();

/** "+OK\r\n". */
export const OK = enc.encode("+OK\r\n");
/** "+QUEUED\r\n", a command queued inside MULTI. */
export const QUEUED = enc.encode("+QUEUED\r\n");
/** "+PONG\r\n". */
export const PONG = enc.encode("+PONG\r\n");
/** An empty array: EXEC of an empty transaction. */
export const EMPTY_ARRAY = enc.encode("*0\r\n");
/** A null bulk string. */
export const NULL_BULK = enc.encode("$-1\r\n");

/** A simple string reply. */
export function simpleReply(text: string): Uint8Array {
  return enc.encode(`+${text}\r\n`);
}

/** An error reply; `text` starts with its code word (ERR, NOAUTH, ...). CR and LF become spaces. */
export function errorReply(text: string): Uint8Array {
  return enc.encode(`-${text.replace(/[\r\n]+/g, " ")}\r\n`);
}

/** An integer reply. */
export function integerReply(n: number): Uint8Array {
  return enc.encode(`:${n}\r\n`);
}

/** A bulk string reply. */
export function bulkReply(bytes: Uint8Array): Uint8Array {
  const head = enc.encode(`$${bytes.length}\r\n`);
  const out = new Uint8Array(head.length + bytes.length + 2);
  out.set(head, 0);
  out.set(bytes, head.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** An array reply of already-encoded elements. */
export function arrayReply(elements: readonly Uint8Array[]): Uint8Array {
  const head = enc.encode(`*${elements.length}\r\n`);
  let size = head.length;
  for (const e of elements) size += e.length;
  const out = new Uint8Array(size);
  out.set(head, 0);
  let p = head.length;
  for (const e of elements) {
    out.set(e, p);
    p += e.length;
  }
  return out;
}

/** True for an error reply ("-..."). */
export function isErrorReply(reply: Uint8Array): boolean {
  return reply[0] === 45;
}

/**
 * The elements of an array reply as views into it, or null when `reply` is not an array
 * (an error, a null array). Each element is one whole RESP value.
 */
export function arrayElements(reply: Uint8Array): Uint8Array[] | null {
  if (reply[0] !== 42 || reply[1] === 45) return null;
  let p = 1;
  let count = 0;
  while (reply[p] !== 13) count = count * 10 + ((reply[p++] as number) - 48);
  p += 2;
  const out = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) {
    const n = respReplyCodec.measure(reply, p, reply.length, reply.length);
    if (n <= 0) return null;
    out[i] = reply.subarray(p, p + n);
    p += n;
  }
  return out;
}

/** The value of an integer reply (":12\r\n"), or NaN for any other reply. */
export function integerOf(reply: Uint8Array): number {
  if (reply[0] !== 58) return NaN;
  let p = 1;
  let neg = false;
  if (reply[p] === 45) {
    neg = true;
    p++;
  }
  let v = 0;
  while (reply[p] !== 13) v = v * 10 + ((reply[p++] as number) - 48);
  return neg ? -v : v;
}


/** The bulk string payload of an encoded bulk element ("$3\r\nabc\r\n" → "abc"), or null. */
export function bulkPayload(element: Uint8Array): Uint8Array | null {
  if (element[0] !== 36 || element[1] === 45) return null;
  const nl = element.indexOf(10);
  return element.subarray(nl + 1, element.length - 2);
}

/** Shows a key or argument in a message: printable ASCII as is, other bytes as \xHH, long ones cut. */
export function showBytes(bytes: Uint8Array, max = 40): string {
  let s = "";
  for (let i = 0; i < bytes.length && i < max; i++) {
    const c = bytes[i] as number;
    s += c >= 32 && c < 127 && c !== 34 && c !== 92 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return bytes.length > max ? `"${s}..."` : `"${s}"`;
}
