import { codecByName, isCodecName, CODEC_NAMES, rawCodec, type Codec } from "../codec/index.ts";
import { MAX_CAPACITY } from "../conn-table/index.ts";
import { ServerOptionError } from "./errors.ts";
import { defaultMaxConnections } from "./limits.ts";
import type { ClusterBus, ConnectionBudget, Handler, ServerOptions } from "./types.ts";
import { WEBSOCKET_OPTION_NAMES, resolveWebSocketOptions, type ResolvedWebSocketOptions } from "./websocket-options.ts";
import type { WebSocketServerOptions } from "./websocket-types.ts";
import { ipVersion } from "./proxy-protocol.ts";

/** ServerOptions with every default filled in and every value checked. */
export interface ResolvedOptions {
  port: number;
  hostname: string;
  unix: string;
  tls: ServerOptions["tls"];
  reusePort: boolean;
  codec: Codec<any, any>;
  handler: Handler<any>;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** The cap shared with other servers of the process, or null. */
  connectionBudget: ConnectionBudget | null;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  proxyProtocol: boolean;
  /** The PROXY header's deadline: handshakeTimeoutMs, or 10 s when that is 0. */
  proxyTimeoutMs: number;
  /** Addresses proxied connections may come from; null for any. */
  proxyProtocolFrom: ReadonlySet<string> | null;
  /** The node bus, or null. */
  bus: ClusterBus | null;
  maxFrameBytes: number;
  maxWriteBufferBytes: number;
  writeBufferHardLimitBytes: number;
  writeStallTimeoutMs: number;
  tickMs: number;
  measureLatency: boolean;
  segmentBytes: number;
  /** protocol "websocket": its settings (the stage takes the handler; idleTimeoutMs is its own, reads only). */
  websocket: ResolvedWebSocketOptions | null;
}

