import { MAX_CAPACITY } from "../conn-table/index.ts";
import { fdMargin, parseNofile, readProcFile } from "../system/index.ts";

/**
 * The soft RLIMIT_NOFILE of this process, read once from /proc/self/limits (no child
 * process); 1024 when it cannot be read (not Linux), Infinity for "unlimited".
 */
export function fdSoftLimit(): number {
  if (cachedFdLimit === 0) cachedFdLimit = parseNofile(readProcFile("/proc/self/limits") ?? "")?.soft || 1024;
  return cachedFdLimit;
}
let cachedFdLimit = 0;

/** Descriptors kept free for everything that is not a client connection: src/system's rule, the one the planners use. */
export { fdMargin };

/** Default maxConnections: the soft fd limit minus fdMargin, at least 1, at most 2^20. */
export function defaultMaxConnections(): number {
  const limit = fdSoftLimit();
  if (!Number.isFinite(limit)) return MAX_CAPACITY;
  return Math.max(1, Math.min(MAX_CAPACITY, limit - fdMargin(limit)));
}
