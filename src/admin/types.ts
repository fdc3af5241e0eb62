/**
 * The shapes the admin server reads. ServerStats and PoolStats are the reactor's and the
 * pool's own types: any object of the right shape can be a stats source.
 */
import type { BusStats } from "../bus/index.ts";
import type { HistogramBuckets } from "../histogram.ts";
import type { PoolStats } from "../pool/index.ts";
import type { PoolProxyStats } from "../proxy/index.ts";
import type { ServerStats } from "../reactor/index.ts";

/** A histogram as the reactor and pool keep it (src/histogram.ts): `counts[i]` is the number of
 *  observations in (boundsMs[i-1], boundsMs[i]] (not cumulative); `counts[boundsMs.length]` is
 *  the +Inf bucket. Bounds are in milliseconds, ascending. */
export type HistogramMs = HistogramBuckets;

/** One server process's (worker's) stats, and one pool's: the reactor's and the pool's own types. */
export type { ServerStats, PoolStats };

/** One process's RESP proxy pools (src/proxy), each with its servers; `worker` as for pools. */
export interface ProxySnapshot {
  worker?: string;
  pools: PoolProxyStats[];
}

/**
 * What the admin server shows at one instant. Worker names should be unique, and pool names
 * unique within one worker; duplicates are disambiguated in /metrics with a "#2", "#3"...
 * suffix. A pool's `worker` names the worker process whose app registered it (each worker
 * of a cluster has its own pools, often under the same name); /metrics then labels its
 * series with that worker as well as the pool.
 */
export interface AdminSnapshot {
  workers: Array<{ worker: string; pid: number; stats: ServerStats }>;
  pools: Array<{ worker?: string; name: string; stats: PoolStats }>;
  /** The node bus of a fleet member (src/bus BusStats), when the process has one. */
  bus?: BusStats;
  /** The RESP proxy's pools and servers, per worker, when the process runs `bun run proxy`. */
  proxy?: ProxySnapshot[];
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
  /**
   * With a node bus: whether it is up. /readyz still answers 200 while it is down (a bus
   * outage hits every node alike: failing readiness would empty the balancer) but says so.
   */
  busUp?(): boolean;
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
  /** Present when the process has a node bus. */
  bus?: BusStats;
  /** Present for `bun run proxy`: per worker, its pools and their servers. */
  proxy?: ProxySnapshot[];
}
