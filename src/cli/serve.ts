/**
 * `bun run serve`: the RESP key-value store (or an echo server, or a module app of the
 * user's: `--app ./my-app.ts`, see src/apps/module.ts) on myriad's reactor, with the admin
 * server beside it, which shows the pools a module app registers. Settings: flags > MYRIAD_* > --config file > defaults (see
 * `bun run serve --help`). SIGINT / SIGTERM stop it gracefully (a second signal exits at
 * once) and it prints the final stats; exit 0 after a clean stop, 1 when it cannot start,
 * 2 for bad settings.
 *
 * One worker on one address runs in this process. More workers (`--workers N|auto`), a
 * `--port` range or several `--host` addresses run under src/cluster's supervisor: every
 * worker listens on every address with reusePort, this process restarts the ones that die,
 * serves the admin API over all of them and stops them all by pid. A reactor server listens
 * on one address, so several addresses with one worker also go through the supervisor: its
 * worker already keeps one connection cap and one app (one kv store) over all listeners.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { isLoopbackHost, startAdminServer, serverSource, type AdminServer, type AdminStatsSource } from "../admin/index.ts";
import { createRedisBus } from "../bus/index.ts";
import { createEchoApp, createKvApp, createWsChatApp, createWsEchoApp, loadModuleApp, type ModuleApp } from "../apps/index.ts";
import { PoolRegistry } from "../pool/index.ts";
import type { ClusterEvent, ListenAddress, WorkerApp } from "../cluster/index.ts";
import { isModuleAppPath, serveCommand, workersOf, type ServeConfig } from "../config/index.ts";
import { VERSION } from "../version.ts";
import { createServer, defaultMaxConnections, type Server, type ServerOptions, type ServerStats } from "../reactor/index.ts";

/** "1 MiB", "4 MiB", "512 B". */
function formatBytes(n: number): string {
  if (n >= 1 << 30 && n % (1 << 30) === 0) return `${n / (1 << 30)} GiB`;
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function formatMs(ms: number): string {
  if (ms === 0) return "off";
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function fail(message: string, code = 1): never {
  process.stderr.write(`serve: ${message}\n`);
  process.exit(code);
}

/**
 * The server options for a validated config and the app's framing (TLS files read lazily by
 * Bun). Request latency is measured only when the admin server is there to show it.
 */
function serverOptionsOf(cfg: ServeConfig, app: Pick<ModuleApp, "handler" | "protocol" | "codec">): ServerOptions {
  const opts: ServerOptions = {
    handler: app.handler,
    measureLatency: cfg.admin,
    maxFrameBytes: cfg.maxFrameBytes,
    maxWriteBufferBytes: cfg.maxWriteBufferBytes,
    writeStallTimeoutMs: cfg.writeStallTimeoutMs,
    idleTimeoutMs: cfg.idleTimeoutMs,
    handshakeTimeoutMs: cfg.handshakeTimeoutMs,
    tickMs: cfg.tickMs,
  };
  if (app.codec !== undefined) opts.codec = app.codec;
  else if (app.protocol !== undefined) opts.protocol = app.protocol;
  if (cfg.unix !== undefined) opts.unix = cfg.unix;
  else {
    // One address: the multi-address settings go to the cluster (see main).
    opts.port = cfg.port.from;
    opts.hostname = cfg.host[0];
  }
  if (cfg.maxConnections > 0) opts.maxConnections = cfg.maxConnections;
  if (cfg.maxConnectionsPerIp > 0) opts.maxConnectionsPerIp = cfg.maxConnectionsPerIp;
  if (cfg.proxyProtocol) opts.proxyProtocol = true;
  if (cfg.proxyFrom !== undefined) opts.proxyProtocolFrom = cfg.proxyFrom;
  if (cfg.tlsCert !== undefined && cfg.tlsKey !== undefined) opts.tls = { cert: Bun.file(cfg.tlsCert), key: Bun.file(cfg.tlsKey) };
  return opts;
}

/**
 * The one-line summary of final stats printed on stop. `workers` (cluster only) says how
 * many worker processes the figures add up and how often they were restarted; rss is then
 * the workers' sum at their last report before the stop.
 */
function formatFinalStats(s: ServerStats, workers?: { count: number; restarts: number }): string {
  const closed = Object.entries(s.closed)
    .filter(([, n]) => n > 0)
    .map(([why, n]) => `${why} ${n}`)
    .join(", ");
  const over = workers
    ? ` (${workers.count} worker${workers.count === 1 ? "" : "s"} summed, ${workers.restarts} restart${workers.restarts === 1 ? "" : "s"})`
    : "";
  return (
    `serve: stopped after ${(s.uptimeMs / 1000).toFixed(1)}s${over}; connections: accepted ${s.accepted}, rejected ${s.rejected}, peak ${s.peakConnections}, ` +
    `closed ${closed || "none"}; frames in ${s.framesIn}, out ${s.framesOut}; bytes in ${s.bytesIn}, out ${s.bytesOut}; ` +
    `rss ${formatBytes(s.rssBytes)}`
  );
}

/** "host:port" with IPv6 hosts in brackets. */
function hostPort(hostname: string, port: number | string): string {
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

/**
 * Listen addresses compactly: each host once, its ports as runs ("127.0.0.1:7000-7019,
 * [::1]:7000-7019"), in the order given.
 */
function formatListen(addresses: readonly ListenAddress[]): string {
  const byHost = new Map<string, number[]>();
  for (const a of addresses) {
    const ports = byHost.get(a.hostname);
    if (ports) ports.push(a.port);
    else byHost.set(a.hostname, [a.port]);
  }
  const out: string[] = [];
  for (const [host, ports] of byHost) {
    const runs: string[] = [];
    for (let i = 0; i < ports.length; ) {
      let j = i;
      while (j + 1 < ports.length && ports[j + 1] === ports[j]! + 1) j++;
      runs.push(j === i ? String(ports[i]) : `${ports[i]}-${ports[j]}`);
      i = j + 1;
    }
    out.push(hostPort(host, runs.join(",")));
  }
  return out.join(", ");
}

/**
 * What the startup block calls the app: "kv (resp)", "echo (lines)", "./my-app.ts (resp)";
 * a module app's framing is unknown to a supervisor (its workers load it): "./my-app.ts".
 */
function appLabel(cfg: ServeConfig, protocol: string | undefined): string {
  if (cfg.app === "kv") return "kv (resp)";
  return protocol === undefined ? cfg.app : `${cfg.app} (${protocol})`;
}

/** The admin line's note on POST /admin/stop, which needs a token. */
function stopNote(cfg: ServeConfig): string {
  return (cfg.adminToken ?? "") === "" ? "POST /admin/stop needs --admin-token" : "POST /admin/stop";
}

/** The limits line of the startup block (everything but the connection cap). */
function limitsTail(cfg: ServeConfig): string {
  return (
    `, idle timeout ${formatMs(cfg.idleTimeoutMs)}` +
    `, handshake timeout ${formatMs(cfg.handshakeTimeoutMs)}, max frame ${formatBytes(cfg.maxFrameBytes)}` +
    `, write buffer ${formatBytes(cfg.maxWriteBufferBytes)} (stall ${formatMs(cfg.writeStallTimeoutMs)}), tick ${cfg.tickMs}ms` +
    (cfg.app === "kv" ? `, max keys ${cfg.maxKeys || "unlimited"}` : "")
  );
}

/** The kv app's access options from the config (what both the single process and the workers get). */
function kvAccessOf(cfg: ServeConfig): { requirePass?: string; protectedMode: boolean } {
  return { requirePass: cfg.requirepass, protectedMode: cfg.protectedMode === "yes" };
}

/**
 * The kv app's access line of the startup block: whether clients must AUTH, and what protected
 * mode does (undefined for other apps). Says it loudly when nothing guards the store.
 */
function accessLine(cfg: ServeConfig, hosts: readonly string[]): string | undefined {
  if (cfg.app !== "kv") return undefined;
  if (cfg.requirepass !== undefined) return "  access: password required (clients send AUTH <password> first; wrong ones are counted in INFO)";
  if (cfg.protectedMode === "yes") {
    const exposed = cfg.unix === undefined && hosts.some((h) => !isLoopbackHost(h));
    return (
      "  access: no password, protected mode on: clients from other than loopback get -DENIED" +
      (exposed ? " (set --requirepass <password> to serve them, or --protected-mode no if every network that can reach this port is trusted)" : "")
    );
  }
  return "  access: no password and protected mode off (--protected-mode no): anyone who can reach the port can read and write every key";
}

/** [line] or [] (for a startup block's optional lines). */
function optional(line: string | undefined): string[] {
  return line === undefined ? [] : [line];
}

/** Installs SIGINT/SIGTERM: the first starts `shutdown`, a second one runs `now` and exits 130. */
function onSignals(shutdown: (why: string) => Promise<void>, isStopping: () => boolean, now: () => void = () => {}): void {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (isStopping()) {
        process.stdout.write(`serve: ${sig} again: exiting now\n`);
        now();
        process.exit(130);
      }
      void shutdown(sig);
    });
  }
}

