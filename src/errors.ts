/**
 * myriad's one error contract. Every error that leaves a public function is
 * `instanceof MyriadError` and carries a stable `code` from {@link MYRIAD_ERROR_CODES} (switch on
 * it; the text of `message` may change). Errors about a bad argument are also
 * `instanceof RangeError` (a value out of range) or `instanceof TypeError` (a value of the wrong
 * kind): they are {@link MyriadRangeError} / {@link MyriadTypeError}, which `MyriadError`
 * recognises through `Symbol.hasInstance` because a class can extend only one of them.
 * A function that returns a promise reports every failure by rejecting it.
 */

/**
 * Every code a MyriadError can carry, with what it means: the one place they are documented.
 * Grouped by the folder that throws them; add a new code to its folder's group.
 */
export const MYRIAD_ERROR_CODES = {
  // src/timers
  ERR_TIMER_OPTIONS: "TimingWheel constructor: capacity, tickMs or startMs missing or out of range (RangeError)",
  ERR_TIMER_ID: "TimingWheel: a timer id that is not an integer in [0, capacity) (RangeError)",
  ERR_TIMER_DELAY: "TimingWheel.schedule: delayMs negative, NaN, infinite or too large (RangeError)",
  ERR_TIMER_TIME: "TimingWheel.advance: nowMs before the wheel's current time, or not finite (RangeError)",
  ERR_TIMER_TYPE: "TimingWheel: onExpire is not a function, or the options are not an object (TypeError)",
  ERR_TIMER_REENTRANT: "TimingWheel.advance called from inside one of its own onExpire callbacks",

  // src/conn-table
  ERR_CONN_TABLE_OPTION: "ConnTable constructor: capacity or a field option out of range (RangeError)",
  ERR_SEGMENT_POOL_OPTION: "SegmentPool constructor or acquire/grow: a size or count out of range (RangeError)",
  ERR_SEGMENT_POOL_FULL: "SegmentPool: every fallback buffer ref is in use; release refs (RangeError)",
  ERR_SEGMENT_REF: "SegmentPool: a ref that is not in use (released twice, never acquired, not a ref)",

  // src/codec
  ERR_UNKNOWN_CODEC: "codecByName: no codec has that name",
  ERR_CODEC_ENCODE: "a codec cannot encode this message (too long for its length prefix, a newline in a line, a fractional RESP integer)",
  ERR_RESP_REPLY: "a RESP error reply (-ERR ..., -WRONGTYPE ...) handed back as a value; `prefix` is its first word",
  ERR_WEBSOCKET_HEADER: "a WebSocket upgrade hook asked for a header that cannot be sent (a name that is not a token, CR/LF in a value)",
  ERR_WEBSOCKET_DEFLATE: "permessage-deflate: zlib failed to compress a message, or this runtime's node:zlib lacks the synchronous handle it needs",

  // src/reactor
  ERR_SERVER_OPTION: "createServer: an option is missing, of the wrong type or out of range; `option` names it",
  ERR_ADDRESS_IN_USE: "createServer: another process holds the address (and reusePort is off on one side)",
  ERR_ACCESS_DENIED: "createServer: a privileged port, or a unix socket path the process may not write",
  ERR_LISTEN: "createServer: listening failed for another reason; `cause` is Bun's error",
  ERR_WRITE_TYPE: "conn.write, server.broadcast or bus.publish got data that is neither a string nor a Uint8Array (TypeError)",
  ERR_TLS_UNAUTHORIZED: "a TLS client's certificate was missing or not signed by the configured CAs (handed to handler.error; the connection closes); `cause` is Bun's error",
  ERR_FRAME_TOO_LARGE: "a connection sent a frame over maxFrameBytes (handed to handler.error; the connection closes)",
  ERR_FRAME_MALFORMED: "a connection sent bytes its codec cannot parse (handed to handler.error; the connection closes)",
  ERR_WEBSOCKET_CLOSE_CODE: "conn.close(code) with a WebSocket close code that may not be sent (RangeError)",
  ERR_WEBSOCKET_PING: "conn.ping(data) with more than 125 bytes (RangeError)",
  ERR_WEBSOCKET_UPGRADE: "a WebSocket upgrade hook returned something it may not (a status outside 400..599, a subprotocol the client did not offer); the request gets 500",

  // src/pool
  ERR_POOL_OPTION: "Pool, Channel, Histogram or a pooled client: an option or argument is unknown or out of range; `option` names it (RangeError; TypeError for use(fn) without a function)",
  ERR_CHANNEL_CLOSED: "Channel push on a closed channel, or a pusher still waiting when it was closed",
  ERR_POOL_EXHAUSTED: "acquire waited acquireTimeoutMs and every connection stayed borrowed",
  ERR_POOL_UPSTREAM_FAILING: "acquire waited acquireTimeoutMs and connections could not be created; `cause` is the last create error",
  ERR_POOL_CIRCUIT_OPEN: "acquire refused at once: creates keep failing and no connection is left",
  ERR_POOL_QUEUE_FULL: "acquire refused at once: maxWaiting callers are already queued",
  ERR_POOL_CLOSED: "acquire refused: the pool is draining or drained",
  ERR_POOL_ABORTED: "acquire gave up because the caller's AbortSignal fired; `cause` is the signal's reason",
  ERR_POOL_DOUBLE_RELEASE: "release/destroy of a connection that is not borrowed any more",
  ERR_POOL_FOREIGN_RESOURCE: "release/destroy of a connection that never came from this pool",
  ERR_POOL_CREATE_TIMEOUT: "create() did not settle within createTimeoutMs",
  ERR_CONNECTION_CLOSED: "a pooled client's connection dropped while the request was in flight",
  ERR_REQUEST_TIMEOUT: "a pooled client got no reply within the request's timeout",
  ERR_CLIENT_CLOSED: "a pooled client was closed before the request could be sent",
  ERR_PROTOCOL: "a pooled client's peer sent bytes that are not a valid frame (the connection is closed)",
  ERR_CONNECT: "a pooled client could not open a connection to its upstream (refused, unreachable, or the socket connected to itself)",

  // src/apps
  ERR_APP_OPTION: "an example app's factory (createEchoApp, createKvApp, ...) got a bad option",
  ERR_APP_MODULE: "loadModuleApp: the module cannot be imported, lacks the named export, or it returned no { handler }",
  ERR_APP_ARGUMENT: "AppContext.registerPool: a bad name or a pool without stats()",

  // src/config
  ERR_FLAG_SPEC: "a command's flag table is itself wrong (a programming error in the command, not user input)",
  ERR_FLAG_VALUE: "a flag's value is not one it accepts",
  ERR_FLAG_UNKNOWN: "a flag the command does not know",
  ERR_FLAG_ARGUMENT: "a positional argument the command does not take",
  ERR_FLAG_MISSING: "a required flag is missing",
  ERR_CONFIG_FILE: "a config file cannot be read, is not valid JSON, or holds a bad setting",

  // src/cluster
  ERR_CLUSTER_PLAN: "planWorkers: an input out of range",
  ERR_CLUSTER_PORTS: "a port list that is not like 7000, 7000-7019 or 7000,7002",
  ERR_CLUSTER_WORKERS: "a worker count that is not auto or an integer in range",
  ERR_CLUSTER_LISTEN: "startCluster: no address to listen on",
  ERR_CLUSTER_START: "startCluster: a worker did not become ready",
  ERR_CLUSTER_BUNDLE: "the worker bundle could not be built or written",

  // src/admin
  ERR_ADMIN_OPTION: "the admin server's options are of the wrong shape (no stats source, a host or token that is not a string)",
  ERR_ADMIN_BAD_PORT: "the admin port is not an integer from 0 to 65535",
  ERR_ADMIN_TOKEN_REQUIRED: "the admin server refuses a non-loopback host without a token",
  ERR_ADMIN_LISTEN: "the admin server could not listen",
  ERR_ADMIN_ASSET_MISSING: "the dashboard's script (uplot) is not installed",

  // src/bus
  ERR_BUS_OPTION: "createRedisBus: a bad url, port or node id",
  ERR_BUS_DOWN: "a bus publish failed (the bus server is down, refused it or did not answer in time): other nodes did not get it",
  ERR_BUS_CLOSED: "a publish on a bus that was closed",

  // src/proxy
  ERR_PROXY_CONFIG: "a twemproxy configuration (file, object or --listen/--servers) is invalid; `file`, `line` and `key` say where",
  ERR_PROXY_OPTION: "createProxy: an option besides the configuration is of the wrong type or out of range",

  // src/loadgen
  ERR_LOADGEN_OPTION: "the load generator or its histogram got an option out of range",
  ERR_LOADGEN_ADDRESS: "a load target that is not host:port, or a source address that cannot be used",
  ERR_LOADGEN_CONNECTIONS: "a connection count that is not an integer >= 0",
  ERR_LOADGEN_PROCESSES: "a process count that is not an integer >= 1",
  ERR_LOADGEN_START: "the load processes could not be started",
  ERR_LOADGEN_TUN: "the TUN load client cannot run this load (mode, targets, window)",
  ERR_NETNS: "a network namespace could not be made, entered or removed",
  ERR_TUN: "a TUN device could not be opened or configured",
} as const;

