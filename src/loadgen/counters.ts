/**
 * What a load engine counts (connections, errors by kind, traffic, memory), how the counts of
 * many engines add up, and the error kind of a failed connect. Shared by the socket engine
 * (engine.ts), the TUN engine (tun/engine.ts) and the coordinator that merges them.
 */
import type { HistogramJSON } from "./histogram.ts";

/** Counters of one engine (or the sum of many). */
export interface LoadCounters {
  target: number;
  /** Connect calls made (first attempts and retries). */
  attempts: number;
  /** Connects in flight now. */
  connecting: number;
  /** Connections open now. */
  open: number;
  /** Most connections open at once. */
  peakOpen: number;
  /** Connects that succeeded (ever). */
  connected: number;
  /** Connections given up after their last attempt failed. */
  failed: number;
  /** Failed attempts by error kind (ECONNREFUSED, EADDRNOTAVAIL, EMFILE, ETIMEDOUT, ...). */
  errors: Record<string, number>;
  /** Open connections closed by the other side or the network (not by stop). */
  lost: number;
  requests: number;
  responses: number;
  bytesOut: number;
  bytesIn: number;
  /** ping mode: pings not sent because the previous one was unanswered. */
  skipped: number;
  /** Replies the protocol could not parse, or RESP error replies. */
  badReplies: number;
  /** True once every connection has either opened or failed for good. */
  rampDone: boolean;
  /** ms from the first connect to rampDone (or to now while ramping). */
  rampMs: number;
  rssBytes: number;
}

/** Counters plus the mergeable histograms (µs): connect time and request latency. */
export interface EngineReport extends LoadCounters {
  connectUs: HistogramJSON;
  latencyUs: HistogramJSON;
}

/** Creates zeroed counters for `target` connections. */
export function emptyCounters(target = 0): LoadCounters {
  return {
    target,
    attempts: 0,
    connecting: 0,
    open: 0,
    peakOpen: 0,
    connected: 0,
    failed: 0,
    errors: {},
    lost: 0,
    requests: 0,
    responses: 0,
    bytesOut: 0,
    bytesIn: 0,
    skipped: 0,
    badReplies: 0,
    rampDone: target === 0,
    rampMs: 0,
    rssBytes: 0,
  };
}

/**
 * Adds `b` into `a` (sums; peakOpen sums too: processes peak together at the end of a ramp;
 * rampDone is the AND, rampMs the max). Returns a.
 */
export function addCounters(a: LoadCounters, b: LoadCounters): LoadCounters {
  a.target += b.target;
  a.attempts += b.attempts;
  a.connecting += b.connecting;
  a.open += b.open;
  a.peakOpen += b.peakOpen;
  a.connected += b.connected;
  a.failed += b.failed;
  for (const [k, v] of Object.entries(b.errors)) a.errors[k] = (a.errors[k] ?? 0) + v;
  a.lost += b.lost;
  a.requests += b.requests;
  a.responses += b.responses;
  a.bytesOut += b.bytesOut;
  a.bytesIn += b.bytesIn;
  a.skipped += b.skipped;
  a.badReplies += b.badReplies;
  a.rampDone = a.rampDone && b.rampDone;
  a.rampMs = Math.max(a.rampMs, b.rampMs);
  a.rssBytes += b.rssBytes;
  return a;
}

const ERRNO_NAMES: Record<number, string> = {
  24: "EMFILE",
  23: "ENFILE",
  99: "EADDRNOTAVAIL",
  98: "EADDRINUSE",
  111: "ECONNREFUSED",
  104: "ECONNRESET",
  110: "ETIMEDOUT",
  105: "ENOBUFS",
  101: "ENETUNREACH",
  113: "EHOSTUNREACH",
  32: "EPIPE",
};

/** The error kind of a failed connect or socket: its errno name (ECONNREFUSED, EMFILE, ...) or "other". */
export function errorKind(e: unknown): string {
  const err = e as { code?: unknown; errno?: unknown } | null;
  if (err && typeof err.code === "string" && /^E[A-Z0-9]+$/.test(err.code)) return err.code;
  if (err && typeof err.errno === "number") {
    const name = ERRNO_NAMES[Math.abs(err.errno)];
    if (name) return name;
  }
  return "other";
}