async function main(): Promise<void> {
  const { values: cfg } = serveCommand.parseOrExit(process.argv.slice(2));
  for (const [flag, path] of [
    ["--tls-cert", cfg.tlsCert],
    ["--tls-key", cfg.tlsKey],
  ] as const) {
    if (path !== undefined && !existsSync(path)) fail(`${flag} ${path}: no such file (give a PEM file)`, 2);
  }
  if (isModuleAppPath(cfg.app) && !existsSync(cfg.app)) fail(`--app ${cfg.app}: no such file (give kv, echo or the path of a module app)`, 2);
  // Checked before anything listens: startAdminServer would refuse it only after the workers started.
  if (cfg.admin && (cfg.adminToken ?? "") === "" && !isLoopbackHost(cfg.adminHost)) {
    fail(
      `--admin-host ${cfg.adminHost} is reachable from other machines and needs --admin-token <secret> (or MYRIAD_ADMIN_TOKEN); ` +
        "or keep --admin-host on loopback (127.0.0.1), or pass --no-admin",
      2,
    );
  }
  const hosts = [...new Set(cfg.host)];
  const ports: number[] = [];
  for (let p = cfg.port.from; p <= cfg.port.to; p++) ports.push(p);
  const workers = workersOf(cfg.workers)!; // the config's validate() accepted it
  if (cfg.unix === undefined && (workers !== 1 || hosts.length * ports.length > 1)) await serveCluster(cfg, workers, hosts, ports);
  else await serveSingle(cfg);
}

