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
 * consume() takes a connection's input as it arrives. A complete frame is handled where it
 * lies (unmasked in place; a whole message in one frame is delivered without a copy); an
 * incomplete one is left to the caller to hold and pass again with the next read, unless it
 * is a data frame with STREAM_MIN_BYTES or more in hand: that one is streamed, its payload
 * appended to the message buffer as reads come (its remaining length and rotated mask key
 * are 8 more bytes per slot), so large messages cost O(1) copies per byte and their text is
 * validated as it arrives. Checked against what spans frames: continuation without a
 * message, a new message inside one, RSV1 without permessage-deflate or on a continuation,
 * close payloads, UTF-8 across fragments and reads (the connection fails at the first piece
 * that makes the text invalid), the message size after joining fragments (known at each
 * frame's header) and after inflating.
 */
import { NO_REF, SegmentPool, SLOT_MASK } from "../conn-table/index.ts";
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
  MEASURE_TOO_BIG,
  isValidCloseCode,
  measureFrame,
  unmask,
  xorMask,
  INFLATE_TOO_BIG,
  MessageInflater,
  UTF8_ACCEPT,
  UTF8_REJECT,
  utf8Text,
  utf8Validate,
  bytesAt,
  COPY_MAX_BYTES,
} from "../codec/index.ts";

/** ext bits: permessage-deflate was negotiated. */
export const EXT_DEFLATE = 1;
/** ext bits: the client may use context takeover: this connection owns an inflater. */
export const EXT_CLIENT_TAKEOVER = 2;
/** ext bits: the server uses context takeover: this connection owns a deflater. */
export const EXT_SERVER_TAKEOVER = 4;
/** ext bits: the server's window is 8 + (ext >>> 4) bits. */
export const EXT_WINDOW_SHIFT = 4;

/** msgOp bits: the message in progress is compressed (its first frame had RSV1). */
const COMPRESSED = 0x80;
/** msgOp bits: the frame being streamed (frameLeft > 0) has FIN set. */
const STREAM_FIN = 0x40;
/** msgOp bits: the low opcode bits. */
const OPCODE = 0x0f;

/**
 * A data frame still incomplete with at least this many bytes in hand is streamed: its
 * payload so far goes into the message buffer and later reads append to it, so that the
 * connection's input buffer never holds (and re-copies at each read) more than this of it.
 */
export const STREAM_MIN_BYTES = 16 * 1024;

/** Where the framer's results go (the server's WebSocket stage implements it). */
export interface FrameSink {
  /**
   * A complete message: a string for text, bytes for binary. The bytes may be a view into a
   * read buffer, a message buffer or a shared decompression buffer: valid only until this
   * call returns.
   */
  onMessage(h: number, data: string | Uint8Array): void;
  /** A ping; its payload is buf[start, start + length), valid only during the call. */
  onPing(h: number, buf: Uint8Array, start: number, length: number): void;
  /** A pong. */
  onPong(h: number): void;
  /** A valid close frame: its code (CLOSE_NO_STATUS, 1005, when it had none) and reason. */
  onCloseFrame(h: number, code: number, reason: string): void;
  /** The peer broke the protocol: fail the connection with this close code. */
  onFail(h: number, code: number, why: string): void;
  /** After each event: false when input must stop here (closed, closing or paused). */
  canContinue(h: number): boolean;
}

/** Options of a framer. */
export interface FramerOptions {
  /** Slots (the connection table's capacity). */
  capacity: number;
  /** Largest message, after joining fragments and after inflating. */
  maxMessageBytes: number;
  /** Where partial messages are kept. */
  pool: SegmentPool;
  /** Incomplete data frames with this many bytes in hand are streamed; default STREAM_MIN_BYTES. */
  streamMinBytes?: number;
}

/** consume() result: the connection failed (the sink's onFail ran); drop the rest of the input. */
export const CONSUME_FAILED = -1;

/**
 * The per-connection WebSocket state machine between frames and messages (see the file
 * comment). One instance per server; every method takes the connection's handle (slot in
 * its low 20 bits).
 */
