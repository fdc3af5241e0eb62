/**
 * src/pool public surface: Channel, Pool, the pooled pipelined TCP client and the RESP client,
 * the registry of pools an application shows in the admin server, and the self-connect check
 * for anything that connects.
 */
export { Channel } from "./channel.ts";
export { Pool, type PoolStats, type AcquireOptions } from "./pool.ts";
export { type PoolOptions, type CreateContext, PoolOptionsSchema } from "./options.ts";
export { backoffCeilingMs, fullJitterDelayMs } from "./backoff.ts";
export { Histogram, WAIT_BOUNDS_MS, type HistogramSnapshot } from "./histogram.ts";
export {
  PoolOptionError,
  ChannelClosedError,
  AcquireTimeoutError,
  AcquireRejectedError,
  PoolReleaseError,
  CreateTimeoutError,
  ClientRequestError,
} from "./errors.ts";
export {
  TcpClientOptionsSchema,
  type TcpClientOptions,
  type ClientPoolOptions,
  type SendOptions,
} from "./client-options.ts";
export type { PipelinedConnection } from "./pipelined-connection.ts";
export { createTcpClient, type TcpClient, type TcpClientStats } from "./tcp-client.ts";
export { createRespClient, type RespClient, type RespClientOptions } from "./resp-client.ts";
export { PoolRegistry, type PoolSnapshot, type StatsPool } from "./registry.ts";
export { isSelfConnect, type SocketEndpoints } from "./self-connect.ts";
