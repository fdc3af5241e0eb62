/**
 * Fan-out: server.broadcast, one message to every open connection, batched per event-loop
 * turn.
 *
 * One send per message per connection is what limits a burst of broadcasts: 100 messages to
 * 5,000 connections are 500,000 send calls. So a broadcast only appends its bytes to the
 * server's turn log (bcLog) and counts who it is for; when the turn ends (setImmediate), the
 * flush gives each connection the whole log in one write, as uWebSockets' cork does for
 * publish. The log is shared: the bytes are stored once, not per connection.
 *
 * Order: a connection gets what it is sent during a turn in the order it was sent, whether a
 * broadcast, a direct write or a close: any write or graceful close to a connection with
 * broadcasts pending first catches it up (output.ts catchUp: the pending part of the log,
 * then the write, often in one send through the cork). A connection opened mid-turn joins
 * after the broadcasts already made (joinBroadcasts); one closing, closed or staged (a
 * protocol stage holds it, input.ts) gets none. Per slot the server keeps one number, the
 * stream position the connection has been given (bcCaught), written when it is caught up or
 * joins before the turn ends, and by the flush: 8 bytes per connection, paid only by servers
 * that broadcast.
 * Limits: the batch goes through the connection's write queue as any write does, so
 * maxWriteBufferBytes pauses its reading and writeBufferHardLimitBytes closes it
 * ("writeStall") when the batch is written, at the end of the turn.
 * Latency: a broadcast leaves at the end of the turn it was made in, at most the rest of that
 * turn later than writing it at once would; direct writes are not delayed.
 * Re-entrancy: the flush runs hooks (a connection cut off by the hard limit runs its close
 * hook); a broadcast from one appends to the same log and the flush goes on until the log is
 * done, each connection's bytes in order; writes, closes and stop from a hook catch up as above.
 */
import { unpauseIfDrained } from "./input.ts";
import { flushQueue, notWritable, queued, writeSlot } from "./output.ts";
import { F_BATCHED, F_CLOSING, F_STAGED, S_OPEN, type ReactorState } from "./state.ts";

/** The log is kept from turn to turn, but not when a turn made it bigger than this. */
const KEEP_LOG_BYTES = 1 << 20;

/**
 * Queues `bytes` (a string as UTF-8, encoded once) for every open connection that is not
 * closing or staged, to be written at the end of this event-loop turn together with this
 * turn's other broadcasts (see the file comment); returns how many connections it is for.
 */
export function broadcast(s: ReactorState, bytes: Uint8Array | string): number {
  if (typeof bytes !== "string" && !(bytes instanceof Uint8Array)) throw notWritable("server.broadcast", bytes);
  const table = s.table;
  const state = table.state;
  const flags = table.flags;
  let count = 0;
  const end = table.scanEnd;
  for (let slot = 0; slot < end; slot++) {
    if (state[slot] === S_OPEN && (flags[slot]! & (F_CLOSING | F_STAGED)) === 0) count++;
  }
  if (count === 0) return 0;
  s.framesOut += count;
  append(s, bytes);
  // Writes must now go through catchUp: the running event's fast path is off.
  s.corkHandle = -1;
  if (!s.bcPending) {
    s.bcPending = true;
    if (s.bcCaught === null) s.bcCaught = new Float64Array(table.capacity);
    setImmediate(flushBroadcasts, s);
  }
  return count;
}

/** Appends bytes to the turn log, growing it by doubling. */
function append(s: ReactorState, bytes: Uint8Array | string): void {
  const maxLen = typeof bytes === "string" ? bytes.length * 3 : bytes.length;
  let log = s.bcLog;
  const len = s.bcLen;
  if (log.length - len < maxLen) {
    const bigger = new Uint8Array(Math.max(4096, 2 * log.length, len + maxLen));
    bigger.set(log.subarray(0, len));
    // Not set in place: a flush may be writing from the old array (it stays valid for it).
    s.bcLog = log = bigger;
  }
  s.bcLen = len + (typeof bytes === "string" ? Buffer.from(log.buffer, log.byteOffset, log.length).write(bytes, len) : copy(log, bytes, len));
}

function copy(log: Uint8Array, bytes: Uint8Array, at: number): number {
  log.set(bytes, at);
  return bytes.length;
}

/**
 * The turn ended: writes each eligible connection the part of the log it has not had, in one
 * write. Passes again over what hooks broadcast meanwhile, until the log is done.
 */
function flushBroadcasts(s: ReactorState): void {
  const table = s.table;
  const state = table.state;
  const flags = table.flags;
  const caught = s.bcCaught!;
  const base = s.bcBase;
  let from = 0;
  while (from < s.bcLen) {
    const to = s.bcLen;
    const passStart = base + from;
    for (let slot = 0; slot < table.scanEnd; slot++) {
      if (state[slot] !== S_OPEN || (flags[slot]! & (F_CLOSING | F_STAGED)) !== 0) continue;
      // Batched: caught up earlier in the turn, its queue holds the turn's output so far.
      let batched = (flags[slot]! & F_BATCHED) !== 0;
      if (batched) flags[slot]! &= ~F_BATCHED;
      const at = caught[slot]!;
      if (at < base + to) {
        const start = at > passStart ? at - base : from;
        if (batched && queued(s, slot) + (to - start) > s.highWater) {
          // Too much to queue whole: what is queued goes first, the log then as any write.
          batched = false;
          if (!flushQueue(s, slot)) continue;
        }
        // Recorded first: a hook run by this write (a close) may write to this slot again.
        caught[slot] = base + to;
        // s.bcLog, read per connection: a hook's broadcast may have moved the log to a bigger array.
        writeSlot(s, slot, s.bcLog, start, to - start);
      }
      // One write for all the turn gave it; a connection paused by the batch reads again once it is out.
      if (batched && state[slot] === S_OPEN && flushQueue(s, slot)) unpauseIfDrained(s, table.handleOf(slot), slot);
    }
    from = to;
  }
  s.bcBase = base + s.bcLen;
  s.bcLen = 0;
  s.bcPending = false;
  if (s.bcLog.length > KEEP_LOG_BYTES) s.bcLog = new Uint8Array(0);
}
