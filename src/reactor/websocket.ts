/**
 * WebSocket (RFC 6455) as a protocol stage of the reactor (state.ts InputStage): the HTTP
 * upgrade, then frames, over the same sockets, connection table, timing wheel and write
 * queues as every TCP connection, so every property of the reactor holds for WebSocket
 * connections too: no object per connection, timeouts on the wheel, bounded write queues,
 * backpressure, graceful stop.
 *
 * Per connection, beyond a TCP connection's fields: its phase (1 byte), the close code the
 * handler will get (2 bytes, written only while closing), the subprotocol's index (1 byte,
 * only when one was agreed), the framer's fields (src/websocket framer.ts: 1 byte of
 * extension bits when permessage-deflate is on; message state only while a message is in
 * flight) and the head of its topic list (4 bytes, only once it subscribes). An idle
 * upgraded connection writes its phase and, with pings or an idle timeout, its last read
 * time: nothing else.
 *
 * The application's handler gets WebSocketConn flyweights; the reactor's dispatch (events,
 * corking, latency, async settling, error reporting) is reused by handing it an adapter
 * handler (`reactorHandler`) that re-points the flyweight and calls the application.
 *
 * Timing: the reactor's handshakeTimeoutMs covers the upgrade (F_GREETED is set at the 101).
 * pingIntervalMs, idleTimeoutMs (reads only: a peer must send something, if only a pong)
 * and closeTimeoutMs are this stage's deadlines on the reactor's wheel (dueInMs / onDue),
 * computed from one last-read time per slot (table.lastActivity), so a busy connection
 * costs no timer operations.
 */
import {
  CLOSE_ABNORMAL,
  CLOSE_GOING_AWAY,
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_NO_STATUS,
  CLOSE_NORMAL,
  FIN,
  MAX_CONTROL_PAYLOAD_BYTES,
  MessageDeflater,
  OP_BINARY,
  OP_CLOSE,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  REQUEST_TOO_LARGE,
  RSV1,
  closePayload,
  errorResponse,
  frameHeaderBytes,
  isValidCloseCode,
  measureRequest,
  negotiateDeflate,
  parseUpgradeRequest,
  switchingProtocolsResponse,
  writeFrameHeader,
  UpgradeScan,
  PLAIN_101_BYTES,
  type UpgradeRequest,
} from "../codec/index.ts";
import { NO_REF, SegmentPool } from "../conn-table/index.ts";
import { MyriadRangeError, MyriadTypeError } from "../errors.ts";
import { CONSUME_FAILED, EXT_CLIENT_TAKEOVER, EXT_DEFLATE, EXT_SERVER_TAKEOVER, EXT_WINDOW_SHIFT, Topics, WebSocketFramer, type FrameSink, type Topic } from "../websocket/index.ts";
import type { ConnRef } from "./connection.ts";
import { refile } from "./deadlines.ts";
import { callOpen, deliver, enterEvent, handlerThrew, leaveEvent, report } from "./dispatch.ts";
import { ProtocolError } from "./errors.ts";
import { hold, resumeInput } from "./input.ts";
import { closeAfterFlush, closeNow, notWritable, writeSlot } from "./output.ts";
import { CORK_BYTES, F_CLOSING, F_GREETED, F_PAUSED, S_OPEN, SLOT_MASK, type InputStage, type ReactorState } from "./state.ts";
import { R_IDLE, R_NONE, R_PEER, R_PROTOCOL, R_SERVER } from "./stats.ts";
import type { CloseReason, Handler } from "./types.ts";
import type { ResolvedWebSocketOptions } from "./websocket-options.ts";
import type { UpgradeDecision, WebSocketConn, WebSocketHandler, WebSocketStats } from "./websocket-types.ts";

// Phases (low bits of `phase`); 0, a fresh slot's value, is "reading the upgrade request".
const P_HTTP = 0;
/** An async upgrade hook is deciding; input waits (held). */
const P_UPGRADING = 1;
const P_OPEN = 2;
/** We sent a close frame and wait for the peer's. */
const P_CLOSE_SENT = 3;
/** The closing handshake is over (or the connection failed): input is dropped. */
const P_DONE = 4;
const PHASE = 0x0f;
/** phase bit: a ping went out since the last read (no second one until the peer speaks). */
const PINGED = 0x10;
/** phase bit: handler.open ran, so handler.close must. */
const OPENED = 0x20;

/** Buffer's native UTF-8 writer, callable on any Uint8Array (the cork buffer). */
const utf8Write = (Buffer.prototype as unknown as { utf8Write: (this: Uint8Array, s: string, offset: number) => number }).utf8Write;

/** The scratch buffer's size: a message up to this (with its header) is framed without allocating. */
const SCRATCH_BYTES = 64 * 1024;
const HEADROOM = 10;

/**
 * The WebSocket stage of one server (see the file comment). attach() ties it to its server
 * before the first connection.
 */
