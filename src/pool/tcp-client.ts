/**
 * A pooled, pipelining TCP client over Bun.connect that speaks any codec from src/codec.
 *
 * How requests are spread over connections (the channel model, tuned for throughput):
 * send() pops a connection from the Pool (tryAcquire(), synchronous, or acquire() when none
 * is free), appends the encoded request to that connection's write buffer and records its
 * resolver in the connection's ring of pending replies, then pushes the connection straight
 * back to the pool while it has room — fewer than maxInFlightPerConnection requests in
 * flight and fewer than maxWriteBufferBytes unsent. A connection that is full stays borrowed
 * (by the client, not by the task) until replies or a `drain` make room; then it is released
 * and the oldest waiting send() gets it. So:
 * - many requests are in flight on one connection (pipelining), replies matched in order;
 * - the idle stack is LIFO, so light load stays on one warm connection; load fills a
 *   connection to its pipeline depth, then spills onto the next, up to pool.max; past that,
 *   senders queue FIFO in the pool (bounded in-flight work = backpressure);
 * - writes are coalesced: every request enqueued in the same microtask burst goes out in one
 *   socket.write(); the rest of a partial write waits for `drain`.
 *
 * Failure contract:
 * - a connection that drops fails exactly its unanswered requests with ERR_CONNECTION_CLOSED
 *   and leaves the pool (which replaces it on demand, with backoff if connecting fails);
 * - every send() settles within its timeout (requestTimeoutMs, covering the wait for a
 *   connection too) with a reply or an error; a request that times out is answered with
 *   ERR_REQUEST_TIMEOUT and its late reply is discarded; a connection whose oldest request
 *   timed out is presumed dead: it gets no new requests and is closed once the rest settle.
 */
import { type TSchema, Type } from "@sinclair/typebox";
import type { Socket, SocketHandler } from "bun";
import { type Codec, FRAME_INCOMPLETE, FRAME_TOO_LARGE } from "../codec/index.ts";
import { ClientRequestError } from "./errors.ts";
import { checkOptions, PoolOptionsSchema, type PoolOptions } from "./options.ts";
import { Pool, type PoolStats } from "./pool.ts";

type Timer = ReturnType<typeof setTimeout>;

/** The Pool options a client accepts (create/destroy/isBroken/validate are the client's). */
export type ClientPoolOptions = Partial<Omit<PoolOptions<unknown>, "create" | "destroy" | "validate" | "isBroken">>;

/** Options of createTcpClient. Times in milliseconds. */
export interface TcpClientOptions<In, Out> {
  /** Host to connect to. Default "127.0.0.1". */
  host?: string;
  /** Port to connect to. Required. */
  port: number;
  /** Frames replies (measure/decode) and encodes requests. */
  codec: Codec<In, Out>;
  /** Pool of connections; `max` default 8. pool.acquireTimeoutMs, when given, caps the wait for a connection. */
  pool?: ClientPoolOptions;
  /** Whole-request deadline: waiting for a connection + sending + the reply. Default 10_000; Infinity allowed. */
  requestTimeoutMs?: number;
  /** Connection attempt limit (the pool's createTimeoutMs unless pool.createTimeoutMs is given). Default 5_000. */
  connectTimeoutMs?: number;
  /** Pipeline depth: requests in flight per connection before it stops taking more. Default 256. */
  maxInFlightPerConnection?: number;
  /** Unsent bytes per connection before it stops taking more requests (until `drain`). Default 4 MiB. */
  maxWriteBufferBytes?: number;
  /** Largest reply accepted; a bigger one is a protocol error that closes the connection. Default 64 MiB. */
  maxFrameBytes?: number;
  /** Turns a decoded reply into an error to reject with (e.g. a RESP "-ERR" reply), or undefined. */
  isErrorReply?: (reply: In) => Error | undefined;
  /**
   * Sent to check a connection that sat idle in the pool for pool.validateAfterIdleMs
   * (default 500) before it is used again; an error or no reply within connectTimeoutMs
   * drops it. This catches a peer that closed the connection while the close was not yet
   * seen. Omitted: no validation (createRespClient sends ["PING"]).
   */
  pingMessage?: Out;
  /** Runs on each new connection before it joins the pool (AUTH, SELECT...); a rejection fails the connect. */
  onConnect?: (conn: PipelinedConnection<In, Out>) => void | Promise<void>;
}

