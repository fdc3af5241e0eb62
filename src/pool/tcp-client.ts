/**
 * A pooled, pipelining TCP client that speaks any codec from src/codec; the connections are
 * pipelined-connection.ts's, the options client-options.ts's.
 *
 * How requests are spread over connections (the channel model, tuned for throughput):
 * send() pops a connection from the Pool (tryAcquire(), synchronous, or acquire() when none
 * is free), hands it the encoded request, then pushes the connection straight back to the
 * pool while it has room — fewer than maxInFlightPerConnection requests in flight and fewer
 * than maxWriteBufferBytes unsent. A connection that is full stays borrowed (by the client,
 * not by the task) until replies or a `drain` make room; then it is released and the oldest
 * waiting send() gets it. So:
 * - many requests are in flight on one connection (pipelining), replies matched in order;
 * - the idle stack is LIFO, so light load stays on one warm connection; load fills a
 *   connection to its pipeline depth, then spills onto the next, up to pool.max; past that,
 *   senders queue FIFO in the pool (bounded in-flight work = backpressure).
 *
 * Failure contract:
 * - a connection that drops fails exactly its unanswered requests with ERR_CONNECTION_CLOSED
 *   and leaves the pool (which replaces it on demand, with backoff if connecting fails; a
 *   socket connected to itself counts as a failed connect);
 * - every send() settles within its timeout (requestTimeoutMs, covering the wait for a
 *   connection too) with a reply or an error; a request that times out is answered with
 *   ERR_REQUEST_TIMEOUT and its late reply is discarded; a connection whose oldest request
 *   timed out is presumed dead: it gets no new requests and is closed once the rest settle.
 */
import { badCallOptions, badWaitMs, ClientRequestError, encodeError } from "./errors.ts";
import {
  checkClientOptions,
  type ResolvedClientOptions,
  resolveClientOptions,
  type SendOptions,
  TcpClientOptionsSchema,
  type TcpClientOptions,
} from "./client-options.ts";
import { type ConnectionOwner, type ConnectionSettings, SocketPipeline } from "./pipelined-connection.ts";
import type { PoolOptions } from "./options.ts";
import { Pool, type PoolStats } from "./pool.ts";
import type { StatsPool } from "./registry.ts";

type Timer = ReturnType<typeof setTimeout>;

/** Counters of a client. */
export interface TcpClientStats {
  /** send() calls, refused ones included: requests = replies + timeouts + connectionErrors + refused + in flight + waiting for a connection. */
  requests: number;
  /** Replies delivered (error replies included, late replies of timed-out requests not). */
  replies: number;
  /** Requests answered with ERR_REQUEST_TIMEOUT. */
  timeouts: number;
  /** Requests failed because their connection closed or broke (dropped, protocol error, close()). */
  connectionErrors: number;
  /** send() calls answered without being sent: bad options or message, client closed, no connection (ERR_POOL_*). */
  refused: number;
  /** Requests waiting for their reply now. */
  inFlight: number;
  /** Open connections. */
  connections: number;
  pool: PoolStats;
}