/** maxFrameBytes when not given: 1 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 1 << 20;
/** maxWriteBufferBytes when not given: 4 MiB. */
export const DEFAULT_MAX_WRITE_BUFFER_BYTES = 4 << 20;
/** writeStallTimeoutMs when not given: 30 s. */
export const DEFAULT_WRITE_STALL_TIMEOUT_MS = 30_000;
/** tickMs (the timing wheel's resolution) when not given: 100 ms. */
export const DEFAULT_TICK_MS = 100;
/** How long a proxied connection may take to send its PROXY header when handshakeTimeoutMs is 0. */
const DEFAULT_PROXY_TIMEOUT_MS = 10_000;
/** Largest queue or frame: offsets live in Int32Arrays. */
const MAX_BYTES = 2 ** 30;
/** Largest timeout: activity times are uint32 milliseconds, compared modulo 2^32. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const KNOWN = new Set([
  "port",
  "hostname",
  "unix",
  "tls",
  "reusePort",
  "protocol",
  "codec",
  "handler",
  "maxConnections",
  "maxConnectionsPerIp",
  "connectionBudget",
  "idleTimeoutMs",
  "handshakeTimeoutMs",
  "proxyProtocol",
  "proxyProtocolFrom",
  "bus",
  "maxFrameBytes",
  "maxWriteBufferBytes",
  "writeBufferHardLimitBytes",
  "writeStallTimeoutMs",
  "tickMs",
  "measureLatency",
  "segmentBytes",
]);

function int(opts: Record<string, unknown>, name: string, dflt: number, min: number, max: number, what: string): number {
  const v = opts[name];
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ServerOptionError(name, `expected ${what} (an integer ${min}..${max}), got ${show(v)}`);
  }
  return v;
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "function") return "a function";
  try {
    return String(JSON.stringify(v) ?? v);
  } catch {
    return String(v);
  }
}

/** Checks opts and fills in defaults; throws ServerOptionError naming the first bad option. */
export function resolveOptions(input: ServerOptions | WebSocketServerOptions): ResolvedOptions {
  if (input === null || typeof input !== "object") {
    throw new ServerOptionError("(options)", `expected an object, got ${show(input)}`);
  }
  const o = input as unknown as Record<string, unknown>;
  const ws = o.protocol === "websocket";
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key) && !(ws && (WEBSOCKET_OPTION_NAMES as readonly string[]).includes(key))) {
      const known = ws ? [...KNOWN, ...WEBSOCKET_OPTION_NAMES] : [...KNOWN];
      const hint = (WEBSOCKET_OPTION_NAMES as readonly string[]).includes(key) ? ' (a WebSocket option: needs protocol "websocket")' : "";
      throw new ServerOptionError(key, `unknown option${hint}; known options: ${known.join(", ")}`);
    }
  }
  if (ws) {
    if (o.codec !== undefined) throw new ServerOptionError("codec", 'protocol "websocket" takes no codec');
    const websocket = resolveWebSocketOptions(input as WebSocketServerOptions);
    const { protocol: _p, idleTimeoutMs: _i, ...rest } = input as WebSocketServerOptions;
    for (const name of WEBSOCKET_OPTION_NAMES) delete (rest as Record<string, unknown>)[name];
    // The TCP checks for the rest; the WebSocket stage takes the handler and its own idle timeout.
    return { ...resolveOptions({ ...(rest as unknown as ServerOptions), codec: rawCodec }), websocket };
  }
  const opts = input as ServerOptions;
  const handler = (opts as ServerOptions).handler;
  if (handler === null || typeof handler !== "object" || typeof handler.message !== "function") {
    throw new ServerOptionError("handler", "expected an object with a message(conn, frame) function");
  }
  for (const hook of ["open", "close", "drain", "error"] as const) {
    if (handler[hook] !== undefined && typeof handler[hook] !== "function") {
      throw new ServerOptionError(`handler.${hook}`, `expected a function, got ${show(handler[hook])}`);
    }
  }

  let codec: Codec<any, any>;
  if (opts.codec !== undefined && opts.protocol !== undefined) {
    throw new ServerOptionError("codec", "give either protocol (a name) or codec (an instance), not both");
  }
  if (opts.codec !== undefined) {
    const c = opts.codec as unknown as Record<string, unknown>;
    if (c === null || typeof c !== "object" || typeof c.measure !== "function" || typeof c.decode !== "function" || typeof c.encode !== "function") {
      throw new ServerOptionError("codec", "expected a Codec (measure, decode, encode; see src/codec/types.ts)");
    }
    codec = opts.codec;
  } else if (opts.protocol !== undefined) {
    if (typeof opts.protocol !== "string" || !isCodecName(opts.protocol)) {
      throw new ServerOptionError("protocol", `expected one of ${CODEC_NAMES.join(", ")}, websocket, got ${show(opts.protocol)}`);
    }
    codec = codecByName(opts.protocol);
  } else {
    codec = codecByName("raw");
  }

  let unix = "";
  if (opts.unix !== undefined) {
    if (typeof opts.unix !== "string" || opts.unix === "") {
      throw new ServerOptionError("unix", `expected a socket file path, got ${show(opts.unix)}`);
    }
    if (opts.port !== undefined || opts.hostname !== undefined || opts.reusePort !== undefined) {
      throw new ServerOptionError("unix", "a unix socket takes no port, hostname or reusePort: drop them or drop unix");
    }
    unix = opts.unix;
  }
  const port = int(o, "port", 0, 0, 65535, "a TCP port, 0 for any free one");
  let hostname = "127.0.0.1";
  if (opts.hostname !== undefined) {
    if (typeof opts.hostname !== "string" || opts.hostname === "") {
      throw new ServerOptionError("hostname", `expected an address such as "127.0.0.1" or "::1", got ${show(opts.hostname)}`);
    }
    hostname = opts.hostname;
  }
  if (opts.tls !== undefined && (opts.tls === null || typeof opts.tls !== "object")) {
    throw new ServerOptionError("tls", "expected Bun's TLS options object ({ cert, key, ... })");
  }
  for (const name of ["reusePort", "measureLatency", "proxyProtocol"] as const) {
    if (o[name] !== undefined && typeof o[name] !== "boolean") {
      throw new ServerOptionError(name, `expected true or false, got ${show(o[name])}`);
    }
  }

  const maxConnections =
    opts.maxConnections === undefined
      ? defaultMaxConnections()
      : int(o, "maxConnections", 0, 1, MAX_CAPACITY, "the most simultaneous connections");
  const maxFrameBytes = int(o, "maxFrameBytes", DEFAULT_MAX_FRAME_BYTES, 1, MAX_BYTES, "bytes");
  const maxWriteBufferBytes = int(o, "maxWriteBufferBytes", DEFAULT_MAX_WRITE_BUFFER_BYTES, 1, MAX_BYTES / 2, "bytes");
  const writeBufferHardLimitBytes = int(
    o,
    "writeBufferHardLimitBytes",
    2 * maxWriteBufferBytes,
    maxWriteBufferBytes,
    MAX_BYTES,
    "bytes, at least maxWriteBufferBytes",
  );
  const proxyProtocol = opts.proxyProtocol === true;
  if (proxyProtocol && opts.tls !== undefined) {
    // The header comes before the ClientHello on the wire, and the TLS layer reads first.
    throw new ServerOptionError("proxyProtocol", "cannot go with tls: end TLS at the balancer (or pass it through without PROXY headers)");
  }
  let proxyProtocolFrom: Set<string> | null = null;
  if (opts.proxyProtocolFrom !== undefined) {
    if (!proxyProtocol) throw new ServerOptionError("proxyProtocolFrom", "lists the balancers of proxyProtocol: set proxyProtocol: true too");
    const list = opts.proxyProtocolFrom as unknown;
    if (!Array.isArray(list) || list.length === 0 || !list.every((a) => typeof a === "string" && ipVersion(a) !== 0)) {
      throw new ServerOptionError("proxyProtocolFrom", `expected a non-empty array of IP addresses, got ${show(list)}`);
    }
    // Bun reports IPv4 peers of a dual-stack listener as "::ffff:a.b.c.d": accept both spellings.
    proxyProtocolFrom = new Set(list.flatMap((a: string) => (ipVersion(a) === 4 ? [a, `::ffff:${a}`] : [a])));
  }
  const handshakeTimeoutMs = int(o, "handshakeTimeoutMs", 0, 0, MAX_TIMEOUT_MS, "milliseconds, 0 for none");
  return {
    port,
    hostname,
    unix,
    tls: opts.tls,
    reusePort: opts.reusePort === true,
    codec,
    handler,
    maxConnections,
    maxConnectionsPerIp: int(o, "maxConnectionsPerIp", 0, 0, MAX_CAPACITY, "connections per IP, 0 for no limit"),
    connectionBudget: budgetOf(opts.connectionBudget),
    idleTimeoutMs: int(o, "idleTimeoutMs", 0, 0, MAX_TIMEOUT_MS, "milliseconds, 0 for none"),
    handshakeTimeoutMs,
    proxyProtocol,
    proxyTimeoutMs: proxyProtocol ? handshakeTimeoutMs || DEFAULT_PROXY_TIMEOUT_MS : 0,
    proxyProtocolFrom,
    bus: busOf(opts.bus),
    maxFrameBytes,
    maxWriteBufferBytes,
    writeBufferHardLimitBytes,
    writeStallTimeoutMs: int(o, "writeStallTimeoutMs", DEFAULT_WRITE_STALL_TIMEOUT_MS, 0, MAX_TIMEOUT_MS, "milliseconds, 0 for never"),
    tickMs: int(o, "tickMs", DEFAULT_TICK_MS, 1, 60_000, "milliseconds"),
    measureLatency: opts.measureLatency !== false,
    segmentBytes: int(o, "segmentBytes", 4096, 64, 1 << 20, "bytes"),
    websocket: null,
  };
}

/** The connectionBudget option: undefined (none), or { max: integer >= 1, live: integer >= 0 }. */
function budgetOf(budget: unknown): ConnectionBudget | null {
  if (budget === undefined) return null;
  const b = budget as Partial<ConnectionBudget> | null;
  if (
    b === null ||
    typeof b !== "object" ||
    typeof b.max !== "number" ||
    !Number.isInteger(b.max) ||
    b.max < 1 ||
    typeof b.live !== "number" ||
    !Number.isInteger(b.live) ||
    b.live < 0
  ) {
    throw new ServerOptionError("connectionBudget", `expected { max: an integer >= 1, live: an integer >= 0 } shared by this process's servers, got ${show(budget)}`);
  }
  return b as ConnectionBudget;
}

/** The bus option: undefined (none), or an object with publish and subscribe (src/bus createRedisBus). */
function busOf(bus: unknown): ClusterBus | null {
  if (bus === undefined) return null;
  const b = bus as Partial<ClusterBus> | null;
  if (b === null || typeof b !== "object" || typeof b.publish !== "function" || typeof b.subscribe !== "function") {
    throw new ServerOptionError("bus", "expected a node bus with publish() and subscribe() (src/bus createRedisBus)");
  }
  return b as ClusterBus;
}
