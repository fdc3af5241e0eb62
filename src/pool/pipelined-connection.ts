/**
 * One pipelined TCP connection over Bun.connect: requests are written in order and their
 * replies settle them in the same order (send()'s promises, or sendWith()'s callbacks). A client (tcp-client.ts) owns it through
 * ConnectionOwner and reads its state through getters; user code meets it only as the
 * PipelinedConnection interface, in onConnect.
 *
 * - Pending replies live in a ring, struct of arrays (resolve, reject, deadline, live): no
 *   object per request. A request that times out leaves a tombstone; its late reply is read
 *   and discarded so the replies behind it still match.
 * - Writes are coalesced: every request of one microtask burst goes out in one
 *   socket.write(); the rest of a partial write waits for `drain`.
 * - The connection counts what becomes of its requests (replies, timeouts, failures); the
 *   client sums them.
 *
 * One class of about 640 lines, one concern (a connection's requests and replies): the ring,
 * the write buffer and the read buffer are the state every request and every reply touch, on
 * the hot path, in one object per connection.
 */
import type { Socket, SocketHandler } from "bun";
import { type Codec, FRAME_INCOMPLETE, FRAME_TOO_LARGE } from "../codec/index.ts";
import { badWaitMs, ClientRequestError, encodeError } from "./errors.ts";
import { isSelfConnect } from "./self-connect.ts";

type Timer = ReturnType<typeof setTimeout>;

/** A pipelined connection as onConnect sees it: send handshake commands (AUTH, SELECT) with request(). */
export interface PipelinedConnection<In, Out> {
  /**
   * Sends `message` on this connection and resolves its reply. Rejects with the error reply
   * (isErrorReply), ClientRequestError (ERR_CONNECTION_CLOSED, ERR_REQUEST_TIMEOUT,
   * ERR_PROTOCOL), the codec's CodecEncodeError, or PoolOptionError for a bad `timeoutMs`
   * (milliseconds >= 0 or Infinity; default requestTimeoutMs).
   */
  request(message: Out, timeoutMs?: number): Promise<In>;
  /** True once the socket has closed. */
  readonly closed: boolean;
}

/** What every connection of one client reads from the client's options. */
export interface ConnectionSettings<In, Out> {
  readonly codec: Codec<In, Out>;
  /** "host:port" ("[v6]:port"), for messages. */
  readonly address: string;
  readonly requestTimeoutMs: number;
  /** Pipeline depth: most requests in flight. */
  readonly maxInFlight: number;
  readonly maxWriteBufferBytes: number;
  readonly maxFrameBytes: number;
  readonly isErrorReply: ((reply: In) => Error | undefined) | undefined;
}

/** What a connection reports to the client that owns it. */
export interface ConnectionOwner<In, Out> {
  readonly settings: ConnectionSettings<In, Out>;
  /** True while senders wait for a connection: a flush then waits for the whole hand-off chain. */
  sendersWaiting(): boolean;
  /** A request went out: the owner's timeout sweep must run. */
  onRequest(): void;
  /** A connection that asked (notifyWhenRoom) has room for another request. */
  onRoom(conn: SocketPipeline<In, Out>): void;
  /** The socket closed; the connection's counters are final. */
  onClosed(conn: SocketPipeline<In, Out>): void;
}

const LIVE = 1;
const TOMBSTONE = 0;

/** A PipelinedConnection with the state its client reads; see the file comment. */
export class SocketPipeline<In, Out> implements PipelinedConnection<In, Out> {
  private readonly settings: ConnectionSettings<In, Out>;
  private socket: Socket<SocketPipeline<In, Out>> | null = null;
  private isClosed = false;
  /** Closing gracefully: no new requests; closes once the in-flight ones settle. */
  private closing = false;
  /** Its oldest request timed out: presumed dead, gets no new requests. */
  private isSuspect = false;
  /** The owner asked to hear when there is room again. */
  private roomWanted = false;
  /** "address:port" when the socket turned out connected to itself (closed at once). */
  private selfConnected: string | undefined = undefined;
  /** Requests sent and not yet settled. */
  private unsettledCount = 0;
  /** Where in the read being decoded the next reply starts (decodeReplies). */
  private decodedTo = 0;
  private nReplies = 0;
  private nTimeouts = 0;
  private nFailed = 0;

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

