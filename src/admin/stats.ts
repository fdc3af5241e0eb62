import { sumServerStats as reactorSum } from "../reactor/index.ts";
import type { AdminSnapshot, AdminStatsBody, ServerStats } from "./types.ts";

/**
 * Returns the workers' stats combined (the reactor's sumServerStats, shared with the cluster
 * supervisor): counters, gauges, bytes and memory are summed; `uptimeMs` is the longest;
 * `peakConnections` is the sum of the workers' peaks, an upper bound of the true combined
 * peak; the latency histograms are merged onto the first worker's bounds.
 */
export function sumServerStats(workers: ReadonlyArray<{ stats: ServerStats }>): ServerStats {
  return reactorSum(workers.map((w) => w.stats));
}

/** Returns the GET /stats body for a snapshot taken at `timeMs`. */
export function statsBody(snap: AdminSnapshot, timeMs: number): AdminStatsBody {
  return { timeMs, workers: snap.workers, totals: sumServerStats(snap.workers), pools: snap.pools };
}
