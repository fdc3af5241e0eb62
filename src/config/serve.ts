import { isIP } from "node:net";
/**
 * The settings of `bun run serve`: one declaration gives its flags, its MYRIAD_* variables,
 * its --help and the TypeBox schema of its JSON config file (`serveCommand.schema`).
 */
import { CODEC_NAMES } from "../codec/index.ts";
import { countOrAuto } from "./coerce.ts";
import { defineCommand } from "./flags.ts";
import type { FlagValues } from "./spec.ts";

const MIB = 1024 * 1024;

/** Most ports one `--port` range may name (as src/cluster's parsePorts). */
const MAX_LISTEN_PORTS = 4096;
/** Most worker processes `--workers` accepts (as src/cluster's runCluster). */
const MAX_WORKERS = 4096;

/**
 * True when an `--app` value names a module app, which must be a path: it has a "/" or ends
 * in .ts, .js, .mjs, .mts, .tsx or .jsx (a bare word is a typo of kv or echo, not a package).
 */
export function isModuleAppPath(app: string): boolean {
  return app.includes("/") || /\.(ts|js|mjs|mts|tsx|jsx)$/.test(app);
}

/**
 * The worker count a `--workers` value asks for: an integer from 1 to MAX_WORKERS, or
 * "auto"; undefined when the value is neither.
 */
export function workersOf(spec: string): number | "auto" | undefined {
  return countOrAuto(spec, MAX_WORKERS);
}

