/**
 * Timers: one hierarchical timing wheel per process holds every connection's deadline
 * (idle, handshake, write stall) and every key's expiry, as ids in typed arrays.
 *
 * ```ts
 * const wheel = new TimingWheel({ capacity: 65_536, tickMs: 10, startMs: performance.now() });
 * wheel.schedule(slot, idleTimeoutMs);          // on open, and again on every read (re-arms)
 * wheel.cancel(slot);                           // on close
 * // driver: sleep until the next timer, then fire what is due
 * const onExpire = (slot: number) => closeIdle(slot);
 * const tick = () => {
 *   wheel.advance(performance.now(), onExpire);
 *   const ms = wheel.nextDueMs();
 *   if (ms !== Infinity) setTimeout(tick, Math.max(ms, wheel.tickMs));
 * };
 * ```
 */
export { TimingWheel, type TimingWheelOptions } from "./wheel.ts";
export { TimerRangeError, TimerTypeError, TimerReentrancyError } from "./errors.ts";
