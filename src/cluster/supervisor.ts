/**
 * The supervisor: N worker processes listening on the same addresses with reusePort (the
 * kernel spreads connections over them), restarted with exponential backoff when they die,
 * stopped gracefully on stop() (or SIGINT/SIGTERM with handleSignals), and one stats view
 * over all of them — an AdminStatsSource for the admin server.
 *
 *   const cluster = await runCluster({ workers: 4, listen: [{ hostname: "0.0.0.0", port: 7000 }], app: { kind: "echo" } });
 *   cluster.snapshot();        // { workers: [{ worker: "worker-0", pid, stats }, ...],
 *                              //   pools: [{ worker: "worker-0", name, stats }, ...] }  (module apps' registered pools)
 *   await cluster.stop();      // graceful; SIGKILL by pid after stopTimeoutMs
 *
 * One file a little past 500 lines on purpose: spawning, restart backoff, stop and the merged
 * stats view all move the same table of worker entries; the pieces that stand apart (the
 * plan, the IPC messages, the worker's side, the reply waiters) live in their own files.
 */
import type { Subprocess } from "bun";
import { existsSync } from "node:fs";
import type { AdminSnapshot, AdminStatsSource } from "../admin/index.ts";
import { MyriadError } from "../errors.ts";
import { emptyServerStats, sumServerStats, type ServerStats } from "../reactor/index.ts";
import { backoffCeilingMs, type PoolSnapshot } from "../pool/index.ts";
import { mergeBusStats, type BusStats } from "../bus/index.ts";
import type { PoolProxyStats } from "../proxy/index.ts";
import { allWithin, connectionsPerProcess, readSystemLimits, ReplyWaiters } from "../system/index.ts";
import type { ListenAddress } from "./plan.ts";
import {
  WORKER_CONFIG_ENV,
  type SupervisorToWorker,
  type WorkerApp,
  type WorkerConfig,
  type WorkerServerOptions,
  type WorkerToSupervisor,
} from "./protocol.ts";
import { bundledWorkerEntry, WORKER_MAIN_SOURCE } from "./worker-bundle.ts";

/** Restart policy: the delay doubles from initialDelayMs to maxDelayMs per consecutive crash. */
export interface RestartPolicy {
  /** Default 100 ms. */
  initialDelayMs?: number;
  /** Default 10 s. */
  maxDelayMs?: number;
  /** A worker that ran this long before dying restarts after initialDelayMs again. Default 30 s. */
  resetAfterMs?: number;
}

/** What runCluster starts: how many workers, where they listen, what they serve, and how they are restarted and stopped. */
export interface ClusterOptions {
  /** Worker processes (>= 1). */
  workers: number;
  /** Every worker listens on all of these (port 0: the first worker's port is used by all). */
  listen: ListenAddress[];
  /** Default { kind: "echo" } (raw). */
  app?: WorkerApp;
  /** Reactor options for every server (JSON-safe). */
  server?: WorkerServerOptions;
  /** Most connections per worker over all its listeners; default what `ulimit -n` allows (19,000 at 20,000). */
  maxConnectionsPerWorker?: number;
  /**
   * The worker script; any script speaking protocol.ts. Default: src/cluster/worker-main.ts,
   * for the echo and kv apps bundled once into one JavaScript file (see worker-bundle.ts:
   * ~3 MiB less per worker); module apps run it from the sources.
   */
  workerEntry?: string;
  /** Arguments for bun before the script (e.g. ["--smol"]). */
  bunArgs?: string[];
  /**
   * Whether workers may use JSC's top JIT tier (FTL). Default: yes with up to
   * FTL_MAX_WORKERS_PER_CPU workers per CPU, no with more. Many workers per core each see a
   * small share of the traffic and each connection once: FTL's compiles (its threads' CPU)
   * then cost more than its faster code gives back (measured with bench/accept.ts, one c1m
   * worker over 15,000 connections: the JIT threads' CPU fell from ~9.7 to ~2.7 us per
   * connection without FTL; the interpreter and the two lower JIT tiers still run). Sets
   * BUN_JSC_useFTLJIT=0 in the workers' environment unless that or `env` already sets it.
   */
  ftl?: boolean;
  /**
   * A command the workers run under, which must exec bun in the same process (the pid is the
   * worker's) and keep its descriptors (the IPC channel): e.g. ["ip", "netns", "exec", name]
   * to run the workers in a network namespace. Default none.
   */
  spawnPrefix?: string[];
  /** How often workers report stats (default 1000 ms). */
  statsIntervalMs?: number;
  /** A worker not ready this long after spawn fails the start (default 30 s). */
  startTimeoutMs?: number;
  /** Graceful stop budget before workers are killed by pid (default 10 s). */
  stopTimeoutMs?: number;
  /** Restart crashed workers (default on, with the default policy); false to leave them dead. */
  restart?: RestartPolicy | false;
  /** Stop gracefully on SIGINT/SIGTERM; a second signal kills the workers and exits 130. Default false. */
  handleSignals?: boolean;
  /** Workers' stdout/stderr: inherit (default) or ignore. */
  stdio?: "inherit" | "ignore";
  /** Extra environment for the workers. */
  env?: Record<string, string>;
  /** Lifecycle events (logging). */
  onEvent?: (e: ClusterEvent) => void;
}

