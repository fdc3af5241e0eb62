import { MyriadError, MyriadRangeError, MyriadTypeError } from "../errors.ts";

/**
 * A TimingWheel argument is outside its allowed range: an id that is not an integer in
 * [0, capacity), a delay that is negative, NaN, infinite or too large, an advance() to a time
 * before the wheel's current time, or a bad constructor option.
 *
 * It is a RangeError, as the wheel's contract promises, and `instanceof MyriadError` too
 * (see src/errors.ts). Its stable `code`:
 * - `ERR_TIMER_OPTIONS`: constructor option (capacity, tickMs, startMs)
 * - `ERR_TIMER_ID`: id
 * - `ERR_TIMER_DELAY`: delayMs
 * - `ERR_TIMER_TIME`: nowMs given to advance()
 *
 * Always thrown before the wheel changes: its state is exactly as before the call.
 */
export class TimerRangeError extends MyriadRangeError {
  declare readonly code: "ERR_TIMER_OPTIONS" | "ERR_TIMER_ID" | "ERR_TIMER_DELAY" | "ERR_TIMER_TIME";
  /** Name of the offending argument or option, e.g. "delayMs". */
  readonly argument: string;
  constructor(code: "ERR_TIMER_OPTIONS" | "ERR_TIMER_ID" | "ERR_TIMER_DELAY" | "ERR_TIMER_TIME", argument: string, message: string) {
    super(code, message);
    this.argument = argument;
  }
}

/**
 * A TimingWheel argument has the wrong type: advance()'s onExpire is not a function, or the
 * constructor was not given an options object. Code ERR_TIMER_TYPE; `instanceof MyriadError`
 * too. Thrown before the wheel changes.
 */
export class TimerTypeError extends MyriadTypeError {
  declare readonly code: "ERR_TIMER_TYPE";
  /** Name of the offending argument, e.g. "onExpire". */
  readonly argument: string;
  constructor(argument: string, message: string) {
    super("ERR_TIMER_TYPE", message);
    this.argument = argument;
  }
}

/**
 * advance() was called from inside one of its own onExpire callbacks. Code
 * ERR_TIMER_REENTRANT. The wheel is in the middle of firing a batch, so the nested call is
 * refused before it changes anything; schedule() and cancel() are allowed there.
 */
export class TimerReentrancyError extends MyriadError {
  constructor() {
    super(
      "ERR_TIMER_REENTRANT",
      "TimingWheel.advance: called from inside an onExpire callback of the same wheel; " +
        "return from the callback and call advance() again (schedule() and cancel() are allowed in callbacks)",
    );
  }
}
