/**
 * createProxy: every pool of a twemproxy configuration listening on myriad's reactor, its
 * clients' requests multiplexed over `server_connections` pipelined connections per server.
 *
 *   const proxy = await createProxy(readProxyConfig("nutcracker.yml"));
 *   proxy.pools[0].port;       // where the first pool listens (port 0 in the file: the OS's pick)
 *   proxy.stats();             // per pool and per server
 *   await proxy.stop();        // graceful: clients get their replies, then close
 */
import { chmodSync, existsSync, rmSync } from "node:fs";
import { MyriadError } from "../errors.ts";
import { createServer, type Server, type ServerStats } from "../reactor/index.ts";
import { isProxyConfig, proxyConfigFromObject, type ProxyConfig, type TwemproxyConfigObject } from "./config.ts";
import { PoolProxy, type PoolProxyStats } from "./pool-proxy.ts";
import { proxyRequestCodec } from "./request.ts";

/** Default ProxyOptions.maxClientInFlightRequests: deep pipelines (redis-benchmark -P, a mass insert) keep the servers busy, memory stays bounded. */
export const DEFAULT_MAX_CLIENT_IN_FLIGHT_REQUESTS = 4096;
/** Default ProxyOptions.maxClientInFlightBytes. */
export const DEFAULT_MAX_CLIENT_IN_FLIGHT_BYTES = 1 << 20;

/** Options of createProxy beyond the configuration. Sizes in bytes, times in ms. */
export interface ProxyOptions {
  /** SO_REUSEPORT on every TCP listener, so several processes share the addresses (`--workers`). Default false. */
  reusePort?: boolean;
  /** Measure each request's handling time in the reactor's stats (the admin server shows it). Default false. */
  measureLatency?: boolean;
  /** Largest request accepted from a client. Default 64 MiB (a bigger one closes the client). */
  maxFrameBytes?: number;
  /** A client's write queue over this pauses its reading; see the reactor. Default 4 MiB. */
  maxWriteBufferBytes?: number;
  /** A client that stays over its write mark this long is closed. Default 30 s. */
  writeStallTimeoutMs?: number;
  /**
   * A client with more requests than this in flight (sent upstream or held, not yet answered)
   * stops being read until they fall to half (backpressure, not errors). Default 4096.
   */
  maxClientInFlightRequests?: number;
  /** The same bound in request bytes. Default 1 MiB. */
  maxClientInFlightBytes?: number;
  /** Most dedicated connections per server at once (blocking commands and transactions). Default 256. */
  maxDedicatedPerServer?: number;
  /** Ejections and returns of servers (for a log). */
  onEvent?: (e: { type: "eject" | "return"; pool: string; server: string; retryMs?: number }) => void;
}

/** One listening pool. */
export interface ProxyPoolHandle {
  readonly name: string;
  /** The TCP port (0 for a unix socket). */
  readonly port: number;
  readonly hostname: string;
  /** The unix socket path, or "". */
  readonly unix: string;
  /** The reactor server of its client connections. */
  readonly server: Server;
}

/** Every pool's counters. */
export interface ProxyStats {
  pools: PoolProxyStats[];
}

/** A running proxy. */
export interface Proxy {
  readonly pools: readonly ProxyPoolHandle[];
  /** Per pool and per server counters (allocates the snapshot). */
  stats(): ProxyStats;
  /** The reactor servers' stats summed over the pools (client connections, bytes, memory). */
  serverStats(): ServerStats[];
  /** False once stop() began. */
  readonly accepting: boolean;
  /**
   * Stops accepting, lets clients have the replies in flight, closes them (graceful, up to
   * timeoutMs, default 10 s), then closes the upstream connections. Idempotent.
   */
  stop(opts?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
}

function checkOptions(o: ProxyOptions): void {
  if (o === null || typeof o !== "object") throw new MyriadError("ERR_PROXY_OPTION", "createProxy(config, options): options must be an object");
  const known = new Set(["reusePort", "measureLatency", "maxFrameBytes", "maxWriteBufferBytes", "writeStallTimeoutMs", "maxDedicatedPerServer", "maxClientInFlightRequests", "maxClientInFlightBytes", "onEvent"]);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new MyriadError("ERR_PROXY_OPTION", `createProxy: unknown option ${k}; known: ${[...known].join(", ")}`);
  const posInt = (k: keyof ProxyOptions) => {
    const v = o[k];
    if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 1)) throw new MyriadError("ERR_PROXY_OPTION", `createProxy: ${k} must be an integer >= 1, got ${String(v)}`);
  };
  posInt("maxFrameBytes");
  posInt("maxWriteBufferBytes");
  posInt("maxDedicatedPerServer");
  posInt("maxClientInFlightRequests");
  posInt("maxClientInFlightBytes");
  if (o.writeStallTimeoutMs !== undefined && (!Number.isInteger(o.writeStallTimeoutMs) || o.writeStallTimeoutMs < 0)) {
    throw new MyriadError("ERR_PROXY_OPTION", `createProxy: writeStallTimeoutMs must be an integer >= 0, got ${String(o.writeStallTimeoutMs)}`);
  }
}

