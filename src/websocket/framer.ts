/**
 * WebSocketFramer: complete frames in, messages and control events out, for every
 * connection of a server, with the state between frames in typed arrays indexed by slot.
 *
 * What a connection keeps between frames: the opcode of a fragmented message in progress
 * (1 byte), the UTF-8 validator's state for it (1 byte), the fragments so far (a SegmentPool
 * ref and a length, only while a message is in progress), and its negotiated extension bits
 * (1 byte). An idle connection holds no object and no bytes beyond those fields, and a
 * connection that never fragments never writes the fragment fields at all (their pages stay
 * untouched).
 *
 * Frames arrive whole (the reactor buffers a partial frame and measures with measureFrame),
 * are unmasked in place, and are checked against what spans frames: continuation without a
 * message, a new message inside one, RSV1 without permessage-deflate or on a continuation,
 * close payloads, UTF-8 across fragments (the connection fails at the first fragment that
 * makes the text invalid), the message size after joining fragments and after inflating.
 */
import { NO_REF, SegmentPool } from "../conn-table/index.ts";
import {
  CLOSE_INVALID_PAYLOAD,
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_NO_STATUS,
  CLOSE_PROTOCOL_ERROR,
  FIN,
  FrameHeader,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  RSV1,
  isValidCloseCode,
  measureFrame,
  unmask,
  INFLATE_TOO_BIG,
  MessageInflater,
  UTF8_ACCEPT,
  UTF8_REJECT,
  isValidUtf8,
  utf8Text,
  utf8Validate,
} from "../codec/index.ts";

/** ext bits: permessage-deflate was negotiated. */
export const EXT_DEFLATE = 1;
/** ext bits: the client may use context takeover: this connection owns an inflater. */
export const EXT_CLIENT_TAKEOVER = 2;
/** ext bits: the server uses context takeover: this connection owns a deflater. */
export const EXT_SERVER_TAKEOVER = 4;
/** ext bits: the server's window is 8 + (ext >>> 4) bits. */
export const EXT_WINDOW_SHIFT = 4;

/** msgOp bit: the message in progress is compressed (its first frame had RSV1). */
const COMPRESSED = 0x80;

/** Where the framer's results go (the server's WebSocket layer implements it). */
export interface FrameSink {
  /**
   * A complete message: a string for text, bytes for binary. The bytes may be a view into a
   * read buffer or a shared decompression buffer: valid only until this call returns.
   */
  onMessage(h: number, data: string | Uint8Array): unknown;
  /** A ping; its payload is buf[start, start + length), valid only during the call. */
  onPing(h: number, buf: Uint8Array, start: number, length: number): void;
  /** A pong. */
  onPong(h: number): void;
  /** A valid close frame: its code (CLOSE_NO_STATUS, 1005, when it had none) and reason. */
  onCloseFrame(h: number, code: number, reason: string): void;
  /** The peer broke the protocol: fail the connection with this close code. */
  onFail(h: number, code: number, why: string): void;
}

/** Options of a framer. */
export interface FramerOptions {
  /** Slots (the connection table's capacity). */
  capacity: number;
  /** Largest message, after joining fragments and after inflating. */
  maxMessageBytes: number;
  /** Where partial messages are kept. */
  pool: SegmentPool;
}

/**
 * The per-connection WebSocket state machine between frames and messages (see the file
 * comment). One instance per server; every method takes the connection's handle (slot in
 * its low 20 bits).
 */
export class WebSocketFramer {
  /** Negotiated extension bits per slot (EXT_*); the server layer writes them at the upgrade. */
  readonly ext: Uint8Array;
  /** Opcode of the fragmented message in progress, | COMPRESSED; 0 when none. */
  private readonly msgOp: Uint8Array;
  /** UTF-8 state of the uncompressed text message in progress. */
  private readonly utf8: Uint8Array;
  /** Fragments so far (SegmentPool ref, NO_REF when none) and their bytes. */
  private readonly msgRef: Int32Array;
  private readonly msgLen: Int32Array;
  private readonly pool: SegmentPool;
  private readonly max: number;
  private readonly header = new FrameHeader();
  /** Inflater shared by connections without client context takeover (made at first use). */
  private sharedInflater: MessageInflater | null = null;
  /** Inflaters of connections with client context takeover, by slot. */
  private readonly inflaters = new Map<number, MessageInflater>();
  /** Bytes held in partial messages over all connections. */
  heldBytes = 0;

  constructor(opts: FramerOptions) {
    const cap = opts.capacity;
    this.ext = new Uint8Array(cap);
    this.msgOp = new Uint8Array(cap);
    this.utf8 = new Uint8Array(cap);
    this.msgRef = new Int32Array(cap);
    this.msgLen = new Int32Array(cap);
    this.pool = opts.pool;
    this.max = opts.maxMessageBytes;
  }

