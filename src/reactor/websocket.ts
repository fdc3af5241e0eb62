/**
 * WebSocket (RFC 6455) as a protocol stage of the reactor (state.ts InputStage): the HTTP
 * upgrade, then frames, over the same sockets, connection table, timing wheel and write
 * queues as every TCP connection, so every property of the reactor holds for WebSocket
 * connections too: no object per connection, timeouts on the wheel, bounded write queues,
 * backpressure, graceful stop. This file is the stage's entry: input per phase, the close of
 * a connection, its deadlines, the framer's callbacks (FrameSink) and the server-facing API;
 * websocket-state.ts maps the files the rest lives in.
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
 * handler (`reactorHandler`, websocket-conn.ts) that re-points the flyweight and calls the
 * application.
 *
 * Timing: the reactor's handshakeTimeoutMs covers the upgrade (F_GREETED is set at the 101).
 * pingIntervalMs, idleTimeoutMs (reads only: a peer must send something, if only a pong)
 * and closeTimeoutMs are this stage's deadlines on the reactor's wheel (dueInMs / onDue),
 * computed from one last-read time per slot (table.lastActivity), so a busy connection
 * costs no timer operations.
 */
import { CLOSE_ABNORMAL, CLOSE_GOING_AWAY, CLOSE_MESSAGE_TOO_BIG, CLOSE_NO_STATUS, FIN, OP_CLOSE, OP_PING, OP_PONG, REQUEST_TOO_LARGE, closePayload, measureRequest } from "../codec/index.ts";
import { CONSUME_FAILED, EXT_SERVER_TAKEOVER, type FrameSink } from "../websocket/index.ts";
import { deliver, report } from "./dispatch.ts";
import { ProtocolError } from "./errors.ts";
import { hold } from "./input.ts";
import { closeAfterFlush, closeNow } from "./output.ts";
import { F_CLOSING, F_NOREAD, S_OPEN, SLOT_MASK, type InputStage, type ReactorState } from "./state.ts";
import { R_IDLE, R_NONE, R_PEER, R_PROTOCOL, R_SERVER } from "./stats.ts";
import type { Handler } from "./types.ts";
import { reactorHandlerOf } from "./websocket-conn.ts";
import type { ResolvedWebSocketOptions } from "./websocket-options.ts";
import { catchUp, publish, publishLocal } from "./websocket-publish.ts";
import { control, send, sendClose } from "./websocket-send.ts";
import { OPENED, P_CLOSE_SENT, P_DONE, P_HTTP, P_OPEN, P_UPGRADING, PHASE, PINGED, WsState } from "./websocket-state.ts";
import type { WebSocketStats } from "./websocket-types.ts";
import { handshake, refuse } from "./websocket-upgrade.ts";

/**
 * The WebSocket stage of one server (see the file comment). attach() ties it to its server
 * before the first connection.
 */
export class WebSocketStage extends WsState implements InputStage, FrameSink {
  /** The handler the reactor calls (it forwards to the application's, with WebSocketConns). */
  readonly reactorHandler: Handler<any>;

  constructor(opts: ResolvedWebSocketOptions) {
    super(opts);
    this.reactorHandler = reactorHandlerOf(this);
  }

  /** Ties the stage to its server (sizes the per-slot arrays to its table). */
  override attach(s: ReactorState): void {
    super.attach(s);
    this.framer.sink = this;
  }

  // ---- InputStage ---------------------------------------------------------------------------

  open(_s: ReactorState, _h: number, _slot: number): boolean {
    return true; // every connection starts with the upgrade
  }

  data(s: ReactorState, h: number, slot: number, buf: Uint8Array): void {
    const phase = this.phase[slot]! & PHASE;
    if (phase === P_HTTP) return this.upgradeInput(s, h, slot, buf);
    if (phase === P_UPGRADING) return hold(s, slot, buf, 0, buf.length);
    if (phase === P_DONE) return;
    this.frameInput(s, h, slot, phase, buf, 0);
  }

