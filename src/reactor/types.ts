import type { TLSOptions } from "bun";
import type { Codec, CodecName } from "../codec/index.ts";
import type { HistogramBuckets } from "../histogram.ts";

/** Protocols createServer knows by name: src/codec's CODEC_NAMES (codecByName). */
export type ProtocolName = CodecName;

/**
 * Why a connection closed.
 * - "peer": the peer closed: a reset, or a FIN (the connection's queued output is flushed
 *   to a half-closed peer first);
 * - "idle": no byte moved either way for idleTimeoutMs;
 * - "handshake": no complete first frame within handshakeTimeoutMs;
 * - "protocol": a frame over maxFrameBytes, or bytes the codec cannot parse;
 * - "writeStall": the write queue stayed over maxWriteBufferBytes for writeStallTimeoutMs,
 *   or a write would have taken it past writeBufferHardLimitBytes;
 * - "shutdown": server.stop();
 * - "server": the application called conn.close() without a reason;
 * - "error": a handler threw, or the socket failed (TLS error, ...);
 * - "limit": reserved for connections refused by a limit (they never reach the handler:
 *   they are counted in ServerStats.rejected instead);
 * - "proxy": with proxyProtocol, a missing, malformed or late PROXY header, or a connection
 *   from an address not in proxyProtocolFrom (the handler never saw it open).
 */
export type CloseReason =
  | "peer"
  | "idle"
  | "handshake"
  | "protocol"
  | "writeStall"
  | "shutdown"
  | "server"
  | "error"
  | "limit"
  | "proxy";

/** The close reasons counted in ServerStats.closed. */
export type CountedCloseReason = Exclude<CloseReason, "limit">;

/**
 * A connection as the handler sees it. The object handed to a callback is a flyweight: the
 * server re-points it at each callback's connection, so no event allocates.
 *
 * - Sync callbacks: the conn is valid during the callback. To use the connection later
 *   (from a timer, a promise you do not return, another connection's callback), keep
 *   `conn.ref()` or `conn.id` (with `server.write(id, ...)` / `server.close(id)`); the
 *   flyweight itself will by then point at some other connection.
 * - Async callbacks (any that returns a promise or thenable): the conn the callback
 *   received stays bound to its connection for good, so `await` then `conn.write(...)`
 *   reaches the right peer; the server takes a fresh flyweight for later callbacks (one
 *   small object per async call).
 *
 * Every kept conn, ref or id is generation-checked: once its connection has closed, writes
 * return false and close does nothing; they never reach whichever connection took its slot.
 */
export interface Conn {
  /** The connection's handle: a non-negative integer, unique among live connections. */
  readonly id: number;
  /**
   * Sends bytes (a string goes as UTF-8), in order after everything written before.
   * Returns true while the connection's write queue is at or under maxWriteBufferBytes;
   * false when the queue is over it (stop writing until handler.drain), when this write
   * was refused (it would pass writeBufferHardLimitBytes: the connection is then closed with
   * "writeStall"), or when the connection is closed or closing.
   * By the time write returns, data has been handed to the kernel or copied (into the
   * buffer that gathers the writes of a data event, or into the connection's queue):
   * the caller may reuse or modify its buffer at once. One call is one message in
   * ServerStats.framesOut: write a frame with one call (send encodes it whole).
   * Throws MyriadTypeError ERR_WRITE_TYPE for data that is neither, open connection or not.
   */
  write(data: Uint8Array | string): boolean;
  /** Encodes `message` with the server's codec and writes it; returns as write(). */
  send(message: unknown): boolean;
  /**
   * Closes the connection after its queued output is flushed (reads stop at once); the
   * handler's close gets `reason` (default "server"). A connection that cannot flush within
   * writeStallTimeoutMs is then closed regardless. No-op on a closed connection.
   */
  close(reason?: CloseReason): void;
  /**
   * Stops reading this connection until resumeReading (backpressure of the application's
   * own, e.g. while its requests wait on something slow): input already read is kept and
   * delivered, in order, after resume; the kernel's window then pushes back on the peer.
   * Independent of the write-backpressure pause: each resume lifts only its own pause. While
   * paused by the application, idleTimeoutMs does not run (it restarts at resume); the
   * other timeouts do. No-op when already paused this way, closing or closed.
   */
  pauseReading(): void;
  /**
   * Lifts pauseReading. Input held meanwhile is delivered from a later task (setImmediate),
   * never inside this call; reading resumes only once no write backpressure pauses it too.
   * No-op when not paused by pauseReading.
   */
  resumeReading(): void;
  /**
   * The peer's IP address ("" for unix sockets or a closed connection); with proxyProtocol,
   * the client's address from the PROXY header (the balancer's for a LOCAL header).
   */
  readonly remoteAddress: string;
  /** The peer's TCP port (0 for unix sockets or a closed connection); with proxyProtocol, the client's. */
  readonly remotePort: number;
  /** This end's IP address, the one the peer connected to ("" for unix sockets or a closed connection); with proxyProtocol, still this socket's (the balancer connected to it). */
  readonly localAddress: string;
  /** This end's TCP port (0 for unix sockets or a closed connection). */
  readonly localPort: number;
  /** True while the connection is open and not closing. */
  readonly isOpen: boolean;
  /** A Conn bound to this connection for good (one small object): keep it beyond the callback. */
  ref(): Conn;
}

