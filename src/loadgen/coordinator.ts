/**
 * The parent of the load processes: splits the connections over P children (each under its
 * `ulimit -n`), starts them together, merges their counters and histograms, and stops them
 * — by IPC first, by pid (SIGKILL) when they do not answer. Everything it starts, it ends.
 *
 * Stopping is two steps: every child reports its counters and histograms with its
 * connections still open, then the teardown begins. The report never waits on the
 * teardown (closing 19,000 sockets per process with 50 such processes and the servers
 * sharing 2 cores takes tens of seconds), and only a child that exits before the teardown
 * began has died; one that exits, or has to be killed, during it has not.
 */
import type { Subprocess } from "bun";
import { join } from "node:path";
import { MyriadError } from "../errors.ts";
import { allWithin, ReplyWaiters } from "../system/index.ts";
import { addCounters, emptyCounters, type EngineOptions, type EngineReport, type LoadCounters, type LoadMode, type LoadProtocol } from "./engine.ts";
import { LogHistogram, type PercentileSummary } from "./histogram.ts";
import type { ChildConfig, ChildToParent, ParentToChild, TunChildConfig } from "./protocol.ts";
import { parseIPv4, splitEvenly, type Target } from "./targets.ts";
import { MAX_TUN_WINDOW } from "./tun/engine.ts";
import { clientBlocks, type ClientBlock } from "./tun/netns.ts";

/** Settings of one load run. Totals (window, rates) are split evenly over the processes. */
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

export class LoadError extends MyriadError {}

interface Child {
  index: number;
  pid: number;
  proc: Subprocess;
  ready: boolean;
  counters: LoadCounters;
  final: EngineReport | undefined;
  /** The answer to the report request stop() makes before closing anything. */
  snapshot: EngineReport | undefined;
  /** Set when the teardown begins: an exit after it is not a death. */
  stopRequested: boolean;
  /** Exited before the teardown began. */
  died: boolean;
  /** Killed by stop() after its grace. */
  killed: boolean;
  exitedAt: number;
  exited: boolean;
  exitCode: number | null;
  signal: string | null;
  /** Waiting refresh() calls: each resolves on the answer to its request id (or on exit). */
  waiters: ReplyWaiters;
}

const CHILD_ENTRY = join(import.meta.dir, "child-main.ts");
/** How long stop() waits for the children's reports before it starts the teardown. */
const REPORT_TIMEOUT_MS = 10_000;

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

/** True until the child's exit is known (by its exit callback or by Bun's subprocess state). */
function running(c: Child): boolean {
  return !c.exited && c.proc.exitCode === null && c.proc.signalCode === null;
}

/** A running load. */
export class LoadRun {
  private readonly children: Child[];
  private readonly opts: LoadOptions;
  private startedAt = performance.now();
  private begun = false;
  private rampEndedAt = 0;
  private trafficStartedAt = 0;
  private lostAtRamp = 0;
  private progressTimer: ReturnType<typeof setInterval> | undefined;
  private stopped: Promise<LoadReport> | undefined;
  private requestId = 0;

  /** @internal use startLoad */
  constructor(children: Child[], opts: LoadOptions) {
    this.children = children;
    this.opts = opts;
    if (opts.onProgress) {
      const cb = opts.onProgress;
      this.progressTimer = setInterval(() => cb(this.counters()), opts.progressIntervalMs ?? 250);
    }
  }

  /** Tells every process to start connecting (once; startLoad does it unless autoBegin is false). */
  begin(): void {
    if (this.begun) return;
    this.begun = true;
    this.startedAt = performance.now();
    this.broadcast({ t: "start" });
  }

  /** Pids of every child (alive or not). */
  get pids(): number[] {
    return this.children.map((c) => c.pid);
  }

  /**
   * Merged counters of the latest reports. A child that died (exited before the teardown)
   * loses its open connections; one that exited during the teardown closed them itself.
   */
  counters(): LoadCounters {
    return this.sum((c) => c.final ?? c.counters);
  }

  private sum(pick: (c: Child) => LoadCounters): LoadCounters {
    const sum = emptyCounters(0);
    sum.rampDone = true;
    for (const c of this.children) {
      const k = pick(c);
      if (c.exited && c.final === undefined) {
        addCounters(sum, { ...k, open: 0, connecting: 0, lost: c.died ? k.lost + k.open : k.lost, rssBytes: 0, rampDone: true });
      } else {
        addCounters(sum, k);
      }
    }
    return sum;
  }