export class WebSocketFramer {
  /** Negotiated extension bits per slot (EXT_*); the server stage writes them at the upgrade. */
  readonly ext: Uint8Array;
  /**
   * The message in progress: its opcode | COMPRESSED, | STREAM_FIN while a frame with FIN
   * is being streamed; 0 when none.
   */
  private readonly msgOp: Uint8Array;
  /** UTF-8 state of the uncompressed text message in progress. */
  private readonly utf8: Uint8Array;
  /** The message so far (SegmentPool ref, NO_REF when none) and its bytes. */
  private readonly msgRef: Int32Array;
  private readonly msgLen: Int32Array;
  /** Payload bytes still to come of the frame being streamed; 0 when none is. */
  private readonly frameLeft: Int32Array;
  /** Its mask key, rotated to the next byte due (big-endian: k0 in the top byte). */
  private readonly frameKey: Uint32Array;
  private readonly pool: SegmentPool;
  private readonly max: number;
  private readonly streamMin: number;
  private readonly header = new FrameHeader();
  /** Inflater shared by connections without client context takeover (made at first use). */
  private sharedInflater: MessageInflater | null = null;
  /** Inflaters of connections with client context takeover, by slot. */
  private readonly inflaters = new Map<number, MessageInflater>();
  /** Bytes held in partial messages over all connections. */
  heldBytes = 0;
  /** Set by the server stage before the first frame. */
  sink: FrameSink = null as unknown as FrameSink;

  constructor(opts: FramerOptions) {
    const cap = opts.capacity;
    this.ext = new Uint8Array(cap);
    this.msgOp = new Uint8Array(cap);
    this.utf8 = new Uint8Array(cap);
    this.msgRef = new Int32Array(cap);
    this.msgLen = new Int32Array(cap);
    this.frameLeft = new Int32Array(cap);
    this.frameKey = new Uint32Array(cap);
    this.pool = opts.pool;
    this.max = opts.maxMessageBytes;
    this.streamMin = opts.streamMinBytes ?? STREAM_MIN_BYTES;
  }

  /**
   * Handles the client frames in buf[pos, end) of connection h, in order: complete frames
   * at once (unmasked in place: buf is modified), a large incomplete data frame streamed
   * (see STREAM_MIN_BYTES). Returns where it stopped: end, the start of an incomplete frame
   * (keep buf[returned, end) and pass it again, followed by the next read), a position after
   * an event when the sink's canContinue said stop, or CONSUME_FAILED once the connection
   * failed (sink.onFail ran; drop the rest).
   */
  consume(h: number, buf: Uint8Array, pos: number, end: number): number {
    const slot = h & SLOT_MASK;
    const sink = this.sink;
    const hdr = this.header;
    while (pos < end) {
      if (this.frameLeft[slot] !== 0) {
        const k = this.streamPayload(h, slot, buf, pos, end);
        if (k < 0) return CONSUME_FAILED;
        pos += k;
        // Nothing left: no need to ask (the caller stops at end either way).
        if (pos < end && !sink.canContinue(h)) return pos;
        continue;
      }
      const n = measureFrame(buf, pos, end, this.max, (this.ext[slot]! & EXT_DEFLATE) !== 0 ? RSV1 : 0, true, hdr);
      if (n > 0) {
        if (!this.frame(h, slot, buf, pos)) return CONSUME_FAILED;
        pos += n;
        if (pos < end && !sink.canContinue(h)) return pos;
        continue;
      }
      if (n < 0) {
        sink.onFail(h, -n, n === MEASURE_TOO_BIG ? `frame over maxFrameBytes (${this.max})` : "malformed frame header");
        return CONSUME_FAILED;
      }
      // Incomplete. A large data frame is streamed rather than held whole.
      if (hdr.headerBytes === 0 || hdr.opcode >= OP_CLOSE || end - pos < this.streamMin) return pos;
      const k = this.startStream(h, slot, buf, pos, end);
      if (k < 0) return CONSUME_FAILED;
      pos += k;
    }
    return pos;
  }

