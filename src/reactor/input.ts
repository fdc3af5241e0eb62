/**
 * Inbound: bytes → frames.
 *
 * Frames are measured and decoded straight out of Bun's read buffer (parse); only the
 * incomplete tail of a read is copied, into a pooled segment (table.inRef/inLen), and the
 * segment goes back to the pool as soon as the frame it held completes (parsePending). Input
 * that arrives while a connection is paused is kept in the same segment and delivered from
 * it on resume (drainInput), compacting as frames leave.
 *
 * The protocol-stage seam. A server may have one InputStage (state.ts): a step in front of
 * the codec for protocols that first speak something else (an HTTP upgrade, then WebSocket
 * framing; a PROXY protocol header). It costs the plain TCP path nothing: the stage is asked
 * at open whether it takes the connection, and a connection it takes carries F_STAGED in
 * table.flags, a bit server.ts's onData already tests together with F_PAUSED | F_CLOSING
 * before choosing the codec path. So a connection without the bit runs the same code as a
 * server without a stage. With the bit, each read goes to stage.data() instead, inside the
 * connection's event scope (flyweight set, writes corked into one send), with whatever the
 * stage held before in front of it: a stage sees all of its unconsumed input as one buffer
 * and hold()s what it cannot use yet (a partial header or frame, or the rest of a read once
 * the connection paused). Input that arrives while a staged connection is paused is held
 * too and comes back through stage.data() on resume. A stage done with the connection for
 * good (a PROXY header parsed) lets it through with unstage() and passes what follows to
 * the codec with feed(); one that keeps it for the connection's life hands its own decoded
 * messages to dispatch.ts's deliver() (WebSocket) and calls callOpen() once it is open.
 */
import { FRAME_TOO_LARGE, rawCodec } from "../codec/index.ts";
import { NO_REF } from "../conn-table/index.ts";
import { callDrain, callOpen, deliver, enterEvent, handlerThrew, leaveEvent, protocolError } from "./dispatch.ts";
import { refile } from "./deadlines.ts";
import { joinBroadcasts, queued } from "./output.ts";
import { F_CLOSING, F_HELD, F_NOREAD, F_PAUSED, F_STAGED, FRAME_SLACK_BYTES, S_OPEN, SLOT_MASK, type ReactorState } from "./state.ts";

/** "\n": the last byte of every lines and RESP frame. */
const LF = 10;

/** The codec path of a read (inside its event): parse buf, behind any partial frame held. */
export function decodeInput(s: ReactorState, h: number, slot: number, buf: Uint8Array): void {
  if (s.table.inRef[slot]! === NO_REF) parse(s, h, slot, buf, 0, buf.length);
  else parsePending(s, h, slot, buf);
}

/**
 * The stage path of a read (inside its event): the stage gets all the connection's
 * unconsumed input as one buffer: what it held before (hold), followed by this read.
 */
export function stageInput(s: ReactorState, h: number, slot: number, buf: Uint8Array): void {
  if (s.table.inRef[slot]! === NO_REF) return s.stage!.data(s, h, slot, buf);
  hold(s, slot, buf, 0, buf.length);
  passHeld(s, h, slot);
}

/**
 * Hands slot's held input to the stage as one read. The segment is detached first, so that
 * whatever the stage holds or feeds meanwhile starts a segment of its own.
 */
function passHeld(s: ReactorState, h: number, slot: number): void {
  const table = s.table;
  const ref = table.inRef[slot]!;
  const len = table.inLen[slot]!;
  table.inRef[slot] = NO_REF;
  table.inLen[slot] = 0;
  s.inputBytes -= len;
  const off = s.pool.offset(ref);
  try {
    s.stage!.data(s, h, slot, s.pool.buffer(ref).subarray(off, off + len));
  } finally {
    s.pool.release(ref);
  }
}

/**
 * For a protocol stage done with h for good (its header read): clears F_STAGED, so that
 * reads go to the codec from now on, and calls handler.open (inside h's event, if it runs in
 * one). Broadcasts earlier in this turn are not for h (it joins after them).
 */
export function unstage(s: ReactorState, h: number, slot: number): void {
  s.table.flags[slot]! &= ~F_STAGED;
  if (s.bcLen !== 0) joinBroadcasts(s, slot);
  if (s.handler.open !== undefined) callOpen(s, h, slot);
}

