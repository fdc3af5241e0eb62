/**
 * The reactor: createServer over Bun.listen.
 *
 * Per connection the server keeps Bun's socket object (in `sockets`, indexed by slot: one
 * array reference, 8 bytes) and typed-array fields: the ConnTable's (48 bytes) plus
 * openedAt 4 + stallSince 4 + closeReason 1 here, plus the timing wheel's entry. No closure,
 * Map entry or object per connection; socket.data is the connection's handle (a number).
 * Those arrays are reserved for maxConnections but cost memory per page written, so a
 * connection writes a field only when it uses it: ConnTable keeps free slots zeroed,
 * closeReason is put back to R_NONE at close, and openedAt / stallSince are written (and
 * read) only while handshakeTimeoutMs / writeStallTimeoutMs are set; they keep whatever the
 * slot's last user left, never read before they are written again. One connection that
 * never sends or receives a byte writes `state` and its socket reference, plus lastActivity
 * and openedAt when idleTimeoutMs and handshakeTimeoutMs are set.
 * Callbacks get one flyweight Conn re-pointed per callback; an async callback keeps the one
 * it got (bound to its connection for good) and the server makes a new one (settle()).
 *
 * Input: frames are measured and decoded straight out of Bun's read buffer; only the
 * incomplete tail of a read is copied, into a pooled segment, and the segment goes back to
 * the pool as soon as the frame it held completes.
 * Output: socket.write() writes what the kernel takes; the rest goes into the connection's
 * queue (one pooled segment, growing by doubling up to writeBufferHardLimitBytes), flushed on
 * drain, in order: while the queue is non-empty new writes append to it.
 * Backpressure: over maxWriteBufferBytes the connection's reading is paused (the kernel's
 * window then pushes back on the peer) until the queue drains to half; a connection paused
 * for writeStallTimeoutMs, or whose queue would pass the hard limit, is closed "writeStall".
 * Timeouts: one process-wide timing wheel (clock.ts), one wheel id per slot. Reads and
 * writes only store a time in lastActivity; when a slot's timer fires it re-files itself for
 * whatever is left (idle, handshake, stall), so a busy connection costs no timer operations.
 * Peer close: sockets are half-open (allowHalfOpen), so a peer's FIN leaves the write queue
 * to be flushed before we close (onEnd). Bun does not report a FIN to a paused socket (it
 * stops reading it), only a reset: a paused or closing connection sees the FIN once it
 * drains and resumes, and one that never drains is closed by writeStallTimeoutMs or by
 * stop()'s deadline (Bun 1.4.5, checked: FIN unseen while paused, RST reported).
 */
import type { Socket, SocketHandler, TCPSocketListener, TCPSocketListenOptions, UnixSocketListener } from "bun";
import { FRAME_TOO_LARGE, linesCodec, rawCodec, respCodec, type Codec } from "../codec/index.ts";
import { ConnTable, NO_REF, SegmentPool } from "../conn-table/index.ts";
import { clock } from "./clock.ts";
import { ConnRef, type ConnOps } from "./connection.ts";
import { ListenError, ProtocolError, ServerOptionError } from "./errors.ts";
import { resolveOptions, type ResolvedOptions } from "./options.ts";
import {
  LatencyHistogram,
  R_ERROR,
  R_HANDSHAKE,
  R_IDLE,
  R_LIMIT,
  R_NONE,
  R_PEER,
  R_PROTOCOL,
  R_SHUTDOWN,
  R_WRITE_STALL,
  REASONS,
  closedRecord,
  reasonCode,
} from "./stats.ts";
import type { CloseReason, Handler, Server, ServerOptions, ServerStats } from "./types.ts";

const SLOT_MASK = (1 << 20) - 1;

/** table.state of an open connection (ConnTable's alloc() leaves 1; free() writes 0). */
const S_OPEN = 2;
/** table.state while the close callback runs: writes are refused, conn.id still readable. */
const S_CLOSED = 3;

/** table.flags bits. */
const F_GREETED = 1; // a first complete frame arrived (ends the handshake timeout)
const F_PAUSED = 2; // reading paused by write backpressure (queue over the mark, not yet at half)
const F_CLOSING = 4; // close requested: reading stopped, flushing, then end()
const F_ERRORED = 8; // Bun reported a socket error: the close reason is "error"

/** A codec that never says FRAME_TOO_LARGE must not make us buffer without bound. */
const FRAME_SLACK_BYTES = 64;
const NO_BYTES = new Uint8Array(0);
/** "\n": the last byte of every lines and RESP frame. */
const LF = 10;
/** Strings up to this many UTF-16 units are encoded into a reused buffer, not a new one. */
const SCRATCH_BYTES = 64 * 1024;
/**
 * Writes to the connection whose data event is running are gathered ("corked", as uWS does)
 * into one buffer of this size and sent with one socket.write when the event's frames are
 * done: a pipelined read of 16 requests costs one send, not 16. Bigger writes go straight out.
 */
const CORK_BYTES = 64 * 1024;
/**
 * Writes up to this many bytes (or UTF-16 units of ASCII) are copied into the cork buffer by
 * a byte loop: for a few bytes a native set() (~17 ns for 5 bytes) costs far more than the
 * loop (~2 ns).
 */
const LOOP_COPY_MAX = 32;

type Sock = Socket<number>;
type Listener = TCPSocketListener<number> | UnixSocketListener<number>;

/**
 * Starts a server: validates opts (ServerOptionError naming the option), listens
 * (ListenError: ERR_ADDRESS_IN_USE, ERR_ACCESS_DENIED or ERR_LISTEN) and resolves once it
 * accepts connections.
 */
export async function createServer<In = any>(opts: ServerOptions<In>): Promise<Server> {
  const resolved = resolveOptions(opts as ServerOptions);
  const server = new ReactorServer(resolved);
  server.listen();
  return server;
}

class ReactorServer implements Server, ConnOps {
  private readonly o: ResolvedOptions;
  private readonly codec: Codec<any, any>;
  private readonly handler: Handler<any>;
  private readonly maxFrameBytes: number;
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly hardLimit: number;
  private readonly idleTimeoutMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly writeStallTimeoutMs: number;
  /** Any timeout configured: only then does the server use the wheel. */
  private readonly timed: boolean;
  /** Read the clock per data event (latency or idle timeout need it). */
  private readonly clockPerEvent: boolean;
  private readonly measureLatency: boolean;
  /**
   * measureLatency: performance.now() at which the frame being delivered began: the data
   * event's start for its first frame, then the previous handler's return. One clock read
   * per frame (at the handler's return) serves as one frame's end and the next one's start.
   */
  private frameStartMs = 0;
  /**
   * The codec's frames all end with "\n" (lines, RESP): while a frame is pending, a read
   * without "\n" cannot complete it, so parsePending measures again only when one arrives,
   * when the bytes held pass a power of two (so that a malformed or oversized prefix is
   * still caught before the bytes held double), or past maxFrameBytes.
   */
  private readonly lfFramed: boolean;