  /** True while h is inside a message or a streamed frame (input ends there: a truncated message). */
  inMessage(h: number): boolean {
    return this.msgOp[h & SLOT_MASK] !== 0;
  }

  /**
   * The complete frame at buf[p] whose header measureFrame just read into this.header.
   * Returns false when it failed the connection.
   */
  private frame(h: number, slot: number, buf: Uint8Array, start: number): boolean {
    const hdr = this.header;
    const p = start + hdr.headerBytes;
    const n = hdr.payloadBytes;
    const b0 = hdr.b0;
    if ((b0 & (FIN | RSV1 | OPCODE)) === (FIN | OP_BINARY) && n <= COPY_MAX_BYTES) {
      // A small whole binary message, the commonest frame: unmasked straight into the copy
      // the handler gets (bytesAt's contract), one pass over the payload instead of two.
      if (!this.admit(h, slot, b0, n)) return false;
      const out = new Uint8Array(n);
      // The key in locals and four bytes a turn: half the loads and a quarter of the
      // loop's tests of a byte-at-a-time loop (a third of this path's time at 32 bytes).
      const m0 = buf[p - 4]!;
      const m1 = buf[p - 3]!;
      const m2 = buf[p - 2]!;
      const m3 = buf[p - 1]!;
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        out[i] = buf[p + i]! ^ m0;
        out[i + 1] = buf[p + i + 1]! ^ m1;
        out[i + 2] = buf[p + i + 2]! ^ m2;
        out[i + 3] = buf[p + i + 3]! ^ m3;
      }
      if (i < n) out[i] = buf[p + i]! ^ m0;
      if (i + 1 < n) out[i + 1] = buf[p + i + 1]! ^ m1;
      if (i + 2 < n) out[i + 2] = buf[p + i + 2]! ^ m2;
      this.sink.onMessage(h, out);
      return true;
    }
    unmask(buf, p - 4, p, n);
    const op = hdr.opcode;
    const sink = this.sink;
    if (op >= OP_CLOSE) {
      if (op === OP_PING) sink.onPing(h, buf, p, n);
      else if (op === OP_PONG) sink.onPong(h);
      else return this.closeFrame(h, buf, p, n);
      return true;
    }
    if (!this.admit(h, slot, b0, n)) return false;
    if (op !== OP_CONTINUATION && (b0 & FIN) !== 0) {
      // A whole message in one frame: the common case, no copy.
      const compressed = (b0 & RSV1) !== 0;
      if (compressed) return this.inflated(h, slot, op, buf, p, n);
      if (op === OP_TEXT) {
        const text = utf8Text(buf, p, p + n);
        if (text === null) return this.fail(h, CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
        sink.onMessage(h, text);
      } else {
        sink.onMessage(h, bytesAt(buf, p, p + n));
      }
      return true;
    }
    if (op !== OP_CONTINUATION) this.msgOp[slot] = op | ((b0 & RSV1) !== 0 ? COMPRESSED : 0);
    if (!this.take(h, slot, buf, p, n)) return false;
    return (b0 & FIN) === 0 || this.finish(h, slot, buf, p, n);
  }

  /**
   * The checks of a data frame against the message state, before any of its payload is
   * used: RSV1, continuation rules, the message's size. False when it failed the connection.
   */
  private admit(h: number, slot: number, b0: number, payloadBytes: number): boolean {
    const op = b0 & OPCODE;
    const compressed = (b0 & RSV1) !== 0;
    if (compressed && (this.ext[slot]! & EXT_DEFLATE) === 0) return this.fail(h, CLOSE_PROTOCOL_ERROR, "RSV1 set without permessage-deflate");
    const inProgress = this.msgOp[slot]!;
    if (op === OP_CONTINUATION) {
      if (inProgress === 0) return this.fail(h, CLOSE_PROTOCOL_ERROR, "continuation frame without a message to continue");
      if (compressed) return this.fail(h, CLOSE_PROTOCOL_ERROR, "RSV1 set on a continuation frame");
      if (this.msgLen[slot]! + payloadBytes > this.max) return this.fail(h, CLOSE_MESSAGE_TOO_BIG, `message over maxFrameBytes (${this.max})`);
    } else if (inProgress !== 0) {
      return this.fail(h, CLOSE_PROTOCOL_ERROR, "new message before the fragmented one ended");
    }
    return true;
  }