/** Per-call options of send(). */
export interface SendOptions {
  /** This request's deadline in ms (overrides requestTimeoutMs). */
  timeoutMs?: number;
}

/** Counters of a client. */
export interface TcpClientStats {
  /** send() calls accepted. */
  requests: number;
  /** Replies delivered (errors replies included, late replies of timed-out requests not). */
  replies: number;
  /** Requests answered with ERR_REQUEST_TIMEOUT. */
  timeouts: number;
  /** Requests failed by a dropped connection. */
  connectionErrors: number;
  /** Requests waiting for their reply now. */
  inFlight: number;
  /** Open connections. */
  connections: number;
  pool: PoolStats;
}

const ms = (allowed: string) =>
  Type.Union([Type.Number({ minimum: 0 }), Type.Literal(Infinity)], { description: allowed });

const ClientPoolSchema = Type.Partial(Type.Omit(PoolOptionsSchema, ["create", "destroy", "validate", "isBroken"]));

/** The TypeBox schema of TcpClientOptions. */
export const TcpClientOptionsSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1, description: "a host name or IP address" })),
    port: Type.Integer({ minimum: 1, maximum: 65535, description: "an integer port in 1..65535" }),
    codec: Type.Object(
      {
        measure: Type.Function([], Type.Unknown()),
        decode: Type.Function([], Type.Unknown()),
        encode: Type.Function([], Type.Unknown()),
      },
      { description: "a Codec from src/codec (measure, decode, encode)" },
    ),
    pool: Type.Optional(Type.Object({}, { description: "Pool options (see PoolOptions) without create/destroy/validate/isBroken" })),
    requestTimeoutMs: Type.Optional(ms("milliseconds > 0, or Infinity")),
    connectTimeoutMs: Type.Optional(ms("milliseconds > 0, or Infinity")),
    maxInFlightPerConnection: Type.Optional(Type.Integer({ minimum: 1, description: "an integer >= 1" })),
    maxWriteBufferBytes: Type.Optional(Type.Integer({ minimum: 1, description: "an integer number of bytes >= 1" })),
    maxFrameBytes: Type.Optional(Type.Integer({ minimum: 1, description: "an integer number of bytes >= 1" })),
    isErrorReply: Type.Optional(Type.Function([], Type.Unknown(), { description: "a function (reply) => Error | undefined" })),
    onConnect: Type.Optional(Type.Function([], Type.Unknown(), { description: "a function (conn) => void | Promise<void>" })),
    pingMessage: Type.Optional(Type.Unknown({ description: "a message the codec can encode" })),
  },
  { additionalProperties: false },
);

/** Validates client options (names the bad one) and the nested pool options. */
export function checkClientOptions(opts: unknown, what: string, extra?: Record<string, TSchema>): void {
  const schema = extra ? Type.Object({ ...TcpClientOptionsSchema.properties, ...extra }, { additionalProperties: false }) : TcpClientOptionsSchema;
  checkOptions(schema, opts, what);
  const pool = (opts as { pool?: unknown }).pool;
  if (pool !== undefined) checkOptions(ClientPoolSchema, pool, `${what} pool`);
}

// ------------------------------------------------------------------ connection

const LIVE = 1;
const TOMBSTONE = 0;

// new Promise(pendingExecutor) records the resolvers without a closure per request.
let execTarget: PipelinedConnection<any, any>;
let execDeadline = 0;
function pendingExecutor(resolve: (v: any) => void, reject: (e: Error) => void): void {
  execTarget.pushPending(resolve, reject, execDeadline);
}