  // new Promise(SocketPipeline.pendingExecutor) records the resolvers without a closure per request.
  private static execTarget: SocketPipeline<any, any>;
  private static execDeadline = 0;
  private static pendingExecutor(resolve: (v: any) => void, reject: (e: Error) => void): void {
    SocketPipeline.execTarget.pushPending(resolve, reject, SocketPipeline.execDeadline);
  }

  private static readonly handlers: SocketHandler<SocketPipeline<any, any>> = {
    open(socket) {
      // Checked here, the moment the connect completes, not after Bun.connect resolves: a
      // socket connected to itself holds the port, and a server restarting there cannot bind.
      if (isSelfConnect(socket)) {
        socket.data.selfConnected = `${socket.localAddress}:${socket.localPort}`;
        socket.terminate();
        return;
      }
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
      // Bun.connect rejects; open() turns that into ERR_CONNECT.
    },
  };

  /**
   * Connects to host:port (or the unix socket path `unix` when not "") and resolves the
   * connection. Rejects with ClientRequestError ERR_CONNECT when the connect fails or the
   * socket connected to itself (closed at once).
   */
  static async open<In, Out>(owner: ConnectionOwner<In, Out>, host: string, port: number, unix = ""): Promise<SocketPipeline<In, Out>> {
    const conn = new SocketPipeline<In, Out>(owner);
    const address = owner.settings.address;
    let socket: Socket<SocketPipeline<In, Out>> | undefined;
    let connectError: unknown;
    try {
      socket =
        unix !== ""
          ? await Bun.connect({ unix, data: conn, socket: SocketPipeline.handlers })
          : await Bun.connect({ hostname: host, port, data: conn, socket: SocketPipeline.handlers });
    } catch (err) {
      connectError = err;
    }
    if (socket !== undefined && conn.selfConnected === undefined && isSelfConnect(socket)) {
      conn.selfConnected = `${socket.localAddress}:${socket.localPort}`;
    }
    if (conn.selfConnected !== undefined) {
      socket?.terminate();
      conn.terminate();
      throw new ClientRequestError(
        "ERR_CONNECT",
        `cannot connect to ${address}: the socket connected to itself (local ${conn.selfConnected} = remote; nothing listens there and the kernel picked that port as the source); closed, will retry — start the server there, or move its port out of net.ipv4.ip_local_port_range`,
      );
    }
    if (socket === undefined) {
      const code = (connectError as { code?: string })?.code;
      throw new ClientRequestError(
        "ERR_CONNECT",
        `cannot connect to ${address}: ${(connectError as Error)?.message ?? connectError}${code ? ` (${code})` : ""}; check that the server runs and listens there`,
        connectError,
      );
    }
    conn.attach(socket);
    return conn;
  }

