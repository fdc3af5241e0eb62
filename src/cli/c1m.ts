/**
 * `bun run c1m --connections 1000000 --hold 60`: the one-machine million-connection
 * experiment (src/loadgen/c1m.ts). Starts server workers (myriad's reactor, then raw
 * Bun.listen as the baseline) and load processes, ramps, holds, measures, tears everything
 * down by pid, and writes bench/results/c1m-<date>.{json,svg,md}.
 * Exit 0 when every phase reached and held the target with nothing left running, 1 otherwise.
 */
import { join } from "node:path";
import { countOrAuto, defineCommand, runCommand } from "../config/index.ts";
import { parsePorts } from "../cluster/index.ts";
import { parseAddresses, runC1m, tunSupport, type C1mClient, type ServerKind } from "../loadgen/index.ts";
import { diagnose, readPageBytes, readSlabinfo, readSystemLimits } from "../system/index.ts";
import { countOrAutoError, loadClientFlags } from "./load-flags.ts";

const ROOT = join(import.meta.dir, "..", "..");

/** Most server workers or load processes --workers and --loaders accept (as runCluster). */
const MAX_PROCESSES = 4096;

const shared = loadClientFlags({
  connectWindow: 4096,
  connectWindowHelp:
    "connects in flight over all load processes (capped at 128 per listener: workers × ports × 128, as Bun listens with a backlog of 512)",
  connectTimeoutMs: 15_000,
  retries: 3,
  confirmHelp:
    "count a connection only after one echo round trip, so the connect window also bounds the servers' accept queues (default: on with the tun client, off with sockets, where it ramps about 3x slower)",
});

const command = defineCommand({
  name: "c1m",
  summary:
    "The one-machine million-connection experiment: server workers and load processes on this machine, ramp, hold, measure (connections, ramp rate, server userland bytes per connection, kernel bytes per socket, machine memory per connection), for myriad's workers and raw Bun.listen workers; writes JSON, an SVG chart and a Markdown summary.",
  flags: {
    connections: { type: "int", short: "c", min: 1, max: 10_000_000, default: 1_000_000, help: "target concurrent connections (100k, 1m accepted)" },
    hold: { type: "string", default: "60", help: "how long to hold them: seconds (60) or a duration (500ms, 90s, 2m), at most 1h", placeholder: "<seconds|duration>" },
    servers: { type: "list", choices: ["myriad", "raw"], default: ["myriad", "raw"], help: "server kinds to measure, in order (--protocol websocket: myriad only)" },
    protocol: {
      type: "enum",
      choices: ["echo", "websocket"],
      default: "echo",
      help: "echo: TCP echo workers; websocket: ws-echo workers, each connection upgraded and counted once the 101 and an echoed message came (needs confirm)",
    },
    client: {
      type: "enum",
      choices: ["auto", "tun", "sockets"],
      default: "auto",
      help: "load client: tun = userland TCP on TUN devices in a network namespace of its own (one kernel socket per connection, the server's; needs root and /dev/net/tun), sockets = kernel sockets over loopback (two per connection); auto = tun where possible",
    },
    workers: { type: "string", default: "auto", help: "server workers per phase: a number or auto (ulimit -n, reusePort balance, one per CPU)" },
    loaders: { type: "string", default: "auto", help: "load processes: a number or auto (ulimit -n, one per CPU)" },
    ports: { type: "string", default: "7100-7103", help: "ports every worker listens on (0.0.0.0), e.g. 7100-7103" },
    destinations: { type: "string", default: "127.0.0.1-127.0.0.4", help: "destination addresses the load spreads over (loopback)" },
    perSource: shared.perSource,
    connectWindow: shared.connectWindow,
    connectRate: shared.connectRate,
    connectTimeout: shared.connectTimeout,
    retries: shared.retries,
    confirm: shared.confirm,
    rampTimeout: { type: "duration-ms", min: 1000, max: 3_600_000, default: 0, help: "give up ramping after this long (default max(60s, 4 × connections/20,000 s))" },
    sample: { type: "duration-ms", min: 50, max: 60_000, default: 500, help: "time-series sample period" },
    outDir: { type: "string", default: "bench/results", help: "directory for c1m-<date>.json/.svg/.md" },
    json: { type: "bool", help: "print the result JSON on stdout (progress on stderr)" },
    force: { type: "bool", help: "run even when doctor says the machine is not ready" },
  },
  epilog: [
    "Examples:",
    "  bun run c1m --connections 100k --hold 10       # about a minute",
    "  bun run c1m --connections 1m --hold 60         # the headline run (needs ~13 GiB free; see bun run doctor -c 1m)",
    "  bun run c1m -c 50k --hold 5 --servers raw",
    "  bun run c1m -c 1m --protocol websocket         # a million upgraded WebSocket connections",
  ].join("\n"),
});