  private readonly table: ConnTable;
  private readonly pool: SegmentPool;
  private readonly sockets: (Sock | undefined)[];
  private readonly openedAt: Uint32Array;
  private readonly stallSince: Uint32Array;
  private readonly closeReason: Uint8Array;
  private readonly perIp: Map<string, number> | null;
  /**
   * The flyweight Conn handed to callbacks, re-pointed (fw.id) at each callback's
   * connection. A callback that returns a thenable (an async handler) keeps its conn for its
   * continuation: that object then stays bound to its connection for good and the server
   * takes a fresh flyweight (settle()). Read it anew after every callback.
   */
  private fw: ConnRef;
  private readonly scratch: Buffer = Buffer.allocUnsafe(SCRATCH_BYTES * 3);
  private readonly corkBuf = new Uint8Array(CORK_BYTES);
  private corkLen = 0;
  /** The slot whose writes are being corked (its data event is running), -1 when none. */
  private corkSlot = -1;
  /**
   * The handle of corkSlot while a write to it may go straight into the cork buffer: the
   * connection is open, not closing or paused, and has no write queue. write() then skips
   * every other check. -1 otherwise: cleared when that slot gets a queue (enqueue), pauses,
   * starts closing or closes.
   */
  private corkHandle = -1;
  private timerBase = 0;
  /**
   * Whether this server holds wheel ids: taken at the first deadline, not at start, so that a
   * server whose only timeout is writeStallTimeoutMs reserves no wheel memory (16 bytes per
   * slot) until some connection actually stalls.
   */
  private clocked = false;
  private listener: Listener | null = null;

  // Counters: plain numbers, read by stats().
  private accepted = 0;
  private rejected = 0;
  private peak = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private framesIn = 0;
  private framesOut = 0;
  private writeQueueBytes = 0;
  /** Bytes of partial input held in segments (the sum of table.inLen over slots with an inRef). */
  private inputBytes = 0;
  private pausedConnections = 0;
  private readonly closedCounts = new Float64Array(REASONS.length);
  /** Request latency: per frame, from its decoding to the handler's return. */
  private readonly latency = new LatencyHistogram();
  private readonly startedAt = performance.now();
  /** The process's RSS with no connection open: at listen, then at each stats() that finds none. */
  private baselineRss = 0;

  private stopping = false;
  private stopPromise: Promise<ServerStats> | null = null;
  private stopResolve: ((s: ServerStats) => void) | null = null;
  private stopTimer: ReturnType<typeof setTimeout> | null = null;
  private finalStats: ServerStats | null = null;

  // broadcast() state, so that its per-connection visitor is one function made once.
  private bcData: Uint8Array = NO_BYTES;
  private bcCount = 0;
  private readonly bcVisit = (h: number): void => this.broadcastTo(h);

  constructor(o: ResolvedOptions) {
    this.o = o;
    this.codec = o.codec;
    this.handler = o.handler;
    this.maxFrameBytes = o.maxFrameBytes;
    this.highWater = o.maxWriteBufferBytes;
    this.lowWater = Math.floor(o.maxWriteBufferBytes / 2);
    this.hardLimit = o.writeBufferHardLimitBytes;
    this.idleTimeoutMs = o.idleTimeoutMs;
    this.handshakeTimeoutMs = o.handshakeTimeoutMs;
    this.writeStallTimeoutMs = o.writeStallTimeoutMs;
    this.timed = o.idleTimeoutMs > 0 || o.handshakeTimeoutMs > 0 || o.writeStallTimeoutMs > 0;
    this.measureLatency = o.measureLatency;
    this.clockPerEvent = o.measureLatency || o.idleTimeoutMs > 0;
    this.lfFramed = o.codec === linesCodec || o.codec === respCodec;
    const cap = o.maxConnections;
    this.table = new ConnTable(cap);
    this.pool = new SegmentPool({
      segmentBytes: o.segmentBytes,
      // Pooled segments for up to 64 Ki connections with partial input or pending output at
      // once (chunks are allocated only when used); beyond that, fallback arrays.
      maxSegments: Math.max(256, Math.min(cap, 1 << 16)),
    });
    this.sockets = new Array<Sock | undefined>(cap).fill(undefined);
    this.openedAt = new Uint32Array(cap);
    this.stallSince = new Uint32Array(cap);
    this.closeReason = new Uint8Array(cap);
    this.perIp = o.maxConnectionsPerIp > 0 ? new Map() : null;
    this.fw = new ConnRef(this, -1);
  }

  // ---- listening ---------------------------------------------------------------------------

  /** Binds; throws ListenError. */
  listen(): void {
    const o = this.o;
    const handlers: SocketHandler<number, "uint8array"> = {
      binaryType: "uint8array",
      open: (s) => this.onOpen(s as Sock),
      data: (s, d) => this.onData(s as Sock, d),
      drain: (s) => this.onDrain(s as Sock),
      end: (s) => this.onEnd(s as Sock),
      close: (s) => this.onClose(s as Sock),
      error: (s, e) => this.onError(s as Sock, e),
    };
    if (o.tls !== undefined) {
      // With a handshake handler Bun calls open at accept, before the TLS handshake, so the
      // handshake timeout also covers a client that never finishes TLS. The handler then
      // owns the authorization decision: refuse an unauthorized client certificate when the
      // options ask for one and do not waive rejectUnauthorized.
      const tls = o.tls as { requestCert?: boolean; rejectUnauthorized?: boolean };
      const mustAuthorize = tls.requestCert === true && tls.rejectUnauthorized !== false;
      handlers.handshake = (s, success, authorizationError) => {
        if (success || !mustAuthorize) return;
        const h = (s as Sock).data;
        if (h < 0 || !this.table.isLive(h)) return;
        this.report(h, authorizationError ?? new Error("TLS client certificate not authorized"));
        this.closeNow(h, R_ERROR, true);
      };
    }
    const address = o.unix !== "" ? o.unix : `${o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname}:${o.port}`;
    try {
      if (o.unix !== "") {
        this.listener = Bun.listen<number>({
          unix: o.unix,
          tls: o.tls,
          data: -1,
          allowHalfOpen: true,
          socket: handlers as unknown as SocketHandler<number>,
        });
      } else {
        this.listener = Bun.listen<number>({
          hostname: o.hostname,
          port: o.port,
          tls: o.tls,
          data: -1,
          allowHalfOpen: true,
          socket: handlers as unknown as SocketHandler<number>,
          ...(o.reusePort ? { reusePort: true } : {}),
        } as unknown as TCPSocketListenOptions<number>);
      }
    } catch (err) {
      throw listenError(err, address, o);
    }
    this.baselineRss = process.memoryUsage.rss();
  }

