/**
 * The WebSocket stage's one state-holding object (WsState) and the constants its files share.
 *
 * The stage is split by concern into files of functions that take this state first, as the
 * reactor's own modules take ReactorState (state.ts):
 *   websocket-state.ts    per-slot fields, counters, phases; framing a message into the scratch
 *   websocket-batch.ts    PublishBatch: one turn's publishes to a topic, framed once
 *   websocket-publish.ts  topics: subscribe, publish, the turn-end flush, catching a conn up
 *   websocket-send.ts     what goes out on one connection: send, ping/pong, the close handshake
 *   websocket-conn.ts     WsConn, the application's flyweight, and the reactor's adapter handler
 *   websocket-upgrade.ts  the HTTP upgrade: the 101 or an HTTP error, the upgrade hook
 *   websocket.ts          WebSocketStage: the InputStage (input, close, deadlines) and FrameSink
 * They import downwards only (batch ← state ← publish ← send ← conn ← upgrade ← websocket), so
 * there is no cycle and no object per connection: per slot there are only the typed arrays here
 * and in the framer, and the hot path runs on one monomorphic object.
 */
import { CLOSE_ABNORMAL, MessageDeflater, UpgradeScan, frameHeaderBytes, writeFrameHeader } from "../codec/index.ts";
import { SegmentPool } from "../conn-table/index.ts";
import { Topics, WebSocketFramer, EXT_SERVER_TAKEOVER, EXT_WINDOW_SHIFT } from "../websocket/index.ts";
import { writeSlot } from "./output.ts";
import { F_CLOSING, F_NOREAD, S_OPEN, SLOT_MASK, type ReactorState } from "./state.ts";
import type { ResolvedWebSocketOptions } from "./websocket-options.ts";
import type { WebSocketConn, WebSocketHandler } from "./websocket-types.ts";
import type { PublishBatch } from "./websocket-batch.ts";

// Phases (low bits of `phase`); 0, a fresh slot's value, is "reading the upgrade request".
/** Phase: reading the upgrade request (a fresh slot's 0). */
export const P_HTTP = 0;
/** Phase: an async upgrade hook is deciding; input waits (held). */
export const P_UPGRADING = 1;
/** Phase: upgraded, frames flow. */
export const P_OPEN = 2;
/** Phase: we sent a close frame and wait for the peer's. */
export const P_CLOSE_SENT = 3;
/** Phase: the closing handshake is over (or the connection failed): input is dropped. */
export const P_DONE = 4;
/** The phase bits of `phase`. */
export const PHASE = 0x0f;
/** phase bit: a ping went out since the last read (no second one until the peer speaks). */
export const PINGED = 0x10;
/** phase bit: handler.open ran, so handler.close must. */
export const OPENED = 0x20;

/** Buffer's native UTF-8 writer, callable on any Uint8Array (the cork buffer). */
export const utf8Write = (Buffer.prototype as unknown as { utf8Write: (this: Uint8Array, s: string, offset: number) => number }).utf8Write;

/** The scratch buffer's size: a message up to this (with its header) is framed without allocating. */
export const SCRATCH_BYTES = 64 * 1024;
/** Room kept before a text message encoded into the scratch buffer, for its frame header. */
export const HEADROOM = 10;

/** The flyweight WebSocketConn (websocket-conn.ts WsConn): its handle is re-pointed per callback, -1 when free. */
export interface FlyweightConn extends WebSocketConn {
  id: number;
}

