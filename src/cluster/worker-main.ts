/**
 * Entry of one cluster worker (spawned by supervisor.ts with an IPC channel; settings in
 * MYRIAD_CLUSTER_WORKER, see protocol.ts). It listens on every address of its config with
 * reusePort, serves the configured app on the reactor, reports its stats every
 * statsIntervalMs, and stops gracefully when told. It imports the reactor and the app only:
 * no admin, no config layer (hono, TypeBox) — a million connections need ~55 of these.
 *
 * Several listeners in one process each have their own connection table; the process-wide
 * cap (config.maxConnections, what `ulimit -n` allows) is one ConnectionBudget all of them
 * share: the reactor refuses a connection over it at accept (counted as rejected), before
 * the app or any stage sees it, at no cost to the connections under it.
 */
import { createServer, sumServerStats, type ConnectionBudget, type Handler, type Server, type ServerOptions, type ServerStats } from "../reactor/index.ts";
import type { mergeBusStats, NodeBus } from "../bus/index.ts";
import type { PoolRegistry } from "../pool/index.ts";
import { WORKER_CONFIG_ENV, type SupervisorToWorker, type WorkerApp, type WorkerConfig, type WorkerToSupervisor } from "./protocol.ts";

interface LoadedApp {
  protocol?: ServerOptions["protocol"];
  codec?: ServerOptions["codec"];
  handler: Handler;
  /** A handler for each listener after the first, when the app tells its listeners' connections apart (ids overlap between servers). */
  handlerForListener?(): Handler;
  close?(): void | Promise<void>;
}

const raw = process.env[WORKER_CONFIG_ENV];
if (raw === undefined || typeof process.send !== "function") {
  console.error("src/cluster/worker-main.ts is started by the cluster supervisor (runCluster / serve --workers), not by hand");
  process.exit(2);
}
const cfg = JSON.parse(raw) as WorkerConfig;

function send(m: WorkerToSupervisor): void {
  try {
    process.send!(m);
  } catch {
    // supervisor gone: the disconnect handler ends this process
  }
}

/** The pools a module app registered (module apps only): their stats go with every report. */
let registry: PoolRegistry | null = null;

async function loadApp(app: WorkerApp): Promise<LoadedApp> {
  switch (app.kind) {
    case "echo": {
      const { createEchoApp } = await import("../apps/index.ts");
      return createEchoApp({ protocol: app.protocol });
    }
    case "kv": {
      const { createKvApp } = await import("../apps/index.ts");
      // The kv app carries PUBLISH over the bus itself (one bus for the worker's one store).
      const kvBus = cfg.server.busUrl === undefined ? undefined : newBus();
      return createKvApp({ tickMs: app.tickMs, maxKeys: app.maxKeys, requirePass: app.requirePass, protectedMode: app.protectedMode, ...(kvBus ? { bus: kvBus } : {}) });
    }
    case "ws-echo":
    case "ws-chat": {
      const { createWsEchoApp, createWsChatApp } = await import("../apps/index.ts");
      // A WebSocket handler: createServer takes it with protocol "websocket".
      return (app.kind === "ws-echo" ? createWsEchoApp() : createWsChatApp()) as unknown as LoadedApp;
    }
    case "module": {
      const [{ loadModuleApp }, { PoolRegistry }] = await Promise.all([import("../apps/index.ts"), import("../pool/index.ts")]);
      registry = new PoolRegistry();
      return loadModuleApp(app, { workerIndex: cfg.index, workers: cfg.workers }, registry);
    }
  }
}

let app: LoadedApp;
const servers: Server[] = [];
type WorkerBus = NodeBus;
/** This worker's node bus connections (--bus): the kv app's, or one per server. */
const buses: WorkerBus[] = [];
/** Loaded only when asked for: the bus brings the pooled client (and TypeBox) along. */
let createBus: ((o: { url: string }) => WorkerBus) | null = null;
/** This worker's buses as one: up only while every one is up, counters summed. */
function busStats(): NonNullable<Extract<WorkerToSupervisor, { t: "stats" }>["bus"]> {
  return mergeBuses!(buses.map((b) => b.stats()));
}
function newBus(): WorkerBus {
  const b = createBus!({ url: cfg.server.busUrl! });
  buses.push(b);
  return b;
}
let mergeBuses: typeof mergeBusStats | null = null;
if (cfg.server.busUrl !== undefined) ({ createRedisBus: createBus, mergeBusStats: mergeBuses } = await import("../bus/index.ts"));