  get port(): number {
    const l = this.listener as { port?: number } | null;
    return l?.port ?? 0;
  }

  get hostname(): string {
    const l = this.listener as { hostname?: string } | null;
    return this.o.unix !== "" ? "" : (l?.hostname ?? this.o.hostname);
  }

  get unix(): string {
    return this.o.unix;
  }

  get accepting(): boolean {
    return !this.stopping;
  }

  get connections(): number {
    return this.table.size;
  }

  // ---- Bun callbacks -----------------------------------------------------------------------

  private onOpen(socket: Sock): void {
    if (this.stopping) return this.reject(socket);
    let ip = "";
    const perIp = this.perIp;
    if (perIp !== null) {
      ip = socket.remoteAddress ?? "";
      const n = perIp.get(ip) ?? 0;
      if (n >= this.o.maxConnectionsPerIp) return this.reject(socket);
      perIp.set(ip, n + 1);
    }
    const table = this.table;
    const h = table.alloc();
    if (h < 0) {
      if (perIp !== null) this.ipRelease(ip);
      return this.reject(socket);
    }
    socket.data = h;
    const slot = h & SLOT_MASK;
    this.sockets[slot] = socket;
    table.state[slot] = S_OPEN;
    // closeReason is R_NONE (0) already: onClose puts it back before the slot is freed.
    this.accepted++;
    if (table.size > this.peak) this.peak = table.size;
    if (this.idleTimeoutMs > 0 || this.handshakeTimeoutMs > 0) {
      // Only the timeouts read these; left unwritten, their pages cost nothing (see file comment).
      const nowF = performance.now();
      const now = nowF >>> 0;
      if (this.idleTimeoutMs > 0) table.lastActivity[slot] = now;
      if (this.handshakeTimeoutMs > 0) this.openedAt[slot] = now;
      this.refile(slot, nowF);
    }
    const open = this.handler.open;
    if (open !== undefined) this.callHook(h, open, undefined, true);
  }

  /** Over a limit or stopping: closed at once (never queued, never retried), counted. */
  private reject(socket: Sock): void {
    socket.data = -1;
    this.rejected++;
    socket.terminate();
  }

  private onData(socket: Sock, buf: Uint8Array): void {
    const h = socket.data;
    if (h < 0) return;
    const slot = h & SLOT_MASK;
    const table = this.table;
    const t0 = this.clockPerEvent ? performance.now() : 0;
    // Read only by the idle timeout: without one, a store here is a cache line per event.
    if (this.idleTimeoutMs > 0) table.lastActivity[slot] = t0 >>> 0;
    this.frameStartMs = t0;
    const n = buf.length;
    table.bytesIn[slot]! += n;
    this.bytesIn += n;
    if ((table.flags[slot]! & (F_PAUSED | F_CLOSING)) !== 0) {
      // Bun may still hand over a read that raced with pause(): keep it for resume; a
      // closing connection's input is dropped.
      if ((table.flags[slot]! & F_CLOSING) === 0) this.appendInput(slot, buf, 0, n);
      return;
    }
    const outer = this.fw;
    const prev = outer.id;
    this.enter(h, prev);
    const prevCork = this.corkSlot;
    const prevCorkHandle = this.corkHandle;
    this.corkSlot = slot;
    this.corkHandle = table.outRef[slot]! === NO_REF ? h : -1;
    // One try per read, not per frame: a throwing handler closes its connection ("error").
    try {
      if (table.inRef[slot]! === NO_REF) this.parse(h, slot, buf, 0, n);
      else this.parsePending(h, slot, buf);
    } catch (err) {
      this.handlerThrew(h, err);
    }
    if (this.corkLen !== 0) this.uncork(slot);
    this.corkSlot = prevCork;
    this.corkHandle = prevCorkHandle === -1 ? -1 : this.corkable(prevCorkHandle);
    this.leave(outer, prev, h);
  }

  /**
   * measureLatency: counts the frame whose handler just returned, from frameStartMs (the
   * frame's decoding) to now; the next frame of the same read starts now.
   */
  private frameDone(): void {
    const now = performance.now();
    this.latency.record(now - this.frameStartMs);
    this.frameStartMs = now;
  }

  /** Frames straight out of buf[pos, end): the zero-copy path. */
  private parse(h: number, slot: number, buf: Uint8Array, pos: number, end: number): void {
    const codec = this.codec;
    const max = this.maxFrameBytes;
    const handler = this.handler;
    const state = this.table.state;
    const flags = this.table.flags;
    while (pos < end) {
      const len = codec.measure(buf, pos, end, max);
      if (len > 0) {
        // The raw codec's frame of a whole read is the read itself: no view to make
        // (subarray costs as much as the rest of the frame's path).
        const frame = pos === 0 && len === end && codec === rawCodec ? buf : codec.decode(buf, pos, len);
        pos += len;
        this.framesIn++;
        flags[slot]! |= F_GREETED;
        // Read per frame: an async handler takes the flyweight with it (settle).
        const conn = this.fw;
        const r: unknown = handler.message(conn, frame);
        if (this.measureLatency) this.frameDone();
        if (r !== undefined) this.settle(conn, r, h);
        if (state[slot] !== S_OPEN || (flags[slot]! & (F_PAUSED | F_CLOSING)) !== 0) {
          // Closed, closing or paused by the handler's writes: a paused connection keeps
          // the rest of this read for when its queue drains.
          if (state[slot] === S_OPEN && (flags[slot]! & F_CLOSING) === 0 && pos < end) {
            this.appendInput(slot, buf, pos, end);
          }
          return;
        }
      } else if (len === 0) {
        this.appendInput(slot, buf, pos, end);
        return;
      } else {
        this.protocolError(h, len);
        return;
      }
    }
  }

