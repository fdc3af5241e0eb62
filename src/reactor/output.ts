/**
 * Outbound: writes, the cork, the write queue, backpressure, flushing, closing.
 *
 * socket.write() writes what the kernel takes; the rest goes into the connection's queue
 * (one pooled segment, growing by doubling up to writeBufferHardLimitBytes), flushed on
 * drain (flushQueue), in order: while the queue is non-empty new writes append to it.
 * Writes to the connection whose event is running are gathered into the cork buffer and sent
 * with one socket.write when the event ends (dispatch.ts's event scope calls uncork).
 * Backpressure: over maxWriteBufferBytes the connection's reading is paused (the kernel's
 * window then pushes back on the peer) until the queue drains to half (server.ts unpauses);
 * a connection whose queue would pass the hard limit is closed "writeStall" at once, one
 * paused for writeStallTimeoutMs by its deadline.
 * Closing is outbound too (as in Netty): closeAfterFlush stops reading and ends the socket
 * once its queue is flushed; closeNow ends or aborts it now. Bun runs the close callback
 * (server.ts onClose) synchronously inside socket.end()/terminate().
 */
import { NO_REF } from "../conn-table/index.ts";
import { MyriadTypeError } from "../errors.ts";
import { startStall } from "./deadlines.ts";
import { CORK_BYTES, F_BATCHED, F_CLOSING, F_PAUSED, F_STAGED, S_OPEN, SCRATCH_BYTES, SLOT_MASK, type ReactorState } from "./state.ts";
import { R_NONE, R_WRITE_STALL } from "./stats.ts";

/**
 * Writes up to this many bytes (or UTF-16 units of ASCII) are copied into the cork buffer by
 * a byte loop: for a few bytes a native set() (~17 ns for 5 bytes) costs far more than the
 * loop (~2 ns).
 */
const LOOP_COPY_MAX = 32;

/**
 * conn.write / server.write, installed as the server's write method (this is the server):
 * see Conn.write for the contract (true while under the high-water mark).
 */
export function write(this: ReactorState, id: number, data: Uint8Array | string): boolean {
  const s = this;
  if (id === s.corkHandle) {
    // The connection whose event is running, open with no queue (see corkHandle): a write
    // that fits is copied into the cork buffer, no other check needed.
    const used = s.corkLen;
    const cb = s.corkBuf;
    if (typeof data !== "string") {
      if (!(data instanceof Uint8Array)) throw notWritable("conn.write", data);
      const len = data.length;
      if (used + len <= CORK_BYTES) {
        if (len <= LOOP_COPY_MAX) for (let i = 0; i < len; i++) cb[used + i] = data[i]!;
        else cb.set(data, used);
        s.corkLen = used + len;
        s.framesOut++;
        return true;
      }
    } else if (data.length <= LOOP_COPY_MAX && used + data.length <= CORK_BYTES) {
      const len = data.length;
      let i = 0;
      for (; i < len; i++) {
        const c = data.charCodeAt(i);
        if (c > 0x7f) break; // not ASCII: the UTF-8 encoder below
        cb[used + i] = c;
      }
      if (i === len) {
        s.corkLen = used + len;
        s.framesOut++;
        return true;
      }
    }
  }
  const isString = typeof data === "string";
  // Checked before the connection's state, so bad data gets the same answer open or closed.
  if (!isString && !(data instanceof Uint8Array)) throw notWritable("conn.write", data);
  const table = s.table;
  if (!table.isLive(id)) return false;
  const slot = id & SLOT_MASK;
  if (table.state[slot] !== S_OPEN || (table.flags[slot]! & F_CLOSING) !== 0) return false;
  s.framesOut++;
  if (s.bcLen !== 0) {
    catchUp(s, slot);
    if (table.state[slot] !== S_OPEN) return false; // cut off: the catch-up passed the hard limit
  }
  if (isString) return writeString(s, slot, data) > 0;
  return writeSlot(s, slot, data, 0, data.length) > 0;
}

/** The error for write or broadcast data that is neither a string nor bytes (ERR_WRITE_TYPE). */
export function notWritable(what: string, data: unknown): MyriadTypeError {
  return new MyriadTypeError(
    "ERR_WRITE_TYPE",
    `${what}: data must be a string or a Uint8Array (Buffer), got ${data === null ? "null" : typeof data}; encode other values first (conn.send uses the server's codec)`,
  );
}

