/**
 * Combining ServerStats: the servers of one worker process (one per listen address) into
 * the worker's figures, and the workers into the cluster's.
 */
import type { CountedCloseReason, ServerStats } from "../reactor/index.ts";

const CLOSE_REASONS: readonly CountedCloseReason[] = ["peer", "idle", "handshake", "protocol", "writeStall", "shutdown", "server", "error"];

/** All-zero stats (a worker that has not reported yet). */
export function zeroStats(boundsMs: readonly number[] = []): ServerStats {
  const closed = {} as Record<CountedCloseReason, number>;
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
    handlerLatency: { boundsMs: [...boundsMs], counts: new Array(boundsMs.length + 1).fill(0), sumMs: 0, count: 0 },
  };
}

/**
 * Sums `list` into one ServerStats. Counters and histograms add (histograms with other
 * bounds than the first are skipped); `sameProcess` (the servers of one worker) takes the
 * process figures — rssBytes, heapUsedBytes, uptimeMs — once (max) instead of adding them,
 * and peakConnections as the sum of peaks (an upper bound: the true peak of the process is
 * not tracked across servers).
 */
export function sumStats(list: readonly ServerStats[], sameProcess: boolean): ServerStats {
  const first = list[0];
  const out = zeroStats(first?.handlerLatency.boundsMs ?? []);
  for (const s of list) {
    out.connections += s.connections;
    out.peakConnections += s.peakConnections;
    out.accepted += s.accepted;
    out.rejected += s.rejected;
    for (const r of CLOSE_REASONS) out.closed[r] += s.closed[r] ?? 0;
    out.bytesIn += s.bytesIn;
    out.bytesOut += s.bytesOut;
    out.framesIn += s.framesIn;
    out.framesOut += s.framesOut;
    out.writeQueueBytes += s.writeQueueBytes;
    out.inputBufferBytes = (out.inputBufferBytes ?? 0) + (s.inputBufferBytes ?? 0);
    out.pausedConnections += s.pausedConnections;
    if (sameProcess) {
      out.rssBytes = Math.max(out.rssBytes, s.rssBytes);
      out.heapUsedBytes = Math.max(out.heapUsedBytes, s.heapUsedBytes);
    } else {
      out.rssBytes += s.rssBytes;
      out.heapUsedBytes += s.heapUsedBytes;
    }
    out.uptimeMs = Math.max(out.uptimeMs, s.uptimeMs);
    const h = s.handlerLatency;
    const o = out.handlerLatency;
    if (h.counts.length === o.counts.length && h.boundsMs.every((b, i) => b === o.boundsMs[i])) {
      for (let i = 0; i < h.counts.length; i++) o.counts[i]! += h.counts[i]!;
      o.sumMs += h.sumMs;
      o.count += h.count;
    }
  }
  return out;
}
