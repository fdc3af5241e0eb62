/**
 * Errors of src/pool. Every class has a stable `code` (switch on it) and a message that says
 * what happened and what to do about it.
 */
import { CodecEncodeError } from "../codec/index.ts";
import { MyriadError, MyriadRangeError } from "../errors.ts";

/**
 * A Pool, Channel or client option or argument is unknown or out of range. Code
 * `ERR_POOL_OPTION`; a RangeError as well as a MyriadError.
 */
export class PoolOptionError extends MyriadRangeError {
  /** Name of the offending option or argument ("" when the options object itself is wrong). */
  readonly option: string;
  constructor(option: string, message: string) {
    super("ERR_POOL_OPTION", message);
    this.option = option;
  }
}

/**
 * The PoolOptionError for a wait time `value` given as `option` to `where` (e.g. "acquire"),
 * or undefined when it is acceptable: omitted, a number >= 0, or Infinity.
 */
export function badWaitMs(value: unknown, where: string, option = "timeoutMs"): PoolOptionError | undefined {
  if (value === undefined || (typeof value === "number" && value >= 0)) return undefined;
  return new PoolOptionError(
    option,
    `${where} ${option}=${typeof value === "number" ? value : JSON.stringify(value) ?? String(value)} is invalid: expected milliseconds >= 0, or Infinity (omitted: the default)`,
  );
}

/** The PoolOptionError for per-call `options` given to `where` that are neither undefined nor an object. */
export function badCallOptions(options: unknown, where: string): PoolOptionError | undefined {
  if (options === undefined || (typeof options === "object" && options !== null)) return undefined;
  return new PoolOptionError("", `${where} options must be an object or omitted, got ${String(options)}`);
}

/**
 * What a client rejects with when its codec's encode throws `err`: a MyriadError as it is
 * (src/codec's CodecEncodeError), anything else (a user codec's own error) wrapped in a
 * CodecEncodeError naming the codec, with `err` as its cause.
 */
export function encodeError(err: unknown, codecName: string): Error {
  if (err instanceof MyriadError) return err as Error;
  const wrapped = new CodecEncodeError(`codec ${JSON.stringify(codecName)} cannot encode this message: ${errorText(err)}`);
  (wrapped as { cause?: unknown }).cause = err;
  return wrapped;
}

/** push() / tryPush() on a closed Channel, or a pusher still waiting when it was closed. Code `ERR_CHANNEL_CLOSED`. */
export class ChannelClosedError extends MyriadError {
  constructor() {
    super("ERR_CHANNEL_CLOSED", "push on a closed Channel: the value was not delivered; stop producing once close() is called");
  }
}

/**
 * acquire() waited acquireTimeoutMs without getting a connection.
 * - `ERR_POOL_EXHAUSTED`: every connection stayed borrowed (the message carries the counts);
 * - `ERR_POOL_UPSTREAM_FAILING`: connections could not be created; `cause` is the last create error.
 */
export class AcquireTimeoutError extends MyriadError {
  /** How long the caller waited, in milliseconds. */
  readonly waitedMs: number;
  constructor(code: "ERR_POOL_EXHAUSTED" | "ERR_POOL_UPSTREAM_FAILING", message: string, waitedMs: number, cause?: unknown) {
    super(code, message, cause === undefined ? undefined : { cause });
    this.waitedMs = waitedMs;
  }
}

/**
 * acquire() refused at once, without waiting:
 * - `ERR_POOL_CIRCUIT_OPEN`: creates keep failing and no connection is left; `cause` is the last create error;
 * - `ERR_POOL_QUEUE_FULL`: maxWaiting callers are already queued;
 * - `ERR_POOL_CLOSED`: the pool is draining or drained;
 * - `ERR_POOL_ABORTED`: the caller's AbortSignal fired; `cause` is the signal's reason.
 */
export class AcquireRejectedError extends MyriadError {
  constructor(
    code: "ERR_POOL_CIRCUIT_OPEN" | "ERR_POOL_QUEUE_FULL" | "ERR_POOL_CLOSED" | "ERR_POOL_ABORTED",
    message: string,
    cause?: unknown,
  ) {
    super(code, message, cause === undefined ? undefined : { cause });
  }
}

/**
 * release() / destroy() misuse: `ERR_POOL_DOUBLE_RELEASE` (the connection is not borrowed any
 * more) or `ERR_POOL_FOREIGN_RESOURCE` (it never came from this pool). The pool's counts are
 * left untouched.
 */
export class PoolReleaseError extends MyriadError {
  constructor(code: "ERR_POOL_DOUBLE_RELEASE" | "ERR_POOL_FOREIGN_RESOURCE", message: string) {
    super(code, message);
  }
}

/** create() did not settle within createTimeoutMs. Code `ERR_POOL_CREATE_TIMEOUT`. */
export class CreateTimeoutError extends MyriadError {
  constructor(poolName: string, timeoutMs: number) {
    super(
      "ERR_POOL_CREATE_TIMEOUT",
      `pool "${poolName}": create() did not settle within createTimeoutMs=${timeoutMs} ms; check that the upstream is reachable or raise createTimeoutMs`,
    );
  }
}