function writeString(s: ReactorState, slot: number, str: string): number {
  if (str.length <= SCRATCH_BYTES) {
    // Encoded into a reused buffer: the socket or the queue copies what it keeps.
    const n = s.scratch.write(str, 0);
    return writeSlot(s, slot, s.scratch, 0, n);
  }
  const b = Buffer.from(str);
  return writeSlot(s, slot, b, 0, b.length);
}

/**
 * Writes data[off, off + len) to an open slot. Returns 1 when sent or queued with the
 * queue at or under the mark, 0 when queued over it, -1 when refused (the connection is
 * closed, or was just closed for passing the hard limit).
 */
export function writeSlot(s: ReactorState, slot: number, data: Uint8Array, off: number, len: number): number {
  if (len === 0) return 1;
  if (s.table.outRef[slot]! !== NO_REF) return enqueue(s, slot, data, off, len);
  if (slot === s.corkSlot) {
    const used = s.corkLen;
    if (used + len <= CORK_BYTES) {
      const cb = s.corkBuf;
      if (len <= LOOP_COPY_MAX) for (let i = 0; i < len; i++) cb[used + i] = data[off + i]!;
      else cb.set(off === 0 && len === data.length ? data : data.subarray(off, off + len), used);
      s.corkLen = used + len;
      return 1;
    }
    // Too big to gather: what was gathered goes first, then this write on its own.
    if (used !== 0) {
      uncork(s, slot);
      if (s.table.state[slot] !== S_OPEN) return -1;
      if (s.table.outRef[slot]! !== NO_REF) return enqueue(s, slot, data, off, len);
    }
  }
  const n = s.sockets[slot]!.write(data, off, len);
  if (n === len) {
    wrote(s, slot, n);
    return 1;
  }
  if (n < 0) return -1;
  if (n > 0) wrote(s, slot, n);
  return enqueue(s, slot, data, off + n, len - n);
}

/**
 * Sends the corked bytes of slot (one socket.write; the rest is queued) and empties the
 * cork; in a turn with broadcasts slot has not had, they and the cork leave together at the
 * turn's end instead (catchUp).
 */
export function uncork(s: ReactorState, slot: number): void {
  if (s.bcLen !== 0 && s.table.state[slot] === S_OPEN && (s.table.flags[slot]! & (F_CLOSING | F_STAGED)) === 0) {
    if (s.bcCaught![slot]! < s.bcBase + s.bcLen) return catchUp(s, slot);
  }
  sendCork(s, slot);
}

/** Sends the corked bytes of slot now (one socket.write; the rest is queued) and empties the cork. */
function sendCork(s: ReactorState, slot: number): void {
  const len = s.corkLen;
  s.corkLen = 0;
  if (s.table.state[slot] !== S_OPEN) return;
  const n = s.sockets[slot]!.write(s.corkBuf, 0, len);
  if (n === len) return wrote(s, slot, n);
  if (n < 0) return;
  if (n > 0) wrote(s, slot, n);
  enqueue(s, slot, s.corkBuf, n, len - n);
}

function wrote(s: ReactorState, slot: number, n: number): void {
  s.bytesOut += n; // server-wide only, as bytesIn (server.ts onData)
  // Inside the connection's own data event, onData has stamped the time already.
  if (s.idleTimeoutMs > 0 && slot !== s.corkSlot) s.table.lastActivity[slot] = performance.now() >>> 0;
}

/**
 * h when writes to it may go straight into the cork buffer (see corkHandle): live, open,
 * not closing or paused, no write queue; -1 otherwise.
 */
export function corkable(s: ReactorState, h: number): number {
  const table = s.table;
  if (!table.isLive(h)) return -1;
  const slot = h & SLOT_MASK;
  if (table.state[slot] !== S_OPEN || (table.flags[slot]! & (F_PAUSED | F_CLOSING)) !== 0) return -1;
  // This turn's broadcasts not yet had must go before its next write (write's slow path).
  if (s.bcLen !== 0 && s.bcCaught![slot]! < s.bcBase + s.bcLen) return -1;
  return table.outRef[slot]! === NO_REF ? h : -1;
}

/**
 * Gives slot this turn's broadcasts that it has not had yet (fanout.ts), ahead of whatever is
 * written to it or closes it now, so that it gets everything in the order it was sent: they
 * go into its write queue (behind what its event had gathered in the cork), marked
 * F_BATCHED, and what follows this turn queues behind them, so that the flush at the turn's
 * end sends it all in one write. A staged connection (not opened to the handler) gets none.
 * Call only with bcLen > 0, for an open slot that is not closing; it may cut the connection
 * off (hard limit).
 */
