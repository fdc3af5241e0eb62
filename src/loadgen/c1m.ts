/**
 * The one-machine million-connection experiment behind `bun run c1m`.
 *
 * For each server kind (myriad's reactor workers, then raw Bun.listen workers as the
 * baseline) it starts the server workers (runCluster, reusePort on every port), starts the
 * load processes, measures the machine with everything idle, ramps to the target, holds,
 * measures again, and tears everything down by pid.
 *
 * Two load clients:
 * - "tun" (the default where the machine allows it: root, /dev/net/tun, iproute2): each
 *   phase runs in a network namespace of its own (tun/netns.ts); the load processes are
 *   userland TCP clients on TUN devices (tun/engine.ts) that keep 7 bytes per connection
 *   and no socket, so the machine pays for one kernel socket per connection, the server's,
 *   as it would with the clients on other machines. Nothing leaves the namespace.
 * - "sockets": load processes with kernel sockets over loopback (engine.ts). Both ends are
 *   then on this machine and every connection is two sockets.
 * Kernel figures are per socket, machine figures per connection.
 *
 * What is measured, and from where:
 * - connections: the load processes' counters (reached = most open at once, held = open at
 *   the end of the hold, lost = closed by the other side after the ramp) and the workers' own
 *   counts (stats over IPC);
 * - server userland bytes per connection: Σ worker VmRSS (/proc/<pid>/status) at the end of
 *   the hold minus the same sum with the workers up and idle, over the server's connections;
 * - kernel bytes per socket: the growth of the slab caches a socket lives in (/proc/slabinfo:
 *   TCP, sock_inode_cache, filp, eventpoll_epi, dentry, tcp_bind buckets, ...) plus TCP buffer
 *   pages (/proc/net/sockstat "mem"), over the growth of TCP sockets in use;
 * - machine bytes per connection: the growth of MemTotal − MemAvailable (/proc/meminfo) from
 *   "every process up, no connection" to the end of the hold, over connections held.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCluster, type Cluster } from "../cluster/index.ts";
import { loadProcessesFor, planWorkers, readMeminfo, readNetstat, readPageBytes, readProcFile, readSockstat, readSystemLimits, SOCKET_GROWTH_CACHES, type ProcReader } from "../system/index.ts";
import { machineState, settleSlab, settleSockets, sumRss, tcpSlabObjects, waitGone } from "./c1m-machine.ts";
import { chartOf, markdownOf } from "./c1m-report.ts";
import type { C1mOptions, C1mPhaseResult, C1mResult, C1mSample } from "./c1m-types.ts";
import { startLoad, type LoadRun } from "./coordinator.ts";
import { teardownGraceMs } from "./run-options.ts";
import { autoSources, type Target } from "./targets.ts";
import { Netns, SERVER_ADDRESS } from "./tun/netns.ts";

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Runs the experiment; writes the JSON, SVG and Markdown files; returns what it wrote. */
export async function runC1m(o: C1mOptions): Promise<C1mResult> {
  const log = o.log ?? (() => {});
  const startedAt = new Date();
  const t0 = performance.now();
  const limits = readSystemLimits();
  const pageBytes = readPageBytes();
  const samples: C1mSample[] = [];
  const phases: C1mPhaseResult[] = [];
  const workers = o.workers ?? planWorkers({ maxConnections: o.connections, nofile: limits.nofileSoft, cpus: limits.cpus }).workers;
  const loaders = o.loaders ?? loadProcessesFor(o.connections, o.client, limits.nofileSoft, limits.cpus);
  const targets: Target[] = [];
  for (const host of o.destinations) for (const port of o.ports) targets.push({ host, port });
  const perSourceCount = Math.max(1, Math.ceil(o.connections / o.perSource));

  // TCP sockets in use may only be this many before a phase's "before" picture: the previous
  // phase's sockets must be gone (other programs' sockets come and go: only ours are waited for).
  let settleCeiling = Infinity;
  // TUN phases: the previous namespace's sockets go when it is destroyed, after its processes exit;
  // the TCP slab (machine-wide) says when they are gone.
  const tcpObjectsAtStart = tcpSlabObjects(pageBytes);
  const tun = o.client === "tun";
  const confirm = o.confirm ?? tun;
  const aborted = new Promise<void>((resolve) => {
    if (o.signal?.aborted) resolve();
    o.signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  for (const [phaseIndex, kind] of o.servers.entries()) {
    if (o.signal?.aborted) break;
    log(`c1m: phase ${kind}: ${workers} server workers on ${o.ports.length} ports, ${loaders} load processes, ${fmt(o.connections)} connections`);
    // Sockets of the previous phase must be gone before this one's "before" picture.
    const settled = tun
      ? await settleSlab(tcpObjectsAtStart + Math.max(500, o.connections * 0.02), pageBytes, 60_000)
      : await settleSockets(settleCeiling, 30_000);
    if (!settled) log(`c1m: phase ${kind}: the previous phase's sockets were not all gone after the wait; memory they free now lowers this phase's figures`);
    let ns: Netns | undefined;
    let netRead: ProcReader = readProcFile;
    const before0 = machineState(pageBytes, netRead);
    let cluster: Cluster | undefined;
    let run: LoadRun | undefined;
    let stage: C1mSample["stage"] = "start";
    let sampler: ReturnType<typeof setInterval> | undefined;
    const workerPids: number[] = [];
    let loaderPids: number[] = [];
    try {
      if (tun) {
        ns = Netns.create(`c1m${phaseIndex}`);
        // sockstat and netstat are per namespace: read the namespace's.
        netRead = ns.procReader(readProcFile);
      }
      cluster = await runCluster({
        spawnPrefix: ns?.execPrefix,
        workers,
        listen: o.ports.map((port) => ({ hostname: "0.0.0.0", port })),
        app: o.protocol === "websocket" ? { kind: "ws-echo" } : { kind: "echo" },
        // Nothing here reads request latency (as `bun run serve` without an admin server).
        server: { measureLatency: false },
        // ftl left to its default: off at c1m's tens of workers per CPU (ClusterOptions.ftl).
        workerEntry: kind === "raw" ? o.rawWorkerEntry : undefined,
        statsIntervalMs: o.sampleMs,
        restart: false,
        startTimeoutMs: 60_000,
        stdio: "inherit",
        // A worker bundle that could not be made changes what is measured: say so.
        onEvent: (e) => {
          if (e.type === "warning") console.error(`c1m: ${kind}: ${e.message}`);
        },
      });
      workerPids.push(...cluster.pids());
      // Each phase binds its own source addresses: the previous phase's ports may linger.
      const sources = autoSources(perSourceCount, `127.${phaseIndex + 1}.0.1`);
      // Bun listens with a backlog of 512: a quarter of every listener's queue is the most
      // connects worth having in flight (with confirm, the window bounds the queues outright).
      const connectWindow = Math.max(16, Math.min(o.connectWindow, workers * o.ports.length * 128));
      run = await startLoad(
        {
          connections: o.connections,
          processes: loaders,
          targets: tun ? o.ports.map((port) => ({ host: SERVER_ADDRESS, port })) : targets,
          sources: tun ? [] : sources,
          tun,
          spawnPrefix: ns?.execPrefix,
          connectWindow,
          confirm,
          protocol: o.protocol === "websocket" ? "websocket" : "echo",
          connectRatePerSec: o.connectRatePerSec,
          connectTimeoutMs: o.connectTimeoutMs,
          retries: o.retries,
          mode: "idle",
          rampTimeoutMs: o.rampTimeoutMs,
          maxLifetimeMs: o.rampTimeoutMs + o.holdMs + 120_000,
          autoBegin: false,
        },
        60_000,
      );
      loaderPids = run.pids;
      await Bun.sleep(1000);
      const serverRssBaseline = sumRss(workerPids);
      const loaderRssBaseline = sumRss(loaderPids);
      const before = machineState(pageBytes, netRead);
      const c = cluster;
      const r = run;
      const sample = () => {
        const k = r.counters();
        const st = readSockstat(netRead);
        const mem = readMeminfo();
        samples.push({
          t: (performance.now() - t0) / 1000,
          phase: kind,
          stage,
          clientOpen: k.open,
          serverConnections: c.totals().connections,
          serverRssBytes: sumRss(workerPids),
          loaderRssBytes: sumRss(loaderPids),
          machineUsedBytes: (mem.MemTotal ?? 0) - (mem.MemAvailable ?? 0),
          tcpInuse: st.tcpInuse,
          tcpMemPages: st.tcpMemPages,
        });
      };
      sample();
      stage = "ramp";
      sampler = setInterval(sample, o.sampleMs);
      let lastLog = 0;
      const progress = setInterval(() => {
        const k = r.counters();
        const now = performance.now();
        if (now - lastLog >= 1000) {
          lastLog = now;
          log(`c1m: ${kind} ${stage}: ${fmt(k.open)}/${fmt(o.connections)} open, server ${fmt(c.totals().connections)}, failed ${fmt(k.failed)}, lost ${fmt(k.lost)}`);
        }
      }, 250);
      const netBefore = readNetstat(netRead);
      r.begin();
      await Promise.race([r.ramped(), aborted]);
      const ramped = await r.refresh();
      const netAfter = readNetstat(netRead);
      // Server counts arrive by IPC every sampleMs: ask once more so the ramp-end figure is current.
      await c.refreshStats(15_000);
      const serverAtRamp = c.totals().connections;
      stage = "hold";
      log(`c1m: ${kind} ramp done: ${fmt(ramped.open)} open (${fmt(ramped.failed)} failed) in ${(ramped.rampMs / 1000).toFixed(2)} s; holding ${(o.holdMs / 1000).toFixed(0)} s`);
      const holdStart = performance.now();
      if (!o.signal?.aborted) await Promise.race([Bun.sleep(o.holdMs), aborted]);
      const holdSeconds = (performance.now() - holdStart) / 1000;
      // Generous: a busy machine delays IPC; a stale count would read as lost connections.
      await c.refreshStats(15_000);
      const serverStatsComplete = c.lastRefreshComplete;
      const workersDied = c.workers.filter((w) => w.state === "exited").map((w) => w.pid);
      const serverHeld = c.totals().connections;
      const held = machineState(pageBytes, netRead);
      const serverRssHeld = sumRss(workerPids);
      const loaderRssHeld = sumRss(loaderPids);
      clearInterval(progress);
      stage = "teardown";
      const graceMs = teardownGraceMs(o.connections);
      log(`c1m: ${kind} teardown: load processes close ${fmt(o.connections)} connections (grace ${(graceMs / 1000).toFixed(0)} s)`);
      const report = await r.stop(graceMs);
      const serverStopAt = performance.now();
      await c.stop({ graceful: false, timeoutMs: 5000 });
      const serverTeardownSeconds = (performance.now() - serverStopAt) / 1000;
      clearInterval(sampler);
      sampler = undefined;
      sample();
      const leftovers = await waitGone([...workerPids, ...loaderPids], Math.max(10_000, o.connections * 0.03));
      cluster = undefined;
      run = undefined;

      const conns = report.connections.held;
      const socketsAdded = held.sockstat.tcpInuse - before.sockstat.tcpInuse;
      settleCeiling = held.sockstat.tcpInuse - Math.floor(0.95 * Math.max(0, socketsAdded));
      const byCache: Record<string, number> = {};
      let slabDelta = 0;
      for (const name of SOCKET_GROWTH_CACHES) {
        const a = before.slabs[name];
        const b = held.slabs[name];
        if (!a || !b) continue;
        const d = b.bytes - a.bytes;
        slabDelta += d;
        if (socketsAdded > 0 && Math.abs(d) / socketsAdded >= 1) byCache[name] = d / socketsAdded;
      }
      const slabinfoReadable = Object.keys(held.slabs).length > 0;
      const bufBytes = (held.sockstat.tcpMemPages - before.sockstat.tcpMemPages) * pageBytes;
      const per = (x: number, n: number) => (n > 0 ? x / n : null);
      phases.push({
        server: kind,
        protocol: o.protocol ?? "echo",
        client: o.client,
        confirm,
        workers,
        loaders,
        workerPids,
        loaderPids,
        target: o.connections,
        reached: report.connections.reached,
        held: conns,
        serverHeld,
        lostDuringHold: report.connections.lostAfterRamp,
        serverDropDuringHold: Math.max(0, serverAtRamp - serverHeld),
        failed: report.connections.failed,
        errors: report.connections.errors,
        rampSeconds: report.ramp.ms / 1000,
        rampPerSec: report.ramp.connectionsPerSec,
        connectWindow,
        connectUs: report.ramp.connectUs,
        holdSeconds,
        serverRssBaselineBytes: serverRssBaseline,
        serverRssHeldBytes: serverRssHeld,
        serverUserlandBytesPerConnection: per(serverRssHeld - serverRssBaseline, serverHeld),
        loaderRssBaselineBytes: loaderRssBaseline,
        loaderRssHeldBytes: loaderRssHeld,
        loaderUserlandBytesPerConnection: per(loaderRssHeld - loaderRssBaseline, conns),
        kernelBytesPerSocket: slabinfoReadable ? per(slabDelta + Math.max(0, bufBytes), socketsAdded) : null,
        kernelSlabBytesPerSocketByCache: byCache,
        tcpBufferBytesPerSocket: per(bufBytes, socketsAdded),
        socketsAdded,
        machineBytesPerConnection: per(held.memUsedBytes - before.memUsedBytes, conns),
        machineAllSlabBytesPerConnection: per(held.memUsedAllSlabBytes - before.memUsedAllSlabBytes, conns),
        serverSideBytesPerConnection: null,
        serverSideWithBaselineBytesPerConnection: null,
        machineBytesPerConnectionWithBaselines: per(held.memUsedBytes - before0.memUsedBytes, conns),
        machineUsedBeforeBytes: before.memUsedBytes,
        machineUsedHeldBytes: held.memUsedBytes,
        listenOverflows: (netAfter["TcpExt.ListenOverflows"] ?? 0) - (netBefore["TcpExt.ListenOverflows"] ?? 0),
        synRetransmits: (netAfter["TcpExt.TCPSynRetrans"] ?? 0) - (netBefore["TcpExt.TCPSynRetrans"] ?? 0),
        leftovers,
        loadersDied: report.processes.died,
        loadersKilledAtTeardown: report.processes.killedAtTeardown,
        loadersUnreported: report.processes.unreported,
        teardownGraceSeconds: graceMs / 1000,
        loadTeardownSeconds: report.processes.teardownMs / 1000,
        serverTeardownSeconds,
        workersDied,
        serverStatsComplete,
        slabinfoReadable,
      });
      const p = phases[phases.length - 1]!;
      if (p.kernelBytesPerSocket !== null && p.serverUserlandBytesPerConnection !== null) {
        p.serverSideBytesPerConnection = p.kernelBytesPerSocket + p.serverUserlandBytesPerConnection;
        p.serverSideWithBaselineBytesPerConnection = p.serverSideBytesPerConnection + serverRssBaseline / serverHeld;
      }
      log(
        `c1m: ${kind}: held ${fmt(p.held)} (server ${fmt(p.serverHeld)}), lost ${fmt(p.lostDuringHold)}, ramp ${fmt(p.rampPerSec)}/s, ` +
          `server ${p.serverUserlandBytesPerConnection === null ? "n/a" : fmt(p.serverUserlandBytesPerConnection)} B/conn, ` +
          `kernel ${p.kernelBytesPerSocket === null ? "n/a" : fmt(p.kernelBytesPerSocket)} B/socket, machine ${p.machineBytesPerConnection === null ? "n/a" : fmt(p.machineBytesPerConnection)} B/conn` +
          (leftovers.length ? `; LEFTOVER PIDS ${leftovers.join(",")}` : "") +
          `; teardown: load ${p.loadTeardownSeconds.toFixed(1)} s` +
          (p.loadersKilledAtTeardown.length ? ` (${p.loadersKilledAtTeardown.length} still closing after the ${p.teardownGraceSeconds.toFixed(0)} s grace, killed)` : "") +
          `, server ${p.serverTeardownSeconds.toFixed(1)} s` +
          (p.loadersDied.length ? `; LOAD PROCESSES DIED: ${p.loadersDied.map((d) => `${d.pid} (${d.signal ?? `exit ${d.exitCode}`})`).join(", ")}` : "") +
          (p.loadersUnreported.length ? `; no report from load processes ${p.loadersUnreported.join(", ")} (connect times incomplete)` : "") +
          (workersDied.length ? `; WORKERS DIED: ${workersDied.join(", ")}` : "") +
          (serverStatsComplete ? "" : "; some workers did not report in time (server figures may be stale)"),
      );
    } finally {
      if (sampler !== undefined) clearInterval(sampler);
      // On any failure: every process of this phase goes, by pid.
      if (run !== undefined) await run.stop(5000).catch(() => undefined);
      if (cluster !== undefined) {
        cluster.kill();
        await cluster.stop({ graceful: false, timeoutMs: 1000 }).catch(() => undefined);
      }
      // Its processes are gone (or going): the namespace, its devices and sockets go with them.
      const complaint = ns?.delete();
      if (complaint !== undefined) log(`c1m: ${kind}: ${complaint}`);
    }
  }

  const finishedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:]/g, "-").replace(/\..*$/, "");
  mkdirSync(o.outDir, { recursive: true });
  const base = join(o.outDir, `c1m-${stamp}`);
  const files = { json: `${base}.json`, svg: `${base}.svg`, md: `${base}.md` };
  const { log: _log, signal: _signal, ...options } = o;
  const result: C1mResult = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    options,
    machine: {
      cpus: limits.cpus,
      memTotalBytes: limits.memTotalBytes,
      nofileSoft: limits.nofileSoft,
      nofileHard: limits.nofileHard,
      portRange: limits.portRange,
      somaxconn: limits.somaxconn,
      tcpMemPages: limits.tcpMemPages,
      fileMax: limits.fileMax,
    },
    phases,
    interrupted: o.signal?.aborted === true,
    samples,
    files,
  };
  writeFileSync(files.json, JSON.stringify(result, null, 2) + "\n");
  writeFileSync(files.svg, chartOf(result));
  writeFileSync(files.md, markdownOf(result));
  return result;
}
