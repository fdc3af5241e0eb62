/**
 * Time bounds that hold on a busy machine. A deadline enforced by a timer fires late by
 * however long the event loop was held up; a bound like "within timeout + 100 ms" then fails
 * whenever the machine is loaded. So a test starts a control timer of the same length at the
 * same moment, and allows what the control was late by: the bound stays tight on an idle
 * machine and follows the loop's lag on a busy one.
 */

/**
 * Starts a setTimeout of `ms` now; resolves, when it fires, with how many ms after `ms` it
 * ran (>= 0): the lag any timer due in the same window suffered.
 */
export function timerLateness(ms: number): Promise<number> {
  const start = performance.now();
  return new Promise((resolve) => setTimeout(() => resolve(Math.max(0, performance.now() - start - ms)), ms));
}

/**
 * Resolves with the value `p` settles with (a rejection's reason as the value) if it settles
 * before a zero-delay timer fires, else with TIMER_FIRST: "at once" without a clock, since a
 * promise settled in microtasks always beats a timer, however busy the machine.
 */
export function settledBeforeTimers<T>(p: Promise<T>): Promise<T | unknown | typeof TIMER_FIRST> {
  return Promise.race([
    p.then(
      (v) => v,
      (e: unknown) => e,
    ),
    new Promise<typeof TIMER_FIRST>((resolve) => setTimeout(resolve, 0, TIMER_FIRST)),
  ]);
}

/** What settledBeforeTimers resolves with when a timer fired first. */
export const TIMER_FIRST: unique symbol = Symbol("a timer fired first");

/** A running sample of the event loop's lag; see loopLag. */
export interface LoopLag {
  /** The most a timer was late so far (ms). */
  readonly maxMs: number;
  /** Stops sampling; returns maxMs. */
  stop(): number;
}

/**
 * Samples the event loop's lag until stop(): a timer of `everyMs` re-armed each time it fires,
 * recording how late it ran. For a bound over a long window (many deadlines), where one
 * control timer (timerLateness) would miss a stall that came later.
 */
export function loopLag(everyMs = 10): LoopLag {
  let maxMs = 0;
  let timer: Timer | undefined;
  const arm = () => {
    const due = performance.now() + everyMs;
    timer = setTimeout(() => {
      maxMs = Math.max(maxMs, performance.now() - due);
      arm();
    }, everyMs);
  };
  arm();
  return {
    get maxMs() {
      return maxMs;
    },
    stop() {
      clearTimeout(timer);
      return maxMs;
    },
  };
}