/**
 * For a protocol stage: hands buf[pos, end) to h's codec, in the same event, as if it had
 * arrived from the socket: frames go to handler.message, a partial frame is held. Clear
 * F_STAGED first: while it is set, held input returns to the stage, not the codec. (A stage
 * that keeps the connection decodes its own messages and hands them to dispatch's deliver.)
 */
export function feed(s: ReactorState, h: number, slot: number, buf: Uint8Array, pos: number, end: number): void {
  const table = s.table;
  if (pos >= end || table.state[slot] !== S_OPEN) return;
  const flags = table.flags[slot]!;
  if ((flags & F_CLOSING) !== 0) return;
  if ((flags & F_NOREAD) !== 0) return hold(s, slot, buf, pos, end);
  if (table.inRef[slot]! === NO_REF) return parse(s, h, slot, buf, pos, end);
  parsePending(s, h, slot, pos === 0 && end === buf.length ? buf : buf.subarray(pos, end));
}

/** Frames straight out of buf[pos, end): the zero-copy path. */
function parse(s: ReactorState, h: number, slot: number, buf: Uint8Array, pos: number, end: number): void {
  const codec = s.codec;
  const max = s.maxFrameBytes;
  const state = s.table.state;
  const flags = s.table.flags;
  while (pos < end) {
    const len = codec.measure(buf, pos, end, max);
    if (len > 0) {
      // The raw codec's frame of a whole read is the read itself: no view to make
      // (subarray costs as much as the rest of the frame's path).
      const frame = pos === 0 && len === end && codec === rawCodec ? buf : codec.decode(buf, pos, len);
      pos += len;
      deliver(s, h, slot, frame);
      if (state[slot] !== S_OPEN || (flags[slot]! & (F_NOREAD | F_CLOSING)) !== 0) {
        // Closed, closing, or paused (by the handler's writes or its pauseReading): a paused
        // connection keeps the rest of this read for when it resumes.
        if (state[slot] === S_OPEN && (flags[slot]! & F_CLOSING) === 0 && pos < end) hold(s, slot, buf, pos, end);
        return;
      }
    } else if (len === 0) {
      hold(s, slot, buf, pos, end);
      return;
    } else {
      protocolError(s, h, len);
      return;
    }
  }
}

/**
 * A read while a partial frame is pending: copy just enough of chunk behind it to complete
 * that frame (doubling the segment as needed), deliver it, release the segment, and parse
 * the rest of chunk in place.
 */
function parsePending(s: ReactorState, h: number, slot: number, chunk: Uint8Array): void {
  const table = s.table;
  const pool = s.pool;
  const codec = s.codec;
  let ref = table.inRef[slot]!;
  let len = table.inLen[slot]!;
  const old = len;
  const end = chunk.length;
  const max = s.maxFrameBytes;
  let take = 0;
  // Lines and RESP frames end with "\n" (see lfFramed): where the next one is in chunk.
  const lfFramed = s.lfFramed;
  let nextLf = lfFramed ? chunk.indexOf(LF) : -1;
  for (;;) {
    let cap = pool.capacity(ref);
    if (len === cap) {
      ref = pool.grow(ref, len, len + Math.min(end - take, cap));
      table.inRef[slot] = ref;
      cap = pool.capacity(ref);
    }
    const k = Math.min(end - take, cap - len);
    const off = pool.offset(ref);
    const seg = pool.buffer(ref);
    seg.set(take === 0 && k === end ? chunk : chunk.subarray(take, take + k), off + len);
    const before = len;
    len += k;
    take += k;
    table.inLen[slot] = len;
    s.inputBytes += k;
    if (lfFramed && (nextLf < 0 || nextLf >= take) && len <= max && Math.clz32(len) === Math.clz32(before)) {
      // No "\n" among the new bytes: the frame cannot be complete yet, and measuring it
      // again would rescan every byte held (a line trickling in would cost O(n^2)).
      if (take === end) return;
      continue;
    }
    // A view bounded to this segment: a codec may scan its whole argument (indexOf).
    const view = seg.subarray(off, off + len);
    const flen = codec.measure(view, 0, len, max);
    if (flen === 0) {
      if (len > max + FRAME_SLACK_BYTES) return protocolError(s, h, FRAME_TOO_LARGE);
      if (take === end) return;
      if (nextLf >= 0 && nextLf < take) nextLf = chunk.indexOf(LF, take);
      continue;
    }
    if (flen < 0) return protocolError(s, h, flen);
    deliver(s, h, slot, codec.decode(view, 0, flen));
    if (table.state[slot] !== S_OPEN) return; // closed: onClose released the segment
    if (flen < old) {
      // The segment held more than one frame (input kept while paused): finish in it.
      if (take < end) hold(s, slot, chunk, take, end);
      return drainInput(s, h, slot, flen);
    }
    // The frame ended inside chunk, at chunk[flen - old]: the segment is done with.
    releaseInput(s, slot);
    const flags = table.flags[slot]!;
    const pos = flen - old;
    if ((flags & (F_NOREAD | F_CLOSING)) !== 0) {
      if ((flags & F_CLOSING) === 0 && pos < end) hold(s, slot, chunk, pos, end);
      return;
    }
    return parse(s, h, slot, chunk, pos, end);
  }
}

