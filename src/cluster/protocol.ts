/**
 * What a supervisor tells its workers, and what they answer, over Bun's IPC channel; and the
 * configuration a worker gets in MYRIAD_CLUSTER_WORKER. Any worker entry that speaks this
 * (src/cluster/worker-main.ts, bench/c1m-raw-worker.ts) can run under the supervisor.
 */
import type { BusStats } from "../bus/index.ts";
import type { PoolSnapshot } from "../pool/index.ts";
import type { PoolProxyStats } from "../proxy/index.ts";
import type { ProtocolName, ServerOptions, ServerStats } from "../reactor/index.ts";
import type { ListenAddress } from "./plan.ts";

/** The environment variable holding a worker's WorkerConfig (JSON). */
export const WORKER_CONFIG_ENV = "MYRIAD_CLUSTER_WORKER";

/**
 * The application a worker serves:
 * - echo: src/apps createEchoApp({ protocol });
 * - kv: src/apps createKvApp({ tickMs, maxKeys, requirePass, protectedMode }) — each worker
 *   has its own store;
 * - ws-echo, ws-chat: src/apps createWsEchoApp() / createWsChatApp() (protocol "websocket");
 * - module: `export` (default "default") of `module` (an absolute path or package name),
 *   a function (options, { workerIndex, workers, registerPool }) returning (or resolving to)
 *   { protocol? | codec?, handler, close?() } (src/apps' AppFactory); the pools it
 *   registers travel with the worker's stats reports.
 */
export type WorkerApp =
  | { kind: "echo"; protocol?: ProtocolName }
  | { kind: "ws-echo" }
  | { kind: "ws-chat" }
  | { kind: "kv"; tickMs?: number; maxKeys?: number; requirePass?: string; protectedMode?: boolean }
  | { kind: "module"; module: string; export?: string; options?: unknown };

/**
 * The JSON-safe subset of the reactor's ServerOptions a worker passes to createServer (over
 * IPC, so no handler, codec instance or Bun.file), plus TLS as PEM file paths.
 */
export type WorkerServerOptions = Pick<
  ServerOptions,
  | "maxConnectionsPerIp"
  | "idleTimeoutMs"
  | "handshakeTimeoutMs"
  | "maxFrameBytes"
  | "maxWriteBufferBytes"
  | "writeBufferHardLimitBytes"
  | "writeStallTimeoutMs"
  | "tickMs"
  | "measureLatency"
  | "segmentBytes"
  | "proxyProtocol"
  | "proxyProtocolFrom"
> & {
  protocol?: ProtocolName;
  /** TLS from PEM files. */
  tls?: { certPath: string; keyPath: string };
  /** redis://host:port of the node bus: each worker is a node on it (its own bus connection). */
  busUrl?: string;
};

/** What a worker gets in MYRIAD_CLUSTER_WORKER (JSON): its place, its addresses, its app and its server's options. */
export interface WorkerConfig {
  /** 0-based, stable across restarts. */
  index: number;
  /** Workers in the cluster. */
  workers: number;
  listen: ListenAddress[];
  app: WorkerApp;
  server: WorkerServerOptions;
  /** Most connections this process holds over all its listeners. */
  maxConnections: number;
  /** How often it reports its stats unasked. */
  statsIntervalMs: number;
}

/**
 * `stats` asks for a report now; the answer carries the same `id` (periodic reports carry
 * none). `pools` holds the stats of the pools the app registered (left out when it has none);
 * `proxy` those of a `bun run proxy` worker's pools and servers.
 */
export type SupervisorToWorker = { t: "stop"; graceful: boolean; timeoutMs: number } | { t: "stats"; id: number };

/** What a worker tells its supervisor: ready (with the ports it got), a stats report (`id` when it answers a request), stopped (its last figures), fatal (why it could not start). */
export type WorkerToSupervisor =
  | { t: "ready"; pid: number; listen: ListenAddress[] }
  | { t: "stats"; stats: ServerStats; pools?: PoolSnapshot[]; proxy?: PoolProxyStats[]; bus?: BusStats; id?: number }
  | { t: "stopped"; stats: ServerStats; pools?: PoolSnapshot[]; proxy?: PoolProxyStats[]; bus?: BusStats }
  | { t: "fatal"; message: string };
