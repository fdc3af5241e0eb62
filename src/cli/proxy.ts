/**
 * `bun run proxy`: the RESP proxy (twemproxy's job) on myriad's reactor and pool. It reads a
 * nutcracker configuration file as it stands (`--config nutcracker.yml`), or a quick form
 * (`--listen 127.0.0.1:22121 --servers 127.0.0.1:6379,127.0.0.1:6380`); `--check` validates
 * and exits, as `nutcracker -t` does. The admin server (on by default, --admin-port) shows
 * every pool and server. `--workers N` runs N proxy processes on the same addresses
 * (reusePort) under src/cluster's supervisor; with `--share-upstream` they send every
 * request to one hub process over a unix socket, and only the hub connects to the servers
 * (src/proxy/share-upstream.ts).
 *
 * Exit codes: 0 after a clean stop or a valid --check, 1 when it cannot start, 2 for bad
 * flags or an invalid configuration (nutcracker -t says 1 for the latter: both are non-zero).
 */
import { resolve } from "node:path";
import { isLoopbackHost, startAdminServer, type AdminServer, type AdminSnapshot, type AdminStatsSource } from "../admin/index.ts";
import type { ClusterEvent } from "../cluster/index.ts";
import { defineCommand } from "../config/index.ts";
import { DISTRIBUTION_NAMES, HASH_NAMES, createProxy, frontConfigOf, hubConfigOf, readProxyConfig, quickProxyConfig, ProxyConfigError, type Proxy, type ProxyConfig, type ProxyOptions } from "../proxy/index.ts";
import { sumServerStats } from "../reactor/index.ts";
import { VERSION } from "../version.ts";
import { makeHubDir, removeHubDir, removeStaleHubDirs } from "./hub-dir.ts";

const MIB = 1024 * 1024;

/** The flags of `bun run proxy` (environment: MYRIAD_PROXY_<FLAG>, and MYRIAD_ADMIN_TOKEN). */
const proxyFlags = {
  config: { type: "string", env: "MYRIAD_PROXY_CONFIG", placeholder: "<nutcracker.yml>", minLength: 1, help: "a twemproxy (nutcracker 0.5.0) configuration file: its pools, as they stand" },
  listen: { type: "string", env: "MYRIAD_PROXY_LISTEN", placeholder: "<host:port>", minLength: 1, help: "quick form, without a file: one pool listening here (with --servers)" },
  servers: { type: "list", env: "MYRIAD_PROXY_SERVERS", placeholder: "<host:port[:weight],...>", help: "quick form: the pool's redis servers, comma-separated" },
  hash: { type: "enum", env: "MYRIAD_PROXY_HASH", choices: HASH_NAMES, help: "quick form: the key hash (default fnv1a_64)" },
  distribution: { type: "enum", env: "MYRIAD_PROXY_DISTRIBUTION", choices: DISTRIBUTION_NAMES, help: "quick form: the distribution (default ketama)" },
  hashTag: { type: "string", env: "MYRIAD_PROXY_HASH_TAG", placeholder: "<two chars>", help: 'quick form: hash_tag, e.g. "{}"' },
  timeout: { type: "duration-ms", env: "MYRIAD_PROXY_TIMEOUT", min: 1, help: "quick form: the bound on every request (default 10s)" },
  serverConnections: { type: "int", env: "MYRIAD_PROXY_SERVER_CONNECTIONS", min: 1, max: 1024, help: "quick form: pipelined connections per server (default 1)" },
  autoEjectHosts: { type: "bool", env: "MYRIAD_PROXY_AUTO_EJECT_HOSTS", default: false, help: "quick form: take a failing server off the continuum (server_failure_limit 2, server_retry_timeout 30s)" },
  check: { type: "bool", env: "MYRIAD_PROXY_CHECK", default: false, help: "validate the configuration, print its pools and exit (as nutcracker -t)" },
  workers: { type: "int", env: "MYRIAD_PROXY_WORKERS", default: 1, min: 1, max: 256, help: "proxy processes sharing the listen addresses (reusePort); each keeps its own server_connections per server, unless --share-upstream" },
  shareUpstream: {
    type: "bool",
    env: "MYRIAD_PROXY_SHARE_UPSTREAM",
    default: false,
    help: "with --workers: the workers send every request over a unix socket to one hub process holding server_connections per server for all of them (one more hop per request)",
  },
  maxFrameBytes: { type: "int", env: "MYRIAD_PROXY_MAX_FRAME_BYTES", default: 64 * MIB, min: 1024, max: 512 * MIB, help: "largest request accepted from a client; a bigger one closes it" },
  maxWriteBufferBytes: { type: "int", env: "MYRIAD_PROXY_MAX_WRITE_BUFFER_BYTES", default: 4 * MIB, min: 1024, help: "a client's write queue over this pauses its reading (a client that stops reading)" },
  writeStallTimeoutMs: { type: "duration-ms", env: "MYRIAD_PROXY_WRITE_STALL_TIMEOUT_MS", default: 30_000, help: "close a client that stays over its write mark this long (0: never)" },
  maxClientInFlight: {
    type: "int",
    env: "MYRIAD_PROXY_MAX_CLIENT_IN_FLIGHT",
    default: 4096,
    min: 1,
    help: "a client with more requests than this sent upstream and not yet answered stops being read until they fall to half (backpressure)",
  },
  maxClientInFlightBytes: { type: "int", env: "MYRIAD_PROXY_MAX_CLIENT_IN_FLIGHT_BYTES", default: MIB, min: 1024, help: "the same bound in request bytes" },
  maxDedicatedPerServer: { type: "int", env: "MYRIAD_PROXY_MAX_DEDICATED_PER_SERVER", default: 256, min: 1, help: "most dedicated connections per server at once (blocking commands, transactions)" },
  admin: { type: "bool", env: "MYRIAD_PROXY_ADMIN", default: true, help: "start the admin server (--no-admin: do not)" },
  adminHost: { type: "string", env: "MYRIAD_PROXY_ADMIN_HOST", default: "127.0.0.1", minLength: 1, help: "admin server address (non-loopback needs --admin-token)" },
  adminPort: { type: "int", env: "MYRIAD_PROXY_ADMIN_PORT", default: 9190, min: 0, max: 65535, help: "admin server port: /stats /metrics per pool and server, dashboard" },
  adminToken: { type: "string", env: "MYRIAD_ADMIN_TOKEN", help: "bearer token the admin server requires" },
  stopTimeoutMs: { type: "duration-ms", env: "MYRIAD_PROXY_STOP_TIMEOUT_MS", default: 10_000, help: "on SIGINT/SIGTERM, how long clients get to receive their replies before they are closed" },
} as const;

