/**
 * The one way a test waits for something: poll a condition until it holds, bounded in time,
 * and fail saying what was awaited. A test never sleeps in place of a condition: on a busy
 * machine any fixed sleep is sometimes too short.
 */

/** What a probe returns while the awaited thing has not happened yet. */
type NotYet = false | undefined | null;

/**
 * Thrown by a probe to stop waiting at once (the awaited thing can no longer happen: the
 * process it waits on exited, say); until() rejects with it instead of polling on.
 */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it returns something other than false, undefined or null, and resolves
 * with that value. A probe that throws is polled again (a server not listening yet), unless
 * it throws GiveUp. Rejects after timeoutMs with "timed out after <timeoutMs> ms waiting for
 * <what>" and the probe's last error; `what` may be a function, called then, to say where
 * things stood. Polls at once, then 1, 2, 4 ... 25 ms apart; a probe still pending at the
 * deadline does not hold the rejection back.
 */
export async function until<T>(
  what: string | (() => string),
  probe: () => T | Promise<T>,
  timeoutMs = 10_000,
): Promise<Exclude<T, NotYet>> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  let lastError: unknown;
  let pauseMs = 1;
  for (;;) {
    const left = deadline - performance.now();
    let timer: Timer | undefined;
    try {
      const outcome = await Promise.race([
        Promise.resolve().then(probe),
        new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(resolve, Math.max(0, left), TIMED_OUT))),
      ]);
      if (outcome !== TIMED_OUT && outcome !== false && outcome !== undefined && outcome !== null) return outcome as Exclude<T, NotYet>;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    } finally {
      clearTimeout(timer);
    }
    if (performance.now() >= deadline) {
      const said = typeof what === "function" ? what() : what;
      const why = lastError === undefined ? "" : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${said}${why}`);
    }
    await Bun.sleep(Math.min(pauseMs, Math.max(0, deadline - performance.now())));
    pauseMs = Math.min(25, pauseMs * 2);
  }
}

const TIMED_OUT = Symbol("timed out");