/** What onEvent hears: a worker ready, exited (expected or not), restarting, fatal at start; a warning; every worker stopped. */
export type ClusterEvent =
  | { type: "ready"; worker: number; pid: number }
  | { type: "exit"; worker: number; pid: number; exitCode: number | null; signal: string | null; expected: boolean }
  | { type: "restart"; worker: number; delayMs: number; restarts: number }
  | { type: "fatal"; worker: number; pid: number; message: string }
  | { type: "warning"; message: string }
  | { type: "stopped" };

/** One worker slot as the supervisor sees it. */
export interface WorkerInfo {
  index: number;
  /** Pid of the current process (0 before the first spawn). */
  pid: number;
  state: "starting" | "ready" | "restarting" | "stopping" | "exited";
  restarts: number;
  /** Latest stats report (zeros until the first one). */
  stats: ServerStats;
  /** The pools its app registered, as of the latest report (empty for echo and kv, and once it exited). */
  pools: PoolSnapshot[];
  startedAtMs: number;
}

/** The JSC option (an environment variable Bun reads at start) that turns the FTL tier off. */
const FTL_ENV = "BUN_JSC_useFTLJIT";

/** With more workers than this per CPU, workers run without JSC's FTL tier by default (ClusterOptions.ftl). */
const FTL_MAX_WORKERS_PER_CPU = 4;

/** A cluster that could not start (ERR_CLUSTER_START) or was given bad options (ERR_CLUSTER_WORKERS, ERR_CLUSTER_LISTEN). */
export class ClusterError extends MyriadError {}

interface Slot extends WorkerInfo {
  /** A `bun run proxy` worker's pools and servers, as of its latest report. */
  proxy: PoolProxyStats[];
  /** Its node bus (serve --bus), as of its latest report. */
  bus: BusStats | undefined;
  proc: Subprocess | undefined;
  consecutiveCrashes: number;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  readyWaiters: Array<(err?: Error) => void>;
  /** Waiting refreshStats calls: each resolves on the answer to its request id (or on exit). */
  statsWaiters: ReplyWaiters;
  fatal: string | undefined;
  /** Resolves when the current process's exit has been handled (onExit ran). */
  exitHandled: Promise<void>;
  exitHandledResolve: () => void;
}


/** A running cluster: an AdminStatsSource over its workers. */
export class Cluster implements AdminStatsSource {
  private readonly slots: Slot[] = [];
  private readonly o: ClusterOptions;
  private listen: ListenAddress[];
  private readonly maxPerWorker: number;
  /** The JSC settings every worker gets (ClusterOptions.ftl), under the caller's env. */
  private readonly jitEnv: Record<string, string>;
  /** The script every worker runs (runCluster sets it: the bundle when it could be made). */
  entry: string = WORKER_MAIN_SOURCE;
  /** Whether `entry` is meant to be the bundle (built-in app, no workerEntry option). */
  bundled = false;
  /** Passes a warning to onEvent. */
  readonly warn = (message: string): void => this.o.onEvent?.({ type: "warning", message });
  private stopping: Promise<void> | undefined;
  private signalHandler: ((sig: NodeJS.Signals) => void) | undefined;

  /** @internal use runCluster */
  constructor(o: ClusterOptions) {
    this.o = o;
    this.listen = o.listen.map((a) => ({ ...a }));
    const limits = readSystemLimits();
    this.maxPerWorker = o.maxConnectionsPerWorker ?? connectionsPerProcess(limits.nofileSoft);
    const ftl = o.ftl ?? o.workers <= FTL_MAX_WORKERS_PER_CPU * limits.cpus;
    const chosen = FTL_ENV in process.env || (o.env !== undefined && FTL_ENV in o.env);
    this.jitEnv = ftl || chosen ? {} : { [FTL_ENV]: "0" };
    for (let i = 0; i < o.workers; i++) {
      this.slots.push({
        index: i,
        pid: 0,
        state: "starting",
        restarts: 0,
        stats: emptyServerStats(),
        pools: [],
        proxy: [],
        bus: undefined,
        startedAtMs: 0,
        proc: undefined,
        consecutiveCrashes: 0,
        restartTimer: undefined,
        readyWaiters: [],
        statsWaiters: new ReplyWaiters(),
        fatal: undefined,
        exitHandled: Promise.resolve(),
        exitHandledResolve: () => {},
      });
    }
  }