const SOCKET_HANDLERS: SocketHandler<PipelinedConnection<any, any>> = {
  open(socket) {
    socket.data.attach(socket);
  },
  data(socket, chunk) {
    socket.data.onData(chunk);
  },
  drain(socket) {
    socket.data.onDrain();
  },
  close(socket, err) {
    socket.data.onSocketClose(err);
  },
  error(socket, err) {
    socket.data.onSocketClose(err);
    socket.terminate();
  },
  connectError() {
    // Bun.connect rejects; create() turns that into a create error.
  },
};

/**
 * One TCP connection with a pipeline: requests are written in order and their replies
 * settle their promises in the same order. Owned by a TcpClient; user code meets it only in
 * onConnect (to send handshake commands with request()).
 */
export class PipelinedConnection<In, Out> {
  private socket: Socket<PipelinedConnection<In, Out>> | null = null;
  /** The socket closed (or never opened). */
  closed = false;
  /** Closing gracefully: no new requests; closes once the in-flight ones settle. */
  closing = false;
  /** Its oldest request timed out: presumed dead, gets no new requests. */
  suspect = false;
  /** Borrowed from the pool by the client because it is full (see the file comment). */
  held = false;
  /** Requests sent and not yet settled. */
  unsettled = 0;

  // Pending replies: a ring of (resolve, reject, deadline, live), struct of arrays.
  private resolves: (((v: In) => void) | undefined)[];
  private rejects: (((e: Error) => void) | undefined)[];
  private deadlines: Float64Array;
  private live: Uint8Array;
  private head = 0;
  /** Ring entries, tombstones of timed-out requests included. */
  private count = 0;
  private mask: number;

  // Unsent bytes: wbuf[wstart, wlen).
  private wbuf = new Uint8Array(16_384);
  private wstart = 0;
  private wlen = 0;
  private flushQueued = false;
  private flushDeferred = false;
  private waitingDrain = false;
  private readonly flushFn = () => this.flush();

  // Bytes of an incomplete reply: inbuf[inStart, inEnd). Never overwritten in place, so
  // values a codec decoded as views into it stay valid.
  private inbuf: Uint8Array | null = null;
  private inStart = 0;
  private inEnd = 0;

  private closeTimer: Timer | undefined = undefined;
  private resolveClosed!: () => void;
  /** Settles when the socket has closed. */
  readonly whenClosed: Promise<void>;

  constructor(private readonly client: TcpClient<In, Out>) {
    const cap = 16;
    this.resolves = new Array(cap);
    this.rejects = new Array(cap);
    this.deadlines = new Float64Array(cap);
    this.live = new Uint8Array(cap);
    this.mask = cap - 1;
    this.whenClosed = new Promise((r) => {
      this.resolveClosed = r;
    });
  }

  /** Requests in flight, answered or timed out ones whose reply is still due included. */
  get inFlight(): number {
    return this.count;
  }
  /** Bytes enqueued and not yet accepted by the kernel. */
  get unsentBytes(): number {
    return this.wlen - this.wstart;
  }

  /** True while it can take another request without exceeding its pipeline or write limits. */
  hasRoom(): boolean {
    return (
      !this.closed &&
      !this.closing &&
      !this.suspect &&
      this.count < this.client.maxInFlight &&
      this.wlen - this.wstart < this.client.maxWriteBufferBytes
    );
  }

  /** Dead or going: the pool must not hand it out. */
  isBroken(): boolean {
    return this.closed || this.closing || this.suspect;
  }

  /**
   * Sends `message` and resolves its reply (rejects with the codec's error reply via
   * isErrorReply, ERR_CONNECTION_CLOSED, ERR_REQUEST_TIMEOUT). Throws what codec.encode
   * throws. `timeoutMs` default: the client's requestTimeoutMs.
   */
  request(message: Out, timeoutMs: number = this.client.requestTimeoutMs): Promise<In> {
    return this.send(message, performance.now() + timeoutMs);
  }

