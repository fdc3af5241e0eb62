/**
 * The reactor's one state-holding object, and the constants its modules share.
 *
 * The server is split by concern into modules of functions (Netty's pipeline names them):
 *   listen.ts     binding the listener, listen errors
 *   input.ts      inbound: bytes → frames (parse, pending partial frames, compaction) and
 *                 the protocol-stage seam in front of the codec
 *   dispatch.ts   calling the handler: the flyweight Conn, the one event scope (flyweight +
 *                 cork saved and restored), frame delivery, hooks, errors, async settling
 *   output.ts     outbound: write, cork, queue, pause/resume, flush on drain, close
 *   deadlines.ts  the timing-wheel deadlines of a slot (refile, what is due)
 *   fanout.ts     broadcast
 *   server.ts     the connection lifecycle (open, data, drain, end, close), stats, stop
 * Each module's functions take this state as their first argument: per connection there is
 * still no object, only the typed-array fields here and in the ConnTable, and the hot path
 * runs on one monomorphic object. The modules import downwards only (state ← deadlines ←
 * output ← dispatch ← input ← fanout ← server; listen ← server): closing is outbound
 * (output.ts closeNow, as in Netty), so any module can close a connection without reaching
 * up to the lifecycle, and Bun then calls server.ts's onClose from inside socket.end().
 */
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import { linesCodec, respCodec, type Codec } from "../codec/index.ts";
import { ConnTable, SegmentPool, SLOT_MASK } from "../conn-table/index.ts";
import type { ClockClient } from "./clock.ts";
import { ConnRef, type ConnOps } from "./connection.ts";
import type { ResolvedOptions } from "./options.ts";
import { FixedHistogram } from "../histogram.ts";
import { LATENCY_BOUNDS_MS, REASONS } from "./stats.ts";
import type { CloseReason, ConnectionBudget, Handler } from "./types.ts";

/** A server socket: socket.data is the connection's handle (a number), -1 once released. */
export type Sock = Socket<number>;
/** The listener Bun.listen returns, TCP or unix. */
export type Listener = TCPSocketListener<number> | UnixSocketListener<number>;

/** The slot of a handle: its low 20 bits (ConnTable's layout, stated there). */
export { SLOT_MASK };

/** table.state of an open connection (ConnTable's alloc() leaves 1; free() writes 0). */
export const S_OPEN = 2;
/** table.state while the close callback runs: writes are refused, conn.id still readable. */
export const S_CLOSED = 3;

/** table.flags bit: a first complete frame arrived (ends the handshake timeout). */
export const F_GREETED = 1;
/** table.flags bit: reading paused by write backpressure (queue over the mark, not yet at half). */
export const F_PAUSED = 2;
/** table.flags bit: close requested: reading stopped, flushing, then end(). */
export const F_CLOSING = 4;
/** table.flags bit: Bun reported a socket error: the close reason is "error". */
export const F_ERRORED = 8;
/** table.flags bit: the connection's input goes to the server's protocol stage, not the codec (input.ts). */
export const F_STAGED = 16;
/** table.flags bit: the connection's PROXY header has not arrived yet (proxy-stage.ts). */
export const F_PROXY = 32;
/** table.flags bit: its write queue holds this turn's output until the broadcast flush sends it in one write (fanout.ts). */
export const F_BATCHED = 64;
/** table.flags bit: reading paused by the application (conn.pauseReading) until conn.resumeReading; apart from F_PAUSED, so neither resume undoes the other's pause. */
export const F_HELD = 128;
/** The bits that stop a connection's input from being delivered: write backpressure or the application's pause. */
export const F_NOREAD = F_PAUSED | F_HELD;

/**
 * A protocol stage: a per-connection step that input passes through before the codec (an
 * HTTP upgrade and WebSocket framing, a PROXY protocol header). See input.ts for the seam.
 * One stage object serves every connection of a server; its per-connection state belongs in
 * typed arrays indexed by slot, like the server's own.
 */