  /** The addresses every worker listens on (ports resolved when 0 was asked). */
  get addresses(): ListenAddress[] {
    return this.listen.map((a) => ({ ...a }));
  }

  /** Each worker's state (copies). */
  get workers(): WorkerInfo[] {
    return this.slots.map(({ index, pid, state, restarts, stats, pools, startedAtMs }) => ({ index, pid, state, restarts, stats, pools, startedAtMs }));
  }

  /** Pids of the live worker processes. */
  pids(): number[] {
    return this.slots.filter((s) => s.proc !== undefined && s.state !== "exited").map((s) => s.pid);
  }

  /**
   * Latest stats of every worker and of every pool their apps registered (each pool with its
   * worker's name: two workers each have their own pool of the same name), as the admin
   * server wants them.
   */
  snapshot(): AdminSnapshot {
    const pools: AdminSnapshot["pools"] = [];
    for (const s of this.slots) for (const p of s.pools) pools.push({ worker: `worker-${s.index}`, name: p.name, stats: p.stats });
    const snap: AdminSnapshot = {
      workers: this.slots.map((s) => ({ worker: `worker-${s.index}`, pid: s.pid, stats: s.stats })),
      pools,
    };
    const proxy = this.slots.filter((s) => s.proxy.length > 0).map((s) => ({ worker: `worker-${s.index}`, pools: s.proxy }));
    if (proxy.length > 0) snap.proxy = proxy;
    const buses = this.slots.filter((s) => s.state !== "exited" && s.bus !== undefined).map((s) => s.bus!);
    if (buses.length > 0) snap.bus = mergeBusStats(buses);
    return snap;
  }

  /** Every worker's latest stats summed (rss and heap add up over processes). */
  totals(): ServerStats {
    return sumServerStats(
      this.slots.map((s) => s.stats),
      false,
    );
  }

  /**
   * Asks every ready worker for fresh stats; resolves when all answered or after timeoutMs.
   * `lastRefreshComplete` then says whether every worker answered in time.
   */
  async refreshStats(timeoutMs = 2000): Promise<AdminSnapshot> {
    const waits: Promise<void>[] = [];
    const id = ++this.statsRequestId;
    for (const s of this.slots) {
      if (s.state !== "ready" || s.proc === undefined) continue;
      waits.push(s.statsWaiters.wait(id));
      this.sendTo(s, { t: "stats", id });
    }
    this.lastRefreshComplete = await allWithin(waits, timeoutMs);
    return this.snapshot();
  }

  private statsRequestId = 0;

  /** Whether every worker answered the last refreshStats in time. */
  lastRefreshComplete = true;

  /** True while not stopping and at least one worker is ready. */
  isAccepting(): boolean {
    return this.stopping === undefined && this.slots.some((s) => s.state === "ready");
  }

  /**
   * Stops every worker: graceful (default) lets each close its connections within
   * timeoutMs (default stopTimeoutMs); whatever is left is killed by pid. Resolves when
   * every worker process has exited. Idempotent.
   */
  stop(opts: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.stopping ??= this.doStop(opts?.graceful !== false, opts?.timeoutMs ?? this.o.stopTimeoutMs ?? 10_000);
    return this.stopping;
  }

