/**
 * Deadlines: a connection's idle, handshake and write-stall timeouts on the process-wide
 * timing wheel (clock.ts), one wheel id per slot.
 *
 * Reads and writes only store a time (table.lastActivity); nothing here runs per read or
 * write. When a slot's timer fires, dueReason() says which deadline passed, or re-files the
 * timer for whatever is left, so a busy connection costs no timer operations. Deadlines are
 * computed from truncated ms and the wheel never fires early, so a fired timer finds its
 * deadline reached. The lifecycle (server.ts) acts on what is due: this module closes nothing.
 */
import { clock } from "./clock.ts";
import { F_CLOSING, F_GREETED, F_HELD, F_PAUSED, F_PROXY, S_OPEN, type ReactorState } from "./state.ts";
import { R_HANDSHAKE, R_IDLE, R_NONE, R_PROXY, R_WRITE_STALL } from "./stats.ts";

/**
 * The close reason whose deadline has passed for an open slot (R_WRITE_STALL, R_PROXY,
 * R_HANDSHAKE or R_IDLE, in that order), or R_NONE after re-filing the slot's timer for the earliest
 * deadline still pending.
 */
export function dueReason(s: ReactorState, slot: number): number {
  const table = s.table;
  const nowF = performance.now();
  const now = nowF >>> 0;
  const flags = table.flags[slot]!;
  if (stallActive(s, flags) && ((now - s.stallSince[slot]!) >>> 0) >= s.writeStallTimeoutMs) return R_WRITE_STALL;
  if ((flags & F_PROXY) !== 0 && ((now - s.openedAt[slot]!) >>> 0) >= s.o.proxyTimeoutMs) return R_PROXY;
  const hs = s.handshakeTimeoutMs;
  if (hs > 0 && (flags & F_GREETED) === 0 && ((now - s.openedAt[slot]!) >>> 0) >= hs) return R_HANDSHAKE;
  const idle = s.idleTimeoutMs;
  // A connection the application paused (F_HELD) is not idle by choice: its idle deadline restarts at resumeReading.
  if (idle > 0 && (flags & F_HELD) === 0 && ((now - table.lastActivity[slot]!) >>> 0) >= idle) return R_IDLE;
  const stage = s.stage;
  if (stage !== null && stage.onDue !== undefined) {
    const code = stage.onDue(s, slot, now);
    if (code !== R_NONE || table.state[slot] !== S_OPEN) return code;
  }
  refile(s, slot, nowF);
  return R_NONE;
}

/** The write-stall deadline applies: paused or flushing before close (not during stop(), whose own deadline rules). */
function stallActive(s: ReactorState, flags: number): boolean {
  if (s.writeStallTimeoutMs === 0 || (flags & (F_PAUSED | F_CLOSING)) === 0) return false;
  return !(s.stopping && (flags & F_CLOSING) !== 0);
}

/**
 * Arms slot's timer for its earliest pending deadline, computed from the stored times
 * (lastActivity, openedAt, stallSince) at nowF (performance.now()); cancels it when none
 * applies. Registers the server with the clock at its first deadline.
 */
export function refile(s: ReactorState, slot: number, nowF: number): void {
  const table = s.table;
  const now = nowF >>> 0;
  const flags = table.flags[slot]!;
  let due = Infinity;
  if (s.idleTimeoutMs > 0 && (flags & F_HELD) === 0) due = s.idleTimeoutMs - ((now - table.lastActivity[slot]!) >>> 0);
  if (s.handshakeTimeoutMs > 0 && (flags & F_GREETED) === 0) {
    due = Math.min(due, s.handshakeTimeoutMs - ((now - s.openedAt[slot]!) >>> 0));
  }
  if ((flags & F_PROXY) !== 0) due = Math.min(due, s.o.proxyTimeoutMs - ((now - s.openedAt[slot]!) >>> 0));
  if (stallActive(s, flags)) {
    due = Math.min(due, s.writeStallTimeoutMs - ((now - s.stallSince[slot]!) >>> 0));
  }
  const stage = s.stage;
  if (stage !== null && stage.dueInMs !== undefined) due = Math.min(due, stage.dueInMs(s, slot, now));
  if (!s.clocked) {
    if (due === Infinity) return;
    s.timerBase = clock.register(s, table.capacity, s.o.tickMs);
    s.clocked = true;
  }
  if (due === Infinity) clock.cancel(s.timerBase + slot);
  else clock.schedule(s.timerBase + slot, due < 0 ? 0 : due, nowF);
}

/** Starts slot's write-stall deadline now (it paused, or began flushing before close) and re-files its timer. */
export function startStall(s: ReactorState, slot: number): void {
  const nowF = performance.now();
  // Read only by the stall deadline (stallActive); left unwritten, its page costs nothing.
  if (s.writeStallTimeoutMs > 0) s.stallSince[slot] = nowF >>> 0;
  refile(s, slot, nowF);
}

/** Drops slot's timer (the connection closed). */
export function cancelDeadline(s: ReactorState, slot: number): void {
  if (s.clocked) clock.cancel(s.timerBase + slot);
}

/** Gives the server's wheel ids back (stop). */
export function releaseClock(s: ReactorState): void {
  if (s.clocked) clock.unregister(s);
  s.clocked = false;
}
