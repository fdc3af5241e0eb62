import { MyriadTypeError } from "../errors.ts";
import { CR, LF, digitCount, utf8Length, writeDigits, writeRespHeader, writeUint, writeUtf8 } from "./bytes.ts";
import { CodecEncodeError } from "./errors.ts";

/**
 * RESP2 reply encoders for servers. Each returns the reply's bytes on the wire, ready for
 * conn.write. The constant replies (ok, pong, ...) and small integers are shared arrays:
 * never modify a returned array.
 */

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** "+<text>\r\n" or "-<text>\r\n"; "\r" and "\n" inside text become spaces, as redis does. */
function line(type: number, text: string): Uint8Array {
  if (typeof text !== "string") throw notA("a string", type === 43 ? "simple" : "error", text);
  const n = utf8Length(text);
  const out = new Uint8Array(n + 3);
  out[0] = type;
  writeUtf8(text, out, 1);
  for (let i = 1; i <= n; i++) {
    const c = out[i];
    if (c === CR || c === LF) out[i] = 32;
  }
  out[n + 1] = CR;
  out[n + 2] = LF;
  return out;
}

function encodeInteger(n: number): Uint8Array {
  if (!Number.isSafeInteger(n)) {
    if (typeof n !== "number") throw notA("a number", "integer", n);
    throw new CodecEncodeError(`resp.integer(${n}): RESP integers are whole numbers; send ${n} with resp.bulk(String(n))`);
  }
  const neg = n < 0;
  const abs = neg ? -n : n;
  const d = digitCount(abs);
  const out = new Uint8Array(d + (neg ? 4 : 3));
  out[0] = 58;
  let p = 1;
  if (neg) out[p++] = 45;
  p += writeUint(abs, out, p);
  out[p] = CR;
  out[p + 1] = LF;
  return out;
}

/** The error for a resp encoder given a value of the wrong type. */
function notA(what: string, encoder: string, got: unknown): MyriadTypeError {
  const shown = typeof got === "string" ? JSON.stringify(got) : got instanceof Uint8Array ? "a Uint8Array" : String(got);
  return new MyriadTypeError("ERR_CODEC_ENCODE", `resp.${encoder}: takes ${what}, got ${shown} (${typeof got})`);
}

const SMALL_INT_MIN = -1;
const SMALL_INT_MAX = 1023;
// Filled on first use, not at import: every worker process imports the codecs, and an eager
// table of 1,025 arrays cost a few MB of RSS per process (JIT and heap blocks) before any reply.
const smallInts: (Uint8Array | undefined)[] = new Array(SMALL_INT_MAX - SMALL_INT_MIN + 1);

/** Values up to this many bytes are copied by a byte loop: for a few bytes it beats a native set(). */
const LOOP_COPY_MAX_BYTES = 32;

/** "$<len>\r\n<bytes>\r\n" for bytes or a string (sent as UTF-8). */
function encodeBulk(value: Uint8Array | string): Uint8Array {
  if (typeof value === "string") return encodeBulkString(value);
  if (!(value instanceof Uint8Array)) throw notA("a string or Uint8Array", "bulk", value);
  const n = value.length;
  // The digits are counted once; most values are short, hence the n < 10 shortcut.
  const d = n < 10 ? 1 : digitCount(n);
  const out = new Uint8Array(n + d + 5);
  out[0] = 36;
  let p = writeDigits(n, d, out, 1);
  out[p++] = CR;
  out[p++] = LF;
  if (n <= LOOP_COPY_MAX_BYTES) {
    for (let i = 0; i < n; i++) out[p + i] = value[i]!;
  } else {
    out.set(value, p);
  }
  p += n;
  out[p] = CR;
  out[p + 1] = LF;
  return out;
}

function encodeBulkString(value: string): Uint8Array {
  const len = utf8Length(value);
  const d = digitCount(len);
  const out = new Uint8Array(len + d + 5);
  out[0] = 36;
  let p = writeDigits(len, d, out, 1);
  out[p++] = CR;
  out[p++] = LF;
  writeUtf8(value, out, p);
  p += len;
  out[p] = CR;
  out[p + 1] = LF;
  return out;
}

