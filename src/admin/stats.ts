import { CLOSE_REASONS, type AdminSnapshot, type AdminStatsBody, type HistogramMs, type ServerStats } from "./types.ts";

/** Returns a ServerStats of zeros with the given latency bounds (a sum of no workers). */
export function emptyServerStats(boundsMs: number[] = []): ServerStats {
  const closed = {} as ServerStats["closed"];
  for (const r of CLOSE_REASONS) closed[r] = 0;
  return {
    connections: 0,
    peakConnections: 0,
    accepted: 0,
    rejected: 0,
    closed,
    bytesIn: 0,
    bytesOut: 0,
    framesIn: 0,
    framesOut: 0,
    writeQueueBytes: 0,
    inputBufferBytes: 0,
    pausedConnections: 0,
    rssBytes: 0,
    heapUsedBytes: 0,
    uptimeMs: 0,
    handlerLatency: { boundsMs: boundsMs.slice(), counts: new Array<number>(boundsMs.length + 1).fill(0), sumMs: 0, count: 0 },
  };
}

/**
 * Adds histogram `src` into `dst` (same-shaped, non-cumulative counts). When the bounds
 * differ, each source bucket lands in the first destination bucket whose upper bound is at
 * least the source bucket's upper bound, so no observation is ever reported as faster than
 * it was.
 */
export function addHistogram(dst: HistogramMs, src: HistogramMs): void {
  const same =
    dst.boundsMs.length === src.boundsMs.length && dst.boundsMs.every((b, i) => b === src.boundsMs[i]);
  for (let i = 0; i < src.counts.length; i++) {
    const n = src.counts[i] ?? 0;
    if (n === 0) continue;
    let j = i;
    if (!same) {
      const upper = i < src.boundsMs.length ? (src.boundsMs[i] as number) : Infinity;
      j = dst.boundsMs.findIndex((b) => b >= upper);
      if (j < 0) j = dst.boundsMs.length;
    }
    dst.counts[j] = (dst.counts[j] ?? 0) + n;
  }
  dst.sumMs += src.sumMs;
  dst.count += src.count;
}

/**
 * Returns the workers' stats combined: counters, gauges, bytes and memory are summed;
 * `uptimeMs` is the longest; `peakConnections` is the sum of the workers' peaks, an upper
 * bound of the true combined peak (workers may peak at different times; exact for one
 * worker); the latency histograms are merged onto the first worker's bounds.
 */
export function sumServerStats(workers: ReadonlyArray<{ stats: ServerStats }>): ServerStats {
  const first = workers[0];
  const t = emptyServerStats(first ? first.stats.handlerLatency.boundsMs : []);
  for (const { stats: s } of workers) {
    t.connections += s.connections;
    t.peakConnections += s.peakConnections;
    t.accepted += s.accepted;
    t.rejected += s.rejected;
    for (const r of CLOSE_REASONS) t.closed[r] += s.closed[r] ?? 0;
    t.bytesIn += s.bytesIn;
    t.bytesOut += s.bytesOut;
    t.framesIn += s.framesIn;
    t.framesOut += s.framesOut;
    t.writeQueueBytes += s.writeQueueBytes;
    t.inputBufferBytes = (t.inputBufferBytes ?? 0) + (s.inputBufferBytes ?? 0);
    t.pausedConnections += s.pausedConnections;
    t.rssBytes += s.rssBytes;
    t.heapUsedBytes += s.heapUsedBytes;
    if (s.uptimeMs > t.uptimeMs) t.uptimeMs = s.uptimeMs;
    addHistogram(t.handlerLatency, s.handlerLatency);
  }
  return t;
}

/** Returns the GET /stats body for a snapshot taken at `timeMs`. */
export function statsBody(snap: AdminSnapshot, timeMs: number): AdminStatsBody {
  return { timeMs, workers: snap.workers, totals: sumServerStats(snap.workers), pools: snap.pools };
}
