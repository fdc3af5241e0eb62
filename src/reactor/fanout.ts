/**
 * Fan-out: server.broadcast, one message to every open connection.
 */
import { F_CLOSING, S_OPEN, SLOT_MASK, type ReactorState } from "./state.ts";
import { notWritable, writeSlot } from "./output.ts";

/**
 * Writes `bytes` (a string as UTF-8, encoded once) to every open, not closing connection;
 * returns how many took or queued it. Its state is local to the call, so a hook that
 * broadcasts, writes, closes or stops from inside it (a connection closed for passing the
 * hard limit runs its close hook here) leaves this broadcast whole.
 */
export function broadcast(s: ReactorState, bytes: Uint8Array | string): number {
  if (typeof bytes !== "string" && !(bytes instanceof Uint8Array)) throw notWritable("server.broadcast", bytes);
  const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  const table = s.table;
  let count = 0;
  table.forEachLive((h) => {
    const slot = h & SLOT_MASK;
    if (table.state[slot] !== S_OPEN || (table.flags[slot]! & F_CLOSING) !== 0) return;
    s.framesOut++;
    if (writeSlot(s, slot, data, 0, data.length) >= 0) count++;
  });
  return count;
}