  /** @internal send with an absolute deadline (performance.now() clock). */
  send(message: Out, deadlineMs: number): Promise<In> {
    if (this.closed) {
      return Promise.reject(
        new ClientRequestError("ERR_CONNECTION_CLOSED", `connection to ${this.client.address} is closed; the request was not sent`),
      );
    }
    const bytes = this.client.codec.encode(message);
    this.enqueue(bytes);
    execTarget = this;
    execDeadline = deadlineMs;
    const p = new Promise<In>(pendingExecutor);
    this.client.armSweep();
    return p;
  }

  /** @internal */
  pushPending(resolve: (v: In) => void, reject: (e: Error) => void, deadlineMs: number): void {
    if (this.count > this.mask) this.growRing();
    const i = (this.head + this.count) & this.mask;
    this.resolves[i] = resolve;
    this.rejects[i] = reject;
    this.deadlines[i] = deadlineMs;
    this.live[i] = LIVE;
    this.count++;
    this.unsettled++;
    this.client.inFlightTotal++;
  }

  private growRing(): void {
    const cap = (this.mask + 1) * 2;
    const resolves = new Array(cap);
    const rejects = new Array(cap);
    const deadlines = new Float64Array(cap);
    const live = new Uint8Array(cap);
    for (let k = 0; k < this.count; k++) {
      const j = (this.head + k) & this.mask;
      resolves[k] = this.resolves[j];
      rejects[k] = this.rejects[j];
      deadlines[k] = this.deadlines[j] as number;
      live[k] = this.live[j] as number;
    }
    this.resolves = resolves;
    this.rejects = rejects;
    this.deadlines = deadlines;
    this.live = live;
    this.head = 0;
    this.mask = cap - 1;
  }