  /**
   * A read while a partial frame is pending: copy just enough of buf behind it to complete
   * that frame (doubling the segment as needed), deliver it, release the segment, and parse
   * the rest of buf in place.
   */
  private parsePending(h: number, slot: number, chunk: Uint8Array): void {
    const table = this.table;
    const pool = this.pool;
    const codec = this.codec;
    let ref = table.inRef[slot]!;
    let len = table.inLen[slot]!;
    const old = len;
    const end = chunk.length;
    const max = this.maxFrameBytes;
    let take = 0;
    // Lines and RESP frames end with "\n" (see lfFramed): where the next one is in chunk.
    const lfFramed = this.lfFramed;
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
      this.inputBytes += k;
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
        if (len > max + FRAME_SLACK_BYTES) return this.protocolError(h, FRAME_TOO_LARGE);
        if (take === end) return;
        if (nextLf >= 0 && nextLf < take) nextLf = chunk.indexOf(LF, take);
        continue;
      }
      if (flen < 0) return this.protocolError(h, flen);
      this.framesIn++;
      table.flags[slot]! |= F_GREETED;
      const conn = this.fw;
      const r: unknown = this.handler.message(conn, codec.decode(view, 0, flen));
      if (this.measureLatency) this.frameDone();
      if (r !== undefined) this.settle(conn, r, h);
      if (table.state[slot] !== S_OPEN) return; // closed: onClose released the segment
      if (flen < old) {
        // The segment held more than one frame (input kept while paused): finish in it.
        if (take < end) this.appendInput(slot, chunk, take, end);
        return this.drainInput(h, slot, flen);
      }
      // The frame ended inside chunk, at chunk[flen - old]: the segment is done with.
      this.inputBytes -= table.inLen[slot]!;
      pool.release(ref);
      table.inRef[slot] = NO_REF;
      table.inLen[slot] = 0;
      const flags = table.flags[slot]!;
      const pos = flen - old;
      if ((flags & (F_PAUSED | F_CLOSING)) !== 0) {
        if ((flags & F_CLOSING) === 0 && pos < end) this.appendInput(slot, chunk, pos, end);
        return;
      }
      return this.parse(h, slot, chunk, pos, end);
    }
  }

  /** Frames out of the input segment from `pos` on (input kept while the connection was paused). */
  private drainInput(h: number, slot: number, pos: number): void {
    const table = this.table;
    const pool = this.pool;
    const codec = this.codec;
    for (;;) {
      const ref = table.inRef[slot]!;
      if (ref === NO_REF) return;
      const len = table.inLen[slot]!;
      const off = pool.offset(ref);
      if (pos >= len) {
        pool.release(ref);
        table.inRef[slot] = NO_REF;
        table.inLen[slot] = 0;
        this.inputBytes -= len;
        return;
      }
      const view = pool.buffer(ref).subarray(off + pos, off + len);
      const flen = codec.measure(view, 0, len - pos, this.maxFrameBytes);
      if (flen === 0) {
        if (len - pos > this.maxFrameBytes + FRAME_SLACK_BYTES) return this.protocolError(h, FRAME_TOO_LARGE);
        return this.compactInput(slot, pos);
      }
      if (flen < 0) return this.protocolError(h, flen);
      this.framesIn++;
      table.flags[slot]! |= F_GREETED;
      const conn = this.fw;
      const r: unknown = this.handler.message(conn, codec.decode(view, 0, flen));
      if (this.measureLatency) this.frameDone();
      if (r !== undefined) this.settle(conn, r, h);
      pos += flen;
      if (table.state[slot] !== S_OPEN) return;
      const flags = table.flags[slot]!;
      if ((flags & (F_PAUSED | F_CLOSING)) !== 0) {
        if ((flags & F_CLOSING) === 0) this.compactInput(slot, pos);
        return;
      }
    }
  }

  /** Drops the first `pos` bytes of the input segment (releases it when nothing is left). */
  private compactInput(slot: number, pos: number): void {
    const table = this.table;
    const pool = this.pool;
    const ref = table.inRef[slot]!;
    const len = table.inLen[slot]!;
    if (pos >= len) {
      pool.release(ref);
      table.inRef[slot] = NO_REF;
      table.inLen[slot] = 0;
      this.inputBytes -= len;
    } else if (pos > 0) {
      const off = pool.offset(ref);
      pool.buffer(ref).copyWithin(off, off + pos, off + len);
      table.inLen[slot] = len - pos;
      this.inputBytes -= pos;
    }
  }

  /** Appends buf[pos, end) to the slot's input segment (acquiring or growing it). */
  private appendInput(slot: number, buf: Uint8Array, pos: number, end: number): void {
    const table = this.table;
    const pool = this.pool;
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
    this.inputBytes += k;
  }

  private onDrain(socket: Sock): void {
    const h = socket.data;
    if (h < 0) return;
    const slot = h & SLOT_MASK;
    const table = this.table;
    const ref = table.outRef[slot]!;
    if (ref !== NO_REF) {
      const pool = this.pool;
      const start = table.outStart[slot]!;
      const end = table.outLen[slot]!;
      const n = socket.write(pool.buffer(ref), pool.offset(ref) + start, end - start);
      if (n < 0) return; // closed; the close callback cleans up
      if (n > 0) {
        this.wrote(slot, n);
        this.writeQueueBytes -= n;
        if (start + n === end) {
          pool.release(ref);
          table.outRef[slot] = NO_REF;
          table.outStart[slot] = 0;
          table.outLen[slot] = 0;
        } else {
          table.outStart[slot] = start + n;
        }
      }
    }
    const flags = table.flags[slot]!;
    if (table.outRef[slot]! === NO_REF && (flags & F_CLOSING) !== 0) {
      this.closeNow(h, R_NONE, false);
      return;
    }
    if ((flags & (F_PAUSED | F_CLOSING)) === F_PAUSED && this.queued(slot) <= this.lowWater) this.unpause(h, slot);
  }

  /** The queue drained to half the mark: deliver input kept meanwhile, tell the app, read again. */
  private unpause(h: number, slot: number): void {
    const table = this.table;
    table.flags[slot]! &= ~F_PAUSED;
    this.pausedConnections--;
    const outer = this.fw;
    const prev = outer.id;
    this.enter(h, prev);
    const prevCork = this.corkSlot;
    const prevCorkHandle = this.corkHandle;
    if (prevCork >= 0 && this.corkLen !== 0) this.uncork(prevCork);
    this.corkSlot = slot;
    this.corkHandle = this.corkable(h);
    // This may run inside another connection's data event: keep that event's frame clock.
    const prevFrameStart = this.frameStartMs;
    try {
      if (table.inRef[slot]! !== NO_REF) {
        if (this.measureLatency) this.frameStartMs = performance.now();
        this.drainInput(h, slot, 0);
      }
      const drain = this.handler.drain;
      if (drain !== undefined && table.state[slot] === S_OPEN && (table.flags[slot]! & F_PAUSED) === 0) {
        const conn = this.fw;
        const r: unknown = drain.call(this.handler, conn);
        if (r !== undefined) this.settle(conn, r, h);
      }
    } catch (err) {
      this.handlerThrew(h, err);
    }
    this.frameStartMs = prevFrameStart;
    if (this.corkLen !== 0) this.uncork(slot);
    this.corkSlot = prevCork;
    this.corkHandle = prevCorkHandle === -1 ? -1 : this.corkable(prevCorkHandle);
    this.leave(outer, prev, h);
    if (table.state[slot] === S_OPEN && (table.flags[slot]! & (F_PAUSED | F_CLOSING)) === 0) this.sockets[slot]!.resume();
  }

  /**
   * The peer sent FIN: it sends nothing more but may still be reading (a client that writes
   * its request and shuts down its side, as `nc -N` does). Without allowHalfOpen, Bun would
   * close the socket here and drop the write queue; instead the connection closes ("peer")
   * once its queue is flushed, or "writeStall" when it cannot flush within
   * writeStallTimeoutMs. A partial frame can no longer complete and is dropped.
   */
  private onEnd(socket: Sock): void {
    const h = socket.data;
    if (h < 0) return;
    this.closeAfterFlush(h, R_NONE);
  }

  private onClose(socket: Sock): void {
    const h = socket.data;
    if (h < 0) return;
    socket.data = -1;
    const table = this.table;
    if (!table.isLive(h)) return;
    const slot = h & SLOT_MASK;
    const flags = table.flags[slot]!;
    let code = this.closeReason[slot]!;
    if (code === R_NONE) code = (flags & F_ERRORED) !== 0 ? R_ERROR : R_PEER;
    else this.closeReason[slot] = R_NONE; // as the next occupant of the slot expects it
    this.closedCounts[code]!++;
    if ((flags & F_PAUSED) !== 0) this.pausedConnections--;
    const pool = this.pool;
    const outRef = table.outRef[slot]!;
    if (outRef !== NO_REF) {
      this.writeQueueBytes -= table.outLen[slot]! - table.outStart[slot]!;
      pool.release(outRef);
      table.outRef[slot] = NO_REF;
    }
    const inRef = table.inRef[slot]!;
    if (inRef !== NO_REF) {
      this.inputBytes -= table.inLen[slot]!;
      pool.release(inRef);
      table.inRef[slot] = NO_REF;
      table.inLen[slot] = 0;
    }
    if (this.clocked) clock.cancel(this.timerBase + slot);
    if (this.perIp !== null) this.ipRelease(socket.remoteAddress ?? "");
    table.state[slot] = S_CLOSED;
    if (slot === this.corkSlot) this.corkHandle = -1;
    const close = this.handler.close;
    if (close !== undefined) this.callHook(h, close, REASONS[code]!, false);
    this.sockets[slot] = undefined;
    table.free(h);
    if (this.stopping && table.size === 0) this.finishStop();
  }

  private onError(socket: Sock, err: Error): void {
    const h = socket.data;
    if (h < 0 || !this.table.isLive(h)) return;
    this.table.flags[h & SLOT_MASK]! |= F_ERRORED;
    this.report(h, err);
  }

  // ---- writes ------------------------------------------------------------------------------

  write(id: number, data: Uint8Array | string): boolean {
    if (id === this.corkHandle) {
      // The connection whose data event is running, open with no queue (see corkHandle):
      // a write that fits is copied into the cork buffer, no other check needed.
      const used = this.corkLen;
      const cb = this.corkBuf;
      if (typeof data !== "string") {
        const len = data.length;
        if (used + len <= CORK_BYTES) {
          if (len <= LOOP_COPY_MAX) for (let i = 0; i < len; i++) cb[used + i] = data[i]!;
          else cb.set(data, used);
          this.corkLen = used + len;
          this.framesOut++;
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
          this.corkLen = used + len;
          this.framesOut++;
          return true;
        }
      }
    }
    const table = this.table;
    if (!table.isLive(id)) return false;
    const slot = id & SLOT_MASK;
    if (table.state[slot] !== S_OPEN || (table.flags[slot]! & F_CLOSING) !== 0) return false;
    this.framesOut++;
    if (typeof data === "string") return this.writeString(slot, data) > 0;
    return this.writeSlot(slot, data, 0, data.length) > 0;
  }

  send(id: number, message: unknown): boolean {
    if (!this.isOpen(id)) return false;
    return this.write(id, this.codec.encode(message));
  }

  private writeString(slot: number, s: string): number {
    if (s.length <= SCRATCH_BYTES) {
      // Encoded into a reused buffer: the socket or the queue copies what it keeps.
      const n = this.scratch.write(s, 0);
      return this.writeSlot(slot, this.scratch, 0, n);
    }
    const b = Buffer.from(s);
    return this.writeSlot(slot, b, 0, b.length);
  }

  /**
   * Writes data[off, off + len) to an open slot. Returns 1 when sent or queued with the
   * queue at or under the mark, 0 when queued over it, -1 when refused (the connection is
   * closed, or was just closed for passing the hard limit).
   */
  private writeSlot(slot: number, data: Uint8Array, off: number, len: number): number {
    if (len === 0) return 1;
    if (this.table.outRef[slot]! !== NO_REF) return this.enqueue(slot, data, off, len);
    if (slot === this.corkSlot) {
      const used = this.corkLen;
      if (used + len <= CORK_BYTES) {
        const cb = this.corkBuf;
        if (len <= LOOP_COPY_MAX) for (let i = 0; i < len; i++) cb[used + i] = data[off + i]!;
        else cb.set(off === 0 && len === data.length ? data : data.subarray(off, off + len), used);
        this.corkLen = used + len;
        return 1;
      }
      // Too big to gather: what was gathered goes first, then this write on its own.
      if (used !== 0) {
        this.uncork(slot);
        if (this.table.state[slot] !== S_OPEN) return -1;
        if (this.table.outRef[slot]! !== NO_REF) return this.enqueue(slot, data, off, len);
      }
    }
    const n = this.sockets[slot]!.write(data, off, len);
    if (n === len) {
      this.wrote(slot, n);
      return 1;
    }
    if (n < 0) return -1;
    if (n > 0) this.wrote(slot, n);
    return this.enqueue(slot, data, off + n, len - n);
  }

  /** Sends the corked bytes of slot (one socket.write; the rest is queued). */
  private uncork(slot: number): void {
    const len = this.corkLen;
    this.corkLen = 0;
    if (this.table.state[slot] !== S_OPEN) return;
    const n = this.sockets[slot]!.write(this.corkBuf, 0, len);
    if (n === len) return this.wrote(slot, n);
    if (n < 0) return;
    if (n > 0) this.wrote(slot, n);
    this.enqueue(slot, this.corkBuf, n, len - n);
  }

  private wrote(slot: number, n: number): void {
    this.bytesOut += n;
    this.table.bytesOut[slot]! += n;
    // Inside the connection's own data event, onData has stamped the time already.
    if (this.idleTimeoutMs > 0 && slot !== this.corkSlot) this.table.lastActivity[slot] = performance.now() >>> 0;
  }

  /**
   * h when writes to it may go straight into the cork buffer (see corkHandle): live, open,
   * not closing or paused, no write queue; -1 otherwise.
   */
  private corkable(h: number): number {
    const table = this.table;
    if (!table.isLive(h)) return -1;
    const slot = h & SLOT_MASK;
    if (table.state[slot] !== S_OPEN || (table.flags[slot]! & (F_PAUSED | F_CLOSING)) !== 0) return -1;
    return table.outRef[slot]! === NO_REF ? h : -1;
  }

  /** Bytes in the slot's write queue. */
  private queued(slot: number): number {
    const table = this.table;
    return table.outRef[slot]! === NO_REF ? 0 : table.outLen[slot]! - table.outStart[slot]!;
  }

  private enqueue(slot: number, data: Uint8Array, off: number, len: number): number {
    const table = this.table;
    if (slot === this.corkSlot) this.corkHandle = -1; // its writes must now follow the queue
    const pool = this.pool;
    let ref = table.outRef[slot]!;
    let start = table.outStart[slot]!;
    let end = table.outLen[slot]!;
    const pending = ref === NO_REF ? 0 : end - start;
    const total = pending + len;
    if (total > this.hardLimit) {
      // Memory stays bounded whatever the peer does: this write is dropped, the peer cut off.
      this.closeNow(table.handleOf(slot), R_WRITE_STALL, true);
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
    this.writeQueueBytes += len;
    if (total > this.highWater) {
      if ((table.flags[slot]! & F_PAUSED) === 0) this.pauseSlot(slot);
      return 0;
    }
    return 1;
  }

  private pauseSlot(slot: number): void {
    const table = this.table;
    if (slot === this.corkSlot) this.corkHandle = -1;
    table.flags[slot]! |= F_PAUSED;
    this.pausedConnections++;
    if ((table.flags[slot]! & F_CLOSING) === 0) this.sockets[slot]!.pause();
    if (this.writeStallTimeoutMs > 0) {
      // Read only by the stall deadline (stallActive); left unwritten, its page costs nothing.
      const nowF = performance.now();
      this.stallSince[slot] = nowF >>> 0;
      this.refile(slot, nowF);
    }
  }

  broadcast(bytes: Uint8Array | string): number {
    this.bcData = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
    this.bcCount = 0;
    this.table.forEachLive(this.bcVisit);
    this.bcData = NO_BYTES; // the message is not kept alive by the server
    return this.bcCount;
  }

  private broadcastTo(h: number): void {
    const slot = h & SLOT_MASK;
    if (this.table.state[slot] !== S_OPEN || (this.table.flags[slot]! & F_CLOSING) !== 0) return;
    const data = this.bcData;
    this.framesOut++;
    if (this.writeSlot(slot, data, 0, data.length) >= 0) this.bcCount++;
  }

  // ---- closing -----------------------------------------------------------------------------

  isOpen(id: number): boolean {
    const table = this.table;
    const slot = id & SLOT_MASK;
    return table.isLive(id) && table.state[slot] === S_OPEN && (table.flags[slot]! & F_CLOSING) === 0;
  }

  remoteAddress(id: number): string {
    if (!this.table.isLive(id)) return "";
    return this.sockets[id & SLOT_MASK]?.remoteAddress ?? "";
  }

  close(id: number, reason?: CloseReason): void {
    this.closeAfterFlush(id, reasonCode(reason));
  }

  /**
   * Closes id once its queued output is flushed (reads stop now), recording reason code
   * (R_NONE: whatever closes it later names the reason, "peer" by default).
   */
  private closeAfterFlush(id: number, code: number): void {
    const table = this.table;
    if (!table.isLive(id)) return;
    const slot = id & SLOT_MASK;
    const flags = table.flags[slot]!;
    if (table.state[slot] !== S_OPEN || (flags & F_CLOSING) !== 0) return;
    if (slot === this.corkSlot && this.corkLen !== 0) {
      this.uncork(slot);
      if (table.state[slot] !== S_OPEN) return;
    }
    if (table.outRef[slot]! === NO_REF) return this.closeNow(id, code, false);
    // Output pending: stop reading, flush on drain, then end (onDrain); the stall timeout
    // bounds how long a peer that does not read can hold the connection.
    this.closeReason[slot] = code;
    table.flags[slot] = flags | F_CLOSING;
    if (slot === this.corkSlot) this.corkHandle = -1;
    if ((flags & F_PAUSED) === 0) {
      this.sockets[slot]!.pause();
      if (this.timed) {
        const nowF = performance.now();
        if (this.writeStallTimeoutMs > 0) this.stallSince[slot] = nowF >>> 0;
        this.refile(slot, nowF);
      }
    }
  }

  /**
   * Closes at once: end() (FIN after what the kernel holds) or, abort, terminate(). Bun runs
   * the close callback (onClose) synchronously inside either. The first recorded reason wins.
   */
  private closeNow(h: number, code: number, abort: boolean): void {
    const table = this.table;
    if (!table.isLive(h)) return;
    const slot = h & SLOT_MASK;
    if (table.state[slot] !== S_OPEN) return;
    if (this.closeReason[slot] === R_NONE && code !== R_NONE) this.closeReason[slot] = code;
    if (slot === this.corkSlot) {
      this.corkHandle = -1;
      if (this.corkLen !== 0) {
        if (abort) this.corkLen = 0;
        else this.uncork(slot);
      }
    }
    const socket = this.sockets[slot]!;
    if (abort) socket.terminate();
    else socket.end();
  }

  private protocolError(h: number, code: number): void {
    const onError = this.handler.error;
    if (onError !== undefined) {
      const err =
        code === FRAME_TOO_LARGE
          ? new ProtocolError("ERR_FRAME_TOO_LARGE", `frame over maxFrameBytes (${this.maxFrameBytes}); raise maxFrameBytes if such frames are legitimate`)
          : new ProtocolError("ERR_FRAME_MALFORMED", `bytes that are not ${this.codec.name} frames`);
      this.callError(h, err);
    }
    this.closeNow(h, R_PROTOCOL, false);
  }

  /**
   * Calls a lifecycle hook (open, close) with h's flyweight and `arg`. A throw closes the
   * connection "error" when `closeOnThrow` (open), else is only reported (close: it is
   * closing already); an async hook is settled like any other callback.
   */
  private callHook(h: number, hook: (conn: ConnRef, arg?: any) => unknown, arg: unknown, closeOnThrow: boolean): void {
    const outer = this.fw;
    const prev = outer.id;
    this.enter(h, prev);
    try {
      const conn = this.fw;
      const r: unknown = hook.call(this.handler, conn, arg);
      if (r !== undefined) this.settle(conn, r, h);
    } catch (err) {
      if (closeOnThrow) this.handlerThrew(h, err);
      else this.report(h, err);
    }
    this.leave(outer, prev, h);
  }

  private handlerThrew(h: number, err: unknown): void {
    this.report(h, err);
    this.closeNow(h, R_ERROR, false);
  }

  /** Hands err to handler.error, or logs it when there is none. */
  private report(h: number, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.handler.error !== undefined) this.callError(h, e);
    else console.error(`myriad: connection ${h}:`, e);
  }

  private callError(h: number, err: Error): void {
    const outer = this.fw;
    const prev = outer.id;
    this.enter(h, prev);
    try {
      const conn = this.fw;
      const r: unknown = this.handler.error!.call(this.handler, conn, err);
      if (r !== undefined && isThenable(r)) {
        // An async error hook keeps its conn; its own failure is only logged (no recursion).
        if (conn === this.fw) this.fw = new ConnRef(this, h);
        r.then(undefined, logErrorHookFailure);
      }
    } catch (e) {
      logErrorHookFailure(e);
    }
    this.leave(outer, prev, h);
  }

  // ---- the flyweight -----------------------------------------------------------------------

  /**
   * Points the flyweight at h for a callback (prev: its id before, -1 outside callbacks).
   * A callback nested in one on another connection (a handler's write or close that closed
   * another connection) gets a flyweight of its own instead: the outer callback's conn is
   * then never re-pointed under it, even if the inner callback keeps its conn (async).
   */
  private enter(h: number, prev: number): void {
    if (prev === -1 || prev === h) this.fw.id = h;
    else this.fw = new ConnRef(this, h);
  }

  /** Undoes enter(h, prev); outer is the flyweight enter() found. */
  private leave(outer: ConnRef, prev: number, h: number): void {
    if (prev === -1 || prev === h) this.fw.id = prev;
    else this.fw = outer;
  }

  /**
   * A callback on h returned r. When r is a thenable (an async handler), the conn it was
   * given lives on in its continuation: that object stays bound to h for good (a ConnRef,
   * generation-checked: once h closes its writes answer false), the server takes a fresh
   * flyweight (one small object per async call, beside the call's own Promise), and a
   * rejection takes the path of a synchronous throw (handlerThrew). A sync handler's
   * return value (undefined, or whatever an arrow function returns) costs one test.
   */
  private settle(conn: ConnRef, r: unknown, h: number): void {
    if (!isThenable(r)) return;
    if (conn === this.fw) this.fw = new ConnRef(this, h);
    try {
      r.then(undefined, (err: unknown) => this.handlerThrew(h, err));
    } catch (err) {
      this.handlerThrew(h, err);
    }
  }

  private ipRelease(ip: string): void {
    const perIp = this.perIp!;
    const n = perIp.get(ip) ?? 0;
    if (n <= 1) perIp.delete(ip);
    else perIp.set(ip, n - 1);
  }

  // ---- timeouts ----------------------------------------------------------------------------

  /** Called by the clock when slot's timer fires: close what is due, re-file the rest. */
  onTimer(slot: number): void {
    const table = this.table;
    const h = table.handleOf(slot);
    if (h < 0 || table.state[slot] !== S_OPEN) return;
    const nowF = performance.now();
    const now = nowF >>> 0;
    const flags = table.flags[slot]!;
    if (this.stallActive(flags) && ((now - this.stallSince[slot]!) >>> 0) >= this.writeStallTimeoutMs) {
      return this.closeNow(h, R_WRITE_STALL, true);
    }
    const hs = this.handshakeTimeoutMs;
    if (hs > 0 && (flags & F_GREETED) === 0 && ((now - this.openedAt[slot]!) >>> 0) >= hs) {
      return this.closeNow(h, R_HANDSHAKE, false);
    }
    const idle = this.idleTimeoutMs;
    if (idle > 0 && ((now - table.lastActivity[slot]!) >>> 0) >= idle) {
      return this.closeNow(h, R_IDLE, false);
    }
    this.refile(slot, nowF);
  }

  /** The write-stall deadline applies: paused or flushing before close (not during stop(), whose own deadline rules). */
  private stallActive(flags: number): boolean {
    if (this.writeStallTimeoutMs === 0 || (flags & (F_PAUSED | F_CLOSING)) === 0) return false;
    return !(this.stopping && (flags & F_CLOSING) !== 0);
  }

  /**
   * Arms slot's timer for its earliest pending deadline, computed from the stored times
   * (lastActivity, openedAt, stallSince); cancels it when none applies. Deadlines are
   * computed from truncated ms and the wheel never fires early, so a fired timer finds its
   * deadline reached.
   */
  private refile(slot: number, nowF: number): void {
    const table = this.table;
    const now = nowF >>> 0;
    const flags = table.flags[slot]!;
    let due = Infinity;
    if (this.idleTimeoutMs > 0) due = this.idleTimeoutMs - ((now - table.lastActivity[slot]!) >>> 0);
    if (this.handshakeTimeoutMs > 0 && (flags & F_GREETED) === 0) {
      due = Math.min(due, this.handshakeTimeoutMs - ((now - this.openedAt[slot]!) >>> 0));
    }
    if (this.stallActive(flags)) {
      due = Math.min(due, this.writeStallTimeoutMs - ((now - this.stallSince[slot]!) >>> 0));
    }
    if (!this.clocked) {
      if (due === Infinity) return;
      this.timerBase = clock.register(this, this.table.capacity, this.o.tickMs);
      this.clocked = true;
    }
    if (due === Infinity) clock.cancel(this.timerBase + slot);
    else clock.schedule(this.timerBase + slot, due < 0 ? 0 : due, nowF);
  }

  /** The wheel was rebuilt: file every live slot's deadline again. */
  refileAll(): void {
    if (!this.clocked) return;
    const table = this.table;
    const nowF = performance.now();
    table.forEachLive((h) => {
      const slot = h & SLOT_MASK;
      if (table.state[slot] === S_OPEN) this.refile(slot, nowF);
    });
  }

  // ---- stats and stop ----------------------------------------------------------------------

  stats(): ServerStats {
    if (this.finalStats !== null) return this.finalStats;
    const mem = process.memoryUsage();
    // Free: stats() reads the RSS anyway, and a moment with no connection is what the
    // process costs without any (its warm-up included), for the per-connection estimate.
    if (this.table.size === 0) this.baselineRss = mem.rss;
    return {
      connections: this.table.size,
      peakConnections: this.peak,
      accepted: this.accepted,
      // An accepted connection the application closed with "limit" was refused by its own
      // limit: counted with the refusals, as CloseReason documents (closed has no "limit").
      rejected: this.rejected + this.closedCounts[R_LIMIT]!,
      closed: closedRecord(this.closedCounts),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      writeQueueBytes: this.writeQueueBytes,
      inputBufferBytes: this.inputBytes,
      pausedConnections: this.pausedConnections,
      rssBytes: mem.rss,
      baselineRssBytes: this.baselineRss,
      heapUsedBytes: mem.heapUsed,
      uptimeMs: performance.now() - this.startedAt,
      requestLatency: this.latency.snapshot(),
    };
  }

  stop(opts: { graceful?: boolean; timeoutMs?: number } = {}): Promise<ServerStats> {
    const graceful = opts?.graceful ?? true;
    const timeoutMs = opts?.timeoutMs ?? 10_000;
    // Checked before the stopping check so a bad argument gets the same answer in any state;
    // a promise-returning call reports it by rejecting (src/errors.ts).
    if (typeof graceful !== "boolean") return Promise.reject(new ServerOptionError("stop.graceful", "expected true or false"));
    if (typeof timeoutMs !== "number" || !(timeoutMs >= 0) || timeoutMs > 2 ** 31 - 1) {
      return Promise.reject(new ServerOptionError("stop.timeoutMs", `expected milliseconds 0..${2 ** 31 - 1}, got ${String(timeoutMs)}`));
    }
    if (this.stopPromise !== null) return this.stopPromise;
    this.stopping = true;
    this.stopPromise = new Promise<ServerStats>((resolve) => {
      this.stopResolve = resolve;
    });
    // Stop accepting now; connections stay open until closed below.
    this.listener?.stop(false);
    if (!graceful || timeoutMs === 0) {
      this.closeAll(true);
    } else {
      // setImmediate: a handler that called stop() finishes its callback (and its writes) first.
      setImmediate(() => this.closeAll(false));
      this.stopTimer = setTimeout(() => this.closeAll(true), timeoutMs);
    }
    if (this.table.size === 0) this.finishStop();
    return this.stopPromise;
  }

  /** Closes every connection with "shutdown": abort now, or flush then end. */
  private closeAll(abort: boolean): void {
    if (this.finalStats !== null) return;
    const table = this.table;
    table.forEachLive((h) => {
      const slot = h & SLOT_MASK;
      if (table.state[slot] !== S_OPEN) return;
      if (abort) {
        this.closeReason[slot] = this.closeReason[slot] || R_SHUTDOWN;
        this.closeNow(h, R_SHUTDOWN, true);
      } else {
        this.close(h, "shutdown");
      }
    });
  }

  private finishStop(): void {
    if (this.finalStats !== null) return;
    if (this.stopTimer !== null) clearTimeout(this.stopTimer);
    this.stopTimer = null;
    if (this.clocked) clock.unregister(this);
    this.clocked = false;
    this.listener?.stop(true);
    const stats = this.stats();
    this.finalStats = stats;
    this.stopResolve!(stats);
  }
}

