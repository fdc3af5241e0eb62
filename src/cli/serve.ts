/**
 * `bun run serve`: the RESP key-value store (or an echo server) on myriad's reactor, with
 * the admin server beside it. Settings: flags > MYRIAD_* > --config file > defaults (see
 * `bun run serve --help`). SIGINT / SIGTERM stop it gracefully (a second signal exits at
 * once) and it prints the final stats; exit 0 after a clean stop, 1 when it cannot start,
 * 2 for bad settings.
 */
import { existsSync } from "node:fs";
import { startAdminServer, serverSource, type AdminServer } from "../admin/index.ts";
import { createEchoApp, createKvApp, type KvApp } from "../apps/index.ts";
import { serveCommand, type ServeConfig } from "../config/index.ts";
import { VERSION } from "../index.ts";
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

/** The server options for a validated config (TLS files read lazily by Bun). */
export function serverOptionsOf(cfg: ServeConfig, handler: ServerOptions["handler"], protocol: ServerOptions["protocol"]): ServerOptions {
  const opts: ServerOptions = {
    protocol,
    handler,
    maxFrameBytes: cfg.maxFrameBytes,
    maxWriteBufferBytes: cfg.maxWriteBufferBytes,
    writeStallTimeoutMs: cfg.writeStallTimeoutMs,
    idleTimeoutMs: cfg.idleTimeoutMs,
    handshakeTimeoutMs: cfg.handshakeTimeoutMs,
    tickMs: cfg.tickMs,
  };
  if (cfg.unix !== undefined) opts.unix = cfg.unix;
  else {
    opts.port = cfg.port;
    opts.hostname = cfg.host;
  }
  if (cfg.maxConnections > 0) opts.maxConnections = cfg.maxConnections;
  if (cfg.maxConnectionsPerIp > 0) opts.maxConnectionsPerIp = cfg.maxConnectionsPerIp;
  if (cfg.tlsCert !== undefined && cfg.tlsKey !== undefined) opts.tls = { cert: Bun.file(cfg.tlsCert), key: Bun.file(cfg.tlsKey) };
  return opts;
}

/** The one-line summary of final stats printed on stop. */
export function formatFinalStats(s: ServerStats): string {
  const closed = Object.entries(s.closed)
    .filter(([, n]) => n > 0)
    .map(([why, n]) => `${why} ${n}`)
    .join(", ");
  return (
    `serve: stopped after ${(s.uptimeMs / 1000).toFixed(1)}s; connections: accepted ${s.accepted}, rejected ${s.rejected}, peak ${s.peakConnections}, ` +
    `closed ${closed || "none"}; frames in ${s.framesIn}, out ${s.framesOut}; bytes in ${s.bytesIn}, out ${s.bytesOut}; ` +
    `rss ${formatBytes(s.rssBytes)}`
  );
}

async function main(): Promise<void> {
  const { values: cfg } = serveCommand.parseOrExit(process.argv.slice(2));
  for (const [flag, path] of [
    ["--tls-cert", cfg.tlsCert],
    ["--tls-key", cfg.tlsKey],
  ] as const) {
    if (path !== undefined && !existsSync(path)) fail(`${flag} ${path}: no such file (give a PEM file)`, 2);
  }

  let kv: KvApp | undefined;
  let handler: ServerOptions["handler"];
  let protocol: NonNullable<ServerOptions["protocol"]>;
  if (cfg.app === "kv") {
    kv = createKvApp({ tickMs: cfg.tickMs, maxKeys: cfg.maxKeys > 0 ? cfg.maxKeys : undefined });
    handler = kv.handler;
    protocol = "resp";
  } else {
    const echo = createEchoApp({ protocol: cfg.protocol ?? "raw" });
    handler = echo.handler;
    protocol = echo.protocol;
  }

  let server: Server;
  const where = cfg.unix !== undefined ? `unix:${cfg.unix}` : `${cfg.host}:${cfg.port}`;
  try {
    server = await createServer(serverOptionsOf(cfg, handler, protocol));
  } catch (e) {
    fail(`cannot listen on ${where}: ${e instanceof Error ? e.message : String(e)} (choose another --port / --host, or stop what holds it)`);
  }

  let stopping: Promise<void> | undefined;
  let admin: AdminServer | undefined;
  const shutdown = (why: string): Promise<void> => {
    if (stopping) return stopping;
    process.stdout.write(`serve: ${why}: stopping gracefully (up to ${formatMs(cfg.stopTimeoutMs)}; signal again to exit at once)\n`);
    stopping = (async () => {
      const final = await server.stop({ graceful: true, timeoutMs: cfg.stopTimeoutMs });
      await admin?.stop().catch(() => {});
      kv?.close();
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
          stopTimeoutMs: cfg.stopTimeoutMs,
          onStopped: () => shutdown("POST /admin/stop"),
        }),
      });
    } catch (e) {
      await server.stop({ graceful: false });
      fail(`${e instanceof Error ? e.message : String(e)} (or pass --no-admin)`);
    }
  }

  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (stopping) {
        process.stdout.write(`serve: ${sig} again: exiting now\n`);
        process.exit(130);
      }
      void shutdown(sig);
    });
  }

  const listening = server.unix ? `unix:${server.unix}` : `${server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname}:${server.port}`;
  const lines = [
    `myriad ${VERSION} serve: ${cfg.app === "kv" ? "kv (resp)" : `echo (${protocol})`} listening on ${listening}${cfg.tlsCert ? " with TLS" : ""}, pid ${process.pid}`,
    `  limits: max connections ${cfg.maxConnections > 0 ? cfg.maxConnections : `${defaultMaxConnections()} (ulimit -n minus a margin)`}` +
      `, per IP ${cfg.maxConnectionsPerIp || "unlimited"}, idle timeout ${formatMs(cfg.idleTimeoutMs)}` +
      `, handshake timeout ${formatMs(cfg.handshakeTimeoutMs)}, max frame ${formatBytes(cfg.maxFrameBytes)}` +
      `, write buffer ${formatBytes(cfg.maxWriteBufferBytes)} (stall ${formatMs(cfg.writeStallTimeoutMs)}), tick ${cfg.tickMs}ms` +
      (cfg.app === "kv" ? `, max keys ${cfg.maxKeys || "unlimited"}` : ""),
    `  admin: ${admin ? `${admin.url} (healthz, readyz, stats, metrics; POST /admin/stop)` : "off"}`,
    `  stop: Ctrl-C or kill -TERM ${process.pid}`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

if (import.meta.main) await main();