  private enqueue(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.wlen + n > this.wbuf.length) {
      const used = this.wlen - this.wstart;
      if (used + n <= this.wbuf.length && this.wstart > 0) {
        this.wbuf.copyWithin(0, this.wstart, this.wlen);
      } else {
        const next = new Uint8Array(Math.max(this.wbuf.length * 2, used + n));
        next.set(this.wbuf.subarray(this.wstart, this.wlen));
        this.wbuf = next;
      }
      this.wstart = 0;
      this.wlen = used;
    }
    this.wbuf.set(bytes, this.wlen);
    this.wlen += n;
    if (!this.flushQueued && !this.waitingDrain) {
      this.flushQueued = true;
      queueMicrotask(this.flushFn);
    }
  }

  /**
   * Writes what is buffered: one write() for every request of the burst. Runs as a
   * microtask after the first request of a burst; when senders are queued in the pool they
   * are handed connections one microtask after another, so then it waits for setImmediate
   * (after the whole chain) to write them all at once.
   */
  private flush(): void {
    if (!this.flushDeferred && this.client.pool.waiting > 0 && this.hasRoom()) {
      this.flushDeferred = true;
      setImmediate(this.flushFn);
      return;
    }
    this.flushDeferred = false;
    this.flushQueued = false;
    const socket = this.socket;
    if (socket === null || this.wlen === this.wstart) return;
    const wrote = socket.write(this.wbuf, this.wstart, this.wlen - this.wstart);
    if (wrote < 0) return; // closed: the close callback fails the requests
    this.wstart += wrote;
    if (this.wstart === this.wlen) {
      this.wstart = this.wlen = 0;
      if (this.wbuf.length > 1 << 20) this.wbuf = new Uint8Array(16_384); // give back a burst's buffer
    } else {
      this.waitingDrain = true;
    }
  }

  /** @internal */
  attach(socket: Socket<PipelinedConnection<In, Out>>): void {
    if (this.socket !== null) return;
    this.socket = socket;
    socket.setNoDelay(true); // writes are coalesced here already; Nagle would only add latency
  }

  /** @internal */
  onDrain(): void {
    this.waitingDrain = false;
    this.flush();
    if (this.held && this.hasRoom()) this.client.onRoom(this);
  }

  /** @internal */
  onData(chunk: Uint8Array): void {
    let buf: Uint8Array;
    let p: number;
    let end: number;
    const inbuf = this.inbuf;
    if (inbuf === null) {
      buf = chunk;
      p = 0;
      end = chunk.length;
    } else {
      if (this.inEnd + chunk.length > inbuf.length) {
        const have = this.inEnd - this.inStart;
        const next = new Uint8Array(Math.max((have + chunk.length) * 2, 16_384));
        next.set(inbuf.subarray(this.inStart, this.inEnd));
        this.inbuf = next;
        this.inStart = 0;
        this.inEnd = have;
      }
      buf = this.inbuf as Uint8Array;
      buf.set(chunk, this.inEnd);
      this.inEnd += chunk.length;
      p = this.inStart;
      end = this.inEnd;
    }
    const codec = this.client.codec;
    const maxFrameBytes = this.client.maxFrameBytes;
    while (p < end) {
      const n = codec.measure(buf, p, end, maxFrameBytes);
      if (n > 0) {
        const value = codec.decode(buf, p, n);
        p += n;
        if (!this.deliver(value)) return;
        continue;
      }
      if (n === FRAME_INCOMPLETE) break;
      this.protocolError(
        n === FRAME_TOO_LARGE
          ? `a reply from ${this.client.address} exceeds maxFrameBytes=${maxFrameBytes}; raise maxFrameBytes if such replies are expected`
          : `${this.client.address} sent bytes that are not a valid ${codec.name} reply; check that host:port speaks this protocol`,
      );
      return;
    }
    if (p === end) {
      this.inbuf = null;
    } else if (buf === chunk) {
      const rest = end - p;
      const next = new Uint8Array(Math.max(rest * 2, 16_384));
      next.set(chunk.subarray(p, end));
      this.inbuf = next;
      this.inStart = 0;
      this.inEnd = rest;
    } else {
      this.inStart = p;
    }
    if (this.closing && this.unsettled === 0) this.endSocket();
    else if (this.held && this.hasRoom()) this.client.onRoom(this);
  }

  /** Settles the oldest request with `value`; false when that was a protocol error. */
  private deliver(value: In): boolean {
    if (this.count === 0) {
      this.protocolError(`${this.client.address} sent a reply nobody asked for (push messages are not supported on a pipelined connection)`);
      return false;
    }
    const h = this.head;
    const live = this.live[h];
    const resolve = this.resolves[h] as (v: In) => void;
    const reject = this.rejects[h] as (e: Error) => void;
    this.resolves[h] = undefined;
    this.rejects[h] = undefined;
    this.head = (h + 1) & this.mask;
    this.count--;
    if (live === LIVE) {
      this.unsettled--;
      this.client.inFlightTotal--;
      this.client.nReplies++;
      const isError = this.client.isErrorReply;
      const err = isError === undefined ? undefined : isError(value);
      if (err === undefined) resolve(value);
      else reject(err);
    }
    return true;
  }

  /** Rejects requests past their deadline; returns how many. @internal */
  sweep(nowMs: number): number {
    let expired = 0;
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) & this.mask;
      if (this.live[i] === LIVE && (this.deadlines[i] as number) <= nowMs) {
        this.live[i] = TOMBSTONE;
        this.unsettled--;
        this.client.inFlightTotal--;
        expired++;
        // The oldest request unanswered that long: the peer is presumed gone.
        if (k === 0) this.suspect = true;
        (this.rejects[i] as (e: Error) => void)(
          new ClientRequestError(
            "ERR_REQUEST_TIMEOUT",
            `no reply from ${this.client.address} within the request's timeout (requestTimeoutMs=${this.client.requestTimeoutMs} unless set per call); it may still be applied; raise the timeout for slow commands`,
          ),
        );
        this.rejects[i] = undefined;
        this.resolves[i] = undefined;
      }
    }
    if (expired > 0 && this.closing && this.unsettled === 0) this.endSocket();
    return expired;
  }

  private protocolError(message: string): void {
    this.failAll(new ClientRequestError("ERR_PROTOCOL", message));
    this.socket?.terminate();
  }

  /**
   * Closes gracefully: takes no new requests, waits for the ones in flight to settle (reply
   * or timeout), then closes the socket. Resolves when it is closed.
   */
  close(): Promise<void> {
    if (this.closed) return this.whenClosed;
    this.closing = true;
    if (this.unsettled === 0) this.endSocket();
    return this.whenClosed;
  }

  /** Closes now, failing what is in flight with `reason` (ERR_CONNECTION_CLOSED by default). */
  terminate(reason?: Error): void {
    if (this.closed) return;
    if (reason !== undefined) this.failAll(reason);
    if (this.socket === null) this.onSocketClose(undefined);
    else this.socket.terminate();
  }

  private endSocket(): void {
    const socket = this.socket;
    if (socket === null) {
      this.onSocketClose(undefined);
      return;
    }
    if (this.closeTimer !== undefined) return;
    this.flush();
    socket.end();
    // A peer that never closes its side must not keep us waiting.
    this.closeTimer = setTimeout(() => socket.terminate(), 1_000);
    (this.closeTimer as { unref?: () => void }).unref?.();
  }

  /** @internal the socket closed (or errored). */
  onSocketClose(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket = null;
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    if (this.unsettled > 0) {
      this.client.nConnectionErrors += this.unsettled;
      this.failAll(
        new ClientRequestError(
          "ERR_CONNECTION_CLOSED",
          `connection to ${this.client.address} closed with ${this.unsettled} request(s) unanswered${err ? ` (${err.message})` : ""}; they may or may not have been applied — retry only if that is safe`,
          err,
        ),
      );
    }
    this.count = 0;
    this.head = 0;
    this.wstart = this.wlen = 0;
    this.inbuf = null;
    this.client.onConnectionClosed(this);
    this.resolveClosed();
  }

  private failAll(err: Error): void {
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) & this.mask;
      if (this.live[i] === LIVE) {
        this.live[i] = TOMBSTONE;
        this.unsettled--;
        this.client.inFlightTotal--;
        (this.rejects[i] as (e: Error) => void)(err);
      }
      this.resolves[i] = undefined;
      this.rejects[i] = undefined;
    }
  }
}