export interface InputStage {
  /**
   * A connection was accepted. Return true to take it: the server sets F_STAGED, routes its
   * input to data(), and leaves handler.open to the stage, once the protocol's own opening
   * is done (input.ts unstage when it lets the connection through to the codec, dispatch.ts
   * callOpen when it keeps it). Return false and the connection is plain: the codec and
   * handler.open at once. Staged connections get no broadcast.
   */
  open(s: ReactorState, h: number, slot: number): boolean;
  /**
   * Input of a connection with F_STAGED set, inside its event scope (flyweight and cork set:
   * writes gather into one send): what the stage held before, then the new read. buf is
   * valid only during the call; hold (input.ts) what is not consumed.
   */
  data(s: ReactorState, h: number, slot: number, buf: Uint8Array): void;
  /**
   * A connection that still has F_STAGED closed (before handler.close): release what the
   * stage keeps for slot; return whether the handler saw open (then handler.close runs).
   */
  close(s: ReactorState, h: number, slot: number): boolean;
  /** Optional: ms until the stage's own next deadline for slot (now: performance.now() >>> 0), Infinity when none (deadlines.ts refile). */
  dueInMs?(s: ReactorState, slot: number, now: number): number;
  /** Optional: slot's timer fired; act on the stage's due deadlines and return a close reason (stats.ts R_*) or R_NONE. */
  onDue?(s: ReactorState, slot: number, now: number): number;
  /** Optional: server.stop() is about to close h gracefully (a WebSocket sends its close frame). */
  goingAway?(s: ReactorState, h: number, slot: number): void;
}

/** A codec that never says FRAME_TOO_LARGE must not make us buffer without bound. */
export const FRAME_SLACK_BYTES = 64;
/** Strings up to this many UTF-16 units are encoded into a reused buffer, not a new one. */
export const SCRATCH_BYTES = 64 * 1024;
/**
 * Writes to the connection whose event is running are gathered ("corked", as uWS does) into
 * one buffer of this size and sent with one socket.write when the event is done: a
 * pipelined read of 16 requests costs one send, not 16. Bigger writes go straight out.
 */
export const CORK_BYTES = 64 * 1024;

/**
 * Everything a server holds: options, the connection table and its side arrays, the one
 * flyweight Conn, the cork buffer, counters. The modules listed in the file comment operate
 * on it; server.ts's ReactorServer extends it with the lifecycle and the public API.
 */
export abstract class ReactorState implements ConnOps, ClockClient {
  readonly o: ResolvedOptions;
  readonly codec: Codec<any, any>;
  readonly handler: Handler<any>;
  readonly maxFrameBytes: number;
  readonly highWater: number;
  readonly lowWater: number;
  readonly hardLimit: number;
  readonly idleTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly writeStallTimeoutMs: number;
  /** Any timeout configured: only then does the server use the wheel. */
  readonly timed: boolean;
  /** Read the clock per data event (latency or idle timeout need it). */
  readonly clockPerEvent: boolean;
  readonly measureLatency: boolean;
  /**
   * The codec's frames all end with "\n" (lines, RESP): while a frame is pending, a read
   * without "\n" cannot complete it, so input measures again only when one arrives, when the
   * bytes held pass a power of two (so that a malformed or oversized prefix is still caught
   * before the bytes held double), or past maxFrameBytes.
   */
  readonly lfFramed: boolean;
  /** The protocol stage in front of the codec, null for plain TCP (see input.ts). */
  stage: InputStage | null = null;

  readonly table: ConnTable;
  readonly pool: SegmentPool;
  readonly sockets: (Sock | undefined)[];
  /** performance.now() >>> 0 at open; written and read only while handshakeTimeoutMs is set. */
  readonly openedAt: Uint32Array;
  /** When the write stall began; written and read only while writeStallTimeoutMs is set. */
  readonly stallSince: Uint32Array;
  /** The first recorded close reason (stats.ts R_*); R_NONE (0) in every slot not closing. */
  readonly closeReason: Uint8Array;
  readonly perIp: Map<string, number> | null;
  /** The connection cap shared with the process's other servers (connectionBudget), or null. */
  readonly budget: ConnectionBudget | null;
  /**
   * With proxyProtocol: the client's address and port by slot, from its PROXY header (the
   * socket's own for a LOCAL header); undefined / unread until the header is in. null without
   * proxyProtocol. One string per proxied connection is the price of the client's address.
   */
  readonly proxyAddress: (string | undefined)[] | null;
  readonly proxyPort: Uint16Array | null;