/** A pooled pipelining client; create with createTcpClient() or createRespClient(). */
export interface TcpClient<In, Out> {
  /** The connection pool, for its stats (register it with ctx.registerPool); close() drains it. */
  readonly pool: StatsPool;
  /** "host:port", for messages. */
  readonly address: string;
  /** Requests waiting for their reply now (cheap; stats() has the rest). */
  readonly inFlight: number;
  /** Open connections now. */
  readonly connections: number;
  /** True once close() was called. */
  readonly closed: boolean;
  /**
   * Sends one request and resolves its reply. Rejects (never throws) with the error reply
   * (isErrorReply), ClientRequestError (ERR_REQUEST_TIMEOUT, ERR_CONNECTION_CLOSED,
   * ERR_CLIENT_CLOSED), a pool error when no connection could be had in time (ERR_POOL_*),
   * the codec's CodecEncodeError, or PoolOptionError for bad `options`. Settles within its
   * timeout (options.timeoutMs ?? requestTimeoutMs), give or take the timeout sweep's
   * resolution (requestTimeoutMs / 20, 5..100 ms).
   */
  send(message: Out, options?: SendOptions): Promise<In>;
  /**
   * send() without a Promise, for a caller that sends very many requests and keeps its own
   * state per request: onReply(reply) or onError(err) (the errors send() rejects with) is
   * called exactly once, never from inside this call; often from inside the connection's read
   * or timeout handling: a callback that throws (the caller's bug) is logged and that
   * connection's other requests go on unharmed. `nowMs`: performance.now() as the
   * caller last read it (a batch of sends may share one reading); the request's deadline is
   * nowMs + requestTimeoutMs.
   */
  sendWith(message: Out, onReply: (reply: In) => void, onError: (err: Error) => void, nowMs?: number): void;
  /**
   * sendWith() for the first `count` of `messages` at once (onReply[i] / onError[i] for
   * messages[i]), in order: a free connection is borrowed once for as many as it has room for,
   * not once per message; the rest wait for connections as sendWith's do.
   */
  sendManyWith(
    messages: readonly Out[],
    onReply: readonly ((reply: In) => void)[],
    onError: readonly ((err: Error) => void)[],
    count: number,
    nowMs?: number,
  ): void;
  /** Counters and the pool's stats. */
  stats(): TcpClientStats;
  /**
   * Stops the client: new sends reject (ERR_CLIENT_CLOSED), senders waiting for a connection
   * reject (ERR_POOL_CLOSED), requests in flight still get their replies, then every
   * connection closes. Past `timeoutMs` (default 10_000) what is left is closed with
   * ERR_CLIENT_CLOSED. Resolves when all sockets are closed. Idempotent. Rejects with
   * PoolOptionError for bad `options` (also once closing), and does not start closing then.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

type Conn<In, Out> = SocketPipeline<In, Out>;

/** The client behind the TcpClient interface; its connections report to it as their ConnectionOwner. */
class PooledTcpClient<In, Out> implements TcpClient<In, Out>, ConnectionOwner<In, Out> {
  readonly pool: Pool<Conn<In, Out>>;
  readonly settings: ConnectionSettings<In, Out>;
  readonly address: string;
  private readonly o: ResolvedClientOptions<In, Out>;
  private readonly acquireCapMs: number;
  private readonly conns = new Set<Conn<In, Out>>();
  /** Full connections the client keeps borrowed until they have room (see the file comment). */
  private readonly held = new Set<Conn<In, Out>>();
  private sweepTimer: Timer | undefined = undefined;
  private readonly sweepEveryMs: number;
  private closedFlag = false;
  private closePromise: Promise<void> | undefined = undefined;
  private nRequests = 0;
  private nRefused = 0;
  // What closed connections counted; open ones are summed in stats().
  private closedReplies = 0;
  private closedTimeouts = 0;
  private closedFailed = 0;

  constructor(o: ResolvedClientOptions<In, Out>) {
    this.o = o;
    this.settings = o;
    this.address = o.address;
    const poolOpts = o.pool;
    this.acquireCapMs = Math.min(o.requestTimeoutMs, poolOpts.acquireTimeoutMs ?? Infinity);
    // Timeouts are checked by one sweep per client, not a timer per request.
    this.sweepEveryMs = Math.min(100, Math.max(5, Math.floor(Math.min(o.requestTimeoutMs, 60_000) / 20)));
    const ping = o.pingMessage;
    const pingTimeoutMs = Math.min(o.connectTimeoutMs, o.requestTimeoutMs);
    // A failed PING (closed, timed out) means dead; an error reply still proves it is alive.
    const validate =
      ping === undefined
        ? undefined
        : (conn: Conn<In, Out>): Promise<boolean> =>
            conn.isBroken()
              ? Promise.resolve(false)
              : conn.request(ping, pingTimeoutMs).then(
                  () => true,
                  (err) => !(err instanceof ClientRequestError),
                );
    this.pool = new Pool<Conn<In, Out>>({
      ...(poolOpts as Omit<PoolOptions<Conn<In, Out>>, "create" | "max">),
      name: poolOpts.name ?? this.address,
      max: poolOpts.max ?? 8,
      createTimeoutMs: poolOpts.createTimeoutMs ?? o.connectTimeoutMs,
      // A sender with the default timeout waits for a connection at most that long; the
      // pool's shared deadline timer serves them all (per-call timeouts get their own).
      acquireTimeoutMs: this.acquireCapMs,
      create: (ctx) => this.connect(ctx.signal),
      destroy: (conn) => conn.close(),
      isBroken: (conn) => conn.isBroken(),
      ...(validate === undefined ? {} : { validate }),
    });
  }

  get inFlight(): number {
    let n = 0;
    for (const conn of this.conns) n += conn.unsettled;
    return n;
  }
  get connections(): number {
    return this.conns.size;
  }
  get closed(): boolean {
    return this.closedFlag;
  }