/** Frames out of the input segment from `pos` on (input kept while the connection was paused). */
function drainInput(s: ReactorState, h: number, slot: number, pos: number): void {
  const table = s.table;
  const pool = s.pool;
  const codec = s.codec;
  for (;;) {
    const ref = table.inRef[slot]!;
    if (ref === NO_REF) return;
    const len = table.inLen[slot]!;
    if (pos >= len) return releaseInput(s, slot);
    const off = pool.offset(ref);
    const view = pool.buffer(ref).subarray(off + pos, off + len);
    const flen = codec.measure(view, 0, len - pos, s.maxFrameBytes);
    if (flen === 0) {
      if (len - pos > s.maxFrameBytes + FRAME_SLACK_BYTES) return protocolError(s, h, FRAME_TOO_LARGE);
      return compactInput(s, slot, pos);
    }
    if (flen < 0) return protocolError(s, h, flen);
    deliver(s, h, slot, codec.decode(view, 0, flen));
    pos += flen;
    if (table.state[slot] !== S_OPEN) return;
    const flags = table.flags[slot]!;
    if ((flags & (F_NOREAD | F_CLOSING)) !== 0) {
      if ((flags & F_CLOSING) === 0) compactInput(s, slot, pos);
      return;
    }
  }
}

/**
 * After its queue was flushed: a connection paused by backpressure whose queue is now at or
 * under half the mark reads again. As its event: the input held meanwhile goes to the codec
 * (or the stage), then handler.drain, then the socket resumes. Closing ones stay paused; one
 * the application paused (F_HELD) gets handler.drain but keeps its input until resumeReading.
 */
export function unpauseIfDrained(s: ReactorState, h: number, slot: number): void {
  const table = s.table;
  if ((table.flags[slot]! & (F_PAUSED | F_CLOSING)) !== F_PAUSED || queued(s, slot) > s.lowWater) return;
  table.flags[slot]! &= ~F_PAUSED;
  s.pausedConnections--;
  readAgain(s, h, slot, true);
}

/**
 * A pause of h ended (write backpressure's or the application's): as h's event, the input
 * held meanwhile goes to the codec or the stage (unless the application still holds h),
 * then handler.drain when `drained`; then the socket resumes unless h paused again or is
 * closing.
 */
function readAgain(s: ReactorState, h: number, slot: number, drained: boolean): void {
  const table = s.table;
  enterEvent(s, h, slot);
  try {
    if ((table.flags[slot]! & F_HELD) === 0) resumeInput(s, h, slot);
    if (drained && s.handler.drain !== undefined && table.state[slot] === S_OPEN && (table.flags[slot]! & F_PAUSED) === 0) callDrain(s, h);
  } catch (err) {
    handlerThrew(s, h, err);
  }
  leaveEvent(s, h);
  if (table.state[slot] === S_OPEN && (table.flags[slot]! & (F_NOREAD | F_CLOSING)) === 0) s.sockets[slot]!.resume();
}

/**
 * conn.pauseReading (see Conn): stops reading id until resumeReading. The socket is paused
 * unless write backpressure paused it already; a read racing the pause, and the rest of the
 * read being delivered, are held (server.ts onOtherData, parse) for resume.
 */
export function pauseReading(s: ReactorState, id: number): void {
  const table = s.table;
  if (!table.isLive(id)) return;
  const slot = id & SLOT_MASK;
  const flags = table.flags[slot]!;
  if (table.state[slot] !== S_OPEN || (flags & (F_HELD | F_CLOSING)) !== 0) return;
  table.flags[slot] = flags | F_HELD;
  s.heldConnections++;
  if ((flags & F_PAUSED) === 0) s.sockets[slot]!.pause();
}

