/** What one load engine does: its connections, where they go, how fast they open, and what traffic they carry. */
import { MyriadRangeError } from "../errors.ts";
import type { Target } from "./targets.ts";

/** The load modes: idle (hold), ping (one frame per connection per interval), rr (request/response). */
export const LOAD_MODES = ["idle", "ping", "rr"] as const;
/** One of LOAD_MODES. */
export type LoadMode = (typeof LOAD_MODES)[number];
/**
 * What the load speaks: echo (raw bytes echoed back), lines (newline-terminated), resp (RESP
 * GET/SET, PING), websocket (the upgrade, then masked binary messages echoed back; pings are
 * WebSocket pings, answered by any WebSocket server).
 */
export const LOAD_PROTOCOLS = ["echo", "lines", "resp", "websocket"] as const;
/** One of LOAD_PROTOCOLS. */
export type LoadProtocol = (typeof LOAD_PROTOCOLS)[number];

/** What one engine does. Durations in ms, rates per second. */
export interface EngineOptions {
  /** Connections this engine opens. */
  connections: number;
  /** Global index of this engine's first connection and the stride between its connections (process p of P: p, P). */
  indexOffset?: number;
  indexStride?: number;
  /** Source addresses to bind (empty: let the kernel pick) and destinations; see targets.ts tupleOf. */
  sources: readonly string[];
  targets: readonly Target[];
  /** Most connects in flight at once (default 256). */
  connectWindow?: number;
  /** New connections per second, 0 (default) = as fast as the window allows. */
  connectRatePerSec?: number;
  /** A connect not done after this long counts as ETIMEDOUT (default 10 s). */
  connectTimeoutMs?: number;
  /** Extra attempts per failed connection (default 0). */
  retries?: number;
  mode?: LoadMode;
  protocol?: LoadProtocol;
  /** Request payload bytes: echo frame size, line length, RESP SET value size (default 16). */
  payloadBytes?: number;
  /** ping mode: each connection sends one frame this often (default 10 s). */
  pingIntervalMs?: number;
  /** rr mode: requests per second over this engine's connections; 0 = closed loop, one outstanding per connection. */
  requestRatePerSec?: number;
  /** rr/resp: share of GETs (rest SETs), 0..1 (default 0.8). */
  getRatio?: number;
  /** rr/resp: distinct keys (default 1000). */
  keyspace?: number;
  /**
   * Confirm each connection with one round trip (the protocol's ping: echo bytes, "PING\n",
   * RESP PING) before counting it open; it holds its connect-window place until the reply.
   * A connection the server has not accepted yet cannot answer, so the window then also
   * bounds the servers' accept queues (Bun listens with a backlog of 512; an overflowing
   * queue drops SYNs, and each drop stalls that connect for 1 s). Default false.
   */
  confirm?: boolean;
}

/** `opts` with every default filled in; throws MyriadRangeError (ERR_LOADGEN_*) for a value no engine can run. */
export function resolveEngineOptions(opts: EngineOptions): Required<EngineOptions> {
  const o: Required<EngineOptions> = {
    connections: opts.connections,
    indexOffset: opts.indexOffset ?? 0,
    indexStride: opts.indexStride ?? 1,
    sources: opts.sources,
    targets: opts.targets,
    connectWindow: opts.connectWindow ?? 256,
    connectRatePerSec: opts.connectRatePerSec ?? 0,
    connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
    retries: opts.retries ?? 0,
    mode: opts.mode ?? "idle",
    protocol: opts.protocol ?? "echo",
    payloadBytes: opts.payloadBytes ?? 16,
    pingIntervalMs: opts.pingIntervalMs ?? 10_000,
    requestRatePerSec: opts.requestRatePerSec ?? 0,
    getRatio: opts.getRatio ?? 0.8,
    keyspace: opts.keyspace ?? 1000,
    confirm: opts.confirm ?? false,
  };
  if (!Number.isInteger(o.connections) || o.connections < 0) throw new MyriadRangeError("ERR_LOADGEN_CONNECTIONS", `connections must be an integer >= 0, got ${o.connections}`);
  if (!Array.isArray(o.targets) || o.targets.length === 0) throw new MyriadRangeError("ERR_LOADGEN_ADDRESS", "targets must name at least one host:port");
  if (!(o.connectWindow >= 1)) throw new MyriadRangeError("ERR_LOADGEN_OPTION", `connectWindow must be >= 1, got ${o.connectWindow}`);
  if (!(o.payloadBytes >= 1)) throw new MyriadRangeError("ERR_LOADGEN_OPTION", `payloadBytes must be >= 1, got ${o.payloadBytes}`);
  return o;
}