export class WebSocketStage implements InputStage, FrameSink {
  private s: ReactorState = null as unknown as ReactorState;
  private readonly opts: ResolvedWebSocketOptions;
  private readonly app: WebSocketHandler;
  private framer: WebSocketFramer = null as unknown as WebSocketFramer;
  private topics: Topics = null as unknown as Topics;
  private phase: Uint8Array = new Uint8Array(0);
  /** The code handler.close will get, once known (0: not yet); the reason when not "". */
  private closeCode: Uint16Array = new Uint16Array(0);
  private readonly closeReasons = new Map<number, string>();
  /** Subprotocol per slot: index + 1 into protocolNames (0: none). */
  private protocolIndex: Uint8Array = new Uint8Array(0);
  private readonly protocolNames: string[] = [];
  /** The flyweight handed to the application; -1 when no callback holds it. */
  private fw: WsConn;
  /** What the handler's close gets, set by close() just before the reactor calls it. */
  private closingCode = CLOSE_ABNORMAL;
  private closingReason = "";
  /** Compressors without context takeover, by window bits (made at first use). */
  private readonly deflaters: (MessageDeflater | undefined)[] = [];
  /** Compressors of connections with server context takeover, by slot. */
  private readonly ownDeflaters = new Map<number, MessageDeflater>();
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES + HEADROOM);
  private readonly scan = new UpgradeScan();
  /** This turn's publishes (to one topic), written at its end; null when none. */
  private batch: PublishBatch | null = null;
  private flushScheduled = false;
  /** Messages published so far (the sequence number of the last one). */
  private seq = 0;
  /** Per slot: the sequence number of the last published message it was given (made at the first publish). */
  private caught: Float64Array | null = null;
  private readonly timed: boolean;

  // Counters (stats()).
  private openCount = 0;
  private upgraded = 0;
  private readonly refused = new Map<number, number>();
  private messagesIn = 0;
  private messagesOut = 0;
  private published = 0;
  private pingsIn = 0;
  private pingsOut = 0;
  private readonly closeCodes = new Map<number, number>();

  /** The handler the reactor calls (it forwards to the application's, with WebSocketConns). */
  readonly reactorHandler: Handler<any>;

  constructor(opts: ResolvedWebSocketOptions) {
    this.opts = opts;
    this.app = opts.handler;
    this.fw = new WsConn(this, -1);
    this.timed = opts.pingIntervalMs > 0 || opts.idleTimeoutMs > 0;
    const stage = this;
    const app = opts.handler;
    this.reactorHandler = {
      open(conn: ConnRef) {
        if (app.open === undefined) return undefined;
        const fw = stage.enterApp(conn.id);
        return stage.leaveApp(fw, app.open.call(app, fw));
      },
      message(conn: ConnRef, data: string | Uint8Array) {
        const fw = stage.enterApp(conn.id);
        return stage.leaveApp(fw, app.message.call(app, fw, data));
      },
      close(conn: ConnRef, _reason: CloseReason) {
        // Read first: a nested close (this handler closing another connection) overwrites them.
        const code = stage.closingCode;
        const reason = stage.closingReason;
        if (app.close === undefined) return undefined;
        const fw = stage.enterApp(conn.id);
        return stage.leaveApp(fw, app.close.call(app, fw, code, reason));
      },
      drain: app.drain === undefined
        ? undefined
        : (conn: ConnRef) => {
            const fw = stage.enterApp(conn.id);
            return stage.leaveApp(fw, app.drain!.call(app, fw));
          },
      error: app.error === undefined
        ? undefined
        : (conn: ConnRef, err: Error) => {
            const fw = stage.enterApp(conn.id);
            return stage.leaveApp(fw, app.error!.call(app, fw, err));
          },
    };
  }

  /** Ties the stage to its server (sizes the per-slot arrays to its table). */
  attach(s: ReactorState): void {
    this.s = s;
    const cap = s.table.capacity;
    this.phase = new Uint8Array(cap);
    this.closeCode = new Uint16Array(cap);
    this.protocolIndex = new Uint8Array(cap);
    this.framer = new WebSocketFramer({
      capacity: cap,
      maxMessageBytes: s.maxFrameBytes,
      // Its own pool: message buffers are not the reactor's input or output.
      pool: new SegmentPool({ segmentBytes: 4096, maxSegments: Math.max(256, Math.min(cap, 1 << 14)) }),
    });
    this.framer.sink = this;
    this.topics = new Topics(cap);
  }

  // ---- the application's flyweight ----------------------------------------------------------

  /** The WebSocketConn for a callback on id: the flyweight, or a new one when it is in use (a nested callback). */
  private enterApp(id: number): WsConn {
    const fw = this.fw;
    if (fw.id !== -1) return new WsConn(this, id);
    fw.id = id;
    return fw;
  }

  /** After a callback: an async one keeps its conn for good (a new flyweight replaces it). */
  private leaveApp(fw: WsConn, r: unknown): unknown {
    if (fw === this.fw) {
      if (r !== undefined && r !== null && typeof (r as { then?: unknown }).then === "function") this.fw = new WsConn(this, -1);
      else fw.id = -1;
    }
    return r;
  }

  // ---- InputStage ---------------------------------------------------------------------------

  open(_s: ReactorState, _h: number, _slot: number): boolean {
    return true; // every connection starts with the upgrade
  }

  data(s: ReactorState, h: number, slot: number, buf: Uint8Array): void {
    const phase = this.phase[slot]! & PHASE;
    const end = buf.length;
    let pos = 0;
    if (phase === P_HTTP) {
      const n = measureRequest(buf, 0, end, this.opts.maxHandshakeBytes);
      if (n === 0) return hold(s, slot, buf, 0, end);
      if (n === REQUEST_TOO_LARGE) return this.refuse(h, 431, `upgrade request over ${this.opts.maxHandshakeBytes} bytes`, null, R_PROTOCOL);
      this.handshake(h, slot, buf, n);
      if (s.table.state[slot] !== S_OPEN || (s.table.flags[slot]! & F_CLOSING) !== 0) return;
      const now = this.phase[slot]! & PHASE;
      // What followed the request waits while an async hook decides, or while open's writes
      // paused the connection.
      if (now === P_UPGRADING || (now === P_OPEN && (s.table.flags[slot]! & F_PAUSED) !== 0)) {
        if (n < end) hold(s, slot, buf, n, end);
        return;
      }
      if (now !== P_OPEN) return;
      pos = n;
    } else if (phase === P_UPGRADING) {
      return hold(s, slot, buf, 0, end);
    } else if (phase === P_DONE) {
      return;
    }
    if (this.timed && phase !== P_CLOSE_SENT) {
      s.table.lastActivity[slot] = performance.now() >>> 0;
      if ((this.phase[slot]! & PINGED) !== 0) this.phase[slot]! &= ~PINGED;
    }
    if (pos >= end) return;
    const used = this.framer.consume(h, buf, pos, end);
    if (used === CONSUME_FAILED || used >= end) return;
    const flags = s.table.flags[slot]!;
    // Stopped early: an incomplete frame, or paused by the handler's writes: keep the rest.
    if (s.table.state[slot] === S_OPEN && (flags & F_CLOSING) === 0 && (this.phase[slot]! & PHASE) !== P_DONE) hold(s, slot, buf, used, end);
  }

  close(_s: ReactorState, h: number, slot: number): boolean {
    const p = this.phase[slot]!;
    const opened = (p & OPENED) !== 0;
    if (opened) {
      this.openCount--;
      const code = this.closeCode[slot] || CLOSE_ABNORMAL;
      this.closingCode = code;
      this.closingReason = this.closeReasons.get(slot) ?? "";
      this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
    }
    if (this.closeCode[slot] !== 0) this.closeCode[slot] = 0;
    this.closeReasons.delete(slot);
    if (p !== 0) this.phase[slot] = 0;
    if (this.protocolIndex[slot] !== 0) this.protocolIndex[slot] = 0;
    const ext = this.framer.ext[slot]!;
    if ((ext & EXT_SERVER_TAKEOVER) !== 0) {
      this.ownDeflaters.get(slot)?.close();
      this.ownDeflaters.delete(slot);
    }
    this.framer.release(slot);
    this.topics.removeAll(slot);
    void h;
    return opened;
  }

  /** Deadlines of slot beyond the reactor's (deadlines.ts): ms until the next one, Infinity when none. */
  dueInMs(s: ReactorState, slot: number, now: number): number {
    const p = this.phase[slot]!;
    const phase = p & PHASE;
    const silent = (now - s.table.lastActivity[slot]!) >>> 0;
    if (phase === P_CLOSE_SENT) return this.opts.closeTimeoutMs - silent;
    if (phase !== P_OPEN) return Infinity;
    let due = Infinity;
    if (this.opts.idleTimeoutMs > 0) due = this.opts.idleTimeoutMs - silent;
    if (this.opts.pingIntervalMs > 0 && (p & PINGED) === 0) due = Math.min(due, this.opts.pingIntervalMs - silent);
    return due;
  }

  /**
   * slot's timer fired: acts on what is due (a ping; a close frame then the reactor's close
   * for the idle and close timeouts) and returns the reactor close reason, or R_NONE.
   */
  onDue(s: ReactorState, slot: number, now: number): number {
    const p = this.phase[slot]!;
    const phase = p & PHASE;
    const silent = (now - s.table.lastActivity[slot]!) >>> 0;
    const h = s.table.handleOf(slot);
    if (phase === P_CLOSE_SENT) return silent >= this.opts.closeTimeoutMs ? R_SERVER : R_NONE;
    if (phase !== P_OPEN) return R_NONE;
    if (this.opts.idleTimeoutMs > 0 && silent >= this.opts.idleTimeoutMs) {
      this.sendClose(h, slot, CLOSE_GOING_AWAY, "idle timeout");
      return R_IDLE;
    }
    if (this.opts.pingIntervalMs > 0 && (p & PINGED) === 0 && silent >= this.opts.pingIntervalMs) {
      this.phase[slot] = p | PINGED;
      this.control(h, slot, OP_PING, null, 0, 0);
      this.pingsOut++;
    }
    return R_NONE;
  }

  /** server.stop(): a close frame (1001) to every open connection before the reactor ends them. */
  goingAway(s: ReactorState, h: number, slot: number): void {
    if ((this.phase[slot]! & PHASE) === P_OPEN) this.sendClose(h, slot, CLOSE_GOING_AWAY, "server shutting down");
    void s;
  }

  // ---- the upgrade --------------------------------------------------------------------------

  private handshake(h: number, slot: number, buf: Uint8Array, n: number): void {
    const s = this.s;
    const scan = this.scan;
    if (this.app.upgrade === undefined && scan.scan(buf, 0, n)) {
      // The common case, allocating nothing: no hook, a plain valid request.
      const deflate = this.opts.deflate !== null && scan.hasExtensions;
      let protocol = "";
      if (scan.hasProtocols && this.opts.subprotocols.length > 0) {
        const offered = scan.text(buf, "protocol").split(",").map((p) => p.trim());
        protocol = this.opts.subprotocols.find((p) => offered.includes(p)) ?? "";
      }
      if (!deflate && protocol === "") return this.acceptPlain(h, slot, buf);
      return this.accept(h, slot, scan.key(buf), deflate ? scan.text(buf, "extensions") : "", protocol, undefined);
    }
    const parsed = parseUpgradeRequest(buf, 0, n, () => s.remoteAddress(h));
    if (!parsed.ok) return this.refuse(h, parsed.status, parsed.message, null, R_PROTOCOL);
    const req = parsed.request;
    let protocol = "";
    for (const p of this.opts.subprotocols) {
      if (req.protocols.includes(p)) {
        protocol = p;
        break;
      }
    }
    const hook = this.app.upgrade;
    if (hook === undefined) return this.accept(h, slot, parsed.key, parsed.extensions, protocol, undefined);
    let decision: unknown;
    const fw = this.enterApp(h);
    try {
      decision = hook.call(this.app, req, fw);
    } catch (err) {
      this.leaveApp(fw, undefined);
      report(s, h, err);
      return this.refuse(h, 500, "the server's upgrade hook failed", null, R_SERVER);
    }
    this.leaveApp(fw, decision);
    if (decision !== null && typeof decision === "object" && typeof (decision as { then?: unknown }).then === "function") {
      this.phase[slot] = P_UPGRADING;
      (decision as PromiseLike<UpgradeDecision>).then(
        (d) => this.decided(h, slot, parsed.key, parsed.extensions, protocol, req, d),
        (err: unknown) => this.decided(h, slot, parsed.key, parsed.extensions, protocol, req, undefined, err),
      );
      return;
    }
    this.apply(h, slot, parsed.key, parsed.extensions, protocol, req, decision as UpgradeDecision);
  }

  /** An async upgrade hook settled: answer (as h's event) and pass on what input waited. */
  private decided(h: number, slot: number, key: string, extensions: string, protocol: string, req: UpgradeRequest, d: UpgradeDecision, err?: unknown): void {
    const s = this.s;
    if (!s.table.isLive(h) || s.table.state[slot] !== S_OPEN || (this.phase[slot]! & PHASE) !== P_UPGRADING) return;
    enterEvent(s, h, slot);
    try {
      if (err !== undefined) {
        report(s, h, err);
        this.refuse(h, 500, "the server's upgrade hook failed", null, R_SERVER);
      } else {
        this.apply(h, slot, key, extensions, protocol, req, d);
        if (this.readable(h, slot)) resumeInput(s, h, slot);
      }
    } catch (e) {
      handlerThrew(s, h, e);
    }
    leaveEvent(s, h);
  }

  /** Acts on the hook's decision. */
  private apply(h: number, slot: number, key: string, extensions: string, protocol: string, req: UpgradeRequest, d: UpgradeDecision): void {
    if (d === undefined || d === true) return this.accept(h, slot, key, extensions, protocol, undefined);
    if (d === false) return this.refuse(h, 403, "forbidden", null, R_SERVER);
    if (d === null || typeof d !== "object") return this.hookError(h, `upgrade hook returned ${String(d)}: expected undefined, a boolean or an object`);
    const headers = (d as { headers?: Record<string, string> }).headers;
    if ("status" in d) {
      const status = d.status;
      if (typeof status !== "number" || !Number.isInteger(status) || status < 400 || status > 599) {
        return this.hookError(h, `upgrade hook refused with status ${String(status)}: expected 400..599`);
      }
      return this.refuse(h, status, d.message ?? "refused", headers ?? null, R_SERVER);
    }
    const chosen = d.protocol ?? protocol;
    if (chosen !== "" && !req.protocols.includes(chosen)) {
      return this.hookError(h, `upgrade hook chose subprotocol ${JSON.stringify(chosen)}, which the client did not offer (${req.protocols.join(", ") || "none"})`);
    }
    this.accept(h, slot, key, extensions, chosen, headers);
  }

  private hookError(h: number, message: string): void {
    report(this.s, h, new MyriadRangeError("ERR_WEBSOCKET_UPGRADE", message));
    this.refuse(h, 500, "the server's upgrade hook failed", null, R_SERVER);
  }

  /** Answers 101 (no subprotocol, no extension) from the scanned request's bytes, and opens. */
  private acceptPlain(h: number, slot: number, buf: Uint8Array): void {
    const s = this.s;
    if (slot === s.corkSlot && s.table.outRef[slot]! === NO_REF && s.corkLen + PLAIN_101_BYTES <= CORK_BYTES) {
      // Written where the event's writes gather: no copy and no garbage (a view made per
      // upgrade costs memory at a burst of them: the GC heap grows and stays grown).
      s.corkLen += this.scan.write101(buf, s.corkBuf, s.corkLen);
    } else {
      const n = this.scan.write101(buf, this.scratch, 0);
      if (writeSlot(s, slot, this.scratch, 0, n) < 0) return;
    }
    this.opened(h, slot);
  }

  /** Answers 101 and opens the connection: handler.open, then frames. */
  private accept(h: number, slot: number, key: string, extensions: string, protocol: string, headers: Record<string, string> | undefined): void {
    const s = this.s;
    let ext = 0;
    let extResponse = "";
    const deflate = this.opts.deflate;
    if (deflate !== null) {
      const agreed = negotiateDeflate(extensions, deflate);
      if (agreed !== null) {
        const p = agreed.params;
        ext = EXT_DEFLATE | ((p.serverMaxWindowBits - 8) << EXT_WINDOW_SHIFT);
        if (!p.clientNoContextTakeover) ext |= EXT_CLIENT_TAKEOVER;
        if (!p.serverNoContextTakeover) ext |= EXT_SERVER_TAKEOVER;
        extResponse = agreed.response;
      }
    }
    let response: string;
    try {
      response = switchingProtocolsResponse(key, protocol, extResponse, headers);
    } catch (err) {
      report(s, h, err);
      return this.refuse(h, 500, "the server's upgrade hook failed", null, R_SERVER);
    }
    if (!writeString(s, slot, response)) return;
    if (ext !== 0) this.framer.ext[slot] = ext;
    if (protocol !== "") this.protocolIndex[slot] = this.internProtocol(protocol);
    this.opened(h, slot);
  }

  /** The 101 is written: the connection is open (timers, counters, handler.open). */
  private opened(h: number, slot: number): void {
    const s = this.s;
    this.phase[slot] = P_OPEN | OPENED;
    this.openCount++;
    this.upgraded++;
    s.table.flags[slot]! |= F_GREETED;
    if (this.timed) {
      const nowF = performance.now();
      s.table.lastActivity[slot] = nowF >>> 0;
      refile(s, slot, nowF);
    }
    if (this.app.open !== undefined) callOpen(s, h, slot);
  }

  private internProtocol(name: string): number {
    let i = this.protocolNames.indexOf(name);
    if (i < 0) {
      if (this.protocolNames.length === 255) return 0; // past 255 distinct names: not remembered
      i = this.protocolNames.push(name) - 1;
    }
    return i + 1;
  }

  /** Answers an HTTP error and closes once it is sent. */
  private refuse(h: number, status: number, message: string, headers: Record<string, string> | null, reason: number): void {
    const s = this.s;
    const slot = h & SLOT_MASK;
    this.refused.set(status, (this.refused.get(status) ?? 0) + 1);
    this.phase[slot] = P_DONE;
    let text: string;
    try {
      text = errorResponse(status, message, headers ?? undefined);
    } catch (err) {
      report(s, h, err);
      text = errorResponse(500, "the server's upgrade hook failed");
    }
    writeString(s, slot, text);
    closeAfterFlush(s, h, reason);
  }

  /** True when input may go on to frames (open or closing handshake, not paused or closing). */
  private readable(h: number, slot: number): boolean {
    const s = this.s;
    const phase = this.phase[slot]! & PHASE;
    return (phase === P_OPEN || phase === P_CLOSE_SENT) && s.table.state[slot] === S_OPEN && (s.table.flags[slot]! & (F_PAUSED | F_CLOSING)) === 0 && s.table.isLive(h);
  }

  // ---- FrameSink ----------------------------------------------------------------------------

  onMessage(h: number, data: string | Uint8Array): void {
    const slot = h & SLOT_MASK;
    // After our close frame, the peer's messages are read and dropped until its close.
    if ((this.phase[slot]! & PHASE) !== P_OPEN) return;
    this.messagesIn++;
    deliver(this.s, h, slot, data);
  }

  onPing(h: number, buf: Uint8Array, start: number, length: number): void {
    const slot = h & SLOT_MASK;
    this.pingsIn++;
    if ((this.phase[slot]! & PHASE) === P_OPEN) this.control(h, slot, OP_PONG, buf, start, length);
  }

  onPong(_h: number): void {}

  onCloseFrame(h: number, code: number, reason: string): void {
    const s = this.s;
    const slot = h & SLOT_MASK;
    const phase = this.phase[slot]! & PHASE;
    this.closeCode[slot] = code;
    if (reason !== "") this.closeReasons.set(slot, reason);
    else this.closeReasons.delete(slot);
    this.phase[slot] = (this.phase[slot]! & ~PHASE) | P_DONE;
    if (phase === P_OPEN) {
      // Echo the code (RFC 6455 5.5.1), then end once it is sent.
      if (this.batch !== null) this.catchUp(h);
      this.writeFrame(slot, FIN | OP_CLOSE, closePayload(code === CLOSE_NO_STATUS ? 0 : code, ""));
      return closeAfterFlush(s, h, R_PEER);
    }
    // The answer to ours: the closing handshake is complete.
    closeAfterFlush(s, h, R_SERVER);
  }

  onFail(h: number, code: number, why: string): void {
    const s = this.s;
    const slot = h & SLOT_MASK;
    if (s.handler.error !== undefined) {
      report(s, h, new ProtocolError(code === CLOSE_MESSAGE_TOO_BIG ? "ERR_FRAME_TOO_LARGE" : "ERR_FRAME_MALFORMED", `WebSocket ${code}: ${why}`));
    }
    if (s.table.state[slot] !== S_OPEN) return;
    if ((this.phase[slot]! & PHASE) === P_OPEN) this.sendClose(h, slot, code, why.length <= 123 ? why : "");
    else this.phase[slot] = (this.phase[slot]! & ~PHASE) | P_DONE;
    // Failing: no wait for the peer's close (RFC 6455 7.1.7).
    closeNow(s, h, R_PROTOCOL, false);
  }

  canContinue(h: number): boolean {
    return this.readable(h, h & SLOT_MASK);
  }

  // ---- sending ------------------------------------------------------------------------------

  /** conn.send / server.send: one message to h. */
  send(h: number, data: string | Uint8Array, compress = true): boolean {
    const s = this.s;
    if (h === s.corkHandle && this.batch === null) {
      // The connection whose event is running, open with no queue (the reactor's corkHandle):
      // the frame goes straight into the cork buffer, header and payload, no other copy.
      const slot = h & SLOT_MASK;
      if ((this.phase[slot]! & PHASE) === P_OPEN && (!compress || (this.framer.ext[slot]! & EXT_DEFLATE) === 0)) {
        const used = s.corkLen;
        const cb = s.corkBuf;
        if (typeof data === "string") {
          // Under 42 UTF-16 units the UTF-8 is under 126 bytes: a 2-byte header.
          if (data.length < 42 && used + 2 + 3 * data.length <= CORK_BYTES) {
            const n = utf8Write.call(cb, data, used + 2);
            cb[used] = FIN | OP_TEXT;
            cb[used + 1] = n;
            s.corkLen = used + 2 + n;
            this.messagesOut++;
            s.framesOut++;
            return true;
          }
        } else if (data instanceof Uint8Array) {
          const n = data.length;
          const hb = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
          if (used + hb + n <= CORK_BYTES) {
            writeFrameHeader(cb, used, FIN | OP_BINARY, n);
            if (n <= 32) for (let i = 0; i < n; i++) cb[used + hb + i] = data[i]!;
            else cb.set(data, used + hb);
            s.corkLen = used + hb + n;
            this.messagesOut++;
            s.framesOut++;
            return true;
          }
        }
      }
    }
    if (typeof data !== "string" && !(data instanceof Uint8Array)) throw notWritable("conn.send", data);
    if (!s.table.isLive(h)) return false;
    const slot = h & SLOT_MASK;
    if ((this.phase[slot]! & PHASE) !== P_OPEN || s.table.state[slot] !== S_OPEN || (s.table.flags[slot]! & F_CLOSING) !== 0) return false;
    if (this.batch !== null) {
      this.catchUp(h);
      if (s.table.state[slot] !== S_OPEN) return false;
    }
    this.messagesOut++;
    s.framesOut++;
    const ext = this.framer.ext[slot]!;
    const isText = typeof data === "string";
    const b0 = FIN | (isText ? OP_TEXT : OP_BINARY);
    if (compress && (ext & EXT_DEFLATE) !== 0) {
      const raw = isText ? Buffer.from(data) : data;
      if (raw.length >= this.opts.deflate!.thresholdBytes) {
        const z = this.deflaterOf(slot, ext).compress(raw, 0, raw.length);
        return this.writeFramed(slot, b0 | RSV1, z) > 0;
      }
      return this.writeFramed(slot, b0, raw) > 0;
    }
    if (!isText) return this.writeFramed(slot, b0, data) > 0;
    // Text: encode behind room for the header, then put the header right before it.
    const str = data as string;
    if (str.length * 3 <= SCRATCH_BYTES) {
      const buf = this.scratch;
      const n = (buf as unknown as { utf8Write(s: string, offset: number): number }).utf8Write(str, HEADROOM);
      const hb = frameHeaderBytes(n);
      writeFrameHeader(buf, HEADROOM - hb, b0, n);
      return writeSlot(s, slot, buf, HEADROOM - hb, hb + n) > 0;
    }
    return this.writeFramed(slot, b0, Buffer.from(str)) > 0;
  }

  /** Writes one frame (header + payload, in one write when it fits the scratch buffer); returns as writeSlot. */
  private writeFramed(slot: number, b0: number, payload: Uint8Array): number {
    const s = this.s;
    const n = payload.length;
    const hb = frameHeaderBytes(n);
    if (hb + n <= this.scratch.length) {
      const buf = this.scratch;
      writeFrameHeader(buf, 0, b0, n);
      if (n <= 32) for (let i = 0; i < n; i++) buf[hb + i] = payload[i]!;
      else buf.set(payload, hb);
      return writeSlot(s, slot, buf, 0, hb + n);
    }
    const head = new Uint8Array(hb);
    writeFrameHeader(head, 0, b0, n);
    const r = writeSlot(s, slot, head, 0, hb);
    if (r < 0) return r;
    return writeSlot(s, slot, payload, 0, n);
  }

  private writeFrame(slot: number, b0: number, payload: Uint8Array): number {
    return this.writeFramed(slot, b0, payload);
  }

  private deflaterOf(slot: number, ext: number): MessageDeflater {
    const bits = 8 + (ext >>> EXT_WINDOW_SHIFT);
    const d = this.opts.deflate!;
    if ((ext & EXT_SERVER_TAKEOVER) !== 0) {
      let own = this.ownDeflaters.get(slot);
      if (own === undefined) {
        own = new MessageDeflater(bits, d.level, d.memLevel, true);
        this.ownDeflaters.set(slot, own);
      }
      return own;
    }
    return (this.deflaters[bits] ??= new MessageDeflater(bits, d.level, d.memLevel, false));
  }

  /** A control frame (ping, pong) with payload buf[start, start + length) or none. */
  private control(h: number, slot: number, op: number, buf: Uint8Array | null, start: number, length: number): number {
    const s = this.s;
    if (this.batch !== null) {
      this.catchUp(h);
      if (s.table.state[slot] !== S_OPEN) return -1;
    }
    const out = this.scratch;
    out[0] = FIN | op;
    out[1] = length;
    for (let i = 0; i < length; i++) out[2 + i] = buf![start + i]!;
    return writeSlot(s, slot, out, 0, 2 + length);
  }

  /** conn.ping. */
  ping(h: number, data?: string | Uint8Array): boolean {
    const s = this.s;
    if (!s.table.isLive(h)) return false;
    const slot = h & SLOT_MASK;
    if ((this.phase[slot]! & PHASE) !== P_OPEN || s.table.state[slot] !== S_OPEN || (s.table.flags[slot]! & F_CLOSING) !== 0) return false;
    const payload = data === undefined ? new Uint8Array(0) : typeof data === "string" ? Buffer.from(data) : data;
    if (payload.length > MAX_CONTROL_PAYLOAD_BYTES) {
      throw new MyriadRangeError("ERR_WEBSOCKET_PING", `a ping carries at most ${MAX_CONTROL_PAYLOAD_BYTES} bytes, got ${payload.length}`);
    }
    this.pingsOut++;
    return this.control(h, slot, OP_PING, payload, 0, payload.length) > 0;
  }

  /** Writes a close frame and records the code for handler.close (unless the peer's came first). */
  private sendClose(h: number, slot: number, code: number, reason: string): void {
    if (this.batch !== null) this.catchUp(h);
    if (this.closeCode[slot] === 0) {
      this.closeCode[slot] = code;
      if (reason !== "") this.closeReasons.set(slot, reason);
    }
    this.phase[slot] = (this.phase[slot]! & ~PHASE) | P_CLOSE_SENT;
    this.writeFrame(slot, FIN | OP_CLOSE, closePayload(code, reason));
    void h;
  }

  /** conn.close(code, reason). */
  closeConn(h: number, code: number, reason: string): void {
    if (!isValidCloseCode(code)) {
      throw new MyriadRangeError("ERR_WEBSOCKET_CLOSE_CODE", `close code ${code} may not be sent: use 1000, 1001, 1008, 1011 or 3000-4999`);
    }
    const s = this.s;
    if (!s.table.isLive(h)) return;
    const slot = h & SLOT_MASK;
    if (s.table.state[slot] !== S_OPEN || (s.table.flags[slot]! & F_CLOSING) !== 0) return;
    const phase = this.phase[slot]! & PHASE;
    if (phase === P_CLOSE_SENT || phase === P_DONE) return;
    if (phase !== P_OPEN) return closeAfterFlush(s, h, R_SERVER);
    s.closeReason[slot] = R_SERVER;
    this.sendClose(h, slot, code, reason);
    if (s.table.state[slot] !== S_OPEN) return;
    const nowF = performance.now();
    s.table.lastActivity[slot] = nowF >>> 0; // the close timeout runs from here
    refile(s, slot, nowF);
  }

  /** conn.terminate(). */
  terminate(h: number): void {
    const s = this.s;
    if (!s.table.isLive(h)) return;
    closeNow(s, h, R_SERVER, true);
  }

  // ---- topics -------------------------------------------------------------------------------

  subscribe(h: number, topic: string): boolean {
    if (!this.isOpen(h)) return false;
    if (!this.topics.subscribe(h, topic)) return false;
    // Joining mid-turn: only what is published from now on.
    if (this.batch !== null && this.batch.topic.name === topic) this.caught![h & SLOT_MASK] = this.seq;
    return true;
  }

  unsubscribe(h: number, topic: string): boolean {
    if (!this.s.table.isLive(h)) return false;
    if (this.batch !== null && this.batch.topic.name === topic) this.catchUp(h);
    return this.topics.unsubscribe(h, topic);
  }

  isSubscribed(h: number, topic: string): boolean {
    return this.s.table.isLive(h) && this.topics.isSubscribed(h, topic);
  }

  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  /**
   * Sends data to every subscriber of topic but `except` (a handle, or -1). The frame is built
   * once and appended to this turn's publish batch; at the turn's end (setImmediate) each
   * subscriber gets all the batch holds for it in one write (see PublishBatch). Returns how
   * many connections it is for (open, upgraded subscribers but `except`).
   */
  publish(topic: string, data: string | Uint8Array, compress = true, except = -1): number {
    const n = this.publishLocal(topic, data, compress, except);
    if (this.onPublished !== null) this.onPublished(topic, data, compress);
    return n;
  }

  /** Called after each publish made on this server (not one that came from the node bus): the bus sends it on. */
  onPublished: ((topic: string, data: string | Uint8Array, compress: boolean) => void) | null = null;

  /** Calls fn when a topic gets its first subscriber on this server (true) and loses its last (false). */
  onTopicActive(fn: (topic: string, active: boolean) => void): void {
    this.topics.onActive = fn;
  }

  /** publish() to this server's subscribers only (a message that came over the node bus). */
  publishLocal(topic: string, data: string | Uint8Array, compress = true, except = -1): number {
    if (typeof data !== "string" && !(data instanceof Uint8Array)) {
      throw new MyriadTypeError("ERR_WRITE_TYPE", `publish: data must be a string or a Uint8Array, got ${data === null ? "null" : typeof data}`);
    }
    this.published++;
    const t = this.topics.get(topic);
    if (t === undefined) return 0;
    const s = this.s;
    const table = s.table;
    let count = 0;
    for (let i = 0; i < t.size; i++) {
      const h: number = t.handles[i]!;
      const slot = h & SLOT_MASK;
      if (h !== except && table.state[slot] === S_OPEN && (table.flags[slot]! & F_CLOSING) === 0 && (this.phase[slot]! & PHASE) === P_OPEN) count++;
    }
    if (count === 0) return 0;
    let batch = this.batch;
    if (batch !== null && batch.topic !== t) {
      // Another topic: the batch so far goes first, so every connection keeps the order.
      this.flushBatch();
      batch = null;
    }
    if (batch === null) {
      batch = this.batch = new PublishBatch(t, this.seq);
      this.caught ??= new Float64Array(table.capacity);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flushAtTurnEnd);
      }
    }
    const isText = typeof data === "string";
    const raw = isText ? Buffer.from(data) : data;
    batch.add(FIN | (isText ? OP_TEXT : OP_BINARY), raw, compress && raw.length >= (this.opts.deflate?.thresholdBytes ?? Infinity), except);
    this.seq++;
    this.messagesOut += count;
    s.framesOut += count;
    return count;
  }

  private readonly flushAtTurnEnd = (): void => {
    this.flushScheduled = false;
    this.flushBatch();
  };

  /** Writes the pending batch: to each of its topic's subscribers what it has not had, in one write each. */
  private flushBatch(): void {
    const batch = this.batch;
    if (batch === null) return;
    // Detached first: a hook run by a write (a close) may publish, which starts a new batch.
    this.batch = null;
    const t = batch.topic;
    // Backwards: a write that closes its own connection (hard limit) swaps an already
    // visited member into its place, never an unvisited one.
    for (let i = t.size - 1; i >= 0; i--) {
      if (i >= t.size) continue;
      this.deliver(batch, t.handles[i]!);
    }
  }

  /**
   * Before anything else is written to h (a send, a ping or pong, a close frame) or it
   * unsubscribes: the publishes of this turn it has not had go first.
   */
  private catchUp(h: number): void {
    const batch = this.batch;
    if (batch === null || this.caught![h & SLOT_MASK]! >= this.seq) return;
    if (this.topics.isSubscribed(h, batch.topic.name)) this.deliver(batch, h);
  }

  /** Writes h the batch's messages it has not had (one write). */
  private deliver(batch: PublishBatch, h: number): void {
    const s = this.s;
    const slot = h & SLOT_MASK;
    const table = s.table;
    if (table.state[slot] !== S_OPEN || (table.flags[slot]! & F_CLOSING) !== 0 || (this.phase[slot]! & PHASE) !== P_OPEN) return;
    const caught = this.caught!;
    const from = caught[slot]! > batch.seqBase ? caught[slot]! - batch.seqBase : 0;
    const n = batch.count;
    if (from >= n) return;
    caught[slot] = batch.seqBase + n;
    const ext = this.framer.ext[slot]!;
    if ((ext & EXT_DEFLATE) !== 0 && batch.compressible !== 0) {
      if ((ext & EXT_SERVER_TAKEOVER) !== 0) {
        // This connection's own compressor: each message compressed for it alone.
        const d = this.deflaterOf(slot, ext);
        const out = batch.gather(from, n, h, (k, raw) => (batch.compress[k] ? d.compress(raw, 0, raw.length) : null));
        writeSlot(s, slot, out, 0, out.length);
        return;
      }
      const z = batch.compressed(8 + (ext >>> EXT_WINDOW_SHIFT), (raw, bits) => this.deflaterOf(slot, ext).compress(raw, 0, raw.length), h, from);
      writeSlot(s, slot, z.bytes, z.start, z.end - z.start);
      return;
    }
    if (batch.excepts !== 0 && batch.excepted(h)) {
      const out = batch.gather(from, n, h, null);
      writeSlot(s, slot, out, 0, out.length);
      return;
    }
    const start = from === 0 ? 0 : batch.ends[from - 1]!;
    writeSlot(s, slot, batch.log, start, batch.len - start);
  }

  // ---- conn helpers -------------------------------------------------------------------------

  isOpen(h: number): boolean {
    const s = this.s;
    if (!s.table.isLive(h)) return false;
    const slot = h & SLOT_MASK;
    return (this.phase[slot]! & PHASE) === P_OPEN && s.table.state[slot] === S_OPEN && (s.table.flags[slot]! & F_CLOSING) === 0;
  }

  protocolOf(h: number): string {
    if (!this.s.table.isLive(h)) return "";
    const i = this.protocolIndex[h & SLOT_MASK]!;
    return i === 0 ? "" : this.protocolNames[i - 1]!;
  }

  remoteAddress(h: number): string {
    return this.s.remoteAddress(h);
  }

  remotePort(h: number): number {
    return this.s.remotePort(h);
  }

  /** The WebSocket counters. */
  stats(): WebSocketStats {
    const byCode = (m: Map<number, number>) => Object.fromEntries([...m].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v]));
    return {
      connections: this.openCount,
      upgraded: this.upgraded,
      refused: byCode(this.refused),
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      published: this.published,
      pingsIn: this.pingsIn,
      pingsOut: this.pingsOut,
      closeCodes: byCode(this.closeCodes),
      topics: this.topics.topicCount,
      subscriptions: this.topics.subscriptions,
      messageBufferBytes: this.framer.heldBytes,
    };
  }
}

