/**
 * Combining ServerStats: the servers of one process into its figures, and the processes of
 * a cluster into one view. Here, beside the type, so that the cluster supervisor and the
 * admin server add figures up the same way.
 */
import type { CountedCloseReason, ServerStats, WebSocketStats } from "./types.ts";

/** The reasons ServerStats.closed counts, in display order ("limit" closes are counted as rejected). */
export const COUNTED_CLOSE_REASONS: readonly CountedCloseReason[] = ["peer", "idle", "handshake", "protocol", "writeStall", "shutdown", "server", "error", "proxy"];

type Histogram = ServerStats["requestLatency"];

/** All-zero stats with the given latency bounds: a sum of nothing, or a worker that has not reported yet. */
export function emptyServerStats(boundsMs: readonly number[] = []): ServerStats {
  const closed = {} as Record<CountedCloseReason, number>;
  for (const r of COUNTED_CLOSE_REASONS) closed[r] = 0;
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
    readPausedConnections: 0,
    rssBytes: 0,
    baselineRssBytes: 0,
    heapUsedBytes: 0,
    uptimeMs: 0,
    requestLatency: { boundsMs: [...boundsMs], counts: new Array<number>(boundsMs.length + 1).fill(0), sumMs: 0, count: 0 },
  };
}

/**
 * Adds histogram `src` into `dst` (non-cumulative counts). When the bounds differ, each
 * source bucket lands in the first destination bucket whose upper bound is at least the
 * source bucket's upper bound, so no observation is ever reported as faster than it was.
 */
export function addHistogram(dst: Histogram, src: Histogram): void {
  const same = dst.boundsMs.length === src.boundsMs.length && dst.boundsMs.every((b, i) => b === src.boundsMs[i]);
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
 * Returns `list` combined: counters, gauges and bytes add; latency histograms merge onto the
 * first one's bounds; `uptimeMs` is the longest; `peakConnections` is the sum of the peaks,
 * an upper bound of the true combined peak (exact for one server). With `sameProcess` (the
 * servers of one worker) the process figures rssBytes, baselineRssBytes and heapUsedBytes
 * are taken once (the largest) instead of added.
 */
export function sumServerStats(list: readonly ServerStats[], sameProcess = false): ServerStats {
  const out = emptyServerStats(list[0]?.requestLatency.boundsMs ?? []);
  for (const s of list) {
    out.connections += s.connections;
    out.peakConnections += s.peakConnections;
    out.accepted += s.accepted;
    out.rejected += s.rejected;
    for (const r of COUNTED_CLOSE_REASONS) out.closed[r] += s.closed[r] ?? 0;
    out.bytesIn += s.bytesIn;
    out.bytesOut += s.bytesOut;
    out.framesIn += s.framesIn;
    out.framesOut += s.framesOut;
    out.writeQueueBytes += s.writeQueueBytes;
    out.inputBufferBytes = (out.inputBufferBytes ?? 0) + (s.inputBufferBytes ?? 0);
    out.pausedConnections += s.pausedConnections;
    out.readPausedConnections = (out.readPausedConnections ?? 0) + (s.readPausedConnections ?? 0);
    if (sameProcess) {
      out.rssBytes = Math.max(out.rssBytes, s.rssBytes);
      out.baselineRssBytes = Math.max(out.baselineRssBytes ?? 0, s.baselineRssBytes ?? 0);
      out.heapUsedBytes = Math.max(out.heapUsedBytes, s.heapUsedBytes);
    } else {
      out.rssBytes += s.rssBytes;
      out.baselineRssBytes = (out.baselineRssBytes ?? 0) + (s.baselineRssBytes ?? 0);
      out.heapUsedBytes += s.heapUsedBytes;
    }
    if (s.uptimeMs > out.uptimeMs) out.uptimeMs = s.uptimeMs;
    addHistogram(out.requestLatency, s.requestLatency);
    if (s.websocket !== undefined) out.websocket = addWebSocketStats(out.websocket, s.websocket);
  }
  return out;
}

/** a + b for WebSocket counters (every field adds; the per-code records add key by key); a may be undefined. */
export function addWebSocketStats(a: WebSocketStats | undefined, b: WebSocketStats): WebSocketStats {
  const byKey = (x: Record<string, number>, y: Record<string, number>) => {
    const out = { ...x };
    for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  if (a === undefined) return { ...b, refused: { ...b.refused }, closeCodes: { ...b.closeCodes } };
  return {
    connections: a.connections + b.connections,
    upgraded: a.upgraded + b.upgraded,
    refused: byKey(a.refused, b.refused),
    messagesIn: a.messagesIn + b.messagesIn,
    messagesOut: a.messagesOut + b.messagesOut,
    published: a.published + b.published,
    pingsIn: a.pingsIn + b.pingsIn,
    pingsOut: a.pingsOut + b.pingsOut,
    closeCodes: byKey(a.closeCodes, b.closeCodes),
    topics: a.topics + b.topics,
    subscriptions: a.subscriptions + b.subscriptions,
    messageBufferBytes: a.messageBufferBytes + b.messageBufferBytes,
  };
}