  /**
   * Input before the upgrade: the request (held until complete), answered; frames sent right
   * behind it go on to frameInput. Apart from frameInput so that a connection that upgrades
   * and then stays idle runs (and has the JIT compile) none of the message path.
   */
  private upgradeInput(s: ReactorState, h: number, slot: number, buf: Uint8Array): void {
    const end = buf.length;
    const n = measureRequest(buf, 0, end, this.opts.maxHandshakeBytes);
    if (n === 0) return hold(s, slot, buf, 0, end);
    if (n === REQUEST_TOO_LARGE) return refuse(this, h, 431, `upgrade request over ${this.opts.maxHandshakeBytes} bytes`, null, R_PROTOCOL);
    handshake(this, h, slot, buf, n);
    if (n === end || s.table.state[slot] !== S_OPEN || (s.table.flags[slot]! & F_CLOSING) !== 0) return;
    const now = this.phase[slot]! & PHASE;
    // What followed the request waits while an async hook decides, or while open's writes
    // (or server.pauseReading) paused the connection.
    if (now === P_UPGRADING || (now === P_OPEN && (s.table.flags[slot]! & F_NOREAD) !== 0)) return hold(s, slot, buf, n, end);
    // (Its last read time was set as it opened.)
    if (now === P_OPEN) this.frameInput(s, h, slot, P_HTTP, buf, n);
  }

  /** Frames in buf[pos, end) of an open (or closing-handshake) connection, read in phase `phase`. */
  private frameInput(s: ReactorState, h: number, slot: number, phase: number, buf: Uint8Array, pos: number): void {
    const end = buf.length;
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

  close(_s: ReactorState, _h: number, slot: number): boolean {
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
      sendClose(this, h, slot, CLOSE_GOING_AWAY, "idle timeout");
      return R_IDLE;
    }
    if (this.opts.pingIntervalMs > 0 && (p & PINGED) === 0 && silent >= this.opts.pingIntervalMs) {
      this.phase[slot] = p | PINGED;
      control(this, h, slot, OP_PING, null, 0, 0);
      this.pingsOut++;
    }
    return R_NONE;
  }

  /** server.stop(): a close frame (1001) to every open connection before the reactor ends them. */
  goingAway(_s: ReactorState, h: number, slot: number): void {
    if ((this.phase[slot]! & PHASE) === P_OPEN) sendClose(this, h, slot, CLOSE_GOING_AWAY, "server shutting down");
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
    if ((this.phase[slot]! & PHASE) === P_OPEN) control(this, h, slot, OP_PONG, buf, start, length);
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
      if (this.batch !== null) catchUp(this, h);
      this.writeFramed(slot, FIN | OP_CLOSE, closePayload(code === CLOSE_NO_STATUS ? 0 : code, ""));
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
    if ((this.phase[slot]! & PHASE) === P_OPEN) sendClose(this, h, slot, code, why.length <= 123 ? why : "");
    else this.phase[slot] = (this.phase[slot]! & ~PHASE) | P_DONE;
    // Failing: no wait for the peer's close (RFC 6455 7.1.7).
    closeNow(s, h, R_PROTOCOL, false);
  }

  canContinue(h: number): boolean {
    return this.readable(h, h & SLOT_MASK);
  }

  // ---- the server's API ---------------------------------------------------------------------

  /** server.send: one message to h (see WebSocketConn.send). */
  send(h: number, data: string | Uint8Array, compress = true): boolean {
    return send(this, h, data, compress);
  }

  /** server.publish: data to every subscriber of topic (websocket-publish.ts publish). */
  publish(topic: string, data: string | Uint8Array, compress = true, except = -1): number {
    return publish(this, topic, data, compress, except);
  }

  /** publish() to this server's subscribers only (a message that came over the node bus). */
  publishLocal(topic: string, data: string | Uint8Array, compress = true, except = -1): number {
    return publishLocal(this, topic, data, compress, except);
  }

  /** How many connections of this server are subscribed to topic. */
  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  /** Calls fn when a topic gets its first subscriber on this server (true) and loses its last (false). */
  onTopicActive(fn: (topic: string, active: boolean) => void): void {
    this.topics.onActive = fn;
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