const proxyCommand = defineCommand({
  name: "proxy",
  summary:
    "A RESP proxy in the manner of twemproxy: many clients in, a few pipelined connections per redis server out, keys placed " +
    "exactly as nutcracker 0.5.0 places them. Stops gracefully on SIGINT/SIGTERM.",
  flags: proxyFlags,
  epilog: [
    "Examples:",
    "  bun run proxy --config nutcracker.yml                 # every pool of the file",
    "  bun run proxy --check --config nutcracker.yml         # validate and exit (as nutcracker -t)",
    "  bun run proxy --listen 127.0.0.1:22121 --servers 127.0.0.1:6379,127.0.0.1:6380",
    "  bun run proxy --config nutcracker.yml --workers 2 --admin-port 9190",
    "  bun run proxy --config nutcracker.yml --workers 6 --share-upstream  # 6 processes, one hub's upstream connections",
    "  redis-cli -p 22121 set greeting hello",
    "",
    "Keys of the file: listen, hash, hash_tag, distribution, timeout (default 10s: nutcracker waits forever), client_connections,",
    "redis (must be true), redis_auth, redis_db, preconnect, auto_eject_hosts, server_connections, server_retry_timeout,",
    "server_failure_limit, servers. Any other key (backlog, tcpkeepalive, a typo) is an error naming it and its line.",
  ].join("\n"),
  validate(v) {
    const quick = v.listen !== undefined || v.servers !== undefined;
    if (v.config !== undefined && quick) return "give either --config <file> or --listen with --servers, not both";
    if (v.config === undefined && !quick) return "give --config <nutcracker.yml>, or --listen <host:port> with --servers <host:port,...>";
    if (v.shareUpstream && v.workers < 2) return "--share-upstream goes with --workers N (N >= 2): with one process its connections are shared already";
    if (quick && (v.listen === undefined || v.servers === undefined || v.servers.length === 0)) return "--listen and --servers go together";
    if (v.config !== undefined) {
      for (const f of ["hash", "distribution", "hashTag", "timeout", "serverConnections"] as const) {
        if (v[f] !== undefined) return `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is part of the quick form; with --config set it in the file`;
      }
    }
    return undefined;
  },
});

