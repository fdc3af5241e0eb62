/**
 * `bun run load`: opens C connections over P processes to a list of targets, ramps through a
 * bounded connect window, holds them (idle), or drives pings or request/response traffic
 * for --duration, then stops by itself and reports (text, or JSON with --json).
 */
import { countOrAuto, defineCommand, runCommand } from "../config/index.ts";
import { connectionsPerProcess, loadProcessesFor, readSystemLimits } from "../system/index.ts";
import { countOrAutoError, loadClientFlags } from "./load-flags.ts";
import {
  formatLoadReport,
  LOAD_MODES,
  LOAD_PROTOCOLS,
  maxPerTuple,
  parseTargets,
  progressLine,
  resolveSources,
  startLoad,
  TargetSpecError,
  type LoadCounters,
  type Target,
} from "../loadgen/index.ts";

/** Most load processes --processes accepts. */
const MAX_PROCESSES = 1024;

const shared = loadClientFlags({
  connectWindow: 256,
  connectWindowHelp: "connects in flight at once, over all processes (keep it under the servers' accept queues: Bun listens with a backlog of 512)",
  connectTimeoutMs: 10_000,
  retries: 1,
  confirmHelp: "count a connection open only after one round trip (the protocol's ping): the connect window then also bounds the servers' accept queues",
});

const command = defineCommand({
  name: "load",
  summary:
    "Load generator: opens --connections over --processes load processes to --targets (loopback only), spread over source addresses in 127.0.0.0/8; holds them (idle), pings them, or drives request/response traffic; reports connections, connect rate, errors by kind, throughput, latency percentiles and its own memory.",
  flags: {
    connections: { type: "int", short: "c", min: 0, max: 10_000_000, default: 1000, help: "connections to open in all (100k, 1m accepted)" },
    processes: { type: "string", short: "p", default: "auto", help: "load processes: a number, or auto (enough for ulimit -n, one per CPU from 4,000 connections)" },
    targets: {
      type: "list",
      short: "t",
      default: ["127.0.0.1:6380"],
      placeholder: "<host[-host]:port[-port],...>",
      help: "where to connect: 127.0.0.1:7000, 127.0.0.1-127.0.0.4:7000-7003, [::1]:7000 (every host × port is a target)",
    },
    sources: {
      type: "string",
      default: "auto",
      placeholder: "<auto|none|addresses>",
      help: "source addresses to bind: auto (--per-source connections each from 127.1.0.1 up), none (kernel picks), or 127.1.0.1-127.1.0.50 / 127.2.0.0/24",
    },
    perSource: shared.perSource,
    mode: { type: "enum", choices: LOAD_MODES, default: "idle", help: "idle: hold; ping: one frame per connection every --ping-interval; rr: closed-loop request/response" },
    protocol: { type: "enum", choices: LOAD_PROTOCOLS, default: "echo", help: "echo: raw bytes echoed back; lines: newline-terminated; resp: RESP GET/SET (PING in ping mode); websocket: the upgrade, then masked binary messages echoed back (WebSocket pings in ping mode)" },
    duration: { type: "duration-ms", min: 0, max: 86_400_000, default: 10_000, help: "how long to hold / drive traffic after the ramp" },
    rampTimeout: { type: "duration-ms", min: 100, max: 3_600_000, default: 120_000, help: "stop opening connections after this long" },
    connectWindow: shared.connectWindow,
    connectRate: shared.connectRate,
    connectTimeout: shared.connectTimeout,
    retries: shared.retries,
    pingInterval: { type: "duration-ms", min: 1, max: 3_600_000, default: 1000, help: "ping mode: interval between one connection's pings" },
    rate: { type: "int", min: 0, max: 100_000_000, default: 0, help: "rr mode: requests per second in all (0 = closed loop, one outstanding per connection)" },
    payloadBytes: { type: "int", min: 1, max: 16 << 20, default: 16, help: "request size: echo frame, line length, RESP SET value" },
    getRatio: { type: "number", min: 0, max: 1, default: 0.8, help: "resp: share of GETs (rest are SETs)" },
    keyspace: { type: "int", min: 1, max: 10_000, default: 1000, help: "resp: distinct keys" },
    confirm: shared.confirm,
    json: { type: "bool", help: "print the report as JSON on stdout (progress goes to stderr)" },
    progress: { type: "bool", default: true, help: "show progress (a bar on a TTY, a line a second otherwise); --no-progress to hide" },
  },
  epilog: [
    "Examples:",
    "  bun run load -c 50k -t 127.0.0.1:7000 --duration 5s",
    "  bun run load -c 10k -t 127.0.0.1:6380 --mode rr --protocol resp --rate 50000 --duration 10s --json",
    "  bun run load -c 200k -p 12 -t 127.0.0.1-127.0.0.4:7000-7003 --sources auto",
  ].join("\n"),
});

