/**
 * How many processes a connection count needs when each process may hold only `ulimit -n`
 * descriptors, and how a `--port 7000-7019` / several-hosts listen list expands.
 */
import { MyriadError, MyriadRangeError, MyriadTypeError } from "../errors.ts";

/**
 * Descriptors a process keeps free for everything that is not a connection (listeners,
 * stdio, IPC, files): min(1024, max(32, limit / 64)) — the reactor's own margin.
 */
export function fdMarginOf(nofile: number): number {
  return Math.min(1024, Math.max(32, Math.floor(nofile / 64)));
}

/**
 * Most connections one process can hold under a soft RLIMIT_NOFILE of `nofile`:
 * min(nofile - margin, 95% of nofile) — 19,000 at 20,000. At least 1.
 */
export function connectionsPerProcess(nofile: number): number {
  if (!Number.isFinite(nofile)) return 1 << 20;
  return Math.max(1, Math.min(nofile - fdMarginOf(nofile), Math.floor(nofile * 0.95)));
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

export interface WorkerPlanInput {
  /** Connections the cluster must hold in total. */
  maxConnections: number;
  /** Soft RLIMIT_NOFILE each worker will have. */
  nofile: number;
  /** Logical CPUs: at least one worker each. */
  cpus: number;
}

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

/** One address a worker listens on. */
export interface ListenAddress {
  hostname: string;
  port: number;
}

/**
 * Parses a port list: "7000", "7000-7019", "7000,7005-7007" (0 = any free port, alone).
 * Throws MyriadError ERR_CLUSTER_PORTS naming what it accepts.
 */
export function parsePorts(spec: string): number[] {
  if (typeof spec !== "string") throw new MyriadTypeError("ERR_CLUSTER_PORTS", `ports must be a string like "7000-7019", got ${typeof spec}`);
  const out: number[] = [];
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const from = m ? Number(m[1]) : NaN;
    const to = m && m[2] !== undefined ? Number(m[2]) : from;
    if (!m || from > 65535 || to > 65535 || to < from || (from === 0 && to !== 0)) {
      throw new MyriadError("ERR_CLUSTER_PORTS", `ports must look like 7000, 7000-7019 or 7000,7002 (0..65535, low-high), got "${part}"`);
    }
    for (let p = from; p <= to; p++) out.push(p);
  }
  if (out.length === 0) throw new MyriadError("ERR_CLUSTER_PORTS", `ports must name at least one port, got "${spec}"`);
  if (out.length > 4096) throw new MyriadError("ERR_CLUSTER_PORTS", `at most 4096 ports, got ${out.length} from "${spec}"`);
  return [...new Set(out)];
}

/** Every (host, port) pair of hosts × ports, hosts outermost. */
export function listenAddresses(hosts: readonly string[], ports: readonly number[]): ListenAddress[] {
  const out: ListenAddress[] = [];
  for (const hostname of hosts) for (const port of ports) out.push({ hostname, port });
  return out;
}

/**
 * `--workers N|auto` with `--max-connections M` (cluster total; 0 = as many as descriptors
 * allow) → the worker count and each worker's maxConnections:
 * - auto: planWorkers(M) (at least one per CPU); with M = 0, one worker per CPU;
 * - N: N workers.
 * Each worker may hold what its descriptors allow, or — when M is given — its share of M
 * plus room for the kernel's uneven reusePort spread (10% + 16), whichever is smaller; so
 * the cluster accepts M connections without any worker running out of descriptors.
 */
export function resolveWorkers(spec: number | "auto", maxConnections: number, nofile: number, cpus: number): WorkerPlan {
  const cap = connectionsPerProcess(nofile);
  let workers: number;
  if (spec === "auto") {
    workers = maxConnections > 0 ? planWorkers({ maxConnections, nofile, cpus }).workers : Math.max(1, Math.floor(cpus));
  } else {
    if (!Number.isInteger(spec) || spec < 1) throw new MyriadError("ERR_CLUSTER_WORKERS", `workers must be auto or an integer >= 1, got ${spec}`);
    workers = spec;
  }
  const perWorker = maxConnections > 0 ? Math.min(cap, Math.ceil((maxConnections / workers) * 1.1) + 16) : cap;
  return { workers, maxConnectionsPerWorker: perWorker, meanPerWorker: maxConnections > 0 ? Math.ceil(maxConnections / workers) : 0 };
}
