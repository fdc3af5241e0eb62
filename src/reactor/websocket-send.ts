/**
 * What goes out on one WebSocket connection: a message (conn.send / server.send, framed
 * straight into the cork buffer when it is the running connection's), control frames (ping,
 * pong), and the server's side of the close handshake (conn.close, conn.terminate, the close
 * frame for timeouts and stop). Every write first lets the connection catch up with this
 * turn's publishes (websocket-publish.ts catchUp), so its messages keep their order.
 */
import { CLOSE_NORMAL, FIN, MAX_CONTROL_PAYLOAD_BYTES, OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, RSV1, closePayload, frameHeaderBytes, isValidCloseCode, writeFrameHeader } from "../codec/index.ts";
import { MyriadRangeError } from "../errors.ts";
import { EXT_DEFLATE } from "../websocket/index.ts";
import { refile } from "./deadlines.ts";
import { closeAfterFlush, closeNow, notWritable, writeSlot } from "./output.ts";
import { CORK_BYTES, F_CLOSING, S_OPEN, SLOT_MASK } from "./state.ts";
import { R_SERVER } from "./stats.ts";
import { catchUp } from "./websocket-publish.ts";
import { HEADROOM, P_CLOSE_SENT, P_DONE, P_OPEN, PHASE, SCRATCH_BYTES, utf8Write, type WsState } from "./websocket-state.ts";

/** conn.send / server.send: one message to h (see WebSocketConn.send). */
export function send(w: WsState, h: number, data: string | Uint8Array, compress = true): boolean {
  const s = w.s;
  if (h === s.corkHandle && w.batch === null) {
    // The connection whose event is running, open with no queue (the reactor's corkHandle):
    // the frame goes straight into the cork buffer, header and payload, no other copy.
    const slot = h & SLOT_MASK;
    if ((w.phase[slot]! & PHASE) === P_OPEN && (!compress || (w.framer.ext[slot]! & EXT_DEFLATE) === 0)) {
      const used = s.corkLen;
      const cb = s.corkBuf;
      if (typeof data === "string") {
        // Under 42 UTF-16 units the UTF-8 is under 126 bytes: a 2-byte header.
        if (data.length < 42 && used + 2 + 3 * data.length <= CORK_BYTES) {
          const n = utf8Write.call(cb, data, used + 2);
          cb[used] = FIN | OP_TEXT;
          cb[used + 1] = n;
          s.corkLen = used + 2 + n;
          w.messagesOut++;
          s.framesOut++;
          return true;
        }
      } else if (data instanceof Uint8Array) {
        const n = data.length;
        const hb = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
        if (used + hb + n <= CORK_BYTES) {
          writeFrameHeader(cb, used, FIN | OP_BINARY, n);
          if (n <= 32) {
            // Four bytes a turn (a byte loop was a sixth of an echo's path at 32 bytes);
            // set() is a native call that costs more than this up to about 32 bytes.
            const at = used + hb;
            let i = 0;
            for (; i + 4 <= n; i += 4) {
              cb[at + i] = data[i]!;
              cb[at + i + 1] = data[i + 1]!;
              cb[at + i + 2] = data[i + 2]!;
              cb[at + i + 3] = data[i + 3]!;
            }
            for (; i < n; i++) cb[at + i] = data[i]!;
          } else cb.set(data, used + hb);
          s.corkLen = used + hb + n;
          w.messagesOut++;
          s.framesOut++;
          return true;
        }
      }
    }
  }
  if (typeof data !== "string" && !(data instanceof Uint8Array)) throw notWritable("conn.send", data);
  if (!s.table.isLive(h)) return false;
  const slot = h & SLOT_MASK;
  if ((w.phase[slot]! & PHASE) !== P_OPEN || s.table.state[slot] !== S_OPEN || (s.table.flags[slot]! & F_CLOSING) !== 0) return false;
  if (w.batch !== null) {
    catchUp(w, h);
    if (s.table.state[slot] !== S_OPEN) return false;
  }
  w.messagesOut++;
  s.framesOut++;
  const ext = w.framer.ext[slot]!;
  const isText = typeof data === "string";
  const b0 = FIN | (isText ? OP_TEXT : OP_BINARY);
  if (compress && (ext & EXT_DEFLATE) !== 0) {
    const raw = isText ? Buffer.from(data) : data;
    if (raw.length >= w.opts.deflate!.thresholdBytes) {
      const z = w.deflaterOf(slot, ext).compress(raw, 0, raw.length);
      return w.writeFramed(slot, b0 | RSV1, z) > 0;
    }
    return w.writeFramed(slot, b0, raw) > 0;
  }
  if (!isText) return w.writeFramed(slot, b0, data) > 0;
  // Text: encode behind room for the header, then put the header right before it.
  const str = data as string;
  if (str.length * 3 <= SCRATCH_BYTES) {
    const buf = w.scratch;
    const n = utf8Write.call(buf, str, HEADROOM);
    const hb = frameHeaderBytes(n);
    writeFrameHeader(buf, HEADROOM - hb, b0, n);
    return writeSlot(s, slot, buf, HEADROOM - hb, hb + n) > 0;
  }
  return w.writeFramed(slot, b0, Buffer.from(str)) > 0;
}