function catchUp(s: ReactorState, slot: number): void {
  const caught = s.bcCaught!;
  const base = s.bcBase;
  const len = s.bcLen;
  const at = caught[slot]!;
  if (at >= base + len) return;
  caught[slot] = base + len;
  const table = s.table;
  if ((table.flags[slot]! & F_STAGED) !== 0) return;
  const from = at > base ? at - base : 0;
  // Written before those broadcasts (a write after one takes this path first).
  const corked = slot === s.corkSlot ? s.corkLen : 0;
  if (queued(s, slot) + corked + (len - from) > s.highWater) {
    // Too much to hold for the turn (it would pause the connection, or pass the hard limit
    // when the kernel could take it): sent now, in order, as any write would be.
    if ((table.flags[slot]! & F_BATCHED) !== 0) {
      table.flags[slot]! &= ~F_BATCHED;
      if (!flushQueue(s, slot)) return;
    }
    if (corked !== 0) {
      sendCork(s, slot);
      if (table.state[slot] !== S_OPEN) return;
    }
    writeSlot(s, slot, s.bcLog, from, len - from);
    return;
  }
  if (corked !== 0) {
    s.corkLen = 0;
    if (enqueue(s, slot, s.corkBuf, 0, corked) < 0) return;
  }
  table.flags[slot]! |= F_BATCHED;
  // bcLog may be replaced by a broadcast from a hook inside this call; this array stays valid.
  enqueue(s, slot, s.bcLog, from, len - from);
}

/**
 * Before a graceful close: sends now what this turn holds for slot (its broadcasts not yet
 * had, its batched queue) instead of at the turn's end. Returns false when that closed it.
 */
function sendHeld(s: ReactorState, slot: number): boolean {
  const table = s.table;
  if (s.bcLen !== 0) {
    catchUp(s, slot);
    if (table.state[slot] !== S_OPEN) return false;
  }
  if ((table.flags[slot]! & F_BATCHED) !== 0) {
    table.flags[slot]! &= ~F_BATCHED;
    flushQueue(s, slot);
  }
  return table.state[slot] === S_OPEN;
}

/** A connection opened (or was let through by its stage) while this turn has broadcasts: it gets only those that follow. */
export function joinBroadcasts(s: ReactorState, slot: number): void {
  s.bcCaught![slot] = s.bcBase + s.bcLen;
}

/** Bytes in the slot's write queue. */
export function queued(s: ReactorState, slot: number): number {
  const table = s.table;
  return table.outRef[slot]! === NO_REF ? 0 : table.outLen[slot]! - table.outStart[slot]!;
}

/** Queues data[off, off + len) behind slot's queue; returns as writeSlot. Pauses over the mark, closes past the hard limit. */
function enqueue(s: ReactorState, slot: number, data: Uint8Array, off: number, len: number): number {
  const table = s.table;
  if (slot === s.corkSlot) s.corkHandle = -1; // its writes must now follow the queue
  const pool = s.pool;
  let ref = table.outRef[slot]!;
  let start = table.outStart[slot]!;
  let end = table.outLen[slot]!;
  const pending = ref === NO_REF ? 0 : end - start;
  const total = pending + len;
  if (total > s.hardLimit) {
    // Memory stays bounded whatever the peer does: this write is dropped, the peer cut off.
    closeNow(s, table.handleOf(slot), R_WRITE_STALL, true);
    return -1;
  }
  if (ref === NO_REF) {
    ref = pool.acquire(len);
    start = 0;
    end = 0;
  } else if (pool.capacity(ref) - end < len) {
    // Drops the sent prefix and, when that is not room enough, moves to a bigger buffer.
    ref = pool.grow(ref, end, total, start);
    end = pending;
    start = 0;
  }
  pool.buffer(ref).set(off === 0 && len === data.length ? data : data.subarray(off, off + len), pool.offset(ref) + end);
  table.outRef[slot] = ref;
  table.outStart[slot] = start;
  table.outLen[slot] = end + len;
  s.writeQueueBytes += len;
  if (total > s.highWater) {
    if ((table.flags[slot]! & F_PAUSED) === 0) pauseSlot(s, slot);
    return 0;
  }
  return 1;
}