/** True for a promise or any object with a then method (what an async handler returns). */
function isThenable(r: unknown): r is PromiseLike<unknown> {
  return (typeof r === "object" || typeof r === "function") && r !== null && typeof (r as { then?: unknown }).then === "function";
}

function logErrorHookFailure(e: unknown): void {
  console.error("myriad: handler.error threw:", e);
}

function listenError(err: unknown, address: string, o: ResolvedOptions): ListenError {
  const code = (err as { code?: string } | null)?.code;
  if (code === "EADDRINUSE") {
    return new ListenError(
      "ERR_ADDRESS_IN_USE",
      address,
      o.unix !== ""
        ? `cannot listen on unix socket ${address}: the path is in use; remove the stale socket file or choose another path`
        : `cannot listen on ${address}: the port is in use (EADDRINUSE); stop the process that holds it, choose another port, or pass port: 0 for a free one${o.reusePort ? "" : " (several processes may share a port only when every one passes reusePort: true)"}`,
      err,
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new ListenError(
      "ERR_ACCESS_DENIED",
      address,
      o.unix !== ""
        ? `cannot listen on unix socket ${address}: permission denied; choose a path in a directory this user may write`
        : `cannot listen on ${address}: permission denied; ports below 1024 need privileges, choose a port >= 1024`,
      err,
    );
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new ListenError(
    "ERR_LISTEN",
    address,
    `cannot listen on ${address}: ${detail}${code ? ` (${code})` : ""}; check the ${o.unix !== "" ? "unix path (its directory must exist)" : "hostname resolves to a local address and the port"}`,
    err,
  );
}