  private constructor(private readonly owner: ConnectionOwner<In, Out>) {
    this.settings = owner.settings;
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

  /** True once the socket has closed (or never opened). */
  get closed(): boolean {
    return this.isClosed;
  }
  /** True once its oldest request timed out: presumed dead, it takes no new requests. */
  get suspect(): boolean {
    return this.isSuspect;
  }
  /** Requests sent and not yet settled (a reply, a timeout or a failure settles one). */
  get unsettled(): number {
    return this.unsettledCount;
  }
  /** Replies delivered (error replies included; late replies of timed-out requests not). */
  get replies(): number {
    return this.nReplies;
  }
  /** Requests answered with ERR_REQUEST_TIMEOUT. */
  get timeouts(): number {
    return this.nTimeouts;
  }
  /** Requests failed because the connection closed or broke (dropped, protocol error, terminated). */
  get failed(): number {
    return this.nFailed;
  }
  /** Bytes enqueued and not yet accepted by the kernel. */
  get unsentBytes(): number {
    return this.wlen - this.wstart;
  }

  /** True while it can take another request without exceeding its pipeline or write limits. */
  hasRoom(): boolean {
    return (
      !this.isClosed &&
      !this.closing &&
      !this.isSuspect &&
      this.count < this.settings.maxInFlight &&
      this.wlen - this.wstart < this.settings.maxWriteBufferBytes
    );
  }

  /** Dead or going: the pool must not hand it out. */
  isBroken(): boolean {
    return this.isClosed || this.closing || this.isSuspect;
  }

  /** Calls owner.onRoom(this) once, the next time it has room after a reply or a drain. */
  notifyWhenRoom(): void {
    this.roomWanted = true;
  }

  /** Stops a notifyWhenRoom(); true when one was pending. */
  cancelRoomNotice(): boolean {
    const was = this.roomWanted;
    this.roomWanted = false;
    return was;
  }

  request(message: Out, timeoutMs: number = this.settings.requestTimeoutMs): Promise<In> {
    const bad = badWaitMs(timeoutMs, `connection to ${this.settings.address}: request`);
    if (bad !== undefined) return Promise.reject(bad);
    let bytes: Uint8Array;
    try {
      bytes = this.settings.codec.encode(message);
    } catch (err) {
      return Promise.reject(encodeError(err, this.settings.codec.name));
    }
    return this.send(bytes, performance.now() + timeoutMs);
  }

  /**
   * Writes the encoded request `bytes` and resolves its reply; the request fails with
   * ERR_REQUEST_TIMEOUT once performance.now() passes `deadlineMs` (the owner's sweep checks).
   */
  send(bytes: Uint8Array, deadlineMs: number): Promise<In> {
    if (this.isClosed) {
      return Promise.reject(
        new ClientRequestError("ERR_CONNECTION_CLOSED", `connection to ${this.settings.address} is closed; the request was not sent`),
      );
    }
    this.enqueue(bytes);
    SocketPipeline.execTarget = this;
    SocketPipeline.execDeadline = deadlineMs;
    const p = new Promise<In>(SocketPipeline.pendingExecutor);
    this.owner.onRequest();
    return p;
  }

  /**
   * send() without a Promise: onReply(reply) or onError(err) is called exactly once, later,
   * from this connection's read, timeout sweep or close handling (never from inside this
   * call). A callback that throws is logged and the connection goes on. Saves the Promise,
   * its reaction and a microtask per request for a caller that keeps its own per-request
   * state (the proxy's tickets).
   */
  sendWith(bytes: Uint8Array, deadlineMs: number, onReply: (reply: In) => void, onError: (err: Error) => void): void {
    if (this.isClosed) {
      const err = new ClientRequestError("ERR_CONNECTION_CLOSED", `connection to ${this.settings.address} is closed; the request was not sent`);
      queueMicrotask(() => onError(err));
      return;
    }
    this.enqueue(bytes);
    this.pushPending(onReply, onError, deadlineMs);
    this.owner.onRequest();
  }

  /** Records a pending reply (called by pendingExecutor in send(), and by sendWith()). */
  private pushPending(resolve: (v: In) => void, reject: (e: Error) => void, deadlineMs: number): void {
    if (this.count > this.mask) this.growRing();
    const i = (this.head + this.count) & this.mask;
    this.resolves[i] = resolve;
    this.rejects[i] = reject;
    this.deadlines[i] = deadlineMs;
    this.live[i] = LIVE;
    this.count++;
    this.unsettledCount++;
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
    if (!this.flushDeferred && this.hasRoom() && this.owner.sendersWaiting()) {
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

  /** Takes `socket` as this connection's socket (the first one given; later calls do nothing). */
  private attach(socket: Socket<SocketPipeline<In, Out>>): void {
    if (this.socket !== null) return;
    this.socket = socket;
    socket.setNoDelay(true); // writes are coalesced here already; Nagle would only add latency
  }

  /** The socket can take more bytes. */
  private onDrain(): void {
    this.waitingDrain = false;
    this.flush();
    this.maybeRoom();
  }

  private maybeRoom(): void {
    if (this.roomWanted && this.hasRoom()) {
      this.roomWanted = false;
      this.owner.onRoom(this);
    }
  }

  /** Bytes arrived: decodes every complete reply and settles the oldest requests with them. */
  private onData(chunk: Uint8Array): void {
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
    // A sendWith caller's callback runs inside deliver: one that throws must not cut the read
    // short (the replies after it would be lost, or matched to the wrong requests), so the
    // loop goes on from the reply after it. The try is here, once per read, not around each
    // reply: inside deliver it cost the pool ~5% of its request rate.
    for (;;) {
      try {
        p = this.decodeReplies(buf, p, end);
        break;
      } catch (e) {
        callbackThrew(this.settings.address, e);
        p = this.decodedTo;
      }
    }
    if (p < 0) return; // a protocol error closed the connection
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
    if (this.closing && this.unsettledCount === 0) this.endSocket();
    else this.maybeRoom();
  }

  /**
   * Decodes the replies in buf[p, end) and settles the oldest requests with them; returns
   * where the incomplete rest starts (end when none), or -1 after a protocol error. Before
   * each settle, decodedTo is where the next reply starts (onData resumes there if a
   * callback throws).
   */
  private decodeReplies(buf: Uint8Array, p: number, end: number): number {
    const codec = this.settings.codec;
    const maxFrameBytes = this.settings.maxFrameBytes;
    while (p < end) {
      const n = codec.measure(buf, p, end, maxFrameBytes);
      if (n > 0) {
        const value = codec.decode(buf, p, n);
        p += n;
        this.decodedTo = p;
        if (!this.deliver(value)) return -1;
        continue;
      }
      if (n === FRAME_INCOMPLETE) break;
      this.protocolError(
        n === FRAME_TOO_LARGE
          ? `a reply from ${this.settings.address} exceeds maxFrameBytes=${maxFrameBytes}; raise maxFrameBytes if such replies are expected`
          : `${this.settings.address} sent bytes that are not a valid ${codec.name} reply; check that host:port speaks this protocol`,
      );
      return -1;
    }
    return p;
  }

  /** Settles the oldest request with `value`; false when that was a protocol error. */
  private deliver(value: In): boolean {
    if (this.count === 0) {
      this.protocolError(`${this.settings.address} sent a reply nobody asked for (push messages are not supported on a pipelined connection)`);
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
      this.unsettledCount--;
      this.nReplies++;
      const isError = this.settings.isErrorReply;
      const err = isError === undefined ? undefined : isError(value);
      if (err === undefined) resolve(value);
      else reject(err);
    }
    return true;
  }

  /** Rejects the requests whose deadline is at or before `nowMs` with ERR_REQUEST_TIMEOUT. */
  sweep(nowMs: number): void {
    let expired = 0;
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) & this.mask;
      if (this.live[i] === LIVE && (this.deadlines[i] as number) <= nowMs) {
        this.live[i] = TOMBSTONE;
        this.unsettledCount--;
        this.nTimeouts++;
        expired++;
        // The oldest request unanswered that long: the peer is presumed gone.
        if (k === 0) this.isSuspect = true;
        const timedOut = new ClientRequestError(
          "ERR_REQUEST_TIMEOUT",
          `no reply from ${this.settings.address} within the request's timeout (requestTimeoutMs=${this.settings.requestTimeoutMs} unless set per call); it may still be applied; raise the timeout for slow commands`,
        );
        try {
          (this.rejects[i] as (e: Error) => void)(timedOut);
        } catch (e) {
          callbackThrew(this.settings.address, e);
        }
        this.rejects[i] = undefined;
        this.resolves[i] = undefined;
      }
    }
    if (expired > 0 && this.closing && this.unsettledCount === 0) this.endSocket();
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
    if (this.isClosed) return this.whenClosed;
    this.closing = true;
    if (this.unsettledCount === 0) this.endSocket();
    return this.whenClosed;
  }

  /** Closes now, failing what is in flight with `reason` (ERR_CONNECTION_CLOSED when omitted). */
  terminate(reason?: Error): void {
    if (this.isClosed) return;
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

  /** The socket closed (or errored): fails what is unanswered and tells the owner. */
  private onSocketClose(err: Error | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.socket = null;
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    if (this.unsettledCount > 0) {
      this.failAll(
        new ClientRequestError(
          "ERR_CONNECTION_CLOSED",
          `connection to ${this.settings.address} closed with ${this.unsettledCount} request(s) unanswered${err ? ` (${err.message})` : ""}; they may or may not have been applied — retry only if that is safe`,
          err,
        ),
      );
    }
    this.count = 0;
    this.head = 0;
    this.wstart = this.wlen = 0;
    this.inbuf = null;
    this.owner.onClosed(this);
    this.resolveClosed();
  }

  private failAll(err: Error): void {
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) & this.mask;
      if (this.live[i] === LIVE) {
        this.live[i] = TOMBSTONE;
        this.unsettledCount--;
        this.nFailed++;
        try {
          (this.rejects[i] as (e: Error) => void)(err);
        } catch (e) {
          callbackThrew(this.settings.address, e);
        }
      }
      this.resolves[i] = undefined;
      this.rejects[i] = undefined;
    }
  }
}

/**
 * A sendWith caller's callback threw (they must not): its own request is settled all the
 * same, and the connection goes on with the others; the caller's bug is logged, not hidden.
 */
function callbackThrew(address: string, err: unknown): void {
  console.error(`myriad pool: a sendWith/sendManyWith callback for a request to ${address} threw (callbacks must not throw); the connection goes on:`, err);
}