  /** Kills every worker at once (SIGKILL by pid), without waiting. */
  kill(): void {
    for (const s of this.slots) {
      if (s.restartTimer !== undefined) clearTimeout(s.restartTimer);
      if (s.proc !== undefined && s.state !== "exited") {
        try {
          process.kill(s.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  }

  private async doStop(graceful: boolean, timeoutMs: number): Promise<void> {
    const exits: Promise<unknown>[] = [];
    for (const s of this.slots) {
      if (s.restartTimer !== undefined) {
        clearTimeout(s.restartTimer);
        s.restartTimer = undefined;
      }
      if (s.proc === undefined || s.state === "exited") {
        s.state = "exited";
        continue;
      }
      s.state = "stopping";
      exits.push(s.exitHandled);
      this.sendTo(s, { t: "stop", graceful, timeoutMs });
    }
    // The workers' own timeout closes what is left; give them a little more before SIGKILL.
    await Promise.race([Promise.all(exits), Bun.sleep(timeoutMs + 2000)]);
    this.kill();
    await Promise.race([Promise.all(exits), Bun.sleep(5000)]);
    this.removeSignalHandlers();
    this.o.onEvent?.({ type: "stopped" });
  }

  private sendTo(s: Slot, m: SupervisorToWorker): void {
    try {
      s.proc?.send(m);
    } catch {
      // exited meanwhile
    }
  }

  /** Spawns worker `s` and resolves when it is ready (rejects if it dies or times out first). */
  spawn(s: Slot): Promise<void> {
    const cfg: WorkerConfig = {
      index: s.index,
      workers: this.slots.length,
      listen: this.listen,
      app: this.o.app ?? { kind: "echo" },
      server: this.o.server ?? {},
      maxConnections: this.maxPerWorker,
      statsIntervalMs: this.o.statsIntervalMs ?? 1000,
    };
    const stdio = this.o.stdio ?? "inherit";
    s.state = "starting";
    s.fatal = undefined;
    s.startedAtMs = Date.now();
    s.exitHandled = new Promise<void>((resolve) => (s.exitHandledResolve = resolve));
    if (this.bundled && !existsSync(this.entry)) {
      // Deleted under us (a temp cleaner, in a supervisor up for days): this worker runs the
      // sources; the bundle is made again for the next ones.
      this.entry = WORKER_MAIN_SOURCE;
      void bundledWorkerEntry(this.warn).then((p) => {
        if (p !== null) this.entry = p;
      });
    }
    const proc: Subprocess = Bun.spawn([...(this.o.spawnPrefix ?? []), process.execPath, ...(this.o.bunArgs ?? []), this.entry], {
      env: { ...process.env, ...this.jitEnv, ...this.o.env, [WORKER_CONFIG_ENV]: JSON.stringify(cfg) },
      stdio: ["ignore", stdio, stdio],
      ipc: (m: WorkerToSupervisor) => this.onMessage(s, m),
      onExit: (_p, exitCode, signal): void => this.onExit(s, proc, exitCode, signal === null ? null : String(signal)),
    });
    s.proc = proc;
    s.pid = proc.pid;
    const timeoutMs = this.o.startTimeoutMs ?? 30_000;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        done(new ClusterError("ERR_CLUSTER_START", `worker ${s.index} (pid ${s.pid}) was not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (err?: Error) => {
        clearTimeout(timer);
        s.readyWaiters = s.readyWaiters.filter((w) => w !== done);
        if (err) reject(err);
        else resolve();
      };
      s.readyWaiters.push(done);
    });
  }

  private onMessage(s: Slot, m: WorkerToSupervisor): void {
    switch (m.t) {
      case "ready": {
        if (s.state === "starting") s.state = "ready";
        // Port 0 asked: from now on every worker (and every restart) listens where the first one did.
        if (this.listen.some((a) => a.port === 0) && m.listen.length === this.listen.length) {
          this.listen = this.listen.map((a, i) => (a.port === 0 ? { hostname: a.hostname, port: m.listen[i]!.port } : a));
        }
        this.o.onEvent?.({ type: "ready", worker: s.index, pid: m.pid });
        for (const w of [...s.readyWaiters]) w();
        break;
      }
      case "stats":
      case "stopped": {
        s.stats = m.stats;
        s.pools = m.pools ?? [];
        s.proxy = m.proxy ?? [];
        s.bus = m.bus;
        s.statsWaiters.answered(m.t === "stopped" ? Infinity : m.id);
        break;
      }
      case "fatal":
        s.fatal = m.message;
        this.o.onEvent?.({ type: "fatal", worker: s.index, pid: s.pid, message: m.message });
        break;
    }
  }

  private onExit(s: Slot, proc: Subprocess, exitCode: number | null, signal: string | null): void {
    if (s.proc !== proc) return; // an older process of this slot
    try {
      this.handleExit(s, exitCode, signal);
    } finally {
      s.exitHandledResolve();
    }
  }

  private handleExit(s: Slot, exitCode: number | null, signal: string | null): void {
    const expected = this.stopping !== undefined;
    const wasReady = s.state === "ready";
    s.state = "exited";
    s.stats = { ...s.stats, connections: 0, rssBytes: 0, baselineRssBytes: 0, heapUsedBytes: 0 };
    // Its pools died with it; the restarted process registers its own.
    s.pools = [];
    s.proxy = [];
    s.bus = undefined;
    s.statsWaiters.release();
    this.o.onEvent?.({ type: "exit", worker: s.index, pid: s.pid, exitCode, signal, expected });
    if (s.readyWaiters.length > 0) {
      const why = s.fatal ?? `exited with ${exitCode ?? signal} before it was ready`;
      for (const w of [...s.readyWaiters]) w(new ClusterError("ERR_CLUSTER_START", `worker ${s.index} (pid ${s.pid}): ${why}`));
    }
    if (expected || this.o.restart === false || !this.started) return;
    const policy = this.o.restart ?? {};
    const initial = policy.initialDelayMs ?? 100;
    const max = policy.maxDelayMs ?? 10_000;
    const ranMs = Date.now() - s.startedAtMs;
    if (wasReady && ranMs >= (policy.resetAfterMs ?? 30_000)) s.consecutiveCrashes = 0;
    const delayMs = backoffCeilingMs(s.consecutiveCrashes + 1, initial, max);
    s.consecutiveCrashes++;
    s.state = "restarting";
    s.restarts++;
    this.o.onEvent?.({ type: "restart", worker: s.index, delayMs, restarts: s.restarts });
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined;
      if (this.stopping !== undefined) return;
      // A failed restart is one more crash: onExit schedules the next attempt.
      this.spawn(s).catch(() => {});
    }, delayMs);
  }

  /** @internal set once every worker was ready the first time: only then are crashes restarted. */
  started = false;

  /** @internal */
  async startAll(): Promise<void> {
    const [first, ...rest] = this.slots;
    // The first worker alone when a port is 0, so the others can share the port it got.
    if (this.listen.some((a) => a.port === 0)) {
      await this.spawn(first!);
      await Promise.all(rest.map((s) => this.spawn(s)));
    } else {
      await Promise.all(this.slots.map((s) => this.spawn(s)));
    }
    this.started = true;
  }

  /** @internal */
  installSignalHandlers(): void {
    let count = 0;
    this.signalHandler = () => {
      count++;
      if (count > 1) {
        this.kill();
        process.exit(130);
      }
      void this.stop();
    };
    process.on("SIGINT", this.signalHandler);
    process.on("SIGTERM", this.signalHandler);
  }

  private removeSignalHandlers(): void {
    if (this.signalHandler === undefined) return;
    process.off("SIGINT", this.signalHandler);
    process.off("SIGTERM", this.signalHandler);
    this.signalHandler = undefined;
  }
}

/**
 * Starts the workers and resolves once every one listens. If any cannot start (port in use,
 * bad app, timeout), every worker already spawned is killed and it rejects with
 * ClusterError (code ERR_CLUSTER_START) carrying the worker's reason.
 */
export async function runCluster(opts: ClusterOptions): Promise<Cluster> {
  if (typeof opts !== "object" || opts === null) {
    throw new ClusterError("ERR_CLUSTER_WORKERS", `runCluster(options): options must be an object like { workers, listen, app }, got ${String(opts)}`);
  }
  if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 4096) {
    throw new ClusterError("ERR_CLUSTER_WORKERS", `workers must be an integer from 1 to 4096, got ${opts.workers}`);
  }
  if (!Array.isArray(opts.listen) || opts.listen.length === 0) {
    throw new ClusterError("ERR_CLUSTER_LISTEN", "listen must name at least one { hostname, port }");
  }
  if (opts.ftl !== undefined && typeof opts.ftl !== "boolean") {
    throw new ClusterError("ERR_CLUSTER_WORKERS", `ftl must be true or false (or left out: off beyond ${FTL_MAX_WORKERS_PER_CPU} workers per CPU), got ${String(opts.ftl)}`);
  }
  const cluster = new Cluster(opts);
  // The built-in apps run from the bundle; a module app imports myriad itself and must share
  // one copy of it with the worker (see worker-bundle.ts), so it runs from the sources.
  if (opts.workerEntry !== undefined) cluster.entry = opts.workerEntry;
  else if (opts.app?.kind !== "module") {
    cluster.bundled = true;
    cluster.entry = (await bundledWorkerEntry(cluster.warn)) ?? WORKER_MAIN_SOURCE;
  }
  try {
    await cluster.startAll();
  } catch (e) {
    cluster.kill();
    await Promise.race([Promise.all(cluster.workers.map((w) => waitExit(w.pid))), Bun.sleep(5000)]);
    throw e;
  }
  if (opts.handleSignals) cluster.installSignalHandlers();
  return cluster;
}

async function waitExit(pid: number): Promise<void> {
  // A worker never spawned has pid 0, and kill(0, 0) signals our own process group, which
  // always succeeds: waiting on it made every failed start take the full 5 s.
  if (pid <= 0) return;
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await Bun.sleep(50);
  }
}