/** "*<n>\r\n" then the items' bytes, each already an encoded reply. */
function encodeArray(items: readonly Uint8Array[]): Uint8Array {
  const n = items.length;
  let size = 1 + digitCount(n) + 2;
  for (let i = 0; i < n; i++) {
    const item = items[i];
    if (!(item instanceof Uint8Array)) throw notA("an array of encoded replies (Uint8Array)", "array", item);
    size += item.length;
  }
  const out = new Uint8Array(size);
  let p = writeRespHeader(42, n, out, 0);
  for (let i = 0; i < n; i++) {
    const item = items[i] as Uint8Array;
    out.set(item, p);
    p += item.length;
  }
  return out;
}

const nullBulk = ascii("$-1\r\n");

/** RESP2 reply encoders for servers (see each member). */
export const resp = {
  /** "+OK\r\n" (shared: do not modify). */
  ok: ascii("+OK\r\n"),
  /** "+PONG\r\n" (shared: do not modify). */
  pong: ascii("+PONG\r\n"),
  /** "+QUEUED\r\n" (shared: do not modify). */
  queued: ascii("+QUEUED\r\n"),
  /** "$-1\r\n", the null bulk string (GET of a missing key). Shared: do not modify. */
  nullBulk,
  /** "*-1\r\n", the null array. Shared: do not modify. */
  nullArray: ascii("*-1\r\n"),
  /** "*0\r\n", the empty array. Shared: do not modify. */
  emptyArray: ascii("*0\r\n"),
  /** "$0\r\n\r\n", the empty bulk string. Shared: do not modify. */
  emptyBulk: ascii("$0\r\n\r\n"),
  /** A simple string "+<s>\r\n"; CR/LF inside s become spaces. MyriadTypeError (ERR_CODEC_ENCODE) for a non-string. */
  simple(s: string): Uint8Array {
    return line(43, s);
  },
  /**
   * An error reply "-<msg>\r\n"; msg carries its own prefix ("ERR unknown command 'x'",
   * "WRONGTYPE ..."); CR/LF inside msg become spaces.
   */
  error(msg: string): Uint8Array {
    return line(45, msg);
  },
  /** An integer reply ":<n>\r\n" for a safe integer; otherwise throws CodecEncodeError (a RangeError), MyriadTypeError for a non-number. */
  integer(n: number): Uint8Array {
    if (n >= SMALL_INT_MIN && n <= SMALL_INT_MAX && (n | 0) === n) return (smallInts[n - SMALL_INT_MIN] ??= encodeInteger(n));
    return encodeInteger(n);
  },
  /** A bulk string "$<len>\r\n<b>\r\n"; a string is sent as UTF-8. */
  bulk: encodeBulk,
  /** A bulk string, or the null bulk for null/undefined (MGET, HGET of a missing field). */
  bulkOrNull(b: Uint8Array | string | null | undefined): Uint8Array {
    return b == null ? nullBulk : encodeBulk(b);
  },
  /** An array reply "*<n>\r\n" followed by items, each an already-encoded reply. */
  array: encodeArray,
  /** An array of bulk strings (null/undefined entries become null bulks), in one allocation. */
  bulkArray(values: ReadonlyArray<Uint8Array | string | null | undefined>): Uint8Array {
    const n = values.length;
    let size = 1 + digitCount(n) + 2;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v == null) size += 5;
      else if (typeof v !== "string" && !(v instanceof Uint8Array)) throw notA("an array of strings, Uint8Arrays or null", "bulkArray", v);
      else {
        const len = typeof v === "string" ? utf8Length(v) : v.length;
        size += 1 + digitCount(len) + 2 + len + 2;
      }
    }
    const out = new Uint8Array(size);
    let p = writeRespHeader(42, n, out, 0);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v == null) {
        out.set(nullBulk, p);
        p += 5;
        continue;
      }
      const isString = typeof v === "string";
      const len = isString ? utf8Length(v) : v.length;
      p = writeRespHeader(36, len, out, p);
      if (isString) writeUtf8(v, out, p);
      else out.set(v, p);
      p += len;
      out[p++] = CR;
      out[p++] = LF;
    }
    return out;
  },
} as const;