  send(message: Out, options?: SendOptions): Promise<In> {
    this.nRequests++;
    if (options !== undefined) {
      // Arguments first: the same bad input gets the same answer whatever the client's state.
      const bad = badCallOptions(options, `client for ${this.address}: send`) ?? badWaitMs(options.timeoutMs, `client for ${this.address}: send`);
      if (bad !== undefined) {
        this.nRefused++;
        return Promise.reject(bad);
      }
    }
    let bytes: Uint8Array;
    try {
      bytes = this.o.codec.encode(message);
    } catch (err) {
      this.nRefused++;
      return Promise.reject(encodeError(err, this.o.codec.name));
    }
    if (this.closedFlag) {
      this.nRefused++;
      return Promise.reject(new ClientRequestError("ERR_CLIENT_CLOSED", `client for ${this.address} is closed; create a new one`));
    }
    const custom = options?.timeoutMs;
    const timeoutMs = custom ?? this.o.requestTimeoutMs;
    const deadlineMs = performance.now() + timeoutMs;
    const conn = this.pool.tryAcquire();
    if (conn !== undefined) return this.dispatch(conn, bytes, deadlineMs);
    return this.pool.acquire(custom === undefined ? undefined : { timeoutMs: Math.min(custom, this.acquireCapMs) }).then(
      (c) => this.dispatch(c, bytes, deadlineMs),
      (err) => {
        this.nRefused++;
        throw err;
      },
    );
  }

  sendWith(message: Out, onReply: (reply: In) => void, onError: (err: Error) => void, nowMs?: number): void {
    const bytes = this.encodeWith(message, onError);
    if (bytes === null) return;
    if (this.closedFlag) {
      this.nRefused++;
      const e = new ClientRequestError("ERR_CLIENT_CLOSED", `client for ${this.address} is closed; create a new one`);
      queueMicrotask(() => onError(e));
      return;
    }
    const deadlineMs = (nowMs ?? performance.now()) + this.o.requestTimeoutMs;
    const conn = this.pool.tryAcquire();
    if (conn !== undefined) {
      conn.sendWith(bytes, deadlineMs, onReply, onError);
      this.afterSend(conn);
      return;
    }
    this.pool.acquire().then(
      (c) => {
        c.sendWith(bytes, deadlineMs, onReply, onError);
        this.afterSend(c);
      },
      (err) => {
        this.nRefused++;
        onError(err);
      },
    );
  }

  sendManyWith(
    messages: readonly Out[],
    onReply: readonly ((reply: In) => void)[],
    onError: readonly ((err: Error) => void)[],
    count: number,
    nowMs?: number,
  ): void {
    const now = nowMs ?? performance.now();
    const deadlineMs = now + this.o.requestTimeoutMs;
    let i = 0;
    while (i < count && !this.closedFlag) {
      const conn = this.pool.tryAcquire();
      if (conn === undefined) break;
      // As many as the connection has room for, then back to the pool (or held) once: the
      // pool's acquire and release per message were a tenth of the proxy's CPU.
      do {
        this.sendOn(conn, messages[i]!, onReply[i]!, onError[i]!, deadlineMs);
        i++;
      } while (i < count && conn.hasRoom());
      this.afterSend(conn);
    }
    // No connection free (or the client closed): the rest one at a time, waiting their turn.
    for (; i < count; i++) this.sendWith(messages[i]!, onReply[i]!, onError[i]!, now);
  }

  /** Encodes `message` and sends it on `conn` (borrowed by the caller); an encode failure goes to onError. */
  private sendOn(conn: Conn<In, Out>, message: Out, onReply: (reply: In) => void, onError: (err: Error) => void, deadlineMs: number): void {
    const bytes = this.encodeWith(message, onError);
    if (bytes !== null) conn.sendWith(bytes, deadlineMs, onReply, onError);
  }

  /**
   * A callback send's request counted and encoded; null when the codec refused it (counted
   * refused, its error to onError from a microtask: never from inside the caller's call).
   */
  private encodeWith(message: Out, onError: (err: Error) => void): Uint8Array | null {
    this.nRequests++;
    try {
      return this.o.codec.encode(message);
    } catch (err) {
      this.nRefused++;
      const e = encodeError(err, this.o.codec.name);
      queueMicrotask(() => onError(e));
      return null;
    }
  }

  private dispatch(conn: Conn<In, Out>, bytes: Uint8Array, deadlineMs: number): Promise<In> {
    const p = conn.send(bytes, deadlineMs);
    this.afterSend(conn);
    return p;
  }