/** A string to slot (ASCII HTTP heads); false when the connection is gone. */
function writeString(s: ReactorState, slot: number, text: string): boolean {
  const b = Buffer.from(text, "latin1");
  return writeSlot(s, slot, b, 0, b.length) >= 0;
}

/** The WebSocketConn handed to callbacks: a handle and the stage, every method generation-checked. */
class WsConn implements WebSocketConn {
  id: number;
  private readonly stage: WebSocketStage;

  constructor(stage: WebSocketStage, id: number) {
    this.stage = stage;
    this.id = id;
  }

  send(data: string | Uint8Array, compress?: boolean): boolean {
    return this.stage.send(this.id, data, compress);
  }

  close(code = CLOSE_NORMAL, reason = ""): void {
    this.stage.closeConn(this.id, code, reason);
  }

  terminate(): void {
    this.stage.terminate(this.id);
  }

  ping(data?: string | Uint8Array): boolean {
    return this.stage.ping(this.id, data);
  }

  subscribe(topic: string): boolean {
    return this.stage.subscribe(this.id, topic);
  }

  unsubscribe(topic: string): boolean {
    return this.stage.unsubscribe(this.id, topic);
  }

  isSubscribed(topic: string): boolean {
    return this.stage.isSubscribed(this.id, topic);
  }

