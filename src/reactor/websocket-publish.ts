/**
 * Topics on the WebSocket stage: subscribe and unsubscribe, publish (the frame built once into
 * this turn's PublishBatch), and the flush at the turn's end that gives every subscriber its
 * share in one write. catchUp keeps each connection's order: before anything else is written
 * to it, the publishes of this turn it has not had go first.
 */
import { FIN, OP_BINARY, OP_TEXT } from "../codec/index.ts";
import { MyriadTypeError } from "../errors.ts";
import { EXT_DEFLATE, EXT_SERVER_TAKEOVER, EXT_WINDOW_SHIFT } from "../websocket/index.ts";
import { writeSlot } from "./output.ts";
import { F_CLOSING, S_OPEN, SLOT_MASK } from "./state.ts";
import { PublishBatch } from "./websocket-batch.ts";
import { P_OPEN, PHASE, type WsState } from "./websocket-state.ts";

/** conn.subscribe: false when h is not open or already subscribed. */
export function subscribe(w: WsState, h: number, topic: string): boolean {
  if (!w.isOpen(h)) return false;
  if (!w.topics.subscribe(h, topic)) return false;
  // Joining mid-turn: only what is published from now on.
  if (w.batch !== null && w.batch.topic.name === topic) w.caught![h & SLOT_MASK] = w.seq;
  return true;
}

/** conn.unsubscribe: false when h is gone or was not subscribed. */
export function unsubscribe(w: WsState, h: number, topic: string): boolean {
  if (!w.s.table.isLive(h)) return false;
  if (w.batch !== null && w.batch.topic.name === topic) catchUp(w, h);
  return w.topics.unsubscribe(h, topic);
}

/** conn.isSubscribed. */
export function isSubscribed(w: WsState, h: number, topic: string): boolean {
  return w.s.table.isLive(h) && w.topics.isSubscribed(h, topic);
}

/**
 * Sends data to every subscriber of topic but `except` (a handle, or -1). The frame is built
 * once and appended to this turn's publish batch; at the turn's end (setImmediate) each
 * subscriber gets all the batch holds for it in one write (see PublishBatch). Returns how
 * many connections it is for (open, upgraded subscribers but `except`).
 */
export function publish(w: WsState, topic: string, data: string | Uint8Array, compress = true, except = -1): number {
  const n = publishLocal(w, topic, data, compress, except);
  if (w.onPublished !== null) w.onPublished(topic, data, compress);
  return n;
}

/** publish() to this server's subscribers only (a message that came over the node bus). */
export function publishLocal(w: WsState, topic: string, data: string | Uint8Array, compress = true, except = -1): number {
  if (typeof data !== "string" && !(data instanceof Uint8Array)) {
    throw new MyriadTypeError("ERR_WRITE_TYPE", `publish: data must be a string or a Uint8Array, got ${data === null ? "null" : typeof data}`);
  }
  w.published++;
  const t = w.topics.get(topic);
  if (t === undefined) return 0;
  const s = w.s;
  const table = s.table;
  let count = 0;
  for (let i = 0; i < t.size; i++) {
    const h: number = t.handles[i]!;
    const slot = h & SLOT_MASK;
    if (h !== except && table.state[slot] === S_OPEN && (table.flags[slot]! & F_CLOSING) === 0 && (w.phase[slot]! & PHASE) === P_OPEN) count++;
  }
  if (count === 0) return 0;
  let batch = w.batch;
  if (batch !== null && batch.topic !== t) {
    // Another topic: the batch so far goes first, so every connection keeps the order.
    flushBatch(w);
    batch = null;
  }
  if (batch === null) {
    batch = w.batch = new PublishBatch(t, w.seq);
    w.caught ??= new Float64Array(table.capacity);
    if (!w.flushScheduled) {
      w.flushScheduled = true;
      setImmediate(flushAtTurnEnd, w);
    }
  }
  const isText = typeof data === "string";
  const raw = isText ? Buffer.from(data) : data;
  batch.add(FIN | (isText ? OP_TEXT : OP_BINARY), raw, compress && raw.length >= (w.opts.deflate?.thresholdBytes ?? Infinity), except);
  w.seq++;
  w.messagesOut += count;
  s.framesOut += count;
  return count;
}

function flushAtTurnEnd(w: WsState): void {
  w.flushScheduled = false;
  flushBatch(w);
}

/** Writes the pending batch: to each of its topic's subscribers what it has not had, in one write each. */
function flushBatch(w: WsState): void {
  const batch = w.batch;
  if (batch === null) return;
  // Detached first: a hook run by a write (a close) may publish, which starts a new batch.
  w.batch = null;
  const t = batch.topic;
  // Backwards: a write that closes its own connection (hard limit) swaps an already
  // visited member into its place, never an unvisited one.
  for (let i = t.size - 1; i >= 0; i--) {
    if (i >= t.size) continue;
    deliver(w, batch, t.handles[i]!);
  }
}

/**
 * Before anything else is written to h (a send, a ping or pong, a close frame) or it
 * unsubscribes: the publishes of this turn it has not had go first. Callers check
 * `w.batch !== null` first (the common case costs no call).
 */
export function catchUp(w: WsState, h: number): void {
  const batch = w.batch;
  if (batch === null || w.caught![h & SLOT_MASK]! >= w.seq) return;
  if (w.topics.isSubscribed(h, batch.topic.name)) deliver(w, batch, h);
}

/** Writes h the batch's messages it has not had (one write). */
function deliver(w: WsState, batch: PublishBatch, h: number): void {
  const s = w.s;
  const slot = h & SLOT_MASK;
  const table = s.table;
  if (table.state[slot] !== S_OPEN || (table.flags[slot]! & F_CLOSING) !== 0 || (w.phase[slot]! & PHASE) !== P_OPEN) return;
  const caught = w.caught!;
  const from = caught[slot]! > batch.seqBase ? caught[slot]! - batch.seqBase : 0;
  const n = batch.count;
  if (from >= n) return;
  caught[slot] = batch.seqBase + n;
  const ext = w.framer.ext[slot]!;
  if ((ext & EXT_DEFLATE) !== 0 && batch.compressible !== 0) {
    if ((ext & EXT_SERVER_TAKEOVER) !== 0) {
      // This connection's own compressor: each message compressed for it alone.
      const d = w.deflaterOf(slot, ext);
      const out = batch.gather(from, n, h, (k, raw) => (batch.compress[k] ? d.compress(raw, 0, raw.length) : null));
      writeSlot(s, slot, out, 0, out.length);
      return;
    }
    const z = batch.compressed(8 + (ext >>> EXT_WINDOW_SHIFT), (raw) => w.deflaterOf(slot, ext).compress(raw, 0, raw.length), h, from);
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