// ------------------------------------------------------------------ client

/** A pooled pipelining client; create with createTcpClient(). */
export class TcpClient<In, Out> {
  /** The connection pool (stats, drain). */
  readonly pool: Pool<PipelinedConnection<In, Out>>;
  readonly codec: Codec<In, Out>;
  readonly host: string;
  readonly port: number;
  /** "host:port", for messages. */
  readonly address: string;
  readonly requestTimeoutMs: number;
  readonly maxInFlight: number;
  readonly maxWriteBufferBytes: number;
  readonly maxFrameBytes: number;
  readonly isErrorReply: ((reply: In) => Error | undefined) | undefined;
  private readonly onConnect: ((conn: PipelinedConnection<In, Out>) => void | Promise<void>) | undefined;
  private readonly acquireCapMs: number;
  private readonly conns = new Set<PipelinedConnection<In, Out>>();
  private sweepTimer: Timer | undefined = undefined;
  private readonly sweepEveryMs: number;
  private closedFlag = false;
  private closePromise: Promise<void> | undefined = undefined;
  /** @internal */ inFlightTotal = 0;
  /** @internal */ nReplies = 0;
  /** @internal */ nConnectionErrors = 0;
  private nRequests = 0;
  private nTimeouts = 0;

  /** Validates options (throws PoolOptionError naming a bad one); connects lazily (or `pool.min` at once). */
  constructor(options: TcpClientOptions<In, Out>, what = "client") {
    checkClientOptions(options, what);
    this.codec = options.codec;
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port;
    this.address = this.host.includes(":") ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxInFlight = options.maxInFlightPerConnection ?? 256;
    this.maxWriteBufferBytes = options.maxWriteBufferBytes ?? 4 << 20;
    this.maxFrameBytes = options.maxFrameBytes ?? 64 << 20;
    this.isErrorReply = options.isErrorReply;
    this.onConnect = options.onConnect;
    const poolOpts = options.pool ?? {};
    this.acquireCapMs = Math.min(this.requestTimeoutMs, poolOpts.acquireTimeoutMs ?? Infinity);
    // Timeouts are checked by one sweep per client, not a timer per request.
    this.sweepEveryMs = Math.min(100, Math.max(5, Math.floor(Math.min(this.requestTimeoutMs, 60_000) / 20)));
    const ping = options.pingMessage;
    const pingTimeoutMs = Math.min(options.connectTimeoutMs ?? 5_000, this.requestTimeoutMs);
    // A failed PING (closed, timed out) means dead; an error reply still proves it is alive.
    const validate =
      ping === undefined
        ? undefined
        : (conn: PipelinedConnection<In, Out>): Promise<boolean> =>
            conn.isBroken()
              ? Promise.resolve(false)
              : conn.request(ping, pingTimeoutMs).then(
                  () => true,
                  (err) => !(err instanceof ClientRequestError),
                );
    this.pool = new Pool<PipelinedConnection<In, Out>>({
      ...(poolOpts as Omit<PoolOptions<PipelinedConnection<In, Out>>, "create" | "max">),
      name: poolOpts.name ?? this.address,
      max: poolOpts.max ?? 8,
      createTimeoutMs: poolOpts.createTimeoutMs ?? options.connectTimeoutMs ?? 5_000,
      // A sender with the default timeout waits for a connection at most that long; the
      // pool's shared deadline timer serves them all (per-call timeouts get their own).
      acquireTimeoutMs: this.acquireCapMs,
      create: (ctx) => this.connect(ctx.signal),
      destroy: (conn) => conn.close(),
      isBroken: (conn) => conn.isBroken(),
      ...(validate === undefined ? {} : { validate }),
    });
  }

