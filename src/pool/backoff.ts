/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): the n-th consecutive retry waits a uniformly random time in [0, ceiling] with
 * ceiling = min(maxMs, initialMs * 2^(n-1)). The randomness keeps many clients that failed
 * together from retrying together (no reconnect storm in lockstep).
 */

/** The ceiling of the `failures`-th retry delay (failures >= 1), in ms. */
export function backoffCeilingMs(failures: number, initialMs: number, maxMs: number): number {
  const exp = Math.min(failures - 1, 30);
  return Math.min(maxMs, initialMs * 2 ** exp);
}

/** A delay in [0, backoffCeilingMs(...)] ms; `random` returns [0, 1). */
export function fullJitterDelayMs(failures: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  return random() * backoffCeilingMs(failures, initialMs, maxMs);
}