/**
 * The application. One handler object serves every connection of a server; per-connection
 * state belongs in the application's own arrays indexed by conn.id (or a Map keyed by it).
 *
 * Callbacks may be async (return a promise). The conn an async callback received stays
 * bound to its connection across its awaits (see Conn); a rejection is treated as a throw:
 * handler.error (or a log), then the connection closes with "error" (if still open). The
 * server does not wait for the promise: the next frames are delivered as they arrive, so
 * an async message handler sees frames concurrently, and replies written after an await go
 * out in completion order, one socket write each (the gathering of a data event's writes
 * applies to what is written before the callback returns). A synchronous throw also stops
 * the delivery of the rest of that read; a rejection, seen later, cannot.
 */
export interface Handler<In = any> {
  /** A connection was accepted (under every limit). */
  open?(conn: Conn): void;
  /**
   * One decoded frame. The frame may be (or hold) views into the read buffer: valid only
   * until message returns; copy what you keep.
   */
  message(conn: Conn, frame: In): void;
  /**
   * The connection closed; called once per opened connection, conn.id still readable
   * (writes return false). A throw or rejection here is reported (error/log) only.
   */
  close?(conn: Conn, reason: CloseReason): void;
  /** A connection that was over its write high-water mark drained to half of it. */
  drain?(conn: Conn): void;
  /**
   * A protocol error (ProtocolError), a refused TLS client certificate (MyriadError
   * ERR_TLS_UNAUTHORIZED), an exception thrown by open/message/drain (as thrown), or a socket
   * error (Bun's, with its errno `code`). The connection is closed afterwards (reason
   * "protocol" or "error").
   * Without this hook, handler exceptions and socket errors are logged with console.error.
   */
  error?(conn: Conn, error: Error): void;
}