type ProxyFlags = ReturnType<typeof proxyCommand.parseOrExit>["values"];

function fail(message: string, code = 1): never {
  process.stderr.write(`proxy: ${message}\n`);
  process.exit(code);
}

/** The configuration the flags name; exits 2 with the error (file, line and key) when it is invalid. */
function configOf(f: ProxyFlags): ProxyConfig {
  try {
    if (f.config !== undefined) return readProxyConfig(f.config);
    const extra: Record<string, string | number | boolean> = {};
    if (f.hash !== undefined) extra.hash = f.hash;
    if (f.distribution !== undefined) extra.distribution = f.distribution;
    if (f.hashTag !== undefined) extra.hash_tag = f.hashTag;
    if (f.timeout !== undefined) extra.timeout = f.timeout;
    if (f.serverConnections !== undefined) extra.server_connections = f.serverConnections;
    if (f.autoEjectHosts) extra.auto_eject_hosts = true;
    return quickProxyConfig(f.listen!, f.servers!, extra);
  } catch (e) {
    if (e instanceof ProxyConfigError) fail(`${f.config === undefined ? "--listen/--servers: " : ""}${e.message}`, 2);
    throw e;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** One line per pool: where it listens, its servers and how keys are placed. */
function describe(cfg: ProxyConfig, ports?: number[]): string[] {
  return cfg.pools.map((p, i) => {
    const listen = "path" in p.listen ? `unix:${p.listen.path}` : `${p.listen.host}:${ports?.[i] ?? p.listen.port}`;
    const servers = p.servers.map((s) => (s.givenName !== "" ? `${s.address}:${s.weight} ${s.givenName}` : `${s.address}:${s.weight}`)).join(", ");
    return (
      `  pool ${p.name}: ${listen} -> ${p.servers.length} server${p.servers.length === 1 ? "" : "s"} (${servers}); ${p.distribution}/${p.hash}` +
      `${p.hashTag !== "" ? ` hash_tag ${p.hashTag}` : ""}, server_connections ${p.serverConnections}${p.preconnect ? " (preconnect)" : ""}, timeout ${formatMs(p.timeoutMs)}` +
      `${p.autoEjectHosts ? `, auto_eject_hosts after ${p.serverFailureLimit} failures for ${formatMs(p.serverRetryTimeoutMs)}` : ""}` +
      `${p.redisAuth !== "" ? ", redis_auth" : ""}${p.redisDb !== 0 ? `, redis_db ${p.redisDb}` : ""}`
    );
  });
}

function proxyOptions(f: ProxyFlags): ProxyOptions {
  return {
    maxFrameBytes: f.maxFrameBytes,
    maxWriteBufferBytes: f.maxWriteBufferBytes,
    writeStallTimeoutMs: f.writeStallTimeoutMs,
    maxDedicatedPerServer: f.maxDedicatedPerServer,
    maxClientInFlightRequests: f.maxClientInFlight,
    maxClientInFlightBytes: f.maxClientInFlightBytes,
    measureLatency: f.admin,
  };
}

/** The admin server's view of a proxy in this process: one worker, its upstream pools, its proxy stats. */
function proxySource(proxy: Proxy, stop: () => Promise<void>): AdminStatsSource {
  return {
    snapshot(): AdminSnapshot {
      const stats = proxy.stats();
      return {
        workers: [{ worker: "0", pid: process.pid, stats: sumServerStats(proxy.serverStats()) }],
        pools: stats.pools.flatMap((p) => p.servers.map((s) => ({ worker: "0", name: `${p.name}/${s.address}`, stats: s.pool }))),
        proxy: [{ worker: "0", pools: stats.pools }],
      };
    },
    isAccepting: () => proxy.accepting,
    stop,
  };
}

function logEvent(e: { type: "eject" | "return"; pool: string; server: string; retryMs?: number }): void {
  if (e.type === "eject") process.stderr.write(`proxy: pool ${e.pool}: server ${e.server} ejected after failures; retried in ${formatMs(e.retryMs ?? 0)}\n`);
  else process.stdout.write(`proxy: pool ${e.pool}: server ${e.server} back on the continuum\n`);
}

/** SIGINT/SIGTERM: the first stops gracefully, a second exits at once. */
function onSignals(shutdown: (why: string) => Promise<void>, isStopping: () => boolean): void {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (isStopping()) {
        process.stdout.write(`proxy: ${sig} again: exiting now\n`);
        process.exit(130);
      }
      void shutdown(sig);
    });
  }
}