  private broadcast(m: ParentToChild): void {
    for (const c of this.children) {
      if (c.exited) continue;
      try {
        c.proc.send(m);
      } catch {
        // exited meanwhile: the exited callback records it
      }
    }
  }

  /**
   * Asks every child for fresh counters (full: with histograms, kept for the report);
   * resolves with the merged counters when all answered or after timeoutMs.
   */
  async refresh(timeoutMs = 2000, full = false): Promise<LoadCounters> {
    const id = ++this.requestId;
    const answered = this.children.filter((c) => !c.exited).map((c) => c.waiters.wait(id));
    this.broadcast(full ? { t: "report", id } : { t: "progress", id });
    await allWithin(answered, timeoutMs);
    return this.counters();
  }

  /**
   * Resolves with the merged counters once every child has opened or given up on all its
   * connections; after rampTimeoutMs the children stop connecting and it resolves when their
   * in-flight connects settle.
   */
  async ramped(): Promise<LoadCounters> {
    const deadline = this.startedAt + (this.opts.rampTimeoutMs ?? 120_000);
    let told = false;
    for (;;) {
      const k = this.counters();
      if (k.rampDone) break;
      const now = performance.now();
      if (!told && now >= deadline) {
        this.broadcast({ t: "stop-connecting" });
        told = true;
      }
      // In-flight connects time out within connectTimeoutMs after stop-connecting.
      if (told && now >= deadline + (this.opts.connectTimeoutMs ?? 10_000) + 5000) break;
      await Bun.sleep(Math.min(100, this.opts.progressIntervalMs ?? 250));
    }
    const k = await this.refresh();
    if (this.rampEndedAt === 0) {
      this.rampEndedAt = performance.now();
      this.lostAtRamp = k.lost;
    }
    return k;
  }

  /** Starts ping / request traffic on every child (no-op in idle mode). */
  startTraffic(): void {
    if (this.trafficStartedAt === 0) this.trafficStartedAt = performance.now();
    this.broadcast({ t: "traffic" });
  }

  /**
   * Takes every child's report (counters and histograms, connections still open), then
   * tears down: tells every child to close its connections and exit, waits up to graceMs,
   * kills whatever is left by pid (SIGKILL) and waits for it to go (at least 5 s more).
   * Resolves with the report; a child counts as died only if it exited before this began.
   * Idempotent (the first call's grace holds); the default grace is teardownGraceMs(connections).
   */
  stop(graceMs = teardownGraceMs(this.opts.connections)): Promise<LoadReport> {
    this.stopped ??= this.doStop(graceMs);
    return this.stopped;
  }

