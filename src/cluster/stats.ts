/**
 * Combining ServerStats for the cluster: the servers of one worker process (one per listen
 * address) into the worker's figures, and the workers into the cluster's. The arithmetic is
 * the reactor's (sumServerStats), shared with the admin server; these names are the
 * cluster's public surface.
 */
import { emptyServerStats, sumServerStats, type ServerStats } from "../reactor/index.ts";

/** All-zero stats (a worker that has not reported yet). */
export function zeroStats(boundsMs: readonly number[] = []): ServerStats {
  return emptyServerStats(boundsMs);
}

/**
 * Sums `list` into one ServerStats; `sameProcess` (the servers of one worker) takes the
 * process figures (rssBytes, heapUsedBytes) once instead of adding them.
 */
export function sumStats(list: readonly ServerStats[], sameProcess: boolean): ServerStats {
  return sumServerStats(list, sameProcess);
}