/**
 * A request sent through a pooled client failed without a reply:
 * - `ERR_CONNECTION_CLOSED`: the connection dropped while the request was in flight (`cause`: the socket error, if any);
 * - `ERR_REQUEST_TIMEOUT`: no reply within the request's timeout;
 * - `ERR_CLIENT_CLOSED`: the client was closed before the request could be sent;
 * - `ERR_PROTOCOL`: the peer sent bytes that are not a valid frame of the codec (the connection is closed);
 * - `ERR_CONNECT`: the connection could not be opened.
 */
export class ClientRequestError extends MyriadError {
  constructor(
    code: "ERR_CONNECTION_CLOSED" | "ERR_REQUEST_TIMEOUT" | "ERR_CLIENT_CLOSED" | "ERR_PROTOCOL" | "ERR_CONNECT",
    message: string,
    cause?: unknown,
  ) {
    super(code, message, cause === undefined ? undefined : { cause });
  }
}

// ---------------------------------------------------------------- the pool's messages
// Pool builds its errors here, from the counts it passes: the wording lives in one place.

/** The codes of AcquireRejectedError. */
export type RefusalCode = "ERR_POOL_CIRCUIT_OPEN" | "ERR_POOL_QUEUE_FULL" | "ERR_POOL_CLOSED" | "ERR_POOL_ABORTED";

/** An error's message for another message (a create error's text in a pool error). */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** The AcquireRejectedError for `code` in pool `name`, with the counts its message shows. */
export function acquireRejectedError(
  name: string,
  code: RefusalCode,
  cause: unknown,
  counts: { createFailures: number; waiting: number; maxWaiting: number },
): AcquireRejectedError {
  switch (code) {
    case "ERR_POOL_CIRCUIT_OPEN":
      return new AcquireRejectedError(
        code,
        `pool "${name}": upstream failing, ${counts.createFailures} creates failed in a row (last: ${errorText(cause)}) and no connection is left; failing fast until a retry succeeds — check the upstream`,
        cause,
      );
    case "ERR_POOL_QUEUE_FULL":
      return new AcquireRejectedError(
        code,
        `pool "${name}": ${counts.waiting} callers already waiting (maxWaiting=${counts.maxWaiting}); shed load, raise max, or raise maxWaiting`,
      );
    case "ERR_POOL_CLOSED":
      return new AcquireRejectedError(code, `pool "${name}" is draining or drained: no more acquires; create a new pool to continue`);
    case "ERR_POOL_ABORTED":
      return new AcquireRejectedError(code, `pool "${name}": acquire aborted by its signal`, cause);
  }
}

/**
 * The AcquireTimeoutError of pool `name` after waiting `waitedMs` of `timeoutMs`:
 * ERR_POOL_UPSTREAM_FAILING while creates fail (cause: the last create error), else
 * ERR_POOL_EXHAUSTED with the counts.
 */
export function acquireTimeoutError(
  name: string,
  waitedMs: number,
  timeoutMs: number,
  counts: {
    createFailures: number;
    lastCreateError: unknown;
    max: number;
    borrowed: number;
    idle: number;
    pending: number;
    waiting: number;
  },
): AcquireTimeoutError {
  const waited = Math.round(waitedMs);
  if (counts.createFailures > 0) {
    return new AcquireTimeoutError(
      "ERR_POOL_UPSTREAM_FAILING",
      `pool "${name}": no connection within acquireTimeoutMs=${timeoutMs} ms because the upstream is failing: ${counts.createFailures} creates failed in a row, last: ${errorText(counts.lastCreateError)}; check the upstream or raise acquireTimeoutMs`,
      waited,
      counts.lastCreateError,
    );
  }
  return new AcquireTimeoutError(
    "ERR_POOL_EXHAUSTED",
    `pool "${name}" exhausted: no connection within acquireTimeoutMs=${timeoutMs} ms (max=${counts.max}: ${counts.borrowed} borrowed, ${counts.idle} idle, ${counts.pending} being created, ${counts.waiting} others waiting); release connections sooner (leakDetectionMs finds holders), raise max, or raise acquireTimeoutMs`,
    waited,
  );
}

/** The PoolReleaseError of a release()/destroy() of pool `name` that is a double (`double`) or foreign one. */
export function misuseError(name: string, what: "release" | "destroy", double: boolean): PoolReleaseError {
  return double
    ? new PoolReleaseError(
        "ERR_POOL_DOUBLE_RELEASE",
        `pool "${name}": ${what}() of a resource that is not borrowed (already released or destroyed); release each acquired resource exactly once`,
      )
    : new PoolReleaseError(
        "ERR_POOL_FOREIGN_RESOURCE",
        `pool "${name}": ${what}() of an object this pool did not lend; pass back exactly what acquire() resolved`,
      );
}