  private async doStop(graceMs: number): Promise<LoadReport> {
    const before = await this.refresh(REPORT_TIMEOUT_MS, true);
    const stopAt = performance.now();
    if (this.progressTimer !== undefined) clearInterval(this.progressTimer);
    for (const c of this.children) c.stopRequested = true;
    this.broadcast({ t: "stop" });
    const exits = Promise.all(this.children.map((c) => c.proc.exited));
    await Promise.race([exits, Bun.sleep(graceMs)]);
    for (const c of this.children) {
      if (running(c)) {
        c.killed = true;
        try {
          process.kill(c.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    // The kernel closes a killed process's sockets before it can be reaped: thousands take a while.
    await Promise.race([exits, Bun.sleep(Math.max(5000, graceMs))]);
    return this.buildReport(before, stopAt);
  }

  private buildReport(before: LoadCounters, stopAt: number): LoadReport {
    const o = this.opts;
    const connectUs = new LogHistogram();
    const latencyUs = new LogHistogram();
    let maxRss = 0;
    let lastExit = stopAt;
    for (const c of this.children) {
      // Counters and histograms from the same message, so they agree.
      const r = c.final ?? c.snapshot;
      if (r) {
        connectUs.merge(r.connectUs);
        latencyUs.merge(r.latencyUs);
      }
      maxRss = Math.max(maxRss, c.counters.rssBytes);
      lastExit = Math.max(lastExit, running(c) ? performance.now() : c.exitedAt);
    }
    const k = this.sum((c) => c.final ?? c.snapshot ?? c.counters);
    const rampMs = before.rampMs;
    const trafficMs = this.trafficStartedAt === 0 ? 0 : stopAt - this.trafficStartedAt;
    return {
      config: {
        connections: o.connections,
        processes: o.processes,
        targets: o.targets.length,
        sources: o.sources.length,
        mode: o.mode ?? "idle",
        protocol: o.protocol ?? "echo",
        connectWindow: o.connectWindow ?? 256,
        connectRatePerSec: o.connectRatePerSec ?? 0,
        requestRatePerSec: o.requestRatePerSec ?? 0,
      },
      connections: {
        target: o.connections,
        reached: before.peakOpen,
        held: before.open,
        lost: before.lost,
        lostAfterRamp: before.lost - this.lostAtRamp,
        failed: k.failed,
        attempts: k.attempts,
        errors: k.errors,
      },
      ramp: {
        ms: rampMs,
        connectionsPerSec: rampMs > 0 ? (before.connected / rampMs) * 1000 : 0,
        connectUs: connectUs.summary(),
      },
      traffic: {
        ms: trafficMs,
        requests: k.requests,
        responses: k.responses,
        responsesPerSec: trafficMs > 0 ? (k.responses / trafficMs) * 1000 : 0,
        bytesOut: k.bytesOut,
        bytesIn: k.bytesIn,
        skipped: k.skipped,
        badReplies: k.badReplies,
        latencyUs: latencyUs.summary(),
      },
      memory: {
        rssBytes: before.rssBytes,
        maxProcessRssBytes: maxRss,
        bytesPerConnection: before.peakOpen > 0 ? before.rssBytes / before.peakOpen : 0,
      },
      processes: {
        count: this.children.length,
        pids: this.pids,
        died: this.children.filter((c) => c.died).map((c) => ({ pid: c.pid, exitCode: c.exitCode, signal: c.signal })),
        killedAtTeardown: this.children.filter((c) => c.killed).map((c) => c.pid),
        unreported: this.children.filter((c) => c.final === undefined && c.snapshot === undefined).map((c) => c.pid),
        teardownMs: lastExit - stopAt,
      },
      durationMs: performance.now() - this.startedAt,
    };
  }
}

/** Each TUN process's device, client block and servers (`window`: its connects in flight); throws LoadError for options the TUN client cannot run. */
function tunConfigs(opts: LoadOptions, processes: number, window: number): TunChildConfig[] {
  if ((opts.mode ?? "idle") !== "idle") throw new LoadError("ERR_LOADGEN_TUN", `the TUN client holds idle connections only, not mode ${opts.mode}`);
  const hosts = new Set(opts.targets.map((t) => t.host));
  const host = opts.targets[0]?.host;
  const serverIp = host === undefined ? undefined : parseIPv4(host);
  if (hosts.size !== 1 || serverIp === undefined)
    throw new LoadError("ERR_LOADGEN_TUN", `the TUN client needs every target on one IPv4 address (the servers' address in the namespace), got ${[...hosts].join(", ") || "none"}`);
  const ports = [...new Set(opts.targets.map((t) => t.port))];
  if (window > MAX_TUN_WINDOW)
    throw new LoadError("ERR_LOADGEN_TUN", `a TUN process keeps at most ${MAX_TUN_WINDOW} connects in flight: connectWindow ${opts.connectWindow} over ${processes} processes is ${window} each`);
  let blocks: ClientBlock[];
  try {
    blocks = clientBlocks(opts.connections, processes);
  } catch (e) {
    throw new LoadError("ERR_LOADGEN_TUN", (e as Error).message);
  }
  return blocks.map((b, p) => ({ device: `myriad-tun${p}`, clientFirstIp: b.firstIp, clientCidr: b.cidr, serverIp, ports }));
}

/**
 * Spawns the load processes, waits until each is ready (startTimeoutMs, default 30 s), and
 * tells them to start connecting. On any failure to start, kills every child it spawned and
 * throws LoadError.
 */
export async function startLoad(opts: LoadOptions, startTimeoutMs = 30_000): Promise<LoadRun> {
  if (typeof opts !== "object" || opts === null) throw new LoadError("ERR_LOADGEN_OPTION", `startLoad(options): options must be an object, got ${String(opts)}`);
  if (!Array.isArray(opts.targets) || opts.targets.length === 0) throw new LoadError("ERR_LOADGEN_ADDRESS", "targets must name at least one host:port");
  const P = opts.processes;
  if (!Number.isInteger(P) || P < 1) throw new LoadError("ERR_LOADGEN_PROCESSES", `processes must be an integer >= 1, got ${P}`);
  if (!Number.isInteger(opts.connections) || opts.connections < 0)
    throw new LoadError("ERR_LOADGEN_CONNECTIONS", `connections must be an integer >= 0, got ${opts.connections}`);
  const shares = splitEvenly(opts.connections, P);
  const window = Math.max(1, Math.ceil((opts.connectWindow ?? 256) / P));
  const tun = opts.tun === true ? tunConfigs(opts, P, window) : undefined;
  const children: Child[] = [];
  let fatal: string | undefined;
  for (let p = 0; p < P; p++) {
    const engine: EngineOptions = {
      connections: shares[p]!,
      indexOffset: p,
      indexStride: P,
      sources: opts.sources,
      targets: opts.targets,
      connectWindow: window,
      connectRatePerSec: (opts.connectRatePerSec ?? 0) / P,
      connectTimeoutMs: opts.connectTimeoutMs,
      retries: opts.retries,
      mode: opts.mode,
      protocol: opts.protocol,
      payloadBytes: opts.payloadBytes,
      pingIntervalMs: opts.pingIntervalMs,
      requestRatePerSec: (opts.requestRatePerSec ?? 0) / P,
      getRatio: opts.getRatio,
      keyspace: opts.keyspace,
      confirm: opts.confirm,
    };
    const cfg: ChildConfig = {
      engine,
      progressIntervalMs: opts.progressIntervalMs ?? 250,
      maxLifetimeMs: opts.maxLifetimeMs ?? 3_600_000,
      tun: tun?.[p],
    };
    const child: Child = {
      index: p,
      pid: 0,
      proc: undefined as unknown as Subprocess,
      ready: false,
      counters: emptyCounters(shares[p]!),
      final: undefined,
      snapshot: undefined,
      stopRequested: false,
      died: false,
      killed: false,
      exitedAt: 0,
      exited: false,
      exitCode: null,
      signal: null,
      waiters: new ReplyWaiters(),
    };
    child.proc = Bun.spawn([...(opts.spawnPrefix ?? []), process.execPath, ...(opts.bunArgs ?? []), CHILD_ENTRY], {
      env: { ...process.env, MYRIAD_LOADGEN_CHILD: JSON.stringify(cfg) },
      stdio: ["ignore", "inherit", "inherit"],
      ipc(message: ChildToParent) {
        switch (message.t) {
          case "ready":
            child.ready = true;
            break;
          case "progress":
            child.counters = message.counters;
            break;
          case "report":
            child.snapshot = message.report;
            child.counters = message.report;
            break;
          case "final":
            child.final = message.report;
            child.counters = message.report;
            break;
          case "fatal":
            fatal = message.message;
            break;
        }
        if (message.t === "progress" || message.t === "report") child.waiters.answered(message.id);
        else if (message.t === "final") child.waiters.answered(Infinity);
      },
    });
    child.pid = child.proc.pid;
    // Recorded from `exited` (not onExit, which may run later): this callback runs before
    // anything that awaits `exited` afterwards, so stop() sees the exit as soon as it returns.
    void child.proc.exited.then(() => {
      child.exited = true;
      child.exitedAt = performance.now();
      child.died = !child.stopRequested;
      child.exitCode = child.proc.exitCode;
      child.signal = child.proc.signalCode === null ? null : String(child.proc.signalCode);
      child.waiters.release();
    });
    children.push(child);
  }
  const deadline = performance.now() + startTimeoutMs;
  while (!children.every((c) => c.ready)) {
    const dead = children.find((c) => c.exited);
    if (fatal !== undefined || dead !== undefined || performance.now() > deadline) {
      for (const c of children) {
        try {
          if (!c.exited) process.kill(c.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      await Promise.race([Promise.all(children.map((c) => c.proc.exited)), Bun.sleep(5000)]);
      const why = fatal ?? (dead ? `load process ${dead.pid} exited with ${dead.exitCode ?? dead.signal}` : `load processes not ready within ${startTimeoutMs} ms`);
      throw new LoadError("ERR_LOADGEN_START", `could not start the load processes: ${why}`);
    }
    await Bun.sleep(20);
  }
  const run = new LoadRun(children, opts);
  if (opts.autoBegin !== false) run.begin();
  return run;
}