/**
 * Starts every pool of `config` (a ProxyConfig from readProxyConfig/parseProxyConfig, or a
 * twemproxy configuration as an object: pools by name) and resolves once all listen.
 * Rejects with ProxyConfigError (ERR_PROXY_CONFIG) for a bad configuration, MyriadError
 * ERR_PROXY_OPTION for a bad option, or the reactor's ListenError; a pool that started is
 * stopped again when a later one cannot listen.
 */
export async function createProxy(config: ProxyConfig | TwemproxyConfigObject, options: ProxyOptions = {}): Promise<Proxy> {
  checkOptions(options);
  const cfg = isProxyConfig(config) ? config : proxyConfigFromObject(config as TwemproxyConfigObject);
  const pools: PoolProxy[] = [];
  const handles: ProxyPoolHandle[] = [];
  try {
    for (const p of cfg.pools) {
      const pool = new PoolProxy(p, {
        maxDedicatedPerServer: options.maxDedicatedPerServer ?? 256,
        maxClientInFlightRequests: options.maxClientInFlightRequests ?? DEFAULT_MAX_CLIENT_IN_FLIGHT_REQUESTS,
        maxClientInFlightBytes: options.maxClientInFlightBytes ?? DEFAULT_MAX_CLIENT_IN_FLIGHT_BYTES,
        onEvent: options.onEvent,
      });
      pools.push(pool);
      const common = {
        codec: proxyRequestCodec,
        handler: pool.handler,
        maxFrameBytes: options.maxFrameBytes ?? 64 << 20,
        maxWriteBufferBytes: options.maxWriteBufferBytes ?? 4 << 20,
        writeStallTimeoutMs: options.writeStallTimeoutMs ?? 30_000,
        measureLatency: options.measureLatency ?? false,
        ...(p.clientConnections > 0 ? { maxConnections: p.clientConnections } : {}),
      };
      let server: Server;
      if ("path" in p.listen) {
        // A stale socket file of a dead proxy would refuse the bind, as nutcracker's unlink does first.
        if (existsSync(p.listen.path)) rmSync(p.listen.path, { force: true });
        server = await createServer({ ...common, unix: p.listen.path });
        if (p.listen.mode !== undefined) chmodSync(p.listen.path, p.listen.mode);
        pool.listenText = p.listen.path;
      } else {
        server = await createServer({ ...common, hostname: p.listen.host, port: p.listen.port, ...(options.reusePort ? { reusePort: true } : {}) });
        pool.listenText = `${p.listen.host.includes(":") ? `[${p.listen.host}]` : p.listen.host}:${server.port}`;
      }
      pool.server = server;
      handles.push({ name: p.name, port: server.port, hostname: server.hostname, unix: server.unix, server });
    }
  } catch (err) {
    await Promise.all(handles.map((h) => h.server.stop({ graceful: false })));
    await Promise.all(pools.map((p) => p.close(0)));
    throw err;
  }
  let stopping: Promise<void> | null = null;
  return {
    pools: handles,
    stats: () => ({ pools: pools.map((p) => p.stats()) }),
    serverStats: () => handles.map((h) => h.server.stats()),
    get accepting() {
      return stopping === null;
    },
    stop(opts = {}) {
      stopping ??= (async () => {
        await Promise.all(handles.map((h) => h.server.stop({ graceful: opts.graceful ?? true, timeoutMs: opts.timeoutMs ?? 10_000 })));
        await Promise.all(pools.map((p) => p.close(opts.timeoutMs ?? 10_000)));
      })();
      return stopping;
    },
  };
}
