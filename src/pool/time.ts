/**
 * setTimeout takes a signed 32-bit delay: a longer one fires after 1 ms (with a warning).
 * Waits longer than MAX_TIMER_MS (~24.8 days) are therefore treated as "forever".
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms`, or Infinity when it is beyond what a timer can wait. */
export function waitMs(ms: number): number {
  return ms > MAX_TIMER_MS ? Infinity : ms;
}