/**
 * One graceful stop for a running proxy, whether SIGINT/SIGTERM or POST /admin/stop asks for
 * it, and the admin server that can ask: the same for one process, workers and the hub.
 */
class Lifecycle {
  stopping: Promise<void> | undefined;
  admin: AdminServer | undefined;

  /**
   * `what`: what the stop line names ("", "3 workers "); `stopAll`: stops everything, within
   * --stop-timeout-ms when graceful; `stoppedNote`: the tail of the last line, read after it.
   */
  constructor(
    private readonly f: ProxyFlags,
    private readonly what: string,
    private readonly stopAll: (graceful: boolean) => Promise<void>,
    private readonly stoppedNote: () => string = () => "",
  ) {}

  /** Stops once (later calls get the same promise) and exits 0. */
  readonly shutdown = (why: string): Promise<void> => {
    this.stopping ??= (async () => {
      process.stdout.write(`proxy: ${why}: stopping ${this.what}gracefully (up to ${formatMs(this.f.stopTimeoutMs)})\n`);
      await this.stopAll(true);
      await this.admin?.stop().catch(() => {});
      process.stdout.write(`proxy: stopped${this.stoppedNote()}\n`);
      process.exit(0);
    })();
    return this.stopping;
  };

  /** Starts the admin server (unless --no-admin; exits 1, everything stopped, if it cannot) and the signal handlers. */
  async serve(source: (stop: () => Promise<void>) => AdminStatsSource): Promise<void> {
    const f = this.f;
    if (f.admin) {
      try {
        this.admin = await startAdminServer({ port: f.adminPort, host: f.adminHost, token: f.adminToken, source: source(() => this.shutdown("POST /admin/stop")) });
      } catch (e) {
        await this.stopAll(false);
        fail(`${e instanceof Error ? e.message : String(e)} (or pass --no-admin)`);
      }
    }
    onSignals(this.shutdown, () => this.stopping !== undefined);
  }
}

async function runSingle(f: ProxyFlags, cfg: ProxyConfig): Promise<void> {
  let proxy: Proxy;
  try {
    proxy = await createProxy(cfg, { ...proxyOptions(f), onEvent: logEvent });
  } catch (e) {
    fail(`cannot start: ${e instanceof Error ? e.message : String(e)}`);
  }
  const life = new Lifecycle(
    f,
    "",
    (graceful) => proxy.stop(graceful ? { graceful: true, timeoutMs: f.stopTimeoutMs } : { graceful: false }),
    () => `; ${proxy.stats().pools.reduce((n, p) => n + p.requests, 0)} requests served`,
  );
  await life.serve((stop) => proxySource(proxy, stop));
  const admin = life.admin;
  process.stdout.write(
    [
      `myriad ${VERSION} proxy: ${cfg.pools.length} pool${cfg.pools.length === 1 ? "" : "s"}, pid ${process.pid}`,
      ...describe(cfg, proxy.pools.map((p) => p.port)),
      `  admin: ${admin ? `${admin.url} (stats, metrics, dashboard)` : "off"}`,
      `  stop: Ctrl-C or kill -TERM ${process.pid}`,
    ].join("\n") + "\n",
  );
}

/** Exits 2 when a pool cannot be shared by worker processes (a unix socket, port 0). */
function checkWorkerListen(f: ProxyFlags, cfg: ProxyConfig): void {
  for (const p of cfg.pools) {
    if ("path" in p.listen) fail(`--workers ${f.workers}: pool ${p.name} listens on a unix socket, which workers cannot share (no reusePort); use --workers 1`, 2);
    if (p.listen.port === 0) fail(`--workers ${f.workers}: pool ${p.name} listens on port 0; workers must share a fixed port`, 2);
  }
}

