/**
 * The public types of WebSocket servers: createServer({ protocol: "websocket", handler, ... }).
 */
import type { PerMessageDeflateOptions, UpgradeRequest } from "../codec/index.ts";
import type { Server, ServerOptions, WebSocketStats } from "./types.ts";

/** The upgrade request a hook sees, the permessage-deflate options and the stats, from one module with the rest of a WebSocket server's types. */
export type { UpgradeRequest, PerMessageDeflateOptions, WebSocketStats };

/**
 * A WebSocket connection as the handler sees it: a flyweight, like Conn (valid during the
 * callback; keep conn.ref() or conn.id beyond it; an async callback keeps the conn it got).
 * Every kept conn is generation-checked: once its connection closed, sends return false.
 */
export interface WebSocketConn {
  /** The connection's handle: a non-negative integer, unique among live connections. */
  readonly id: number;
  /**
   * Sends one message: a string as a text message, bytes as a binary one (compressed when
   * permessage-deflate was negotiated and it is at least thresholdBytes long, unless
   * compress is false). Returns true while the write queue is at or under
   * maxWriteBufferBytes; false when over it (wait for handler.drain), refused (past
   * writeBufferHardLimitBytes: the connection is then closed), or not open (not upgraded yet,
   * closing, closed). The data may be reused as soon as send returns.
   */
  send(data: string | Uint8Array, compress?: boolean): boolean;
  /**
   * Starts the closing handshake: sends a close frame with `code` (default 1000; 1000 or
   * 3000-4999 for applications, see isValidCloseCode) and `reason` (cut to 123 bytes of
   * UTF-8), then waits up to closeTimeoutMs for the peer's close frame before closing the
   * TCP connection. Before the upgrade it just closes. Throws MyriadRangeError
   * (ERR_WEBSOCKET_CLOSE_CODE) for a code that may not be sent.
   */
  close(code?: number, reason?: string): void;
  /** Closes the TCP connection at once, without a close frame (the handler's close gets 1006). */
  terminate(): void;
  /** Sends a ping with up to 125 bytes of payload; returns as send. */
  ping(data?: string | Uint8Array): boolean;
  /** Subscribes to a topic (server.publish reaches it); false when already subscribed. */
  subscribe(topic: string): boolean;
  /** Unsubscribes; false when it was not subscribed. */
  unsubscribe(topic: string): boolean;
  /** True when subscribed to topic. */
  isSubscribed(topic: string): boolean;
  /**
   * Publishes to every subscriber of topic except this connection (as server.publish
   * otherwise); returns how many connections took it.
   */
  publish(topic: string, data: string | Uint8Array, compress?: boolean): number;
  /** The subprotocol agreed in the handshake ("" for none). */
  readonly protocol: string;
  /** The peer's IP address ("" for unix sockets or a closed connection). */
  readonly remoteAddress: string;
  /** The peer's TCP port (with proxyProtocol, the client's from the PROXY header). */
  readonly remotePort: number;
  /** True while the connection is upgraded and neither closing nor closed. */
  readonly isOpen: boolean;
  /** A conn bound to this connection for good (one small object). */
  ref(): WebSocketConn;
}

/**
 * What an upgrade hook decides:
 * - undefined or true: accept (with the subprotocol the server's `subprotocols` option picks);
 * - { protocol?, headers? }: accept with this subprotocol (one the client offered, or "" for
 *   none) and these extra response headers;
 * - false: refuse with 403;
 * - { status, message?, headers? }: refuse with this HTTP status (400..599) and text.
 */
export type UpgradeDecision =
  | undefined
  | boolean
  | { protocol?: string; headers?: Record<string, string> }
  | { status: number; message?: string; headers?: Record<string, string> };

/**
 * The application of a WebSocket server. One object serves every connection; per-connection
 * state belongs in the application's own arrays indexed by conn.id (or a Map). Callbacks may
 * be async, as for TCP handlers (see Handler in types.ts).
 */