/** Options of createServer; every duration is in milliseconds, every size in bytes. */
export interface ServerOptions<In = any> {
  /** TCP port; 0 (default) lets the OS pick one (read it back from server.port). */
  port?: number;
  /** Address to listen on: "127.0.0.1" (default), "::1", "0.0.0.0", "::", a host name. */
  hostname?: string;
  /** Listen on this unix socket path instead of TCP (port/hostname must be unset). */
  unix?: string;
  /** TLS: Bun's TLSOptions ({ cert, key, ... }). */
  tls?: TLSOptions;
  /** SO_REUSEPORT (Linux): several processes may listen on one port; the kernel spreads connections. */
  reusePort?: boolean;
  /** Codec by name; default "raw". Give protocol or codec, not both. */
  protocol?: ProtocolName;
  /** A codec instance (see src/codec/types.ts). */
  codec?: Codec<In, any>;
  /** The application's callbacks. */
  handler: Handler<In>;
  /**
   * Most simultaneous connections; more are closed at once when accepted and counted in
   * stats.rejected. Default: the soft RLIMIT_NOFILE minus a margin for other descriptors
   * (min(1024, max(32, limit/64))), capped at 2^20. It also sizes the connection table.
   */
  maxConnections?: number;
  /** Most simultaneous connections from one remote IP; 0/undefined = no limit. */
  maxConnectionsPerIp?: number;
  /**
   * A cap shared with other servers of this process (a cluster worker listening on several
   * addresses keeps `ulimit -n` over all of them): while budget.live >= budget.max an accepted
   * connection is closed at once and counted in stats.rejected, as maxConnections does for
   * this server alone. Every server given the same object counts its open connections in it.
   */
  connectionBudget?: ConnectionBudget;
  /** Close a connection after this long without a byte read or written; 0 (default) = never. */
  idleTimeoutMs?: number;
  /** Close a connection that has not sent a complete frame this long after open; 0 (default) = never. */
  handshakeTimeoutMs?: number;
  /**
   * Every connection must start with a PROXY protocol header (v1 or v2, as HAProxy's
   * send-proxy / send-proxy-v2 and nginx's proxy_protocol send it): conn.remoteAddress,
   * remotePort and maxConnectionsPerIp then see the client behind the balancer, and
   * handler.open runs once the header is in. A missing or malformed header, or one not
   * complete within handshakeTimeoutMs (10 s when that is 0), closes the connection with
   * "proxy". Default false.
   */
  proxyProtocol?: boolean;
  /**
   * With proxyProtocol: the balancers' IP addresses; a connection from any other address is
   * closed ("proxy") before it is read. Default: any address.
   */
  proxyProtocolFrom?: readonly string[];
  /**
   * A node bus (src/bus createRedisBus, or anything of the ClusterBus shape): server.broadcast
   * and WebSocket publishes then reach the connections of every node on the bus, once each.
   * Default none (this server only).
   */
  bus?: ClusterBus;
  /** Largest frame accepted; a bigger one closes its connection with "protocol". Default 1 MiB. */
  maxFrameBytes?: number;
  /**
   * Write-queue high-water mark per connection, default 4 MiB: over it, conn.write returns
   * false and the connection's reading is paused until the queue drains to half of it.
   */
  maxWriteBufferBytes?: number;
  /**
   * Hard cap of a connection's write queue, default 2 × maxWriteBufferBytes (at least it):
   * a write that would queue past it is dropped and the connection closed with
   * "writeStall", so that a peer that never reads cannot grow the server without bound.
   */
  writeBufferHardLimitBytes?: number;
  /**
   * Close with "writeStall" a connection paused over its high-water mark this long, or one
   * closing (conn.close, a peer's FIN) that cannot flush its queue this long; 0 = never.
   * Default 30 s.
   */
  writeStallTimeoutMs?: number;
  /**
   * Resolution of the process-wide timing wheel that runs the timeouts, default 100 ms;
   * timeouts fire at most one tick late. Servers in one process share the wheel, which
   * runs at the finest tickMs any of them asked for.
   */
  tickMs?: number;
  /**
   * Measure request latency into stats().requestLatency: per frame, the server-side time from
   * its decoding to the handler's return. Default true. Costs one clock read per frame plus
   * one per data event (~50 ns each on our test machine); `bun run serve` turns it off when
   * no admin server is attached, as nothing would read it.
   */
  measureLatency?: boolean;
  /** Bytes per pooled segment for partial input / pending output. Default 4096. */
  segmentBytes?: number;
}

/**
 * A connection count several servers of one process share (ServerOptions.connectionBudget):
 * each of its servers counts a connection in `live` from its open to its close.
 */
export interface ConnectionBudget {
  /** Most connections over every server sharing this budget (an integer >= 1). */
  readonly max: number;
  /** Connections open now over those servers: the servers keep it; read it, do not write it. */
  live: number;
}

/** Counters of one server, all since it started. */
export interface ServerStats {
  connections: number;
  peakConnections: number;
  accepted: number;
  /** Connections refused by maxConnections or maxConnectionsPerIp, or accepted while stopping. */
  rejected: number;
  closed: Record<CountedCloseReason, number>;
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  /**
   * Messages sent: one per write or send call that found its connection open (whatever its
   * size, and however many socket writes it took), plus one per connection reached by
   * broadcast. An app that writes one frame in several calls (header, then payload)
   * counts each call: write each frame with one call for framesOut to count frames.
   */
  framesOut: number;
  /** Bytes queued, not yet taken by the kernel, over all connections. */
  writeQueueBytes: number;
  /**
   * Bytes of partial input held (incomplete frames, and input kept while paused), over all
   * connections. Always set by createServer's stats(); optional for stats summed by code
   * that predates it.
   */
  inputBufferBytes?: number;
  /** Connections whose reading is paused by write backpressure. */
  pausedConnections: number;
  /**
   * Connections whose reading the application paused (conn.pauseReading). Always set by
   * createServer's stats(); optional for stats summed by code that predates it.
   */
  readPausedConnections?: number;
  rssBytes: number;
  /**
   * The process's RSS the last time this server had no connection open: when it started
   * listening, or at a later stats() call that found none. (rssBytes - baselineRssBytes) /
   * connections estimates what each connection costs, without the process's own baseline.
   * Always set by createServer's stats(); optional for stats made by code that predates it.
   */
  baselineRssBytes?: number;
  heapUsedBytes: number;
  uptimeMs: number;
  /**
   * Request latency, per frame: server-side time from the frame's decoding to the return of
   * its message handler (a synchronous handler's whole work; an async handler's awaits are
   * not counted). Several frames of one read are timed one after another, each from the
   * previous one's return. Counts per bucket, last = +Inf; empty with measureLatency off.
   */
  requestLatency: HistogramBuckets;
  /** WebSocket servers only: their counters. */
  websocket?: WebSocketStats;
}