  /**
   * Length of the complete client frame at buf[start, end), 0 while incomplete, or a
   * negated close code (see measureFrame). `slot` decides whether RSV1 is allowed.
   * Allocates nothing.
   */
  measure(slot: number, buf: Uint8Array, start: number, end: number): number {
    return measureFrame(buf, start, end, this.max, (this.ext[slot]! & EXT_DEFLATE) !== 0 ? RSV1 : 0, true, this.header);
  }

  /**
   * Handles the complete frame buf[start, start + length) of connection h (as measured:
   * measure() returned length). Unmasks it in place. Calls the sink; returns what the
   * sink's onMessage returned for a message (a thenable from an async handler), else
   * undefined.
   */
  frame(h: number, buf: Uint8Array, start: number, length: number): unknown {
    const slot = h & 0xfffff;
    const hdr = this.header;
    if (measureFrame(buf, start, start + length, this.max, RSV1, true, hdr) !== length) {
      throw new RangeError("WebSocketFramer.frame: not a complete frame (measure it first)");
    }
    const p = start + hdr.headerBytes;
    const n = hdr.payloadBytes;
    if (hdr.masked) unmask(buf, p - 4, p, n);
    const b0 = hdr.b0;
    const op = hdr.opcode;
    const compressed = (b0 & RSV1) !== 0;
    const sink = this.sink;
    if (op >= OP_CLOSE) {
      if (op === OP_PING) sink.onPing(h, buf, p, n);
      else if (op === OP_PONG) sink.onPong(h);
      else this.closeFrame(h, buf, p, n);
      return undefined;
    }
    const ext = this.ext[slot]!;
    if (compressed && (ext & EXT_DEFLATE) === 0) return sink.onFail(h, CLOSE_PROTOCOL_ERROR, "RSV1 set without permessage-deflate");
    const inProgress = this.msgOp[slot]!;
    if (op === OP_CONTINUATION) {
      if (inProgress === 0) return sink.onFail(h, CLOSE_PROTOCOL_ERROR, "continuation frame without a message to continue");
      if (compressed) return sink.onFail(h, CLOSE_PROTOCOL_ERROR, "RSV1 set on a continuation frame");
      return this.continuation(h, slot, inProgress, buf, p, n, (b0 & FIN) !== 0);
    }
    if (inProgress !== 0) return sink.onFail(h, CLOSE_PROTOCOL_ERROR, "new message before the fragmented one ended");
    if ((b0 & FIN) === 0) return this.begin(h, slot, op, compressed, buf, p, n);
    // A whole message in one frame: the common case, no copy.
    if (compressed) return this.inflated(h, slot, op, buf, p, n);
    if (op === OP_TEXT) {
      const text = utf8Text(buf, p, p + n);
      if (text === null) return sink.onFail(h, CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
      return sink.onMessage(h, text);
    }
    return sink.onMessage(h, bytesView(buf, p, p + n));
  }

  /** Set by the server layer before the first frame. */
  sink: FrameSink = null as unknown as FrameSink;

  private begin(h: number, slot: number, op: number, compressed: boolean, buf: Uint8Array, p: number, n: number): unknown {
    if (op === OP_TEXT && !compressed) {
      const state = utf8Validate(buf, p, p + n, UTF8_ACCEPT);
      if (state === UTF8_REJECT) return this.sink.onFail(h, CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
      if (state !== UTF8_ACCEPT) this.utf8[slot] = state;
    }
    this.msgOp[slot] = op | (compressed ? COMPRESSED : 0);
    if (n > 0) this.append(slot, buf, p, n);
    return undefined;
  }

  private continuation(h: number, slot: number, inProgress: number, buf: Uint8Array, p: number, n: number, fin: boolean): unknown {
    const sink = this.sink;
    const held = this.msgLen[slot]!;
    if (held + n > this.max) {
      return sink.onFail(h, CLOSE_MESSAGE_TOO_BIG, `message over maxFrameBytes (${this.max})`);
    }
    const op = inProgress & 0x0f;
    const compressed = (inProgress & COMPRESSED) !== 0;
    if (op === OP_TEXT && !compressed) {
      const state = utf8Validate(buf, p, p + n, this.utf8[slot]!);
      if (state === UTF8_REJECT || (fin && state !== UTF8_ACCEPT)) {
        return sink.onFail(h, CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
      }
      if (this.utf8[slot] !== state) this.utf8[slot] = state;
    }
    if (!fin) {
      if (n > 0) this.append(slot, buf, p, n);
      return undefined;
    }
    // The last fragment: the message is the held fragments then this payload. Clear the
    // state first, so that a handler that closes the connection finds nothing to release.
    const ref = this.msgRef[slot]!;
    this.msgOp[slot] = 0;
    if (ref === NO_REF) {
      // Every earlier fragment was empty: the message is this payload alone.
      if (compressed) return this.inflated(h, slot, op, buf, p, n);
      return sink.onMessage(h, op === OP_TEXT ? decodeValidated(buf, p, p + n) : bytesView(buf, p, p + n));
    }
    if (n > 0) this.append(slot, buf, p, n);
    const total = this.msgLen[slot]!;
    this.msgRef[slot] = NO_REF;
    this.msgLen[slot] = 0;
    this.heldBytes -= total;
    const pool = this.pool;
    const seg = pool.buffer(ref);
    const off = pool.offset(ref);
    try {
      if (compressed) return this.inflated(h, slot, op, seg, off, total);
      return sink.onMessage(h, op === OP_TEXT ? decodeValidated(seg, off, off + total) : seg.subarray(off, off + total));
    } finally {
      pool.release(ref);
    }
  }

  /** Inflates a compressed message and delivers it (or fails the connection: 1009, 1007). */
  private inflated(h: number, slot: number, op: number, buf: Uint8Array, p: number, n: number): unknown {
    const inflater = this.inflaterOf(slot);
    const len = inflater.inflate(buf, p, n, this.max);
    const sink = this.sink;
    if (len === INFLATE_TOO_BIG) return sink.onFail(h, CLOSE_MESSAGE_TOO_BIG, `message inflates past maxFrameBytes (${this.max})`);
    if (len < 0) return sink.onFail(h, CLOSE_INVALID_PAYLOAD, "compressed message is not valid deflate data");
    const out = inflater.output();
    if (op === OP_TEXT) {
      const text = utf8Text(out, 0, len);
      if (text === null) return sink.onFail(h, CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
      return sink.onMessage(h, text);
    }
    return sink.onMessage(h, out);
  }

  private inflaterOf(slot: number): MessageInflater {
    if ((this.ext[slot]! & EXT_CLIENT_TAKEOVER) !== 0) {
      let own = this.inflaters.get(slot);
      if (own === undefined) {
        own = new MessageInflater(true);
        this.inflaters.set(slot, own);
      }
      return own;
    }
    return (this.sharedInflater ??= new MessageInflater(false));
  }

  private closeFrame(h: number, buf: Uint8Array, p: number, n: number): void {
    const sink = this.sink;
    if (n === 0) return sink.onCloseFrame(h, CLOSE_NO_STATUS, "");
    if (n === 1) return sink.onFail(h, CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload");
    const code = (buf[p]! << 8) | buf[p + 1]!;
    if (!isValidCloseCode(code)) return sink.onFail(h, CLOSE_PROTOCOL_ERROR, `close frame with invalid code ${code}`);
    if (!isValidUtf8(buf, p + 2, p + n)) return sink.onFail(h, CLOSE_INVALID_PAYLOAD, "close reason is not valid UTF-8");
    sink.onCloseFrame(h, code, n === 2 ? "" : decodeValidated(buf, p + 2, p + n));
  }

  private append(slot: number, buf: Uint8Array, p: number, n: number): void {
    const pool = this.pool;
    let ref = this.msgRef[slot]!;
    let len = this.msgLen[slot]!;
    if (ref === NO_REF) {
      ref = pool.acquire(n);
      len = 0;
    } else if (pool.capacity(ref) - len < n) {
      ref = pool.grow(ref, len, len + n);
    }
    pool.buffer(ref).set(buf.subarray(p, p + n), pool.offset(ref) + len);
    this.msgRef[slot] = ref;
    this.msgLen[slot] = len + n;
    this.heldBytes += n;
  }

  /**
   * Forgets slot's state when its connection closes: releases a partial message and a
   * context-takeover inflater, zeroes what was written (so the next occupant starts clean
   * and untouched pages stay untouched).
   */
  release(slot: number): void {
    const ref = this.msgRef[slot]!;
    if (ref !== NO_REF) {
      this.heldBytes -= this.msgLen[slot]!;
      this.pool.release(ref);
      this.msgRef[slot] = NO_REF;
      this.msgLen[slot] = 0;
    }
    if (this.msgOp[slot] !== 0) this.msgOp[slot] = 0;
    if (this.utf8[slot] !== 0) this.utf8[slot] = 0;
    const ext = this.ext[slot]!;
    if (ext !== 0) {
      if ((ext & EXT_CLIENT_TAKEOVER) !== 0) {
        this.inflaters.get(slot)?.close();
        this.inflaters.delete(slot);
      }
      this.ext[slot] = 0;
    }
  }
}

/** The text of buf[start, end), already validated incrementally (never null then). */
function decodeValidated(buf: Uint8Array, start: number, end: number): string {
  return utf8Text(buf, start, end) ?? "";
}

/** buf[start, end): a view (its validity is the frame's), or an empty array. */
function bytesView(buf: Uint8Array, start: number, end: number): Uint8Array {
  return buf.subarray(start, end);
}