  /**
   * Payload bytes buf[p, p + n) of the message in progress (unmasked): validated as UTF-8
   * when the message is uncompressed text, then, unless they end a message that has nothing
   * held yet (finish() takes those in place), appended to the message buffer. False when
   * the text turned invalid (the connection failed).
   */
  private take(h: number, slot: number, buf: Uint8Array, p: number, n: number): boolean {
    const m = this.msgOp[slot]!;
    if ((m & (OPCODE | COMPRESSED)) === OP_TEXT && n > 0) {
      const state = utf8Validate(buf, p, p + n, this.utf8[slot]!);
      if (state === UTF8_REJECT) return this.fail(h, CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
      if (this.utf8[slot] !== state) this.utf8[slot] = state;
    }
    if (n > 0) this.append(slot, buf, p, n);
    return true;
  }

  /**
   * The message in progress ended: deliver it (held bytes, or when nothing was held the
   * last frame's payload buf[p, p + n), already taken). Clears the state first, so that a
   * handler that closes the connection finds nothing to release.
   */
  private finish(h: number, slot: number, buf: Uint8Array, p: number, n: number): boolean {
    const m = this.msgOp[slot]!;
    const op = m & OPCODE;
    const compressed = (m & COMPRESSED) !== 0;
    this.msgOp[slot] = 0;
    if (op === OP_TEXT && !compressed) {
      const state = this.utf8[slot]!;
      if (state !== UTF8_ACCEPT) {
        this.utf8[slot] = UTF8_ACCEPT;
        return this.fail(h, CLOSE_INVALID_PAYLOAD, "text message ends inside a UTF-8 character");
      }
    }
    const ref = this.msgRef[slot]!;
    const total = this.msgLen[slot]!;
    if (ref === NO_REF) {
      // Every fragment was empty.
      if (compressed) return this.inflated(h, slot, op, buf, p, 0);
      this.sink.onMessage(h, op === OP_TEXT ? "" : buf.subarray(p, p));
      return true;
    }
    this.msgRef[slot] = NO_REF;
    this.msgLen[slot] = 0;
    this.heldBytes -= total;
    const pool = this.pool;
    const seg = pool.buffer(ref);
    const off = pool.offset(ref);
    try {
      if (compressed) return this.inflated(h, slot, op, seg, off, total);
      // Text was validated as it arrived.
      this.sink.onMessage(h, op === OP_TEXT ? (utf8Text(seg, off, off + total) ?? "") : seg.subarray(off, off + total));
      return true;
    } finally {
      pool.release(ref);
    }
  }

  /**
   * An incomplete data frame at buf[start, end), header read into this.header: admit it,
   * take what payload is here, stream the rest as it comes. Returns bytes consumed, or
   * CONSUME_FAILED.
   */
  private startStream(h: number, slot: number, buf: Uint8Array, start: number, end: number): number {
    const hdr = this.header;
    const b0 = hdr.b0;
    const op = hdr.opcode;
    if (!this.admit(h, slot, b0, hdr.payloadBytes)) return CONSUME_FAILED;
    if (op !== OP_CONTINUATION) this.msgOp[slot] = op | ((b0 & RSV1) !== 0 ? COMPRESSED : 0);
    if ((b0 & FIN) !== 0) this.msgOp[slot]! |= STREAM_FIN;
    const p = start + hdr.headerBytes;
    this.frameLeft[slot] = hdr.payloadBytes;
    this.frameKey[slot] = ((buf[p - 4]! << 24) | (buf[p - 3]! << 16) | (buf[p - 2]! << 8) | buf[p - 1]!) >>> 0;
    const k = this.streamPayload(h, slot, buf, p, end);
    return k < 0 ? CONSUME_FAILED : hdr.headerBytes + k;
  }

  /** The next payload bytes of the frame being streamed; returns how many it took, or CONSUME_FAILED. */
  private streamPayload(h: number, slot: number, buf: Uint8Array, p: number, end: number): number {
    const left = this.frameLeft[slot]!;
    const k = end - p < left ? end - p : left;
    const key = this.frameKey[slot]!;
    xorMask(buf, p, k, key >>> 24, (key >>> 16) & 0xff, (key >>> 8) & 0xff, key & 0xff);
    const r = (k & 3) * 8;
    if (r !== 0) this.frameKey[slot] = ((key << r) | (key >>> (32 - r))) >>> 0; // rotate for the next byte
    const m = this.msgOp[slot]!;
    if (!this.take(h, slot, buf, p, k)) {
      this.frameLeft[slot] = 0;
      return CONSUME_FAILED;
    }
    if (left > k) {
      this.frameLeft[slot] = left - k;
      return k;
    }
    this.frameLeft[slot] = 0;
    this.frameKey[slot] = 0;
    if ((m & STREAM_FIN) === 0) return k;
    this.msgOp[slot] = m & ~STREAM_FIN;
    return this.finish(h, slot, buf, p + k, 0) ? k : CONSUME_FAILED;
  }

  /** Inflates a compressed message and delivers it (or fails the connection: 1009, 1007). */
  private inflated(h: number, slot: number, op: number, buf: Uint8Array, p: number, n: number): boolean {
    const inflater = this.inflaterOf(slot);
    const len = inflater.inflate(buf, p, n, this.max);
    if (len === INFLATE_TOO_BIG) return this.fail(h, CLOSE_MESSAGE_TOO_BIG, `message inflates past maxFrameBytes (${this.max})`);
    if (len < 0) return this.fail(h, CLOSE_INVALID_PAYLOAD, "compressed message is not valid deflate data");
    const out = inflater.output();
    if (op === OP_TEXT) {
      const text = utf8Text(out, 0, len);
      if (text === null) return this.fail(h, CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
      this.sink.onMessage(h, text);
    } else {
      this.sink.onMessage(h, out);
    }
    return true;
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

  private closeFrame(h: number, buf: Uint8Array, p: number, n: number): boolean {
    const sink = this.sink;
    if (n === 0) {
      sink.onCloseFrame(h, CLOSE_NO_STATUS, "");
      return true;
    }
    if (n === 1) return this.fail(h, CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload");
    const code = (buf[p]! << 8) | buf[p + 1]!;
    if (!isValidCloseCode(code)) return this.fail(h, CLOSE_PROTOCOL_ERROR, `close frame with invalid code ${code}`);
    const reason = n === 2 ? "" : utf8Text(buf, p + 2, p + n);
    if (reason === null) return this.fail(h, CLOSE_INVALID_PAYLOAD, "close reason is not valid UTF-8");
    sink.onCloseFrame(h, code, reason);
    return true;
  }

  private fail(h: number, code: number, why: string): false {
    this.sink.onFail(h, code, why);
    return false;
  }

  private append(slot: number, buf: Uint8Array, p: number, n: number): void {
    const pool = this.pool;
    let ref = this.msgRef[slot]!;
    let len = this.msgLen[slot]!;
    if (ref === NO_REF) {
      ref = pool.acquire(n);
      len = 0;
    } else if (pool.capacity(ref) - len < n) {
      // Doubling: a message arriving in many pieces is copied O(1) times per byte.
      ref = pool.grow(ref, len, Math.min(Math.max(len + n, 2 * len), this.max));
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
    if (this.frameLeft[slot] !== 0) this.frameLeft[slot] = 0;
    if (this.frameKey[slot] !== 0) this.frameKey[slot] = 0;
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