/** The flags of `bun run serve`, each with its bounds, default, environment variable and help. */
export const serveFlags = {
  config: {
    type: "string",
    placeholder: "<path>",
    help: "JSON file of settings (keys: the flag names in camelCase, e.g. {\"port\": 6380, \"idleTimeoutMs\": \"30s\"})",
  },
  app: {
    type: "string",
    default: "kv",
    minLength: 1,
    placeholder: "<kv|echo|ws-echo|ws-chat|path>",
    help:
      "what to serve: kv (the RESP key-value store), echo, ws-echo (WebSocket echo), ws-chat (WebSocket: every message to everyone), or the path of a module app (./my-app.ts: its default export " +
      "(options, { workerIndex, workers, registerPool }) returns { protocol?, handler, close? }; pools it registers show in the admin server)",
  },
  protocol: {
    type: "enum",
    choices: CODEC_NAMES,
    help: "framing for --app echo (default raw), and for a module app that names none; the kv app always speaks resp",
  },
  host: {
    type: "list",
    default: ["127.0.0.1"],
    placeholder: "<addr[,addr...]>",
    help: "address(es) to listen on, comma-separated (::1, 0.0.0.0, ::, a host name); every worker listens on each host x port",
  },
  port: {
    type: "port-range",
    default: { from: 6380, to: 6380 },
    min: 0,
    max: 65535,
    short: "p",
    help: `TCP port, or a range like 7000-7019 (at most ${MAX_LISTEN_PORTS} ports) for more destination tuples (0 alone: let the OS choose)`,
  },
  unix: { type: "string", placeholder: "<path>", minLength: 1, help: "listen on this unix socket path instead of TCP" },
  maxConnections: {
    type: "int",
    default: 0,
    min: 0,
    max: 1 << 20,
    help:
      "most simultaneous connections, more are closed at once; with several workers the total over all of them, " +
      "each worker taking its share plus 10% + 16 for the kernel's uneven spread (0: ulimit -n minus a margin, per worker)",
  },
  maxConnectionsPerIp: { type: "int", default: 0, min: 0, help: "most simultaneous connections from one IP, counted by each worker on its own (0: no limit)" },
  idleTimeoutMs: { type: "duration-ms", default: 0, help: "close a connection silent both ways this long (0: never)" },
  handshakeTimeoutMs: {
    type: "duration-ms",
    default: 0,
    help: "close a connection that sends no complete first frame this long after connecting (0: never)",
  },
  proxyProtocol: {
    type: "bool",
    default: false,
    help:
      "every connection starts with a PROXY v1/v2 header (HAProxy send-proxy-v2, nginx proxy_protocol): the app sees the client's address; " +
      "no header, a bad one, or none within --handshake-timeout-ms (10s when 0) closes it",
  },
  proxyFrom: {
    type: "list",
    placeholder: "<addr[,addr...]>",
    help: "with --proxy-protocol: the balancers' addresses; connections from any other are closed unread",
  },
  bus: {
    type: "string",
    placeholder: "<redis://host:port>",
    minLength: 1,
    help:
      "the node bus of a fleet (Redis pub/sub): kv PUBLISH reaches SUBSCRIBE on every node, a ws-chat message every node's clients " +
      "(with --workers, each worker is a node); /stats and /readyz say when it is down",
  },
  drainDelayMs: {
    type: "duration-ms",
    default: 0,
    help: "on SIGTERM, first turn /readyz unready and keep serving this long (longer than your balancer's check interval x fall), then stop gracefully",
  },
  maxFrameBytes: { type: "int", default: MIB, min: 1, max: 512 * MIB, help: "largest request accepted; a bigger one closes its connection" },
  maxWriteBufferBytes: {
    type: "int",
    default: 4 * MIB,
    min: 1024,
    help: "per-connection write queue high-water mark: over it, reading from that connection pauses",
  },
  writeStallTimeoutMs: {
    type: "duration-ms",
    default: 30_000,
    help: "close a connection whose write queue stays over its high-water mark this long (0: never)",
  },
  tickMs: { type: "int", default: 10, min: 1, max: 1000, help: "timing wheel resolution (timeouts and key expiry fire at most one tick late)" },
  maxKeys: { type: "int", default: 0, min: 0, help: "kv: most keys; writes adding more answer -OOM (0: no limit)" },
  requirepass: {
    type: "string",
    minLength: 1,
    placeholder: "<password>",
    help:
      "kv: the password clients must give (AUTH <password>, or HELLO 2 AUTH default <password>) before any other command; " +
      "better set as MYRIAD_REQUIREPASS or in a --config file: a flag shows in ps",
  },
  protectedMode: {
    type: "enum",
    choices: ["yes", "no"],
    default: "yes",
    help: "kv, with no --requirepass: answer clients from other than loopback with -DENIED and close them (redis's protected mode); no: serve anyone who can reach the port",
  },
  tlsCert: { type: "string", placeholder: "<path>", minLength: 1, help: "PEM certificate: serve TLS (with --tls-key)" },
  tlsKey: { type: "string", placeholder: "<path>", minLength: 1, help: "PEM private key for --tls-cert" },
  admin: { type: "bool", default: true, help: "start the admin server (--no-admin: do not)" },
  adminHost: { type: "string", default: "127.0.0.1", minLength: 1, help: "admin server address (non-loopback needs --admin-token)" },
  adminPort: { type: "int", default: 9180, min: 0, max: 65535, help: "admin server port: /healthz /readyz /stats /metrics, dashboard" },
  adminToken: { type: "string", help: "bearer token the admin server requires" },
  workers: {
    type: "string",
    default: "1",
    placeholder: "<n|auto>",
    help:
      "worker processes sharing every port with reusePort, under a supervisor that restarts them; auto: one per CPU, " +
      "or more when --max-connections needs them at this ulimit -n. 1 with one port and host: no supervisor. " +
      'In a --config file a string: "4" or "auto"',
  },
  stopTimeoutMs: {
    type: "duration-ms",
    default: 10_000,
    help: "on SIGINT/SIGTERM, how long to let connections flush before closing them",
  },
} as const;

/**
 * `bun run serve`: its flags, env names, --help and config-file schema. Cross-flag rules:
 * --app is kv, echo or a module path; --tls-cert and --tls-key go together; --protocol other
 * than resp does not go with --app kv; --requirepass and --protected-mode no go with --app kv only;
 * --workers is auto or 1..4096, and other than 1 refuses --app kv and --unix; --port 0 stands
 * alone and a range names at most MAX_LISTEN_PORTS ports; --host names at least one address.
 */