const { values: v, sources } = runCommand(command);
const fail = (msg: string): never => {
  process.stderr.write(`c1m: ${msg}\n`);
  process.exit(2);
};
/** "60" = 60 s; "500ms", "90s", "2m" as written. */
function parseHold(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  const ms = m ? Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "m" ? 60_000 : 1000) : NaN;
  if (!(ms >= 0 && ms <= 3_600_000)) return fail(`--hold must be seconds (60) or a duration like 500ms, 90s, 2m, at most 1h; got "${s}"`);
  return Math.round(ms);
}
const hold = parseHold(v.hold);
const websocket = v.protocol === "websocket";
// Raw Bun.listen workers speak no WebSocket: with websocket the default is myriad alone.
const servers = (websocket && (sources.servers === undefined || sources.servers === "default") ? ["myriad"] : v.servers) as ServerKind[];
if (websocket && servers.includes("raw")) fail("--protocol websocket measures myriad only: --servers raw workers do not speak WebSocket");
if (websocket && sources.confirm !== undefined && sources.confirm !== "default" && v.confirm === false)
  fail("--protocol websocket needs --confirm: the upgrade and an echoed message are how a connection is opened and counted");

/** undefined for auto: runC1m plans it. */
const countOf = (name: string, s: string): number | undefined => {
  const n = countOrAuto(s, MAX_PROCESSES) ?? fail(countOrAutoError(name, MAX_PROCESSES, s));
  return n === "auto" ? undefined : n;
};
// Every flag is checked before the machine is: a bad value is reported whatever the machine's state.
const workers = countOf("workers", v.workers);
const loaders = countOf("loaders", v.loaders);
let ports: number[] = [];
let destinations: string[] = [];
try {
  ports = parsePorts(v.ports);
  if (ports.includes(0)) fail("--ports must be fixed ports (not 0): the load processes need them before the servers start");
  destinations = parseAddresses(v.destinations, "--destinations", 4096);
} catch (e) {
  fail((e as Error).message);
}

let client: C1mClient;
if (v.client === "sockets") client = "sockets";
else {
  const support = tunSupport();
  if (support.ok) client = "tun";
  else if (v.client === "tun") client = fail(`--client tun: ${support.why}`);
  else {
    process.stderr.write(`c1m: the TUN client is not available (${support.why}); using kernel sockets on loopback: two sockets per connection\n`);
    client = "sockets";
  }
}

const limits = readSystemLimits();
// The plan doctor makes for this client (the TUN client holds no socket, no descriptor and no port).
const report = diagnose(limits, { connections: v.connections, client, slabs: readSlabinfo(undefined, readPageBytes()) });
if (!report.ready && !v.force) {
  const bad = report.checks.filter((c) => c.status === "fail").map((c) => `${c.title}: ${c.fix ?? c.detail}`);
  fail(`the machine is not ready for ${v.connections} connections (bun run doctor -c ${v.connections} --client ${client}): ${bad.join("; ")} — or pass --force`);
}

// Ctrl-C / SIGTERM: tear down by pid and write what was measured; a second signal exits at once
// (the workers and load processes then end on their own when their IPC channel closes).
const abort = new AbortController();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write(`c1m: ${sig}: tearing down (signal again to exit at once)\n`);
    abort.abort();
  });
}

const rampTimeoutMs = v.rampTimeout > 0 ? v.rampTimeout : Math.max(60_000, Math.ceil((4 * v.connections) / 20_000) * 1000);
const result = await runC1m({
  connections: v.connections,
  holdMs: hold,
  servers,
  protocol: websocket ? "websocket" : "echo",
  client,
  workers,
  loaders,
  ports,
  destinations,
  perSource: v.perSource,
  connectWindow: v.connectWindow,
  connectRatePerSec: v.connectRate,
  connectTimeoutMs: v.connectTimeout,
  retries: v.retries,
  // Unset: the client decides (see the flag).
  confirm: websocket ? true : sources.confirm === undefined || sources.confirm === "default" ? undefined : v.confirm,
  rampTimeoutMs,
  sampleMs: v.sample,
  outDir: v.outDir.startsWith("/") ? v.outDir : join(ROOT, v.outDir),
  rawWorkerEntry: join(ROOT, "bench", "c1m-raw-worker.ts"),
  log: (line) => process.stderr.write(line + "\n"),
  signal: abort.signal,
});
if (v.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
else process.stdout.write(`c1m: wrote ${result.files.md}, ${result.files.json}, ${result.files.svg}\n`);
const ok = result.phases.every(
  (p) => p.reached >= p.target && p.lostDuringHold === 0 && p.leftovers.length === 0 && p.loadersDied.length === 0 && p.workersDied.length === 0,
);
process.exit(result.interrupted ? 130 : ok ? 0 : 1);