export interface WebSocketHandler {
  /**
   * A valid upgrade request arrived: accept or refuse it (see UpgradeDecision), by path,
   * headers (Origin, cookies, a token) or subprotocol. conn.id is the connection's handle
   * (sends are refused until the upgrade is done). May return a promise; input that arrives
   * meanwhile waits. A throw or rejection answers 500. Without this hook every valid upgrade
   * is accepted.
   */
  upgrade?(req: UpgradeRequest, conn: WebSocketConn): UpgradeDecision | PromiseLike<UpgradeDecision>;
  /** The upgrade is done (101 sent). */
  open?(conn: WebSocketConn): unknown;
  /**
   * A message: a string for text, bytes for binary. Bytes may be a view into a buffer that
   * is reused: valid only until message returns; copy what you keep.
   */
  message(conn: WebSocketConn, data: string | Uint8Array): unknown;
  /**
   * The connection closed (once per open). code and reason: the peer's close frame (1005
   * when it had no code); else the code this server sent when it failed the connection
   * (1002, 1007, 1009) or went away (1001: stop, idle timeout); else 1006 (closed without a
   * close frame). conn.id is still readable; sends return false.
   */
  close?(conn: WebSocketConn, code: number, reason: string): unknown;
  /** A connection that was over its write high-water mark drained to half of it. */
  drain?(conn: WebSocketConn): unknown;
  /**
   * A protocol error (ProtocolError, before the connection is failed with its close code),
   * an exception thrown by a callback, or a socket error. Without it, callback exceptions
   * and socket errors are logged; protocol errors are only counted.
   */
  error?(conn: WebSocketConn, error: Error): unknown;
}

/** createServer options for a WebSocket server; the TCP options apply as documented there. */
export interface WebSocketServerOptions extends Omit<ServerOptions, "protocol" | "codec" | "handler" | "idleTimeoutMs"> {
  protocol: "websocket";
  handler: WebSocketHandler;
  /**
   * Close (with 1001) a connection that sent nothing, not even a pong, this long; 0 (default)
   * = never. Unlike TCP servers, what the server sends does not count as activity.
   */
  idleTimeoutMs?: number;
  /** Ping a connection that sent nothing this long (once per silence); 0 (default) = never. */
  pingIntervalMs?: number;
  /** After this server sent a close frame, wait this long for the peer's; default 5000. */
  closeTimeoutMs?: number;
  /** Largest upgrade request (request line and headers); default 8192; larger gets 431. */
  maxHandshakeBytes?: number;
  /**
   * Subprotocols this server speaks, in its order of preference; the first one the client
   * also offers is agreed (the upgrade hook may choose another). Default none.
   */
  subprotocols?: string[];
  /**
   * permessage-deflate (RFC 7692): false (default), true (no context takeover either way:
   * no zlib state per idle connection), or its settings.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * handshakeTimeoutMs (from ServerOptions) covers the whole upgrade: from accept (and TLS)
   * to the 101. maxFrameBytes bounds every message: after joining its fragments, and after
   * inflating it (a larger one closes the connection with 1009).
   */
  handshakeTimeoutMs?: number;
}

/** A listening WebSocket server: a Server, plus topics. */
export interface WebSocketServer extends Server {
  /**
   * Sends data (a string as text, bytes as binary) to every subscriber of topic. The frame
   * is built once (and compressed once for subscribers that negotiated permessage-deflate)
   * and the same bytes handed to each socket. Returns how many connections took it (on
   * this node). With the bus option, it also reaches the topic's subscribers on every other node.
   */
  publish(topic: string, data: string | Uint8Array, compress?: boolean): number;
  /** Subscribers of topic now. */
  subscriberCount(topic: string): number;
  /** As conn.send for the connection with handle id; false for a stale or closed id. */
  send(id: number, data: string | Uint8Array): boolean;
}