/** WebSocket counters of one server (in ServerStats.websocket). */
export interface WebSocketStats {
  /** Upgraded connections open now. */
  connections: number;
  /** Upgrades done since start. */
  upgraded: number;
  /** Upgrade requests answered with an HTTP error, by status ("400", "404", ...). */
  refused: Record<string, number>;
  messagesIn: number;
  /** Messages sent: one per send, and one per subscriber reached by publish. */
  messagesOut: number;
  /** publish calls. */
  published: number;
  pingsIn: number;
  pingsOut: number;
  /** Closed upgraded connections by the code handler.close got ("1000", "1006", ...). */
  closeCodes: Record<string, number>;
  /** Topics with at least one subscriber, and subscriptions over all topics. */
  topics: number;
  subscriptions: number;
  /** Bytes held in incomplete messages (fragments, streamed frames). */
  messageBufferBytes: number;
}

/** A listening server. */
export interface Server {
  /** The TCP port listened on (0 for a unix socket). */
  readonly port: number;
  /** The address listened on ("" for a unix socket). */
  readonly hostname: string;
  /** The unix socket path, or "" for TCP. */
  readonly unix: string;
  /** False once stop() began. */
  readonly accepting: boolean;
  /** Live connections. */
  readonly connections: number;
  /** A snapshot of the counters; allocates the returned object. */
  stats(): ServerStats;
  /**
   * Writes one message to every open connection (not closing, and past any protocol stage):
   * the bytes are encoded once (a string as UTF-8) and kept once. They leave at the end of
   * the current event-loop turn, together with the turn's other broadcasts and, in order,
   * whatever else the connection is sent in that turn: one send per connection per turn,
   * however many broadcasts. Returns the number of connections the message is for. The
   * write-queue limits apply when the turn's batch is written: past
   * writeBufferHardLimitBytes a connection is closed "writeStall" then. The count is this
   * node's: with the bus option, the other nodes' servers broadcast it to their connections too.
   */
  broadcast(bytes: Uint8Array | string): number;
  /** As conn.write for the connection with handle `id`; false for a stale or closed id. */
  write(id: number, data: Uint8Array | string): boolean;
  /** As conn.send for the connection with handle `id`. */
  send(id: number, message: unknown): boolean;
  /** As conn.close for the connection with handle `id`; no-op for a stale id. */
  close(id: number, reason?: CloseReason): void;
  /** As conn.pauseReading for the connection with handle `id`; no-op for a stale id. */
  pauseReading(id: number): void;
  /** As conn.resumeReading for the connection with handle `id`; no-op for a stale id. */
  resumeReading(id: number): void;
  /** True while the connection with handle `id` is open and not closing. */
  isOpen(id: number): boolean;
  /** The peer's IP address of a live connection, "" otherwise. */
  remoteAddress(id: number): string;
  remotePort(id: number): number;
  /**
   * Stops accepting at once; graceful (default): stops reading, flushes every write queue,
   * then closes each connection ("shutdown"); whatever is still open after timeoutMs
   * (default 10 s) is closed abortively. graceful: false closes everything at once.
   * Resolves with the final stats once every connection is closed; calling it again
   * returns the same promise.
   */
  stop(opts?: { graceful?: boolean; timeoutMs?: number }): Promise<ServerStats>;
}

/**
 * What createServer's `bus` option needs of a node bus: publish to the other nodes, listen to
 * what they publish (src/bus's NodeBus is one; the reactor imports nothing of src/bus).
 */
export interface ClusterBus {
  /** Sends payload to the other nodes' listeners of channel; rejects when it could not. */
  publish(channel: string, payload: Uint8Array | string): Promise<number>;
  /** Adds a listener of channel; returns the function that removes it. */
  subscribe(channel: string, listener: (payload: Uint8Array, channel: string) => void): () => void;
}
