/**
 * How many connections one process can hold under `ulimit -n`, and how many processes a
 * connection count needs: the rules the reactor's default cap, `serve --workers auto`,
 * `bun run load`, c1m and doctor all size themselves by.
 */
import { MyriadRangeError } from "../errors.ts";

/**
 * Descriptors a process keeps free for everything that is not a connection (listeners,
 * files, upstream pools, stdio, IPC) under a soft RLIMIT_NOFILE of `nofile`:
 * min(1024, max(32, nofile / 64)). Accepting up to the limit itself would make accept()
 * fail with EMFILE, and a loop that retries it spins a core (uWS).
 */
export function fdMargin(nofile: number): number {
  return Math.min(1024, Math.max(32, Math.floor(nofile / 64)));
}

/**
 * Most connections one process can hold under a soft RLIMIT_NOFILE of `nofile`:
 * min(nofile - fdMargin, 95% of nofile), 19,000 at 20,000; at least 1.
 */
export function connectionsPerProcess(nofile: number): number {
  if (!Number.isFinite(nofile)) return 1 << 20;
  return Math.max(1, Math.min(nofile - fdMargin(nofile), Math.floor(nofile * 0.95)));
}

/**
 * The mean per-worker load that keeps every worker under `capacity` when the kernel spreads
 * connections at random over reusePort listeners: each worker's share is binomial, so the
 * mean leaves room for four standard deviations plus 1%.
 */
export function safeMeanPerWorker(capacity: number): number {
  // Solve m + 4*sqrt(m) + 0.01*m <= capacity for m.
  const a = 1.01;
  const s = (-4 + Math.sqrt(16 + 4 * a * capacity)) / (2 * a);
  return Math.max(1, Math.floor(s * s));
}

/** What planWorkers sizes a cluster from. */
export interface WorkerPlanInput {
  /** Connections the cluster must hold in total. */
  maxConnections: number;
  /** Soft RLIMIT_NOFILE each worker will have. */
  nofile: number;
  /** Logical CPUs: at least one worker each. */
  cpus: number;
}

/** A cluster's size: how many workers, and what each may hold. */
export interface WorkerPlan {
  workers: number;
  /** maxConnections to give each worker: what its descriptors allow. */
  maxConnectionsPerWorker: number;
  /** maxConnections / workers. */
  meanPerWorker: number;
}

/**
 * `--workers auto`: enough workers that an even-by-chance reusePort spread of maxConnections
 * stays under each worker's descriptor budget, and at least one per CPU.
 * Contract: workers × safeMeanPerWorker(cap) >= maxConnections, workers >= cpus.
 */
export function planWorkers(input: WorkerPlanInput): WorkerPlan {
  if (!Number.isSafeInteger(input.maxConnections) || input.maxConnections < 0) {
    throw new MyriadRangeError("ERR_CLUSTER_PLAN", `maxConnections must be a non-negative integer, got ${input.maxConnections}`);
  }
  if (!(input.nofile >= 1) || !(input.cpus >= 1)) {
    throw new MyriadRangeError("ERR_CLUSTER_PLAN", `nofile and cpus must be numbers >= 1, got nofile ${input.nofile}, cpus ${input.cpus}`);
  }
  const cap = connectionsPerProcess(input.nofile);
  const mean = safeMeanPerWorker(cap);
  const workers = Math.max(Math.max(1, Math.floor(input.cpus)), Math.ceil(input.maxConnections / mean));
  return { workers, maxConnectionsPerWorker: cap, meanPerWorker: Math.ceil(input.maxConnections / workers) };
}