function pauseSlot(s: ReactorState, slot: number): void {
  const table = s.table;
  if (slot === s.corkSlot) s.corkHandle = -1;
  table.flags[slot]! |= F_PAUSED;
  s.pausedConnections++;
  if ((table.flags[slot]! & F_CLOSING) === 0) s.sockets[slot]!.pause();
  if (s.writeStallTimeoutMs > 0) startStall(s, slot);
}

/**
 * The kernel can take more (Bun's drain): writes as much of slot's queue as it takes,
 * releasing the segment once empty. Returns false when the socket is closed.
 */
export function flushQueue(s: ReactorState, slot: number): boolean {
  const table = s.table;
  const ref = table.outRef[slot]!;
  if (ref === NO_REF) return true;
  const pool = s.pool;
  const start = table.outStart[slot]!;
  const end = table.outLen[slot]!;
  const n = s.sockets[slot]!.write(pool.buffer(ref), pool.offset(ref) + start, end - start);
  if (n < 0) return false; // closed; the close callback cleans up
  if (n > 0) {
    wrote(s, slot, n);
    s.writeQueueBytes -= n;
    if (start + n === end) {
      pool.release(ref);
      table.outRef[slot] = NO_REF;
      table.outStart[slot] = 0;
      table.outLen[slot] = 0;
    } else {
      table.outStart[slot] = start + n;
    }
  }
  return true;
}

/** Drops slot's queue (its connection closed). */
export function releaseQueue(s: ReactorState, slot: number): void {
  const table = s.table;
  const ref = table.outRef[slot]!;
  if (ref === NO_REF) return;
  s.writeQueueBytes -= table.outLen[slot]! - table.outStart[slot]!;
  s.pool.release(ref);
  table.outRef[slot] = NO_REF;
}

/**
 * Closes id once its queued output is flushed (reads stop now), recording reason code
 * (R_NONE: whatever closes it later names the reason, "peer" by default).
 */
export function closeAfterFlush(s: ReactorState, id: number, code: number): void {
  const table = s.table;
  if (!table.isLive(id)) return;
  const slot = id & SLOT_MASK;
  const flags = table.flags[slot]!;
  if (table.state[slot] !== S_OPEN || (flags & F_CLOSING) !== 0) return;
  if ((s.bcLen !== 0 || (flags & F_BATCHED) !== 0) && !sendHeld(s, slot)) return;
  if (slot === s.corkSlot && s.corkLen !== 0) {
    uncork(s, slot);
    if (table.state[slot] !== S_OPEN) return;
  }
  if (table.outRef[slot]! === NO_REF) return closeNow(s, id, code, false);
  // Output pending: stop reading, flush on drain, then end (server.ts onDrain); the stall
  // timeout bounds how long a peer that does not read can hold the connection.
  s.closeReason[slot] = code;
  const now = table.flags[slot]!; // the sends above may have paused it
  table.flags[slot] = now | F_CLOSING;
  if (slot === s.corkSlot) s.corkHandle = -1;
  if ((now & F_PAUSED) === 0) {
    s.sockets[slot]!.pause();
    if (s.timed) startStall(s, slot);
  }
}

/**
 * Closes h at once: end() (FIN after what the kernel holds, the cork sent first) or, abort,
 * terminate(). Bun runs the close callback synchronously inside either. The first recorded
 * reason wins; R_NONE records none.
 */
export function closeNow(s: ReactorState, h: number, code: number, abort: boolean): void {
  const table = s.table;
  if (!table.isLive(h)) return;
  const slot = h & SLOT_MASK;
  if (table.state[slot] !== S_OPEN) return;
  if (s.closeReason[slot] === R_NONE && code !== R_NONE) s.closeReason[slot] = code;
  if (!abort && (table.flags[slot]! & F_CLOSING) === 0 && (s.bcLen !== 0 || (table.flags[slot]! & F_BATCHED) !== 0)) {
    if (!sendHeld(s, slot)) return; // what the kernel takes of it goes before the FIN
  }
  if (slot === s.corkSlot) {
    s.corkHandle = -1;
    if (s.corkLen !== 0) {
      if (abort) s.corkLen = 0;
      else uncork(s, slot);
    }
  }
  const socket = s.sockets[slot]!;
  if (abort) socket.terminate();
  // close(): FIN after what the kernel holds, as end() does, without end()'s TCP_CORK flush
  // (a setsockopt per connection, measured: nothing is corked in Bun, its writes do not
  // buffer). TLS keeps end(), which sends close_notify first.
  else if (s.o.tls === undefined) socket.close();
  else socket.end();
}