try {
  app = await loadApp(cfg.app);
  const multi = cfg.listen.length > 1;
  // One count over every listener (each server's maxConnections holds for its own table only).
  const budget: ConnectionBudget = { max: cfg.maxConnections, live: 0 };
  const s = cfg.server;
  for (const [i, addr] of cfg.listen.entries()) {
    const handler = i > 0 && app.handlerForListener !== undefined ? app.handlerForListener() : app.handler;
    const opts: ServerOptions = {
      hostname: addr.hostname,
      port: addr.port,
      reusePort: true,
      handler,
      maxConnections: cfg.maxConnections,
    };
    if (multi) opts.connectionBudget = budget;
    if (app.codec !== undefined) opts.codec = app.codec;
    else if (app.protocol !== undefined || s.protocol !== undefined) opts.protocol = app.protocol ?? s.protocol;
    if (s.maxConnectionsPerIp !== undefined) opts.maxConnectionsPerIp = s.maxConnectionsPerIp;
    if (s.idleTimeoutMs !== undefined) opts.idleTimeoutMs = s.idleTimeoutMs;
    if (s.handshakeTimeoutMs !== undefined) opts.handshakeTimeoutMs = s.handshakeTimeoutMs;
    if (s.maxFrameBytes !== undefined) opts.maxFrameBytes = s.maxFrameBytes;
    if (s.maxWriteBufferBytes !== undefined) opts.maxWriteBufferBytes = s.maxWriteBufferBytes;
    if (s.writeBufferHardLimitBytes !== undefined) opts.writeBufferHardLimitBytes = s.writeBufferHardLimitBytes;
    if (s.writeStallTimeoutMs !== undefined) opts.writeStallTimeoutMs = s.writeStallTimeoutMs;
    if (s.tickMs !== undefined) opts.tickMs = s.tickMs;
    if (s.measureLatency !== undefined) opts.measureLatency = s.measureLatency;
    if (s.segmentBytes !== undefined) opts.segmentBytes = s.segmentBytes;
    if (s.proxyProtocol === true) opts.proxyProtocol = true;
    if (s.proxyProtocolFrom !== undefined) opts.proxyProtocolFrom = s.proxyProtocolFrom;
    if (s.tls !== undefined) opts.tls = { cert: Bun.file(s.tls.certPath), key: Bun.file(s.tls.keyPath) };
    // One bus (one node id) per server: servers of one worker must not drop each other's
    // messages as their own echo. The kv app has its own (above).
    if (s.busUrl !== undefined && cfg.app.kind !== "kv") opts.bus = newBus();
    servers.push(await createServer(opts));
  }
} catch (e) {
  send({ t: "fatal", message: e instanceof Error ? e.message : String(e) });
  for (const srv of servers) void srv.stop({ graceful: false });
  setTimeout(() => process.exit(1), 50);
  await new Promise(() => {});
}

/** This worker's stats: its servers summed (over-cap connections are in rejected, as each server counts them). */
function stats(): ServerStats {
  return sumServerStats(
    servers.map((srv) => srv.stats()),
    true,
  );
}

/** A stats report: the servers' stats, and the registered pools' when there are any. */
function report(id?: number): WorkerToSupervisor {
  const m: Extract<WorkerToSupervisor, { t: "stats" }> = { t: "stats", stats: stats() };
  if (registry !== null && registry.pools.size > 0) m.pools = registry.snapshot();
  if (buses.length > 0) m.bus = busStats();
  if (id !== undefined) m.id = id;
  return m;
}

/**
 * The periodic report. An idle worker's figures do not move, and each report costs it a
 * wake-up, the stats and an IPC message (about 1 ms of CPU here: with the 55 workers of a
 * c1m run at 500 ms, a tenth of a core): a report equal to the last one in what the
 * connections did is skipped, except every HEARTBEAT_REPORTS intervals (RSS and uptime
 * move slowly). A stats request (cluster.refresh()) is always answered.
 */
const HEARTBEAT_REPORTS = 10;
let lastReport = "";
let skipped = 0;
function periodicReport(): void {
  const m = report() as Extract<WorkerToSupervisor, { t: "stats" }>;
  const s = m.stats;
  const key = `${s.connections} ${s.accepted} ${s.rejected} ${s.bytesIn} ${s.bytesOut} ${s.writeQueueBytes} ${s.pausedConnections} ${m.pools === undefined ? "" : JSON.stringify(m.pools)}`;
  if (key === lastReport && ++skipped < HEARTBEAT_REPORTS) return;
  lastReport = key;
  skipped = 0;
  send(m);
}
const timer = setInterval(periodicReport, cfg.statsIntervalMs);
let stopping = false;

async function stop(graceful: boolean, timeoutMs: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  await Promise.all(servers.map((srv) => srv.stop({ graceful, timeoutMs })));
  await Promise.all(buses.map((b) => b.close().catch(() => {})));
  try {
    await app!.close?.();
  } catch (e) {
    console.error(`worker ${cfg.index}: the app's close() failed:`, e);
  }
  const last: Extract<WorkerToSupervisor, { t: "stopped" }> = { t: "stopped", stats: stats() };
  if (registry !== null && registry.pools.size > 0) last.pools = registry.snapshot();
  send(last);
  setTimeout(() => process.exit(0), 50);
}

process.on("message", (m: SupervisorToWorker) => {
  if (m.t === "stop") void stop(m.graceful, m.timeoutMs);
  else if (m.t === "stats") send(report(m.id));
});
// The supervisor went away (killed, crashed): nobody will restart or stop us; stop now.
process.on("disconnect", () => {
  void stop(false, 0);
  setTimeout(() => process.exit(0), 2000).unref();
});
// Ctrl-C reaches the whole process group: the supervisor coordinates the stop.
process.on("SIGINT", () => {});
// SIGTERM aimed at one worker: stop gracefully; the supervisor restarts it.
process.on("SIGTERM", () => void stop(true, 10_000));

send({ t: "ready", pid: process.pid, listen: servers.map((srv) => ({ hostname: srv.hostname, port: srv.port })) });
send(report());