/** A stable error code: one of the keys of {@link MYRIAD_ERROR_CODES}. */
export type MyriadErrorCode = keyof typeof MYRIAD_ERROR_CODES;

/**
 * The base of every error myriad throws at its edges. `code` is stable and meant for
 * programs; `message` is for people and says what to do. `x instanceof MyriadError` is also
 * true for {@link MyriadRangeError} and {@link MyriadTypeError}.
 */
export class MyriadError extends Error {
  readonly code: MyriadErrorCode;
  constructor(code: MyriadErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /**
   * `instanceof MyriadError` holds for myriad's RangeError and TypeError subclasses too.
   * Subclasses keep the ordinary prototype check, so `instanceof ServerOptionError` means what it says.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    return this === MyriadError && (value instanceof MyriadRangeError || value instanceof MyriadTypeError);
  }
}

/** A bad argument value (out of range): `instanceof RangeError` and `instanceof MyriadError`. */
export class MyriadRangeError extends RangeError {
  readonly code: MyriadErrorCode;
  constructor(code: MyriadErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bad argument of the wrong kind: `instanceof TypeError` and `instanceof MyriadError`. */
export class MyriadTypeError extends TypeError {
  readonly code: MyriadErrorCode;
  constructor(code: MyriadErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** True when `value` is a myriad error, optionally with the given code. */
export function isMyriadError(value: unknown, code?: MyriadErrorCode): value is MyriadError | MyriadRangeError | MyriadTypeError {
  return value instanceof MyriadError && (code === undefined || (value as MyriadError).code === code);
}
