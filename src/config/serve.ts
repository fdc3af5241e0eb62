/**
 * The settings of `bun run serve`: one declaration gives its flags, its MYRIAD_* variables,
 * its --help and the TypeBox schema of its JSON config file (`serveCommand.schema`).
 */
import { defineCommand, type FlagValues } from "./flags.ts";

const MIB = 1024 * 1024;

export const serveFlags = {
  config: {
    type: "string",
    placeholder: "<path>",
    help: "JSON file of settings (keys: the flag names in camelCase, e.g. {\"port\": 6380, \"idleTimeoutMs\": \"30s\"})",
  },
  app: { type: "enum", choices: ["kv", "echo"], default: "kv", help: "what to serve: the RESP key-value store, or an echo server" },
  protocol: {
    type: "enum",
    choices: ["raw", "lines", "length-u16", "length-u32", "resp"],
    help: "framing for --app echo (default raw); the kv app always speaks resp",
  },
  host: { type: "string", default: "127.0.0.1", minLength: 1, help: "address to listen on (::1, 0.0.0.0, ::, a host name)" },
  port: { type: "int", default: 6380, min: 0, max: 65535, short: "p", help: "TCP port (0: let the OS choose)" },
  unix: { type: "string", placeholder: "<path>", minLength: 1, help: "listen on this unix socket path instead of TCP" },
  maxConnections: {
    type: "int",
    default: 0,
    min: 0,
    max: 1 << 20,
    help: "most simultaneous connections; more are closed at once (0: ulimit -n minus a margin)",
  },
  maxConnectionsPerIp: { type: "int", default: 0, min: 0, help: "most simultaneous connections from one IP (0: no limit)" },
  idleTimeoutMs: { type: "duration-ms", default: 0, help: "close a connection silent both ways this long (0: never)" },
  handshakeTimeoutMs: {
    type: "duration-ms",
    default: 0,
    help: "close a connection that sends no complete first frame this long after connecting (0: never)",
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
  tlsCert: { type: "string", placeholder: "<path>", minLength: 1, help: "PEM certificate: serve TLS (with --tls-key)" },
  tlsKey: { type: "string", placeholder: "<path>", minLength: 1, help: "PEM private key for --tls-cert" },
  admin: { type: "bool", default: true, help: "start the admin server (--no-admin: do not)" },
  adminHost: { type: "string", default: "127.0.0.1", minLength: 1, help: "admin server address (non-loopback needs --admin-token)" },
  adminPort: { type: "int", default: 9180, min: 0, max: 65535, help: "admin server port: /healthz /readyz /stats /metrics, dashboard" },
  adminToken: { type: "string", help: "bearer token the admin server requires" },
  workers: {
    type: "int",
    default: 1,
    min: 1,
    max: 1,
    help: "worker processes sharing the port (only 1 until multi-process serving lands in src/cluster)",
  },
  stopTimeoutMs: {
    type: "duration-ms",
    default: 10_000,
    help: "on SIGINT/SIGTERM, how long to let connections flush before closing them",
  },
} as const;

/**
 * `bun run serve`: its flags, env names, --help and config-file schema. Cross-flag rules:
 * --tls-cert and --tls-key go together; --protocol other than resp needs --app echo.
 */
export const serveCommand = defineCommand({
  name: "serve",
  summary:
    "Serves the RESP key-value store (or an echo server) with myriad's reactor, plus the admin server. " +
    "Stops gracefully on SIGINT/SIGTERM and prints the final stats.",
  configFlag: "config",
  flags: serveFlags,
  epilog: [
    "Examples:",
    "  bun run serve                               # kv on 127.0.0.1:6380, admin on 127.0.0.1:9180",
    "  bun run serve --port 7000 --idle-timeout-ms 5m --no-admin",
    "  bun run serve --app echo --protocol lines --port 7001",
    "  MYRIAD_PORT=7002 bun run serve --config serve.json",
    "  redis-cli -p 6380 set greeting hello",
  ].join("\n"),
  validate(v) {
    if ((v.tlsCert === undefined) !== (v.tlsKey === undefined))
      return `--tls-cert and --tls-key go together, got only ${v.tlsCert !== undefined ? "--tls-cert" : "--tls-key"}`;
    if (v.app === "kv" && v.protocol !== undefined && v.protocol !== "resp")
      return `--protocol ${v.protocol} applies to --app echo; the kv app speaks resp`;
    return undefined;
  },
});

/** The validated settings of `bun run serve`. */
export type ServeConfig = FlagValues<typeof serveFlags>;
