/**
 * Requests as the proxy reads them: the reactor frames them with the RESP codec's measure,
 * and decode hands over one reused Request that locates every argument in the read buffer
 * (offsets in typed arrays), so the proxy routes by key bytes and forwards the request's own
 * bytes without decoding or re-encoding it. Inline requests (telnet, `redis-cli` pipes) are
 * re-encoded as arrays of bulk strings, which is what the servers are sent.
 */
import { type Codec, respCodec } from "../codec/index.ts";

/**
 * One request, valid until the message handler returns (the reactor reuses this object and
 * the bytes are views into its read buffer): buf[start, end) is the request on the wire as a
 * RESP array; argument i is buf[argStart[i], argEnd[i]).
 */
export class Request {
  buf: Uint8Array = new Uint8Array(0);
  start = 0;
  end = 0;
  argc = 0;
  argStart = new Int32Array(64);
  argEnd = new Int32Array(64);

  /** Locates the arguments of the RESP array at buf[start, end) (already measured as valid). */
  parse(buf: Uint8Array, start: number, end: number): this {
    this.buf = buf;
    this.start = start;
    this.end = end;
    let p = start + 1;
    let count = 0;
    // "*-1\r\n" is an empty request, as "*0\r\n" is.
    if (buf[p] === 45) p += 2;
    else while (buf[p] !== 13) count = count * 10 + ((buf[p++] as number) - 48);
    p += 2;
    if (count > this.argStart.length) {
      let cap = this.argStart.length;
      while (cap < count) cap *= 2;
      this.argStart = new Int32Array(cap);
      this.argEnd = new Int32Array(cap);
    }
    for (let i = 0; i < count; i++) {
      p++; // "$"
      let len = 0;
      while (buf[p] !== 13) len = len * 10 + ((buf[p++] as number) - 48);
      p += 2;
      this.argStart[i] = p;
      this.argEnd[i] = p + len;
      p += len + 2;
    }
    this.argc = count;
    return this;
  }

  /** Argument i's length in bytes. */
  argLength(i: number): number {
    return (this.argEnd[i] as number) - (this.argStart[i] as number);
  }

  /** A copy of argument i. */
  arg(i: number): Uint8Array {
    return this.buf.slice(this.argStart[i], this.argEnd[i]);
  }

  /** Argument i as text (UTF-8; for messages and small options). */
  argText(i: number): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + (this.argStart[i] as number), this.argLength(i)).toString("utf8");
  }

  /** True when argument i equals `upper` (ASCII, any case). */
  argIs(i: number, upper: string): boolean {
    const s = this.argStart[i] as number;
    if (this.argLength(i) !== upper.length) return false;
    for (let k = 0; k < upper.length; k++) {
      let c = this.buf[s + k] as number;
      if (c >= 97 && c <= 122) c -= 32;
      if (c !== upper.charCodeAt(k)) return false;
    }
    return true;
  }

  /** The request's bytes (a view: copy() to keep). */
  bytes(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  /**
   * A copy of the request's bytes in memory of its own. Not bytes().slice(): the read buffer
   * may be a Buffer, whose slice() is a view (and whose subarray() is slower than a copy).
   */
  copy(): Uint8Array {
    const n = this.end - this.start;
    const out = new Uint8Array(n);
    const buf = this.buf;
    const s = this.start;
    if (n <= 128) for (let i = 0; i < n; i++) out[i] = buf[s + i]!;
    else out.set(new Uint8Array(buf.buffer, buf.byteOffset + s, n));
    return out;
  }
}

/** Encodes arguments as a RESP array of bulk strings. */
export function encodeArgs(args: readonly Uint8Array[]): Uint8Array {
  const head = (n: number) => n.toString().length + 3;
  const total = head(args.length) + args.reduce((t, a) => t + head(a.length) + a.length + 2, 0);
  const out = new Uint8Array(total);
  let p = writeHeader(out, 0, 42, args.length);
  for (const a of args) {
    p = writeHeader(out, p, 36, a.length);
    out.set(a, p);
    p += a.length;
    out[p++] = 13;
    out[p++] = 10;
  }
  return out;
}

/** Writes "<type><n>\r\n" at out[p]; returns the index after it. */
export function writeHeader(out: Uint8Array, p: number, type: number, n: number): number {
  out[p++] = type;
  const digits = n.toString();
  for (let i = 0; i < digits.length; i++) out[p++] = digits.charCodeAt(i);
  out[p++] = 13;
  out[p++] = 10;
  return p;
}

const shared = new Request();

/**
 * The proxy's server-side codec: RESP requests (arrays and inline) framed by respCodec's
 * measure; decode returns one reused Request (see Request).
 */
export const proxyRequestCodec: Codec<Request, Uint8Array> = {
  name: "resp",
  measure: respCodec.measure,
  decode(buf: Uint8Array, start: number, length: number): Request {
    if (buf[start] === 42 /* * */) return shared.parse(buf, start, start + length);
    // Inline: split as redis does, then re-encoded as an array (a rare path).
    const args = respCodec.decode(buf, start, length);
    const bytes = encodeArgs(args);
    return shared.parse(bytes, 0, bytes.length);
  },
  encode(reply: Uint8Array): Uint8Array {
    return reply;
  },
};