  /** Requests waiting for their reply now (cheap; stats() has the rest). */
  get inFlight(): number {
    return this.inFlightTotal;
  }
  /** Open connections now. */
  get connections(): number {
    return this.conns.size;
  }
  /** True once close() was called. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Sends one request and resolves its reply. Rejects with the error reply (isErrorReply),
   * ClientRequestError (ERR_REQUEST_TIMEOUT, ERR_CONNECTION_CLOSED, ERR_CLIENT_CLOSED), a
   * pool error when no connection could be had in time (ERR_POOL_*), or the codec's encode
   * error. Settles within its timeout (options.timeoutMs ?? requestTimeoutMs), give or take
   * the timeout sweep's resolution (requestTimeoutMs / 20, 5..100 ms).
   */
  send(message: Out, options?: SendOptions): Promise<In> {
    if (this.closedFlag) {
      return Promise.reject(new ClientRequestError("ERR_CLIENT_CLOSED", `client for ${this.address} is closed; create a new one`));
    }
    const custom = options?.timeoutMs;
    const timeoutMs = custom ?? this.requestTimeoutMs;
    this.nRequests++;
    const now = performance.now();
    const conn = this.pool.tryAcquire();
    if (conn !== undefined) return this.dispatch(conn, message, now + timeoutMs);
    return this.pool
      .acquire(custom === undefined ? undefined : { timeoutMs: Math.min(custom, this.acquireCapMs) })
      .then((c) => this.dispatch(c, message, now + timeoutMs));
  }

