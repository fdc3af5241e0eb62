/**
 * PublishBatch: one event-loop turn's publishes to one topic, each framed once into one log,
 * so that a subscriber's share of the turn is one slice and one write (websocket-publish.ts
 * builds and flushes it). Also the gathered and compressed variants for subscribers that
 * need their own copy.
 */
import { RSV1, encodeFrame, frameHeaderBytes, writeFrameHeader } from "../codec/index.ts";
import type { Topic } from "../websocket/index.ts";

/**
 * One turn's publishes to one topic: their frames once, back to back in one log, so that a
 * subscriber's share is one slice of it and one write (uWebSockets corks the same way). A
 * subscriber excluded from some message (conn.publish's sender), or with a compressor of its
 * own, gets its messages gathered into one buffer instead; subscribers with
 * permessage-deflate share one compressed log per window size, built at the first of them.
 */
export class PublishBatch {
  log = new Uint8Array(4096);
  len = 0;
  /** Per message: where its frame ends in the log, its header length, its sender excluded (-1: none), whether it may be compressed. */
  readonly ends: number[] = [];
  readonly heads: number[] = [];
  readonly except: number[] = [];
  readonly compress: boolean[] = [];
  excepts = 0;
  compressible = 0;
  private exceptSet: Set<number> | null = null;
  private zlogs: ({ bytes: Uint8Array; ends: number[] } | undefined)[] = [];

  constructor(
    readonly topic: Topic,
    /** Sequence number before this batch's first message. */
    readonly seqBase: number,
  ) {}

  /** How many messages the batch holds. */
  get count(): number {
    return this.ends.length;
  }

  /** Appends one message's frame (first byte b0) to the log; except: a handle not to send it to, or -1. */
  add(b0: number, raw: Uint8Array, compress: boolean, except: number): void {
    const n = raw.length;
    const need = this.len + frameHeaderBytes(n) + n;
    if (need > this.log.length) {
      const bigger = new Uint8Array(Math.max(need, this.log.length * 2));
      bigger.set(this.log.subarray(0, this.len));
      this.log = bigger;
    }
    const hb = writeFrameHeader(this.log, this.len, b0, n);
    this.log.set(raw, this.len + hb);
    this.len = need;
    this.ends.push(need);
    this.heads.push(hb);
    this.except.push(except);
    this.compress.push(compress);
    if (except >= 0) {
      this.excepts++;
      (this.exceptSet ??= new Set()).add(except);
    }
    if (compress) this.compressible++;
  }

  /** True when h is excluded from some message of the batch. */
  excepted(h: number): boolean {
    return this.exceptSet !== null && this.exceptSet.has(h);
  }

  /** Message k's payload (a view into the log). */
  payload(k: number): Uint8Array {
    const start = k === 0 ? 0 : this.ends[k - 1]!;
    return this.log.subarray(start + this.heads[k]!, this.ends[k]!);
  }

  /**
   * Messages from..count-1 but those excluding h, each as its frame or, when `compressOne`
   * gives bytes, as a compressed frame of them: one new buffer.
   */
  gather(from: number, to: number, h: number, compressOne: ((k: number, raw: Uint8Array) => Uint8Array | null) | null): Uint8Array {
    const parts: Uint8Array[] = [];
    for (let k = from; k < to; k++) {
      if (this.except[k] === h) continue;
      const z = compressOne === null ? null : compressOne(k, this.payload(k));
      let frame: Uint8Array;
      if (z === null) {
        frame = this.log.subarray(k === 0 ? 0 : this.ends[k - 1]!, this.ends[k]!);
      } else {
        frame = this.compressedFrame(k, z);
      }
      parts.push(frame);
    }
    return new Uint8Array(Bun.concatArrayBuffers(parts));
  }

  /**
   * The compressed log for window `bits` (extended with `deflate` to every message so far at
   * each use), and the slice of it that h gets from message `from` on; a subscriber excluded
   * from some message gets a gathered copy instead.
   */
  compressed(bits: number, deflate: (raw: Uint8Array, bits: number) => Uint8Array, h: number, from: number): { bytes: Uint8Array; start: number; end: number } {
    let z = this.zlogs[bits];
    if (z === undefined) z = this.zlogs[bits] = { bytes: new Uint8Array(4096), ends: [] };
    for (let k = z.ends.length; k < this.count; k++) {
      let frame: Uint8Array;
      if (this.compress[k]) {
        frame = this.compressedFrame(k, deflate(this.payload(k), bits));
      } else {
        frame = this.log.subarray(k === 0 ? 0 : this.ends[k - 1]!, this.ends[k]!);
      }
      const at = k === 0 ? 0 : z.ends[k - 1]!;
      if (at + frame.length > z.bytes.length) {
        const bigger = new Uint8Array(Math.max(at + frame.length, z.bytes.length * 2));
        bigger.set(z.bytes.subarray(0, at));
        z.bytes = bigger;
      }
      z.bytes.set(frame, at);
      z.ends.push(at + frame.length);
    }
    if (this.excepts !== 0 && this.excepted(h)) {
      const parts: Uint8Array[] = [];
      for (let k = from; k < this.count; k++) if (this.except[k] !== h) parts.push(z.bytes.subarray(k === 0 ? 0 : z.ends[k - 1]!, z.ends[k]!));
      const bytes = new Uint8Array(Bun.concatArrayBuffers(parts));
      return { bytes, start: 0, end: bytes.length };
    }
    return { bytes: z.bytes, start: from === 0 ? 0 : z.ends[from - 1]!, end: z.ends[this.count - 1]! };
  }

  /** Message k's frame with `body` (its payload compressed) in place of the payload: the same first byte, RSV1 set. */
  private compressedFrame(k: number, body: Uint8Array): Uint8Array {
    return encodeFrame(this.log[k === 0 ? 0 : this.ends[k - 1]!]! | RSV1, body);
  }
}
