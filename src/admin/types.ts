/**
 * The shapes the admin server reads. ServerStats and PoolStats mirror the reactor's and the
 * pool's contracts (notes/INTERFACES.md) structurally, so that the admin server depends on
 * nothing but the numbers it displays: any object of the right shape can be a stats source.
 */

/** A histogram as the reactor and pool keep it: `counts[i]` is the number of observations
 *  in (boundsMs[i-1], boundsMs[i]] (not cumulative); `counts[boundsMs.length]` is the +Inf
 *  bucket. Bounds are in milliseconds, ascending. */
export interface HistogramMs {
  boundsMs: number[];
  counts: number[];
  sumMs: number;
  count: number;
}

/** Close reasons the reactor counts; "limit" closes are counted as `rejected`. */
export const CLOSE_REASONS = [
  "peer",
  "idle",
  "handshake",
  "protocol",
  "writeStall",
  "shutdown",
  "server",
  "error",
] as const;
export type CountedCloseReason = (typeof CLOSE_REASONS)[number];

/** One server process's (worker's) stats: see src/reactor's ServerStats. */
export interface ServerStats {
  connections: number;
  peakConnections: number;
  accepted: number;
  rejected: number;
  closed: Record<CountedCloseReason, number>;
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  writeQueueBytes: number;
  /** Bytes of incomplete input frames held in pooled segments (optional: older workers may not report it). */
  inputBufferBytes?: number;
  pausedConnections: number;
  rssBytes: number;
  heapUsedBytes: number;
  uptimeMs: number;
  handlerLatency: HistogramMs;
}

/** One pool's stats: see src/pool's PoolStats. */
export interface PoolStats {
  size: number;
  idle: number;
  borrowed: number;
  waiting: number;
  pending: number;
  created: number;
  destroyed: number;
  acquired: number;
  released: number;
  timeouts: number;
  createErrors: number;
  rejected: number;
  acquireWaitMs: HistogramMs & { p50: number; p90: number; p99: number; max: number };
}

/** What the admin server shows at one instant. Worker names and pool names should be
 *  unique; duplicates are disambiguated in /metrics with a "#2", "#3"... suffix. */
export interface AdminSnapshot {
  workers: Array<{ worker: string; pid: number; stats: ServerStats }>;
  pools: Array<{ name: string; stats: PoolStats }>;
}

/**
 * Where the admin server gets its numbers and how it stops the server. One process serves
 * it directly from its own Server; a cluster supervisor implements it by asking its workers.
 */
export interface AdminStatsSource {
  /** Returns the current stats of every worker and registered pool. May be async (IPC). */
  snapshot(): AdminSnapshot | Promise<AdminSnapshot>;
  /** True while the server accepts new connections; /readyz answers 200 only then. */
  isAccepting(): boolean;
  /** Starts a graceful stop; resolves when the server has stopped. Called at most once by
   *  the admin app, however many POST /admin/stop requests arrive. */
  stop(): Promise<void>;
}

/** The body of GET /stats. `totals` sums the workers (see sumServerStats for how each field
 *  combines); `timeMs` is the admin process's wall clock when the snapshot was taken. */
export interface AdminStatsBody {
  timeMs: number;
  workers: AdminSnapshot["workers"];
  totals: ServerStats;
  pools: AdminSnapshot["pools"];
}
