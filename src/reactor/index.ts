/**
 * The reactor: createServer over Bun.listen — codecs, write queues and backpressure,
 * timeouts on one process-wide timing wheel, connection limits, graceful stop, broadcast;
 * WebSocket servers (protocol "websocket") with topics and publish.
 */
export { createServer } from "./server.ts";
export type {
  ServerOptions,
  Server,
  Conn,
  Handler,
  CloseReason,
  CountedCloseReason,
  ServerStats,
  ProtocolName,
  WebSocketStats,
  ClusterBus,
  ConnectionBudget,
} from "./types.ts";
export type {
  WebSocketServerOptions,
  WebSocketServer,
  WebSocketConn,
  WebSocketHandler,
  UpgradeDecision,
} from "./websocket-types.ts";
export { ServerOptionError, ListenError, ProtocolError } from "./errors.ts";
export { defaultMaxConnections, fdSoftLimit, fdMargin } from "./limits.ts";
export { LATENCY_BOUNDS_MS } from "./stats.ts";
export { emptyServerStats, sumServerStats, addHistogram, addWebSocketStats, COUNTED_CLOSE_REASONS } from "./stats-sum.ts";
export {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_WRITE_BUFFER_BYTES,
  DEFAULT_WRITE_STALL_TIMEOUT_MS,
  DEFAULT_TICK_MS,
} from "./options.ts";
