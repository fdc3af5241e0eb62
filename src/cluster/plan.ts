/**
 * A cluster's shape: how a `--port 7000-7019` / several-hosts listen list expands, and how
 * `--workers N|auto` with `--max-connections` becomes a worker count and a per-worker cap
 * (the sizing rules themselves are src/system's).
 */
import { MyriadError, MyriadTypeError } from "../errors.ts";
import { connectionsPerProcess, planWorkers, type WorkerPlan } from "../system/index.ts";

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