/**
 * conn.resumeReading (see Conn): lifts the application's pause of id. The idle deadline,
 * which does not run while the application holds a connection, starts again now. A
 * connection still over its write mark stays paused (unpauseIfDrained resumes it); one with
 * input held is resumed by the next flushResumed, from a task of its own, so that no
 * handler runs inside the caller's code (which may be another connection's callback, or
 * this one's, in the middle of its own input).
 */
export function resumeReading(s: ReactorState, id: number): void {
  const table = s.table;
  if (!table.isLive(id)) return;
  const slot = id & SLOT_MASK;
  const flags = table.flags[slot]!;
  if (table.state[slot] !== S_OPEN || (flags & F_HELD) === 0) return;
  table.flags[slot] = flags & ~F_HELD;
  s.heldConnections--;
  if (s.idleTimeoutMs > 0) {
    const nowF = performance.now();
    table.lastActivity[slot] = nowF >>> 0;
    refile(s, slot, nowF);
  }
  if ((flags & (F_PAUSED | F_CLOSING)) !== 0) return;
  if (table.inRef[slot]! === NO_REF) {
    s.sockets[slot]!.resume();
    return;
  }
  s.resumeList.push(id);
  if (!s.resumePending) {
    s.resumePending = true;
    setImmediate(flushResumed, s);
  }
}

/** Delivers, as each one's event, the input held for the connections resumeReading let go, then resumes their sockets. */
function flushResumed(s: ReactorState): void {
  s.resumePending = false;
  const list = s.resumeList;
  const table = s.table;
  // Handlers may resume more connections meanwhile: those join this pass.
  for (let i = 0; i < list.length; i++) {
    const h = list[i]!;
    if (!table.isLive(h)) continue;
    const slot = h & SLOT_MASK;
    if (table.state[slot] !== S_OPEN || (table.flags[slot]! & (F_NOREAD | F_CLOSING)) !== 0) continue;
    readAgain(s, h, slot, false);
  }
  list.length = 0;
}

/**
 * Delivers the input held for h while it could not be read (paused, or a stage waiting), to
 * the codec or, for a staged connection, to the stage; call inside h's event.
 */
export function resumeInput(s: ReactorState, h: number, slot: number): void {
  const table = s.table;
  if (table.inRef[slot]! === NO_REF) return;
  if (s.measureLatency) s.frameStartMs = performance.now();
  if ((table.flags[slot]! & F_STAGED) === 0) drainInput(s, h, slot, 0);
  else passHeld(s, h, slot);
}

/** Drops the first `pos` bytes of the input segment (releases it when nothing is left). */
function compactInput(s: ReactorState, slot: number, pos: number): void {
  const table = s.table;
  const len = table.inLen[slot]!;
  if (pos >= len) return releaseInput(s, slot);
  if (pos > 0) {
    const ref = table.inRef[slot]!;
    const off = s.pool.offset(ref);
    s.pool.buffer(ref).copyWithin(off, off + pos, off + len);
    table.inLen[slot] = len - pos;
    s.inputBytes -= pos;
  }
}

/**
 * Keeps buf[pos, end) for later, behind what slot holds already (acquiring or growing its
 * input segment): the incomplete tail of a read, or input that arrived or remained while the
 * connection is paused. A stage calls it for the rest of a read it stops at because the
 * connection paused; on resume that comes back through stage.data().
 */
export function hold(s: ReactorState, slot: number, buf: Uint8Array, pos: number, end: number): void {
  const table = s.table;
  const pool = s.pool;
  const k = end - pos;
  let ref = table.inRef[slot]!;
  let len = table.inLen[slot]!;
  if (ref === NO_REF) {
    ref = pool.acquire(k);
    len = 0;
  } else if (pool.capacity(ref) - len < k) {
    ref = pool.grow(ref, len, len + k);
  }
  pool.buffer(ref).set(pos === 0 && end === buf.length ? buf : buf.subarray(pos, end), pool.offset(ref) + len);
  table.inRef[slot] = ref;
  table.inLen[slot] = len + k;
  s.inputBytes += k;
}

/** Releases slot's input segment, if any (its frame completed, or the connection closed). */
export function releaseInput(s: ReactorState, slot: number): void {
  const table = s.table;
  const ref = table.inRef[slot]!;
  if (ref === NO_REF) return;
  s.inputBytes -= table.inLen[slot]!;
  s.pool.release(ref);
  table.inRef[slot] = NO_REF;
  table.inLen[slot] = 0;
}