/** A control frame (ping, pong) with payload buf[start, start + length) or none; returns as writeSlot. */
export function control(w: WsState, h: number, slot: number, op: number, buf: Uint8Array | null, start: number, length: number): number {
  const s = w.s;
  if (w.batch !== null) {
    catchUp(w, h);
    if (s.table.state[slot] !== S_OPEN) return -1;
  }
  const out = w.scratch;
  out[0] = FIN | op;
  out[1] = length;
  for (let i = 0; i < length; i++) out[2 + i] = buf![start + i]!;
  return writeSlot(s, slot, out, 0, 2 + length);
}

/** conn.ping: false when h is not open; a payload over 125 bytes throws. */
export function ping(w: WsState, h: number, data?: string | Uint8Array): boolean {
  const s = w.s;
  if (!s.table.isLive(h)) return false;
  const slot = h & SLOT_MASK;
  if ((w.phase[slot]! & PHASE) !== P_OPEN || s.table.state[slot] !== S_OPEN || (s.table.flags[slot]! & F_CLOSING) !== 0) return false;
  const payload = data === undefined ? new Uint8Array(0) : typeof data === "string" ? Buffer.from(data) : data;
  if (payload.length > MAX_CONTROL_PAYLOAD_BYTES) {
    throw new MyriadRangeError("ERR_WEBSOCKET_PING", `a ping carries at most ${MAX_CONTROL_PAYLOAD_BYTES} bytes, got ${payload.length}`);
  }
  w.pingsOut++;
  return control(w, h, slot, OP_PING, payload, 0, payload.length) > 0;
}

/** Writes a close frame and records the code for handler.close (unless the peer's came first). */
export function sendClose(w: WsState, h: number, slot: number, code: number, reason: string): void {
  if (w.batch !== null) catchUp(w, h);
  if (w.closeCode[slot] === 0) {
    w.closeCode[slot] = code;
    if (reason !== "") w.closeReasons.set(slot, reason);
  }
  w.phase[slot] = (w.phase[slot]! & ~PHASE) | P_CLOSE_SENT;
  w.writeFramed(slot, FIN | OP_CLOSE, closePayload(code, reason));
}

/** conn.close(code, reason): starts the closing handshake (an invalid code throws). */
export function closeConn(w: WsState, h: number, code = CLOSE_NORMAL, reason = ""): void {
  if (!isValidCloseCode(code)) {
    throw new MyriadRangeError("ERR_WEBSOCKET_CLOSE_CODE", `close code ${code} may not be sent: use 1000, 1001, 1008, 1011 or 3000-4999`);
  }
  const s = w.s;
  if (!s.table.isLive(h)) return;
  const slot = h & SLOT_MASK;
  if (s.table.state[slot] !== S_OPEN || (s.table.flags[slot]! & F_CLOSING) !== 0) return;
  const phase = w.phase[slot]! & PHASE;
  if (phase === P_CLOSE_SENT || phase === P_DONE) return;
  if (phase !== P_OPEN) return closeAfterFlush(s, h, R_SERVER);
  s.closeReason[slot] = R_SERVER;
  sendClose(w, h, slot, code, reason);
  if (s.table.state[slot] !== S_OPEN) return;
  const nowF = performance.now();
  s.table.lastActivity[slot] = nowF >>> 0; // the close timeout runs from here
  refile(s, slot, nowF);
}

/** conn.terminate(): closes at once, no closing handshake. */
export function terminate(w: WsState, h: number): void {
  const s = w.s;
  if (!s.table.isLive(h)) return;
  closeNow(s, h, R_SERVER, true);
}
