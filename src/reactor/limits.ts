import { readFileSync } from "node:fs";
import { MAX_CAPACITY } from "../conn-table/index.ts";

/**
 * The soft RLIMIT_NOFILE of this process, read once from /proc/self/limits (no child
 * process); 1024 when it cannot be read (not Linux), Infinity for "unlimited".
 */
export function fdSoftLimit(): number {
  if (cachedFdLimit !== 0) return cachedFdLimit;
  let limit = 1024;
  try {
    const text = readFileSync("/proc/self/limits", "utf8");
    const m = /^Max open files\s+(\S+)/m.exec(text);
    if (m) limit = m[1] === "unlimited" ? Infinity : Number(m[1]) || 1024;
  } catch {
    // not Linux: keep the conservative default
  }
  cachedFdLimit = limit;
  return limit;
}
let cachedFdLimit = 0;

/**
 * Descriptors kept free for everything that is not a client connection (listeners, files,
 * upstream pools, stdio): min(1024, max(32, limit / 64)). Accepting up to the fd limit
 * would make accept() fail with EMFILE, and a loop that retries it spins a core (uWS).
 */
export function fdMargin(limit: number): number {
  return Math.min(1024, Math.max(32, Math.floor(limit / 64)));
}

/** Default maxConnections: the soft fd limit minus fdMargin, at least 1, at most 2^20. */
export function defaultMaxConnections(): number {
  const limit = fdSoftLimit();
  if (!Number.isFinite(limit)) return MAX_CAPACITY;
  return Math.max(1, Math.min(MAX_CAPACITY, limit - fdMargin(limit)));
}