  /** A request went on `conn`: back to the pool at once while it has room, else held until it has. */
  private afterSend(conn: Conn<In, Out>): void {
    // The next sender pipelines behind us. A broken one goes back too: the pool destroys it.
    if (conn.hasRoom() || conn.isBroken()) {
      this.pool.release(conn);
    } else {
      this.held.add(conn);
      conn.notifyWhenRoom();
    }
  }

  sendersWaiting(): boolean {
    return this.pool.waiting > 0;
  }

  onRoom(conn: Conn<In, Out>): void {
    if (this.held.delete(conn)) this.pool.release(conn);
  }

  onClosed(conn: Conn<In, Out>): void {
    this.conns.delete(conn);
    this.closedReplies += conn.replies;
    this.closedTimeouts += conn.timeouts;
    this.closedFailed += conn.failed;
    this.retire(conn);
  }

  /** Takes a dead or presumed-dead connection out of the pool. */
  private retire(conn: Conn<In, Out>): void {
    if (this.held.delete(conn)) {
      conn.cancelRoomNotice();
      this.pool.release(conn); // broken: the pool destroys it
    } else {
      this.pool.invalidate(conn);
    }
  }

  private async connect(signal: AbortSignal): Promise<Conn<In, Out>> {
    const conn = await SocketPipeline.open(this, this.o.host, this.o.port, this.o.unix);
    if (signal.aborted || this.closedFlag) {
      conn.terminate();
      throw signal.reason ?? new ClientRequestError("ERR_CLIENT_CLOSED", `client for ${this.address} is closed`);
    }
    this.conns.add(conn);
    const onConnect = this.o.onConnect;
    if (onConnect !== undefined) {
      try {
        await onConnect(conn);
      } catch (err) {
        conn.terminate();
        throw err;
      }
    }
    return conn;
  }

  onRequest(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepEveryMs);
    (this.sweepTimer as { unref?: () => void }).unref?.();
  }

  private sweep(): void {
    const now = performance.now();
    let unsettled = 0;
    for (const conn of this.conns) {
      if (conn.unsettled === 0) continue;
      conn.sweep(now);
      if (conn.suspect && !conn.closed) this.retire(conn);
      unsettled += conn.unsettled;
    }
    if (unsettled === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  stats(): TcpClientStats {
    let replies = this.closedReplies;
    let timeouts = this.closedTimeouts;
    let failed = this.closedFailed;
    let inFlight = 0;
    for (const conn of this.conns) {
      replies += conn.replies;
      timeouts += conn.timeouts;
      failed += conn.failed;
      inFlight += conn.unsettled;
    }
    return {
      requests: this.nRequests,
      replies,
      timeouts,
      connectionErrors: failed,
      refused: this.nRefused,
      inFlight,
      connections: this.conns.size,
      pool: this.pool.stats(),
    };
  }

  close(options?: { timeoutMs?: number }): Promise<void> {
    const bad = badCallOptions(options, `client for ${this.address}: close`) ?? badWaitMs(options?.timeoutMs, `client for ${this.address}: close`);
    if (bad !== undefined) return Promise.reject(bad);
    if (this.closePromise !== undefined) return this.closePromise;
    this.closedFlag = true;
    const timeoutMs = options?.timeoutMs ?? 10_000;
    const drained = this.pool.drain({ timeoutMs });
    for (const conn of this.held) this.onRoom(conn);
    this.closePromise = drained.then(async () => {
      const err = new ClientRequestError("ERR_CLIENT_CLOSED", `client for ${this.address} closed before the reply arrived`);
      const left = [...this.conns];
      for (const conn of left) conn.terminate(err);
      await Promise.all(left.map((c) => c.whenClosed));
      if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    });
    return this.closePromise;
  }
}

/**
 * Builds a client from options a caller has checked with checkClientOptions (the RESP
 * client checks its own, wider, options once and comes here).
 */
export function clientFromCheckedOptions<In, Out>(options: TcpClientOptions<In, Out>): TcpClient<In, Out> {
  return new PooledTcpClient(resolveClientOptions(options));
}

/**
 * Creates a pooled pipelining client for any codec. Throws PoolOptionError for a bad option.
 * Connections open on demand (or `pool.min` at once).
 */
export function createTcpClient<In, Out>(options: TcpClientOptions<In, Out>): TcpClient<In, Out> {
  checkClientOptions(TcpClientOptionsSchema, options, "client");
  return clientFromCheckedOptions(options);
}
