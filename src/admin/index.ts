/**
 * The admin server: health and readiness probes, JSON stats, Prometheus metrics, a graceful
 * stop endpoint and a live dashboard, as a Hono app served with Bun.serve.
 */
export { createAdminApp, type AdminAppOptions } from "./app.ts";
export { startAdminServer, DEFAULT_ADMIN_HOST, DEFAULT_ADMIN_PORT, type AdminServer, type AdminServerOptions } from "./server.ts";
export { serverSource, type ServerSourceOptions, type StatsServer } from "./source.ts";
export { renderMetrics, escapeLabelValue, PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";
export { isLoopbackHost } from "./auth.ts";
export type {
  AdminSnapshot,
  ProxySnapshot,
  AdminStatsBody,
  AdminStatsSource,
  HistogramMs,
  PoolStats as AdminPoolStats,
  ServerStats as AdminServerStats,
} from "./types.ts";