const { values: v } = runCommand(command);
const fail = (msg: string): never => {
  process.stderr.write(`load: ${msg}\n`);
  process.exit(2);
};

let targets: Target[] = [];
let sources: string[] = [];
try {
  targets = parseTargets(v.targets);
  sources = resolveSources(v.sources, v.connections, v.perSource);
} catch (e) {
  if (e instanceof TargetSpecError) fail(`--${e.message.startsWith("sources") ? "sources" : "targets"}: ${e.message}`);
  throw e;
}
if (sources.length > 0 && targets.some((t) => t.host.includes(":") || t.host === "localhost")) {
  fail("--sources binds IPv4 loopback addresses: use --sources none with [::1] or localhost targets");
}
const limits = readSystemLimits();
const perProcess = connectionsPerProcess(limits.nofileSoft);
const asked = countOrAuto(v.processes, MAX_PROCESSES) ?? fail(countOrAutoError("processes", MAX_PROCESSES, v.processes));
const processes = asked === "auto" ? loadProcessesFor(v.connections, "sockets", limits.nofileSoft, limits.cpus) : asked;
if (Math.ceil(v.connections / processes) > perProcess) {
  fail(
    `--processes ${processes}: ${Math.ceil(v.connections / processes)} connections per process exceed what ulimit -n ${limits.nofileSoft} allows (${perProcess}); use at least ${Math.ceil(v.connections / perProcess)} or --processes auto`,
  );
}
const perTuple = maxPerTuple(v.connections, sources.length, targets.length);
if (sources.length === 0 && perTuple > limits.portRange.count * 0.6) {
  process.stderr.write(
    `load: warning: ${perTuple} connections per (destination, port) tuple with --sources none; the ephemeral range has ${limits.portRange.count} ports: expect EADDRNOTAVAIL — add targets or use --sources auto\n`,
  );
}

const tty = process.stderr.isTTY === true;
let lastOpen = 0;
let lastAt = performance.now();
let lastPrinted = 0;
let phase = "ramp";
const show = (c: LoadCounters) => {
  if (!v.progress) return;
  const now = performance.now();
  const rate = ((c.connected - lastOpen) * 1000) / Math.max(1, now - lastAt);
  lastOpen = c.connected;
  lastAt = now;
  if (tty) {
    process.stderr.write(`\r${progressLine(c, phase, rate, 30)}\x1b[K`);
  } else if (now - lastPrinted >= 1000) {
    lastPrinted = now;
    process.stderr.write(progressLine(c, phase, rate, 0) + "\n");
  }
};

let run: Awaited<ReturnType<typeof startLoad>>;
try {
  run = await startLoad({
    connections: v.connections,
    processes,
    targets,
    sources,
    connectWindow: v.connectWindow,
    connectRatePerSec: v.connectRate,
    connectTimeoutMs: v.connectTimeout,
    retries: v.retries,
    mode: v.mode,
    protocol: v.protocol,
    payloadBytes: v.payloadBytes,
    pingIntervalMs: v.pingInterval,
    requestRatePerSec: v.rate,
    getRatio: v.getRatio,
    keyspace: v.keyspace,
    confirm: v.confirm,
    rampTimeoutMs: v.rampTimeout,
    // Children end on their own even if this process is killed without a chance to stop them.
    maxLifetimeMs: v.rampTimeout + v.duration + v.connectTimeout + 60_000,
    onProgress: show,
  });
} catch (e) {
  fail((e as Error).message);
  throw e;
}

let interrupted = false;
let wake: () => void = () => {};
const interruptedP = new Promise<void>((resolve) => (wake = resolve));
const onSignal = () => {
  if (interrupted) return;
  interrupted = true;
  phase = "stopping";
  wake();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

await Promise.race([run.ramped(), interruptedP]);
phase = v.mode === "idle" ? "hold" : "traffic";
run.startTraffic();
if (!interrupted) await Promise.race([Bun.sleep(v.duration), interruptedP]);
phase = "stopping";
const report = await run.stop();
if (v.progress && tty) process.stderr.write("\n");
if (v.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
else process.stdout.write(formatLoadReport(report));
process.exit(report.connections.reached === report.connections.target && report.processes.died.length === 0 ? 0 : 1);