  private dispatch(conn: PipelinedConnection<In, Out>, message: Out, deadlineMs: number): Promise<In> {
    let p: Promise<In>;
    try {
      p = conn.send(message, deadlineMs);
    } catch (err) {
      this.pool.release(conn);
      return Promise.reject(err);
    }
    // Back to the pool at once while it has room: the next sender pipelines behind us. A
    // broken one goes back too: the pool destroys it.
    if (conn.hasRoom() || conn.isBroken()) this.pool.release(conn);
    else conn.held = true;
    return p;
  }

  /** @internal a held connection has room again. */
  onRoom(conn: PipelinedConnection<In, Out>): void {
    if (!conn.held) return;
    conn.held = false;
    this.pool.release(conn);
  }

  /** @internal */
  onConnectionClosed(conn: PipelinedConnection<In, Out>): void {
    this.conns.delete(conn);
    this.retire(conn);
  }

  /** Takes a dead or presumed-dead connection out of the pool. */
  private retire(conn: PipelinedConnection<In, Out>): void {
    if (conn.held) {
      conn.held = false;
      this.pool.release(conn); // broken: the pool destroys it
    } else {
      this.pool.invalidate(conn);
    }
  }

  private async connect(signal: AbortSignal): Promise<PipelinedConnection<In, Out>> {
    const conn = new PipelinedConnection<In, Out>(this);
    let socket: Socket<PipelinedConnection<In, Out>>;
    try {
      socket = await Bun.connect({ hostname: this.host, port: this.port, data: conn, socket: SOCKET_HANDLERS });
    } catch (err) {
      const code = (err as { code?: string })?.code;
      throw new ClientRequestError(
        "ERR_CONNECT",
        `cannot connect to ${this.address}: ${(err as Error)?.message ?? err}${code ? ` (${code})` : ""}; check that the server runs and listens there`,
        err,
      );
    }
    conn.attach(socket);
    if (signal.aborted || this.closedFlag) {
      conn.terminate();
      throw signal.reason ?? new ClientRequestError("ERR_CLIENT_CLOSED", `client for ${this.address} is closed`);
    }
    this.conns.add(conn);
    if (this.onConnect !== undefined) {
      try {
        await this.onConnect(conn);
      } catch (err) {
        conn.terminate();
        throw err;
      }
    }
    return conn;
  }

  /** @internal makes sure the timeout sweep runs while requests are in flight. */
  armSweep(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepEveryMs);
    (this.sweepTimer as { unref?: () => void }).unref?.();
  }

  private sweep(): void {
    const now = performance.now();
    for (const conn of this.conns) {
      if (conn.unsettled === 0) continue;
      this.nTimeouts += conn.sweep(now);
      if (conn.suspect && !conn.closed) this.retire(conn);
    }
    if (this.inFlightTotal === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  /** Counters and the pool's stats. */
  stats(): TcpClientStats {
    return {
      requests: this.nRequests,
      replies: this.nReplies,
      timeouts: this.nTimeouts,
      connectionErrors: this.nConnectionErrors,
      inFlight: this.inFlightTotal,
      connections: this.conns.size,
      pool: this.pool.stats(),
    };
  }

  /**
   * Stops the client: new sends reject (ERR_CLIENT_CLOSED), senders waiting for a connection
   * reject (ERR_POOL_CLOSED), requests in flight still get their replies, then every
   * connection closes. Past `timeoutMs` (default 10_000) what is left is closed with
   * ERR_CLIENT_CLOSED. Resolves when all sockets are closed. Idempotent.
   */
  close(options?: { timeoutMs?: number }): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise;
    this.closedFlag = true;
    const timeoutMs = options?.timeoutMs ?? 10_000;
    const drained = this.pool.drain({ timeoutMs });
    for (const conn of this.conns) if (conn.held) this.onRoom(conn);
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
 * Creates a pooled pipelining client for any codec. Throws PoolOptionError for a bad option.
 * Connections open on demand (or `pool.min` at once).
 */
export function createTcpClient<In, Out>(options: TcpClientOptions<In, Out>): TcpClient<In, Out> {
  return new TcpClient(options);
}
