/**
 * Byte helpers shared by the codecs (internal: index.ts exports only COPY_MAX_BYTES, the codecs'
 * copy contract).
 *
 * Bun's Buffer has native utf8Slice / utf8Write that work on any Uint8Array and need no
 * subarray view, unlike TextDecoder.decode / TextEncoder.encodeInto; the short-ASCII paths
 * below beat both for the few-byte strings (keys, commands, numbers) that dominate RESP.
 */

type NativeSlice = (this: Uint8Array, start: number, end: number) => string;
type NativeWrite = (this: Uint8Array, s: string, offset: number, length?: number) => number;

const utf8Slice = (Buffer.prototype as unknown as { utf8Slice: NativeSlice }).utf8Slice;
const utf8Write = (Buffer.prototype as unknown as { utf8Write: NativeWrite }).utf8Write;

/** The byte "\r" (carriage return). */
export const CR = 13;
/** The byte "\n" (line feed). */
export const LF = 10;

/** Strings up to this many UTF-16 units are handled by JS loops rather than native calls. */
const SHORT = 32;

/** Bytes of s in UTF-8. Allocates nothing. */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n <= SHORT) {
    for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, "utf8");
    return n;
  }
  return Buffer.byteLength(s, "utf8");
}

/**
 * Writes s as UTF-8 into dst at pos; dst must have room for utf8Length(s) bytes.
 * Returns bytes written.
 */
export function writeUtf8(s: string, dst: Uint8Array, pos: number): number {
  const n = s.length;
  if (n <= SHORT) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      dst[pos + i] = c;
    }
    if (i === n) return n;
  }
  return utf8Write.call(dst, s, pos, dst.length - pos);
}

/** The UTF-8 text of buf[start, end) (invalid sequences become U+FFFD). */
export function readUtf8(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 16) {
    // fromCharCode on a few ASCII bytes skips the native call's fixed cost.
    let ascii = true;
    for (let i = start; i < end; i++) {
      if ((buf[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      switch (n) {
        case 0:
          return "";
        case 1:
          return String.fromCharCode(buf[start] as number);
        case 2:
          return String.fromCharCode(buf[start] as number, buf[start + 1] as number);
        default: {
          let s = "";
          for (let i = start; i < end; i++) s += String.fromCharCode(buf[i] as number);
          return s;
        }
      }
    }
  }
  return utf8Slice.call(buf, start, end);
}

/** Decimal digits of a non-negative safe integer. */
export function digitCount(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/**
 * Writes the `d` decimal digits of the non-negative safe integer n (d = digitCount(n)) at
 * dst[pos]; returns the index after the last digit. Allocates nothing. For callers that
 * needed the digit count anyway (to size their array): it is not counted twice.
 */
export function writeDigits(n: number, d: number, dst: Uint8Array, pos: number): number {
  const end = pos + d;
  let q = end;
  do {
    const r = n % 10;
    dst[--q] = 48 + r;
    n = (n - r) / 10;
  } while (q > pos);
  return end;
}

/**
 * Writes the non-negative safe integer n in decimal at dst[pos]. Returns bytes written.
 * Allocates nothing.
 */
export function writeUint(n: number, dst: Uint8Array, pos: number): number {
  const d = digitCount(n);
  writeDigits(n, d, dst, pos);
  return d;
}

/**
 * Writes RESP's header line "<type><n>\r\n" at dst[pos] (type "*" for an array of n items,
 * "$" for a bulk string of n bytes); returns the position after it. Allocates nothing.
 */
export function writeRespHeader(type: number, n: number, dst: Uint8Array, pos: number): number {
  dst[pos++] = type;
  pos += writeUint(n, dst, pos);
  dst[pos++] = CR;
  dst[pos++] = LF;
  return pos;
}

/**
 * The copy contract of respCodec, linesCodec and the length-prefixed codecs: a decoded
 * argument, line or payload of at most this many bytes is a fresh array the caller may keep;
 * a longer one is a view into the read buffer, valid only during the callback (copy to keep).
 * Up to this size a fresh copy is cheaper than a view (see bytesAt).
 */
export const COPY_MAX_BYTES = 32;

/**
 * buf[start, end) as a Uint8Array: a copy up to COPY_MAX_BYTES, a view beyond. In JSC a small
 * typed array lives inline in the GC heap and a byte loop fills it in a few ns, while a view
 * costs ~45 ns (it must pin the ArrayBuffer); measured on Bun 1.4: 3 bytes 11 vs 50 ns,
 * 16 bytes 23 vs 46 ns, 64 bytes 65 vs 46 ns.
 */
export function bytesAt(buf: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n > COPY_MAX_BYTES) return buf.subarray(start, end);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = buf[start + i] as number;
  return out;
}

/**
 * Index of the first `byte` in buf[from, to), or -1. Allocates nothing. Native indexOf
 * (memchr) cannot be told where to stop: it is used only when the bytes it may scan past
 * `to` are few compared with the span, otherwise a JS loop keeps a partial frame at the
 * head of a large, mostly empty buffer from costing a scan of the whole buffer.
 */
export function indexOfByte(buf: Uint8Array, byte: number, from: number, to: number): number {
  if (buf.length - to <= to - from + 256) {
    const i = buf.indexOf(byte, from);
    return i >= 0 && i < to ? i : -1;
  }
  for (let i = from; i < to; i++) if (buf[i] === byte) return i;
  return -1;
}
