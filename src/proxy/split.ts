/**
 * Multi-key commands split by server (MGET, DEL, EXISTS, TOUCH, UNLINK, MSET) as twemproxy
 * does: each server's part written straight from the request's bytes (no argument arrays,
 * no views per key), and the parts' replies merged back: MGET's values in key order, the
 * sum of the counts, or OK. PoolProxy.split decides where each key goes and sends the parts.
 */
import { respReplyCodec } from "../codec/index.ts";
import type { ClientState } from "./client.ts";
import { Kind } from "./commands.ts";
import { errorReply, integerOf, integerReply, isErrorReply, OK } from "./replies.ts";
import { type Request, writeHeader } from "./request.ts";
import type { ReplySink } from "./upstream.ts";

/** Decimal digits of n >= 0. */
export function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Writes "$<len>\r\n" + src[start, start + len) + "\r\n" at out[o]; returns the index after it. */
function writeBulk(out: Uint8Array, o: number, src: Uint8Array, start: number, len: number): number {
  o = writeHeader(out, o, 36, len);
  copyBytes(out, o, src, start, len);
  o += len;
  out[o++] = 13;
  out[o++] = 10;
  return o;
}

/** Copies src[start, start + len) to out[o]: a loop for short runs (a view costs more), set() for long ones. */
function copyBytes(out: Uint8Array, o: number, src: Uint8Array, start: number, len: number): void {
  if (len <= 64) for (let i = 0; i < len; i++) out[o + i] = src[start + i]!;
  else out.set(src.subarray(start, start + len), o);
}

/**
 * Server s's part of split request req: the command name, then the arguments of every key k
 * with servers[k] === s (`step` arguments per key: 1, or 2 for MSET's key and value).
 * `count` keys and `argBytes` bytes of encoded arguments go to s (the caller counted them).
 */
export function encodePart(req: Request, servers: Int32Array, nkeys: number, step: number, s: number, count: number, argBytes: number): Uint8Array {
  const nameStart = req.argStart[0]!;
  const nameLen = req.argEnd[0]! - nameStart;
  const argc = 1 + count * step;
  const out = new Uint8Array(1 + digits(argc) + 2 + 1 + digits(nameLen) + 2 + nameLen + 2 + argBytes);
  let o = writeHeader(out, 0, 42, argc);
  o = writeBulk(out, o, req.buf, nameStart, nameLen);
  for (let k = 0; k < nkeys; k++) {
    if (servers[k] !== s) continue;
    for (let j = 0; j < step; j++) {
      const i = 1 + k * step + j;
      o = writeBulk(out, o, req.buf, req.argStart[i]!, req.argEnd[i]! - req.argStart[i]!);
    }
  }
  return out;
}

/**
 * Where each MGET value is while a merge runs (part, offset, length per key): scratch shared
 * by every merge, as result() runs start to end without yielding.
 */
let valueFrom = new Int32Array(64);
let valueStart = new Int32Array(64);
let valueLen = new Int32Array(64);

/**
 * The replies of a split command's parts, merged once all arrived. Part p went to server
 * parts[p]; key k went to server keyServer[k] (a copy: the caller's scratch is reused), so a
 * part's values go back to its keys in key order without per-part index lists.
 */
export class Merge implements ReplySink {
  /** Server of each part, in sending order. */
  readonly parts: Int32Array;
  private readonly keyServer: Int32Array;
  private readonly replies: Uint8Array[];
  private left: number;

  constructor(
    private readonly kind: Kind,
    private readonly nkeys: number,
    parts: number,
    keyServer: Int32Array,
    /** The client and sequence the merged reply goes to. */
    private readonly client: ClientState,
    private readonly seq: number,
  ) {
    this.parts = new Int32Array(parts);
    this.keyServer = kind === Kind.SplitMget ? keyServer.slice(0, nkeys) : keyServer;
    this.replies = new Array(parts);
    this.left = parts;
  }

  /** Part p's reply (ReplySink); the last one sends the merged reply to the client. */
  reply(p: number, bytes: Uint8Array): void {
    this.replies[p] = bytes;
    if (--this.left === 0) this.client.reply(this.seq, this.result());
  }

  /** The merged reply: the first error of any part, else MGET's values in key order, the sum, or OK. */
  result(): Uint8Array {
    for (const r of this.replies) if (isErrorReply(r)) return r;
    if (this.kind === Kind.SplitMset) return OK;
    if (this.kind === Kind.SplitSum) {
      let sum = 0;
      for (const r of this.replies) {
        const n = integerOf(r);
        if (Number.isNaN(n)) return errorReply("ERR proxy: a server answered a part of this command with something other than an integer");
        sum += n;
      }
      return integerReply(sum);
    }
    // MGET: locate every value (offsets into its part's reply), then copy them out in key order.
    const nkeys = this.nkeys;
    if (valueFrom.length < nkeys) {
      const cap = Math.max(nkeys, valueFrom.length * 2);
      valueFrom = new Int32Array(cap);
      valueStart = new Int32Array(cap);
      valueLen = new Int32Array(cap);
    }
    const from = valueFrom;
    const start = valueStart;
    const len = valueLen;
    let total = 1 + digits(nkeys) + 2;
    for (let p = 0; p < this.replies.length; p++) {
      const reply = this.replies[p]!;
      const server = this.parts[p]!;
      if (reply[0] !== 42) return errorReply("ERR proxy: a server answered a part of MGET with something other than an array of values");
      let q = 1;
      let n = 0;
      while (reply[q] !== 13) n = n * 10 + (reply[q++]! - 48);
      q += 2;
      let k = 0;
      for (let e = 0; e < n; e++) {
        while (k < nkeys && this.keyServer[k] !== server) k++;
        const m = respReplyCodec.measure(reply, q, reply.length, reply.length);
        if (k >= nkeys || m <= 0) return errorReply("ERR proxy: a server answered a part of MGET with more values than keys");
        from[k] = p;
        start[k] = q;
        len[k] = m;
        total += m;
        q += m;
        k++;
      }
      while (k < nkeys && this.keyServer[k] !== server) k++;
      if (k < nkeys) return errorReply("ERR proxy: a server answered a part of MGET with fewer values than keys");
    }
    const out = new Uint8Array(total);
    let o = writeHeader(out, 0, 42, nkeys);
    for (let k = 0; k < nkeys; k++) {
      copyBytes(out, o, this.replies[from[k]!]!, start[k]!, len[k]!);
      o += len[k]!;
    }
    return out;
  }
}