/** Everything the WebSocket stage of one server holds (see the file comment); attach() sizes it. */
export class WsState {
  s: ReactorState = null as unknown as ReactorState;
  readonly opts: ResolvedWebSocketOptions;
  readonly app: WebSocketHandler;
  framer: WebSocketFramer = null as unknown as WebSocketFramer;
  topics: Topics = null as unknown as Topics;
  phase: Uint8Array = new Uint8Array(0);
  /** The code handler.close will get, once known (0: not yet); the reason when not "". */
  closeCode: Uint16Array = new Uint16Array(0);
  readonly closeReasons = new Map<number, string>();
  /** Subprotocol per slot: index + 1 into protocolNames (0: none). */
  protocolIndex: Uint8Array = new Uint8Array(0);
  readonly protocolNames: string[] = [];
  /** The flyweight handed to the application; its id is -1 when no callback holds it (websocket-conn.ts). */
  fw: FlyweightConn = null as unknown as FlyweightConn;
  /** What the handler's close gets, set by close() just before the reactor calls it. */
  closingCode = CLOSE_ABNORMAL;
  closingReason = "";
  /** Compressors without context takeover, by window bits (made at first use). */
  readonly deflaters: (MessageDeflater | undefined)[] = [];
  /** Compressors of connections with server context takeover, by slot. */
  readonly ownDeflaters = new Map<number, MessageDeflater>();
  readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES + HEADROOM);
  readonly scan = new UpgradeScan();
  /** This turn's publishes (to one topic), written at its end; null when none. */
  batch: PublishBatch | null = null;
  flushScheduled = false;
  /** Messages published so far (the sequence number of the last one). */
  seq = 0;
  /** Per slot: the sequence number of the last published message it was given (made at the first publish). */
  caught: Float64Array | null = null;
  /** Whether pings or an idle timeout need the last read time of each slot. */
  readonly timed: boolean;
  /** Called after each publish made on this server (not one that came from the node bus): the bus sends it on. */
  onPublished: ((topic: string, data: string | Uint8Array, compress: boolean) => void) | null = null;

  // Counters (stats()).
  openCount = 0;
  upgraded = 0;
  readonly refused = new Map<number, number>();
  messagesIn = 0;
  messagesOut = 0;
  published = 0;
  pingsIn = 0;
  pingsOut = 0;
  readonly closeCodes = new Map<number, number>();

  constructor(opts: ResolvedWebSocketOptions) {
    this.opts = opts;
    this.app = opts.handler;
    this.timed = opts.pingIntervalMs > 0 || opts.idleTimeoutMs > 0;
  }

  /** Ties the state to its server (sizes the per-slot arrays to its table). */
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
    this.topics = new Topics(cap);
  }

  /** True when h is a live, upgraded connection that is not closing. */
  isOpen(h: number): boolean {
    const s = this.s;
    if (!s.table.isLive(h)) return false;
    const slot = h & SLOT_MASK;
    return (this.phase[slot]! & PHASE) === P_OPEN && s.table.state[slot] === S_OPEN && (s.table.flags[slot]! & F_CLOSING) === 0;
  }

  /** True when input may go on to frames (open or closing handshake, not paused or closing). */
  readable(h: number, slot: number): boolean {
    const s = this.s;
    const phase = this.phase[slot]! & PHASE;
    return (phase === P_OPEN || phase === P_CLOSE_SENT) && s.table.state[slot] === S_OPEN && (s.table.flags[slot]! & (F_NOREAD | F_CLOSING)) === 0 && s.table.isLive(h);
  }

  /** h's subprotocol ("" when none or h is gone). */
  protocolOf(h: number): string {
    if (!this.s.table.isLive(h)) return "";
    const i = this.protocolIndex[h & SLOT_MASK]!;
    return i === 0 ? "" : this.protocolNames[i - 1]!;
  }

  /** protocolIndex's value for a subprotocol name (0 past 255 distinct names: not remembered). */
  internProtocol(name: string): number {
    let i = this.protocolNames.indexOf(name);
    if (i < 0) {
      if (this.protocolNames.length === 255) return 0;
      i = this.protocolNames.push(name) - 1;
    }
    return i + 1;
  }

  /** The compressor for slot: its own with server context takeover, else the shared one for its window. */
  deflaterOf(slot: number, ext: number): MessageDeflater {
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

  /** Writes one frame (header + payload, in one write when it fits the scratch buffer); returns as writeSlot. */
  writeFramed(slot: number, b0: number, payload: Uint8Array): number {
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
}

/** A string to slot (ASCII HTTP heads); false when the connection is gone. */
export function writeString(s: ReactorState, slot: number, text: string): boolean {
  const b = Buffer.from(text, "latin1");
  return writeSlot(s, slot, b, 0, b.length) >= 0;
}