/** N proxy processes on the same addresses (reusePort), supervised; the admin server sums them. */
async function runWorkers(f: ProxyFlags, cfg: ProxyConfig): Promise<void> {
  checkWorkerListen(f, cfg);
  const { runCluster } = await import("../cluster/index.ts");
  const life = new Lifecycle(f, `${f.workers} workers `, (graceful) => cluster.stop(graceful ? { graceful: true, timeoutMs: f.stopTimeoutMs } : { graceful: false }).then(() => {}));
  const onEvent = (e: ClusterEvent): void => {
    if (e.type === "warning") process.stderr.write(`proxy: ${e.message}\n`);
    else if (e.type === "exit" && !e.expected && life.stopping === undefined) process.stderr.write(`proxy: worker ${e.worker} (pid ${e.pid}) died (${e.signal ?? `exit code ${e.exitCode}`})\n`);
    else if (e.type === "fatal") process.stderr.write(`proxy: worker ${e.worker}: ${e.message}\n`);
  };
  const first = cfg.pools[0]!.listen as { host: string; port: number };
  let cluster: Awaited<ReturnType<typeof runCluster>>;
  try {
    cluster = await runCluster({
      workers: f.workers,
      // The supervisor's own listen list names the first pool; each worker listens on every pool of the configuration.
      listen: [{ hostname: first.host, port: first.port }],
      workerEntry: resolve(import.meta.dir, "proxy-worker.ts"),
      env: { MYRIAD_PROXY_WORKER_CONFIG: JSON.stringify(cfg), MYRIAD_PROXY_WORKER_OPTIONS: JSON.stringify(proxyOptions(f)) },
      stopTimeoutMs: f.stopTimeoutMs,
      onEvent,
    });
  } catch (e) {
    fail(`cannot start ${f.workers} workers: ${e instanceof Error ? e.message : String(e)}`);
  }
  await life.serve((stop) => ({ snapshot: () => cluster.refreshStats(), isAccepting: () => cluster.isAccepting(), stop }));
  const admin = life.admin;
  const upstream = cfg.pools.reduce((n, p) => n + p.servers.length * p.serverConnections, 0);
  process.stdout.write(
    [
      `myriad ${VERSION} proxy: ${cfg.pools.length} pool${cfg.pools.length === 1 ? "" : "s"}, ${f.workers} workers (pids ${cluster.pids().join(", ")}), supervisor pid ${process.pid}`,
      ...describe(cfg),
      `  upstream connections: ${f.workers} workers x ${upstream} = ${f.workers * upstream} shared (plus dedicated ones while in use)`,
      `  admin: ${admin ? `${admin.url} (stats, metrics, dashboard; every worker)` : "off"}`,
      `  stop: Ctrl-C or kill -TERM ${process.pid}`,
    ].join("\n") + "\n",
  );
}

/** Renames a cluster's worker labels ("0") in a snapshot, so the hub's stats do not merge with front 0's. */
function relabel(snap: AdminSnapshot, worker: string): AdminSnapshot {
  return {
    workers: snap.workers.map((w) => ({ ...w, worker })),
    pools: snap.pools.map((p) => ({ ...p, worker })),
    proxy: (snap.proxy ?? []).map((g) => ({ ...g, worker })),
  };
}

/**
 * --share-upstream: one hub process (the configuration on unix sockets in a private 0700
 * directory) and N front workers whose only server is the hub; both supervised by
 * src/cluster (a hub that dies is restarted: meanwhile the fronts answer errors). The admin
 * server shows the fronts (client connections) and the hub (worker "hub": its servers).
 */
