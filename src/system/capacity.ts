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

/**
 * Connections per bound source address the load generator keeps by default: bind() picks
 * a port per address without knowing the destination, and on Linux it slows down sharply
 * past a few thousand ports per address (15,000 connections from 3 addresses ran at
 * 3,600/s, from 15 addresses at 39,000/s).
 */
export const DEFAULT_CONNECTIONS_PER_SOURCE = 1000;

/** The load generator's two clients: kernel sockets (a descriptor per connection), or userland TCP on a TUN device (none). */
export type LoadClientKind = "sockets" | "tun";

/**
 * Load processes for `connections` (`bun run load --processes auto`, c1m, doctor's plan):
 * - sockets: enough that none holds more than connectionsPerProcess(nofile), and one per
 *   CPU from 4,000 connections (below that one process keeps up; more only cost baselines);
 * - tun: one per CPU (a TUN client holds no descriptor per connection; the CPUs share the
 *   packet work).
 * At least 1.
 */
export function loadProcessesFor(connections: number, client: LoadClientKind, nofile: number, cpus: number): number {
  const perCpu = Math.max(1, Math.floor(cpus));
  if (client === "tun") return perCpu;
  return Math.max(1, Math.ceil(connections / connectionsPerProcess(nofile)), connections >= 4000 ? perCpu : 1);
}