  /**
   * The flyweight Conn handed to callbacks, re-pointed (fw.id) at each callback's
   * connection. A callback that returns a thenable (an async handler) keeps its conn for its
   * continuation: that object then stays bound to its connection for good and the server
   * takes a fresh flyweight (dispatch.ts settle). Read it anew after every callback.
   */
  fw: ConnRef;
  /**
   * measureLatency: performance.now() at which the frame being delivered began: the data
   * event's start for its first frame, then the previous handler's return. One clock read
   * per frame (at the handler's return) serves as one frame's end and the next one's start.
   */
  frameStartMs = 0;
  readonly scratch: Buffer = Buffer.allocUnsafe(SCRATCH_BYTES * 3);
  readonly corkBuf: Uint8Array = new Uint8Array(CORK_BYTES);
  corkLen = 0;
  /** The slot whose writes are being corked (its event is running), -1 when none. */
  corkSlot = -1;
  /**
   * The handle of corkSlot while a write to it may go straight into the cork buffer: the
   * connection is open, not closing or paused, and has no write queue. write() then skips
   * every other check. -1 otherwise: cleared when that slot gets a queue (enqueue), pauses,
   * starts closing or closes.
   */
  corkHandle = -1;
  /** Nested events in progress (dispatch.ts enterEvent): a callback closed another connection, whose hooks run inside. */
  eventDepth = 0;
  /** Per nested event, the flyweight it found. */
  readonly savedFw: (ConnRef | undefined)[] = [];
  /** Per nested event, 4 numbers it saved: flyweight id, corkSlot, corkHandle, frameStartMs. */
  readonly savedNums: number[] = [];
  // This turn's broadcasts (fanout.ts): one log of their bytes, written to each connection in
  // one send when the turn ends.
  /** The bytes broadcast this turn, [0, bcLen); reused from turn to turn. */
  bcLog: Uint8Array = new Uint8Array(0);
  /** Bytes in bcLog. */
  bcLen = 0;
  /** Bytes broadcast in all turns before this one: bcLog[0]'s position in the server's broadcast stream. */
  bcBase = 0;
  /**
   * Per slot, the broadcast-stream position up to which the connection has been given the
   * log (or joined after it): a value at or below bcBase means "none of this turn's yet".
   * Allocated at the first broadcast.
   */
  bcCaught: Float64Array | null = null;
  /** A flush of bcLog is scheduled (setImmediate) or running. */
  bcPending = false;
  /** The wheel id of slot 0 (clock.register), valid while clocked. */
  timerBase = 0;
  /**
   * Whether this server holds wheel ids: taken at the first deadline, not at start, so that a
   * server whose only timeout is writeStallTimeoutMs reserves no wheel memory (16 bytes per
   * slot) until some connection actually stalls.
   */
  clocked = false;
  listener: Listener | null = null;
  stopping = false;

  // Counters: plain numbers, read by stats().
  accepted = 0;
  rejected = 0;
  peak = 0;
  bytesIn = 0;
  bytesOut = 0;
  framesIn = 0;
  framesOut = 0;
  writeQueueBytes = 0;
  /** Bytes of partial input held in segments (the sum of table.inLen over slots with an inRef). */
  inputBytes = 0;
  pausedConnections = 0;
  /** Connections whose reading the application paused (conn.pauseReading). */
  heldConnections = 0;
  /** Handles resumed by the application with input held, delivered by the next flush (input.ts resumeReading). */
  readonly resumeList: number[] = [];
  /** A flush of resumeList is scheduled (setImmediate). */
  resumePending = false;
  readonly closedCounts: Float64Array = new Float64Array(REASONS.length);
  /** Request latency: per frame, from its decoding to the handler's return. */
  readonly latency: FixedHistogram = new FixedHistogram(LATENCY_BOUNDS_MS);

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
    this.timed = o.idleTimeoutMs > 0 || o.handshakeTimeoutMs > 0 || o.writeStallTimeoutMs > 0 || o.proxyProtocol;
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
    this.budget = o.connectionBudget;
    this.proxyAddress = o.proxyProtocol ? new Array<string | undefined>(cap).fill(undefined) : null;
    this.proxyPort = o.proxyProtocol ? new Uint16Array(cap) : null;
    this.fw = new ConnRef(this, -1);
  }

  /** conn.write: output.ts's write, installed on the prototype by server.ts (no wrapper call per write). */
  declare write: (id: number, data: Uint8Array | string) => boolean;
  abstract send(id: number, message: unknown): boolean;
  abstract close(id: number, reason?: CloseReason): void;
  abstract isOpen(id: number): boolean;
  abstract remoteAddress(id: number): string;
  abstract remotePort(id: number): number;
  abstract localAddress(id: number): string;
  abstract localPort(id: number): number;
  abstract pauseReading(id: number): void;
  abstract resumeReading(id: number): void;
  abstract onTimer(slot: number): void;
  abstract refileAll(): void;
}