async function runShared(f: ProxyFlags, cfg: ProxyConfig): Promise<void> {
  checkWorkerListen(f, cfg);
  const { runCluster } = await import("../cluster/index.ts");
  // Directories of runs killed before they could remove theirs would pile up in TMPDIR (hub-dir.ts).
  await removeStaleHubDirs();
  const dir = makeHubDir();
  const removeDir = () => removeHubDir(dir);
  let hub: Awaited<ReturnType<typeof runCluster>>;
  let fronts: Awaited<ReturnType<typeof runCluster>>;
  // Fronts first: their clients' requests in flight still go through the hub.
  const life = new Lifecycle(f, `${f.workers} workers and the hub `, async (graceful) => {
    const how = graceful ? { graceful: true, timeoutMs: f.stopTimeoutMs } : { graceful: false };
    await fronts.stop(how);
    await hub.stop(how);
    removeDir();
  });
  const events = (who: string) => (e: ClusterEvent): void => {
    if (e.type === "warning") process.stderr.write(`proxy: ${e.message}\n`);
    else if (e.type === "exit" && !e.expected && life.stopping === undefined) {
      process.stderr.write(`proxy: ${who === "hub" ? "hub" : `worker ${e.worker}`} (pid ${e.pid}) died (${e.signal ?? `exit code ${e.exitCode}`})${who === "hub" ? "; clients get errors until it is back" : ""}\n`);
    } else if (e.type === "restart" && who === "hub") process.stderr.write(`proxy: restarting the hub in ${e.delayMs} ms\n`);
    else if (e.type === "ready" && who === "hub" && life.stopping === undefined) process.stdout.write(`proxy: hub ready (pid ${e.pid})\n`);
    else if (e.type === "fatal") process.stderr.write(`proxy: ${who === "hub" ? "hub" : `worker ${e.worker}`}: ${e.message}\n`);
  };
  const first = cfg.pools[0]!.listen as { host: string; port: number };
  const options = JSON.stringify(proxyOptions(f));
  try {
    hub = await runCluster({
      workers: 1,
      // The hub listens on its unix sockets (its configuration says where); this list only names the proxy.
      listen: [{ hostname: first.host, port: first.port }],
      workerEntry: resolve(import.meta.dir, "proxy-worker.ts"),
      // MYRIAD_PROXY_HUB_DIR: the hub removes it if this process dies without removing it.
      env: { MYRIAD_PROXY_WORKER_CONFIG: JSON.stringify(hubConfigOf(cfg, dir)), MYRIAD_PROXY_WORKER_OPTIONS: options, MYRIAD_PROXY_HUB_DIR: dir },
      stopTimeoutMs: f.stopTimeoutMs,
      onEvent: events("hub"),
    });
  } catch (e) {
    removeDir();
    fail(`cannot start the hub: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    fronts = await runCluster({
      workers: f.workers,
      listen: [{ hostname: first.host, port: first.port }],
      workerEntry: resolve(import.meta.dir, "proxy-worker.ts"),
      env: { MYRIAD_PROXY_WORKER_CONFIG: JSON.stringify(frontConfigOf(cfg, dir)), MYRIAD_PROXY_WORKER_OPTIONS: options },
      stopTimeoutMs: f.stopTimeoutMs,
      onEvent: events("front"),
    });
  } catch (e) {
    await hub.stop({ graceful: false });
    removeDir();
    fail(`cannot start ${f.workers} workers: ${e instanceof Error ? e.message : String(e)}`);
  }
  await life.serve((stop) => ({
    snapshot: async () => {
      const [a, b] = await Promise.all([fronts.refreshStats(), hub.refreshStats()]);
      const h = relabel(b, "hub");
      return { workers: [...a.workers, ...h.workers], pools: [...a.pools, ...h.pools], proxy: [...(a.proxy ?? []), ...(h.proxy ?? [])] };
    },
    isAccepting: () => fronts.isAccepting(),
    stop,
  }));
  const admin = life.admin;
  const upstream = cfg.pools.reduce((n, p) => n + p.servers.length * p.serverConnections, 0);
  process.stdout.write(
    [
      `myriad ${VERSION} proxy: ${cfg.pools.length} pool${cfg.pools.length === 1 ? "" : "s"}, ${f.workers} workers (pids ${fronts.pids().join(", ")}) sharing hub pid ${hub.pids().join(", ")}, supervisor pid ${process.pid}`,
      ...describe(cfg),
      `  upstream connections: ${upstream} shared by every worker, through the hub's socket${cfg.pools.length === 1 ? "" : "s"} in ${dir} (plus dedicated ones while in use)`,
      `  admin: ${admin ? `${admin.url} (stats, metrics, dashboard; every worker and the hub)` : "off"}`,
      `  stop: Ctrl-C or kill -TERM ${process.pid}`,
    ].join("\n") + "\n",
  );
}

async function main(): Promise<void> {
  const { values: f } = proxyCommand.parseOrExit(process.argv.slice(2));
  const cfg = configOf(f);
  if (f.check) {
    process.stdout.write(
      [`proxy: configuration ${f.config !== undefined ? `file '${f.config}'` : "--listen/--servers"} syntax is ok`, ...describe(cfg)].join("\n") + "\n",
    );
    process.exit(0);
  }
  if (f.admin && (f.adminToken ?? "") === "" && !isLoopbackHost(f.adminHost)) {
    fail(`--admin-host ${f.adminHost} is reachable from other machines and needs --admin-token <secret> (or MYRIAD_ADMIN_TOKEN); or keep it on loopback, or pass --no-admin`, 2);
  }
  if (f.shareUpstream) await runShared(f, cfg);
  else if (f.workers > 1) await runWorkers(f, cfg);
  else await runSingle(f, cfg);
}

await main();