/** Loads a module app in this process (worker 0 of 1); exits 1 with the module's error. */
async function loadModule(cfg: ServeConfig, registry: PoolRegistry): Promise<ModuleApp> {
  try {
    return await loadModuleApp({ module: resolve(cfg.app) }, { workerIndex: 0, workers: 1 }, registry);
  } catch (e) {
    fail(`--app ${cfg.app}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** One worker on one address (or a unix socket): the reactor in this process, no supervisor. */
async function serveSingle(cfg: ServeConfig): Promise<void> {
  let app: ModuleApp;
  // Pools a module app registers, read by the admin server at every snapshot.
  const registry = new PoolRegistry();
  // The node bus (kv and ws-chat, as config's validate() says): up and down are said as they happen.
  let bus: ReturnType<typeof createRedisBus> | undefined;
  try {
    bus =
      cfg.bus === undefined
        ? undefined
        : createRedisBus({ url: cfg.bus, onStatus: (up) => process.stdout.write(`serve: bus ${cfg.bus} ${up ? "up" : "down: PUBLISH answers -BUSDOWN until it is back"}\n`) });
  } catch (e) {
    fail(`--bus ${cfg.bus}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (cfg.app === "kv") app = createKvApp({ tickMs: cfg.tickMs, maxKeys: cfg.maxKeys > 0 ? cfg.maxKeys : undefined, ...kvAccessOf(cfg), ...(bus ? { bus } : {}) });
  else if (cfg.app === "echo") app = createEchoApp({ protocol: cfg.protocol ?? "raw" });
  // protocol "websocket" with a WebSocket handler: createServer takes both (serverOptionsOf passes them on).
  else if (cfg.app === "ws-echo") app = createWsEchoApp() as unknown as ModuleApp;
  else if (cfg.app === "ws-chat") app = createWsChatApp() as unknown as ModuleApp;
  else {
    app = await loadModule(cfg, registry);
    if (app.codec === undefined && app.protocol === undefined) app = { ...app, protocol: cfg.protocol ?? "raw" };
  }
  const protocol = app.codec?.name ?? app.protocol ?? "raw";

  let server: Server;
  const where = cfg.unix !== undefined ? `unix:${cfg.unix}` : hostPort(cfg.host[0]!, cfg.port.from);
  try {
    const opts = serverOptionsOf(cfg, app);
    // ws-chat's publishes go over the bus (the kv app carries its own PUBLISH).
    if (bus !== undefined && cfg.app === "ws-chat") opts.bus = bus;
    server = await createServer(opts);
  } catch (e) {
    await app.close?.();
    fail(`cannot listen on ${where}: ${e instanceof Error ? e.message : String(e)} (choose another --port / --host, or stop what holds it)`);
  }

  let stopping: Promise<void> | undefined;
  let admin: AdminServer | undefined;
  let draining = false;
  const shutdown = (why: string): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      await drainBeforeStop(cfg, why, () => (draining = true));
      process.stdout.write(`serve: ${why}: stopping gracefully (up to ${formatMs(cfg.stopTimeoutMs)}; signal again to exit at once)\n`);
      const final = await server.stop({ graceful: true, timeoutMs: cfg.stopTimeoutMs });
      await bus?.close().catch(() => {});
      await admin?.stop().catch(() => {});
      try {
        await app.close?.();
      } catch (e) {
        process.stderr.write(`serve: the app's close() failed: ${e instanceof Error ? e.message : String(e)}\n`);
      }
      process.stdout.write(formatFinalStats(final) + "\n");
      process.exit(0);
    })();
    return stopping;
  };

  if (cfg.admin) {
    try {
      admin = await startAdminServer({
        port: cfg.adminPort,
        host: cfg.adminHost,
        token: cfg.adminToken,
        source: serverSource(server, {
          pools: registry.pools,
          stopTimeoutMs: cfg.stopTimeoutMs,
          onStopped: () => shutdown("POST /admin/stop"),
          draining: () => draining,
          ...(bus ? { bus } : {}),
        }),
      });
    } catch (e) {
      await server.stop({ graceful: false });
      fail(`${e instanceof Error ? e.message : String(e)} (or pass --no-admin)`);
    }
  }

  onSignals(shutdown, () => stopping !== undefined);

  const listening = server.unix ? `unix:${server.unix}` : hostPort(server.hostname, server.port);
  const lines = [
    `myriad ${VERSION} serve: ${appLabel(cfg, protocol)} listening on ${listening}${cfg.tlsCert ? " with TLS" : ""}, pid ${process.pid}`,
    `  limits: max connections ${cfg.maxConnections > 0 ? cfg.maxConnections : `${defaultMaxConnections()} (ulimit -n minus a margin)`}` +
      `, per IP ${cfg.maxConnectionsPerIp || "unlimited"}` +
      limitsTail(cfg),
    ...optional(accessLine(cfg, cfg.host)),
    `  admin: ${admin ? `${admin.url} (healthz, readyz, stats, metrics${registry.pools.size > 0 ? `, pools ${[...registry.pools.keys()].join(", ")}` : ""}; ${stopNote(cfg)})` : "off"}`,
    `  stop: Ctrl-C or kill -TERM ${process.pid}`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

/**
 * With --drain-delay-ms: unready first (`unready()` makes /readyz answer 503) while still
 * serving, so that the balancer's health check takes this node out before it stops listening.
 */
async function drainBeforeStop(cfg: ServeConfig, why: string, unready: () => void): Promise<void> {
  if (cfg.drainDelayMs <= 0) return;
  unready();
  process.stdout.write(`serve: ${why}: unready, serving on for ${formatMs(cfg.drainDelayMs)} while balancers take this node out\n`);
  await Bun.sleep(cfg.drainDelayMs);
}

/**
 * Worker processes under src/cluster's supervisor, each listening on every host x port with
 * reusePort. The admin server reads the cluster (per-worker stats, summed), a SIGINT/SIGTERM
 * or POST /admin/stop stops every worker gracefully by pid and prints their summed stats.
 */
async function serveCluster(cfg: ServeConfig, spec: number | "auto", hosts: string[], ports: number[]): Promise<void> {
  const [{ runCluster, resolveWorkers, listenAddresses }, { readSystemLimits, connectionsPerProcess }] = await Promise.all([
    import("../cluster/index.ts"),
    import("../system/index.ts"),
  ]);
  const limits = readSystemLimits();
  const plan = resolveWorkers(spec, cfg.maxConnections, limits.nofileSoft, limits.cpus);
  const listen = listenAddresses(hosts, ports);
  // auto on one CPU: one worker on one address needs no supervisor.
  if (plan.workers === 1 && listen.length === 1) return serveSingle(cfg);
  const capPerProcess = connectionsPerProcess(limits.nofileSoft);
  // One worker sees every connection, so it needs no room for an uneven spread.
  const perWorker = plan.workers === 1 && cfg.maxConnections > 0 ? Math.min(cfg.maxConnections, capPerProcess) : plan.maxConnectionsPerWorker;
  if (cfg.maxConnections > plan.workers * capPerProcess) {
    const need = resolveWorkers("auto", cfg.maxConnections, limits.nofileSoft, limits.cpus).workers;
    process.stderr.write(
      `serve: warning: --max-connections ${cfg.maxConnections} is more than ${plan.workers} worker${plan.workers === 1 ? "" : "s"} can hold at ulimit -n ${limits.nofileSoft} ` +
        `(${capPerProcess} each); use --workers ${need} (or auto), or raise ulimit -n\n`,
    );
  }

  const app: WorkerApp =
    cfg.app === "kv"
      ? { kind: "kv", tickMs: cfg.tickMs, maxKeys: cfg.maxKeys > 0 ? cfg.maxKeys : undefined, ...kvAccessOf(cfg) }
      : cfg.app === "echo"
        ? { kind: "echo", protocol: cfg.protocol ?? "raw" }
        : cfg.app === "ws-echo" || cfg.app === "ws-chat"
        ? { kind: cfg.app }
        : // Absolute: the workers import it from their own working directory.
          { kind: "module", module: resolve(cfg.app) };
  const startedAtMs = Date.now();
  let stopping: Promise<void> | undefined;
  let cluster: Awaited<ReturnType<typeof runCluster>> | undefined;
  const onEvent = (e: ClusterEvent): void => {
    if (e.type === "warning") {
      process.stderr.write(`serve: ${e.message}\n`);
      return;
    }
    // Lifecycle after the start (the start itself is the startup block).
    if (!cluster || stopping) return;
    if (e.type === "exit" && !e.expected)
      process.stderr.write(`serve: worker ${e.worker} (pid ${e.pid}) died (${e.signal ?? `exit code ${e.exitCode}`})\n`);
    else if (e.type === "restart") process.stdout.write(`serve: worker ${e.worker}: restart ${e.restarts} in ${e.delayMs}ms\n`);
    else if (e.type === "ready") process.stdout.write(`serve: worker ${e.worker} ready, pid ${e.pid}\n`);
    else if (e.type === "fatal") process.stderr.write(`serve: worker ${e.worker} (pid ${e.pid}): ${e.message}\n`);
  };
  try {
    cluster = await runCluster({
      workers: plan.workers,
      maxConnectionsPerWorker: perWorker,
      listen,
      app,
      server: {
        idleTimeoutMs: cfg.idleTimeoutMs,
        handshakeTimeoutMs: cfg.handshakeTimeoutMs,
        maxFrameBytes: cfg.maxFrameBytes,
        maxWriteBufferBytes: cfg.maxWriteBufferBytes,
        writeStallTimeoutMs: cfg.writeStallTimeoutMs,
        tickMs: cfg.tickMs,
        measureLatency: cfg.admin,
        // A module app that names no framing gets --protocol's (echo's default, raw).
        protocol: cfg.app === "kv" || cfg.app === "ws-echo" || cfg.app === "ws-chat" ? undefined : (cfg.protocol ?? "raw"),
        maxConnectionsPerIp: cfg.maxConnectionsPerIp > 0 ? cfg.maxConnectionsPerIp : undefined,
        proxyProtocol: cfg.proxyProtocol || undefined,
        proxyProtocolFrom: cfg.proxyFrom,
        busUrl: cfg.bus,
        // Absolute: a worker must find the files whatever its working directory.
        tls: cfg.tlsCert !== undefined && cfg.tlsKey !== undefined ? { certPath: resolve(cfg.tlsCert), keyPath: resolve(cfg.tlsKey) } : undefined,
      },
      stopTimeoutMs: cfg.stopTimeoutMs,
      onEvent,
    });
  } catch (e) {
    // The worker's reason (port in use, bad TLS file, start timeout) already says what to do.
    fail(`cannot start ${plan.workers} worker${plan.workers === 1 ? "" : "s"} on ${formatListen(listen)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const c = cluster;

  let admin: AdminServer | undefined;
  let draining = false;
  const shutdown = (why: string): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      await drainBeforeStop(cfg, why, () => (draining = true));
      process.stdout.write(
        `serve: ${why}: stopping ${plan.workers} worker${plan.workers === 1 ? "" : "s"} gracefully (up to ${formatMs(cfg.stopTimeoutMs)}; signal again to exit at once)\n`,
      );
      // The workers' rss is gone once they exit: keep their last reported sum.
      const rssBytes = c.totals().rssBytes;
      await c.stop({ graceful: true, timeoutMs: cfg.stopTimeoutMs });
      await admin?.stop().catch(() => {});
      const final = c.totals();
      final.rssBytes = rssBytes;
      final.uptimeMs = Date.now() - startedAtMs;
      const restarts = c.workers.reduce((n, w) => n + w.restarts, 0);
      process.stdout.write(formatFinalStats(final, { count: plan.workers, restarts }) + "\n");
      process.exit(0);
    })();
    return stopping;
  };

  if (cfg.admin) {
    // Fresh figures on every request (one IPC round trip per worker), not the last periodic report.
    const source: AdminStatsSource = {
      snapshot: () => c.refreshStats(1000),
      isAccepting: () => c.isAccepting() && !draining,
      // Each worker is a node on the bus: down when any worker's bus is (as of its last report).
      ...(cfg.bus !== undefined ? { busUp: () => c.snapshot().bus?.up ?? false } : {}),
      stop: () => shutdown("POST /admin/stop"),
    };
    try {
      admin = await startAdminServer({ port: cfg.adminPort, host: cfg.adminHost, token: cfg.adminToken, source });
    } catch (e) {
      await c.stop({ graceful: false, timeoutMs: 0 });
      fail(`${e instanceof Error ? e.message : String(e)} (or pass --no-admin)`);
    }
  }

  onSignals(shutdown, () => stopping !== undefined, () => c.kill());

  const total = perWorker * plan.workers;
  const lines = [
    `myriad ${VERSION} serve: ${appLabel(cfg, cfg.app === "echo" ? (cfg.protocol ?? "raw") : cfg.app.startsWith("ws-") ? "websocket" : undefined)} on ${plan.workers} worker${plan.workers === 1 ? "" : "s"}` +
      `${spec === "auto" ? " (auto)" : ""} listening on ${formatListen(c.addresses)}${cfg.tlsCert ? " with TLS" : ""}, supervisor pid ${process.pid}`,
    `  workers: ${c.workers.map((w) => `worker-${w.index} pid ${w.pid}`).join(", ")} (reusePort; a worker that dies is restarted with backoff)`,
    `  limits: max connections ${cfg.maxConnections > 0 ? `${cfg.maxConnections} total` : `${total} total (ulimit -n ${limits.nofileSoft} minus a margin, per worker)`}` +
      `, ${perWorker} per worker${plan.workers > 1 && cfg.maxConnections > 0 ? " (its share + 10% + 16 for the kernel's uneven spread)" : ""}` +
      `, per IP ${cfg.maxConnectionsPerIp ? `${cfg.maxConnectionsPerIp} per worker` : "unlimited"}` +
      limitsTail(cfg),
    ...optional(accessLine(cfg, hosts)),
    `  admin: ${admin ? `${admin.url} (healthz, readyz, stats per worker and summed, metrics with a worker label; ${stopNote(cfg)})` : "off"}`,
    `  stop: Ctrl-C or kill -TERM ${process.pid} (stops every worker)`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

if (import.meta.main) await main();