export const serveCommand = defineCommand({
  name: "serve",
  summary:
    "Serves the RESP key-value store (or an echo server) with myriad's reactor, in this process or in worker " +
    "processes that share the ports, plus the admin server. " +
    "Stops gracefully on SIGINT/SIGTERM and prints the final stats.",
  configFlag: "config",
  flags: serveFlags,
  epilog: [
    "Examples:",
    "  bun run serve                               # kv on 127.0.0.1:6380, admin on 127.0.0.1:9180",
    "  bun run serve --port 7000 --idle-timeout-ms 5m --no-admin",
    "  bun run serve --app echo --protocol lines --port 7001",
    "  bun run serve --app ws-chat --port 8080 --workers 2 --tls-cert cert.pem --tls-key key.pem   # wss://",
    "  bun run serve --app echo --workers auto --max-connections 200k --port 7000-7019",
    "  bun run serve --app ./my-proxy.ts --workers 2 --port 7000   # a module app in every worker",
    "  bun run serve --host 127.0.0.1,::1 --port 6380-6383      # kv: one worker, 8 listeners, one store",
    "  MYRIAD_REQUIREPASS=s3cret bun run serve --host 0.0.0.0   # kv for other machines: clients AUTH s3cret first",
    "  MYRIAD_PORT=7002 bun run serve --config serve.json",
    "  redis-cli -p 6380 set greeting hello",
    "",
    "Workers: with --workers > 1 (or auto), a --port range or several --host addresses, a supervisor runs the",
    "worker processes, restarts one that dies (with backoff), stops them all on SIGINT/SIGTERM and sums their",
    "stats for the admin server (/stats per worker and in total, /metrics with a worker label). The kernel",
    "picks a worker per connection, so --app kv (one store per process) runs with --workers 1 only, and",
    "--unix (no reusePort) too.",
  ].join("\n"),
  validate(v) {
    if (v.app !== "kv" && v.app !== "echo" && v.app !== "ws-echo" && v.app !== "ws-chat" && !isModuleAppPath(v.app))
      return `--app must be kv, echo, ws-echo, ws-chat or the path of a module app (like ./my-app.ts), got ${JSON.stringify(v.app)}`;
    if ((v.app === "ws-echo" || v.app === "ws-chat") && v.protocol !== undefined)
      return `--protocol ${v.protocol} does not apply to --app ${v.app}, which speaks WebSocket`;
    const workers = workersOf(v.workers);
    if (workers === undefined) return `--workers must be auto or an integer from 1 to ${MAX_WORKERS}, got ${JSON.stringify(v.workers)}`;
    if (v.host.length === 0) return "--host must name at least one address, like 127.0.0.1 or 127.0.0.1,::1";
    if (v.port.from === 0 && v.port.to !== 0) return `--port 0 (any free port) stands alone, not in a range, got ${v.port.from}-${v.port.to}`;
    const ports = v.port.to - v.port.from + 1;
    if (ports > MAX_LISTEN_PORTS) return `--port ${v.port.from}-${v.port.to} names ${ports} ports; at most ${MAX_LISTEN_PORTS}`;
    if (workers !== 1 && v.unix !== undefined)
      return `--workers ${v.workers} with --unix: workers share a TCP port through reusePort, which unix sockets lack; use --workers 1 with --unix, or --host/--port`;
    if (workers !== 1 && v.app === "kv")
      return (
        `--workers ${v.workers} with --app kv: each worker would keep its own store and the kernel picks the worker per connection, ` +
        "so a GET could miss a SET made on another connection; use --workers 1 for kv (a --port range and several --host still work), or --app echo"
      );
    if ((v.tlsCert === undefined) !== (v.tlsKey === undefined))
      return `--tls-cert and --tls-key go together, got only ${v.tlsCert !== undefined ? "--tls-cert" : "--tls-key"}`;
    if (v.proxyProtocol && v.tlsCert !== undefined) return "--proxy-protocol cannot go with --tls-cert: the PROXY header comes before TLS; end TLS at the balancer";
    if (v.proxyFrom !== undefined && !v.proxyProtocol) return "--proxy-from lists the balancers of --proxy-protocol: add --proxy-protocol";
    if (v.proxyFrom !== undefined) {
      const bad = v.proxyFrom.find((a) => isIP(a) === 0);
      if (bad !== undefined) return `--proxy-from takes IP addresses, got ${JSON.stringify(bad)}`;
    }
    if (v.bus !== undefined) {
      if (v.app !== "kv" && v.app !== "ws-chat") return `--bus carries the kv app's PUBLISH and ws-chat's messages between nodes; --app ${v.app} does not use it`;
      if (!/^redis:\/\/[^/]+/.test(v.bus)) return `--bus must be redis://host:port, got ${JSON.stringify(v.bus)}`;
    }
    if (v.app === "kv" && v.protocol !== undefined && v.protocol !== "resp")
      return `--protocol ${v.protocol} applies to --app echo; the kv app speaks resp`;
    if (v.app !== "kv" && v.requirepass !== undefined) return `--requirepass applies to --app kv (the KV server's AUTH), not to --app ${v.app}`;
    if (v.app !== "kv" && v.protectedMode === "no") return `--protected-mode applies to --app kv (the KV server), not to --app ${v.app}`;
    return undefined;
  },
});

/** The validated settings of `bun run serve`. */
export type ServeConfig = FlagValues<typeof serveFlags>;