  publish(topic: string, data: string | Uint8Array, compress?: boolean): number {
    return this.stage.publish(topic, data, compress, this.id);
  }

  get protocol(): string {
    return this.stage.protocolOf(this.id);
  }

  get remoteAddress(): string {
    return this.stage.remoteAddress(this.id);
  }

  get remotePort(): number {
    return this.stage.remotePort(this.id);
  }

  get isOpen(): boolean {
    return this.stage.isOpen(this.id);
  }

  ref(): WebSocketConn {
    return new WsConn(this.stage, this.id);
  }
}


/**
 * One turn's publishes to one topic: their frames once, back to back in one log, so that a
 * subscriber's share is one slice of it and one write (uWebSockets corks the same way). A
 * subscriber excluded from some message (conn.publish's sender), or with a compressor of its
 * own, gets its messages gathered into one buffer instead; subscribers with
 * permessage-deflate share one compressed log per window size, built at the first of them.
 */
class PublishBatch {
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

  get count(): number {
    return this.ends.length;
  }

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
    let total = 0;
    for (let k = from; k < to; k++) {
      if (this.except[k] === h) continue;
      const z = compressOne === null ? null : compressOne(k, this.payload(k));
      let frame: Uint8Array;
      if (z === null) {
        frame = this.log.subarray(k === 0 ? 0 : this.ends[k - 1]!, this.ends[k]!);
      } else {
        const b0 = this.log[k === 0 ? 0 : this.ends[k - 1]!]!;
        frame = new Uint8Array(frameHeaderBytes(z.length) + z.length);
        frame.set(z, writeFrameHeader(frame, 0, b0 | RSV1, z.length));
      }
      parts.push(frame);
      total += frame.length;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
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
        const body = deflate(this.payload(k), bits);
        const b0 = this.log[k === 0 ? 0 : this.ends[k - 1]!]!;
        frame = new Uint8Array(frameHeaderBytes(body.length) + body.length);
        frame.set(body, writeFrameHeader(frame, 0, b0 | RSV1, body.length));
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
      let total = 0;
      for (const p of parts) total += p.length;
      const bytes = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
      return { bytes, start: 0, end: total };
    }
    return { bytes: z.bytes, start: from === 0 ? 0 : z.ends[from - 1]!, end: z.ends[this.count - 1]! };
  }
}
