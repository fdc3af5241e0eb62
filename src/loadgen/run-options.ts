/**
 * What a load run over several processes is asked (LoadOptions) and what it answers
 * (LoadReport), the error it throws, and how long its teardown may take.
 */
import { MyriadError } from "../errors.ts";
import type { LoadCounters } from "./counters.ts";
import type { PercentileSummary } from "./histogram.ts";
import type { EngineOptions, LoadMode, LoadProtocol } from "./options.ts";
import type { Target } from "./targets.ts";

/**
 * A load run over several processes. The per-connection behaviour (mode, protocol, payload,
 * timeouts, confirm...) is each engine's, documented on EngineOptions; the window and the
 * rates here are totals over all processes, split evenly among them.
 */
export interface LoadOptions
  extends Pick<
    EngineOptions,
    "connectTimeoutMs" | "retries" | "mode" | "protocol" | "payloadBytes" | "pingIntervalMs" | "getRatio" | "keyspace" | "confirm"
  > {
  connections: number;
  processes: number;
  targets: readonly Target[];
  /** Source addresses to bind, [] for none (see targets.ts resolveSources). */
  sources: readonly string[];
  /** Connects in flight over all processes (default 256). */
  connectWindow?: number;
  /** New connections per second over all processes; 0 = unbounded (default). */
  connectRatePerSec?: number;
  /** rr: requests per second over all processes; 0 = closed loop. */
  requestRatePerSec?: number;
  /** The ramp stops adding connections after this long (default 120 s). */
  rampTimeoutMs?: number;
  /** How often children report (default 250 ms). */
  progressIntervalMs?: number;
  /** Children stop and exit by themselves after this long (default 1 h). */
  maxLifetimeMs?: number;
  /** Arguments for bun before the child script (e.g. ["--smol"]). */
  bunArgs?: string[];
  /** Called with the merged counters every progressIntervalMs. */
  onProgress?: (counters: LoadCounters) => void;
  /** Start connecting as soon as every process is ready (default true); false: call run.begin(). */
  autoBegin?: boolean;
  /**
   * Userland TCP clients instead of sockets (tun/engine.ts): each process makes its own TUN
   * device and client addresses (tun/netns.ts clientBlocks). Idle mode only; every target
   * must be on one host, the servers' address inside the namespace. Needs spawnPrefix to
   * put the processes in that namespace.
   */
  tun?: boolean;
  /** Command the load processes run under, e.g. Netns.execPrefix (default none). */
  spawnPrefix?: string[];
}

/** The run's final figures. Durations in ms, latencies in µs. */
export interface LoadReport {
  config: {
    connections: number;
    processes: number;
    targets: number;
    sources: number;
    mode: LoadMode;
    protocol: LoadProtocol;
    connectWindow: number;
    connectRatePerSec: number;
    requestRatePerSec: number;
  };
  connections: {
    target: number;
    /** Most open at once (summed over processes). */
    reached: number;
    /** Open just before stop. */
    held: number;
    /** Closed by the other side after opening, during the whole run / after the ramp. */
    lost: number;
    lostAfterRamp: number;
    failed: number;
    attempts: number;
    errors: Record<string, number>;
  };
  ramp: { ms: number; connectionsPerSec: number; connectUs: PercentileSummary };
  traffic: {
    ms: number;
    requests: number;
    responses: number;
    responsesPerSec: number;
    bytesOut: number;
    bytesIn: number;
    skipped: number;
    badReplies: number;
    latencyUs: PercentileSummary;
  };
  memory: { rssBytes: number; maxProcessRssBytes: number; bytesPerConnection: number };
  processes: {
    count: number;
    pids: number[];
    /**
     * Processes that exited before stop() began (crashed, killed from outside, lifetime
     * over): their open connections count as lost. Exits during the teardown never count.
     */
    died: Array<{ pid: number; exitCode: number | null; signal: string | null }>;
    /** Processes still running when stop()'s grace ran out, then killed by pid (SIGKILL): a slow teardown, not a death. */
    killedAtTeardown: number[];
    /** Processes that sent neither their report at stop nor a final one: connect times and traffic figures miss theirs. */
    unreported: number[];
    /** From the stop request until the last process exited (ms; up to now if one is still going). */
    teardownMs: number;
  };
  durationMs: number;
}

/** A load run that could not start (ERR_LOADGEN_START) or was given options it cannot run (ERR_LOADGEN_*). */
export class LoadError extends MyriadError {}

/**
 * stop()'s default grace for `connections`: how long the load processes get to close their
 * connections and exit before they are killed. Closing is CPU-bound on both ends (each RST
 * is handled by the kernel for both sockets, then by a server): 15,000 sockets take one
 * process ~0.2 s on an idle machine, and the 1M run (53 load processes, 55 workers, 2 cores)
 * had not finished after 20 s. The grace allows 12,500 connections/s, and 15 s at least.
 */
export function teardownGraceMs(connections: number): number {
  return Math.max(15_000, Math.ceil(connections * 0.08));
}
