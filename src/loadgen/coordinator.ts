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
import { allWithin, ReplyWaiters } from "../system/index.ts";
import { addCounters, emptyCounters, type EngineReport, type LoadCounters } from "./counters.ts";
import { LogHistogram } from "./histogram.ts";
import type { EngineOptions } from "./options.ts";
import type { ChildConfig, ChildToParent, ParentToChild } from "./protocol.ts";
import { LoadError, teardownGraceMs, type LoadOptions, type LoadReport } from "./run-options.ts";
import { splitEvenly } from "./targets.ts";
import { tunConfigs } from "./tun/plan.ts";

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
