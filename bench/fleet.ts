/**
 * `bun run fleet`: the deployment shape of docs/deploy.md, built and exercised on one machine.
 *
 * In network namespaces standing in for machines (bench/fleet/lab.ts, always removed): Debian's
 * haproxy in front (mode tcp, send-proxy-v2, health checks on each node's /readyz), N myriad
 * nodes (`bun run serve`, the KV app, --proxy-protocol, --bus), a redis-server as the bus, and
 * client processes on a client machine that subscribe through the balancer. Then, in order:
 *
 *  1. spread: connections per node against an even share; every node saw the clients' own
 *     addresses (CLIENT INFO's addr= equals the client socket's local address);
 *  2. fan-out: messages published through the balancer (so on one node) reach every subscriber
 *     on every node once, in order; deliveries per second; the bus's added latency per publish;
 *  3. the bus killed and restarted, every node up: publishes fail over the window (-BUSDOWN,
 *     nothing delivered), nodes resubscribe, delivery across nodes resumes, nothing hangs;
 *  4. graceful stop of the last node: the balancer marks it down (its /readyz turns 503) while it
 *     still serves, then it closes; its clients reconnect to the others; the other nodes'
 *     clients miss nothing published meanwhile;
 *  5. a node killed (SIGKILL): the others keep serving and delivering.
 * What one more node adds: run it with --nodes 3 and --nodes 4 (bench/RESULTS.md).
 *
 * Prints a report (--json: one JSON object) and exits 0 when every check held.
 */
import { rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { Lab } from "./fleet/lab.ts";

const HELP = `Usage: bun run fleet [flags]

Builds HAProxy + N myriad nodes + a Redis bus in network namespaces (root needed), loads it
with subscribers through the balancer and checks spread, fan-out, graceful stop, a node kill
and a bus outage.

  --nodes <n>              myriad nodes behind the balancer (default 3, at least 2)
  --connections <n>        subscriber connections through the balancer (default 3000)
  --messages <n>           messages per publish round (default 100)
  --latency-samples <n>    publishes timed for the bus latency (default 200)
  --json                   print the report as one JSON object
  -h, --help               this text`;

const { values: flags } = parseArgs({
  options: {
    nodes: { type: "string", default: "3" },
    connections: { type: "string", default: "3000" },
    messages: { type: "string", default: "100" },
    "latency-samples": { type: "string", default: "200" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
function intFlag(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`fleet: --${name} ${v}: expected an integer >= ${min}`);
    process.exit(2);
  }
  return n;
}
const NODES = intFlag("nodes", flags.nodes!, 2);
const CONNECTIONS = intFlag("connections", flags.connections!, 1);
const MESSAGES = intFlag("messages", flags.messages!, 1);
const LATENCY_SAMPLES = intFlag("latency-samples", flags["latency-samples"]!, 1);
const PORT = 6380;
const ADMIN_PORT = 9180;
const TOKEN = `fleet-${process.pid}`;
/**
 * Connections planned per haproxy process, and its maxconn: each connection costs it two
 * descriptors and ulimit -n is 20,000. The plan leaves room above it because the kernel
 * spreads new connections over the processes (SO_REUSEPORT) unevenly, and a process at
 * maxconn stops accepting (the publisher's connection would wait behind the subscribers).
 */
const PER_HAPROXY = 7_000;
const HAPROXY_MAXCONN = 9_500;
/** Connections one client process holds (ulimit -n 20,000). */
const PER_CLIENT = 15_000;
/** Ports of one source address towards one destination (the lab's port range is 1024-65535). */
const PER_SOURCE = 60_000;
/**
 * The balancer's check: every 500 ms, down after 2 failures, and a check may take 5 s. On
 * this 2-core machine every role shares the cores, and a node fanning out a burst can hold
 * its loop (and its admin server) for a second or more: a 2 s check timeout took healthy
 * nodes out of the balancer. Production nodes have the headroom for docs/deploy.md's 300 ms.
 */
const HEALTH_INTER_MS = 500;
const HEALTH_FALL = 2;
/**
 * A stopping node stays serving, but unready, this long: well past the balancer's
 * inter × fall (1 s here, more when checks queue behind a busy loop), as docs/deploy.md advises.
 */
const DRAIN_MS = 5_000;

for (const tool of ["haproxy", "redis-server", "ip", "curl"]) {
  if (!Bun.which(tool)) {
    console.error(`fleet: ${tool} not found: apt-get install haproxy redis-server iproute2 curl`);
    process.exit(2);
  }
}

/** Whether this serve has protected mode (the flag to turn it off for the lab's clients). */
const PROTECTED_MODE_FLAG = Bun.spawnSync([process.execPath, `${import.meta.dir}/../src/cli/serve.ts`, "--help"]).stdout.toString().includes("--protected-mode");

const log = (s: string) => {
  if (!flags.json) console.log(s);
};
const report: Record<string, unknown> = { nodes: NODES, connections: CONNECTIONS, messages: MESSAGES };
const failures: string[] = [];
function expectThat(ok: boolean, what: string): void {
  if (!ok) failures.push(what);
  log(`  ${ok ? "ok  " : "FAIL"} ${what}`);
}

const procs: { name: string; proc: ReturnType<typeof Bun.spawn> }[] = [];
const lab = new Lab();
const haproxyConfigs: string[] = [];
const cleanup = () => {
  for (const path of haproxyConfigs) rmSync(path, { force: true });
  for (const p of procs) {
    try {
      p.proc.kill("SIGKILL");
    } catch {
      // gone
    }
  }
  lab.close();
};
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});
process.on("SIGTERM", () => {
  cleanup();
  process.exit(143);
});
process.on("SIGHUP", () => {
  cleanup();
  process.exit(129);
});

try {
  await main();
} catch (err) {
  failures.push(`fleet run failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
} finally {
  cleanup();
}
report.failures = failures;
report.ok = failures.length === 0;
if (flags.json) console.log(JSON.stringify(report));
else console.log(failures.length === 0 ? "fleet: every check held" : `fleet: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
process.exit(failures.length === 0 ? 0 : 1);

async function main(): Promise<void> {
  const haproxies = Math.ceil((CONNECTIONS + 10) / PER_HAPROXY);
  const clientProcs = Math.ceil(CONNECTIONS / PER_CLIENT);
  const clientSources = Math.ceil(CONNECTIONS / PER_SOURCE);
  const bus = lab.add("bus");
  const lb = lab.add("lb", Math.ceil(CONNECTIONS / NODES / PER_SOURCE));
  const nodes = Array.from({ length: NODES }, (_, i) => lab.add(`n${i + 1}`));
  const cl = lab.add("cl", clientSources);
  const sources = lab.extraAddresses("cl", clientSources);
  log(`fleet: lab up: bus ${bus.address}, balancer ${lb.address} (${haproxies} haproxy process${haproxies > 1 ? "es" : ""}), nodes ${nodes.slice(0, NODES).map((n) => n.address).join(", ")}, clients ${cl.address} (${clientProcs} process${clientProcs > 1 ? "es" : ""})`);

  // The bus.
  const busProc = spawn("bus", [...lab.on("bus"), "redis-server", "--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--loglevel", "warning"]);
  await waitFor(() => sh([...lab.on("bus"), "redis-cli", "-p", "6379", "PING"]).includes("PONG"), 10_000, "the bus redis-server");

  const nodeProcs = new Map<string, ReturnType<typeof Bun.spawn>>();
  const startNode = async (name: string) => {
    const p = spawn(name, [
      ...lab.on(name), process.execPath, "src/cli/serve.ts",
      "--host", "0.0.0.0", "--port", String(PORT),
      "--proxy-protocol", "--bus", `redis://${bus.address}:6379`,
      // The clients reach the nodes from the lab's addresses, not loopback: no password here.
      ...(PROTECTED_MODE_FLAG ? ["--protected-mode", "no"] : []),
      "--admin-host", "0.0.0.0", "--admin-port", String(ADMIN_PORT), "--admin-token", TOKEN,
      "--drain-delay-ms", `${DRAIN_MS}ms`, "--stop-timeout-ms", "5s",
    ]);
    nodeProcs.set(name, p);
    await waitFor(() => readyz(name) === 200, 20_000, `node ${name} ready`);
  };
  for (const n of nodes.slice(0, NODES)) await startNode(n.name);

  // The balancer.
  for (let k = 0; k < haproxies; k++) {
    const cfg = haproxyConfig(nodes.slice(0, NODES), lb.address, k, lab.extraAddresses("lb", Math.ceil(CONNECTIONS / NODES / PER_SOURCE)));
    const path = `/tmp/myriad-fleet-${process.pid}-haproxy-${k}.cfg`;
    await Bun.write(path, cfg);
    haproxyConfigs.push(path);
    spawn(`haproxy-${k}`, [...lab.on("lb"), "haproxy", "-db", "-f", path]);
  }
  await waitFor(() => haproxyUp(0).size === NODES, 15_000, "haproxy sees every node UP");

  // Spread and real addresses.
  const clients = Array.from({ length: clientProcs }, (_, i) => new ClientProc(`client-${i}`));
  const t0 = performance.now();
  for (let i = 0; i < clientProcs; i++) {
    const n = Math.floor(CONNECTIONS / clientProcs) + (i < CONNECTIONS % clientProcs ? 1 : 0);
    await clients[i]!.call(`connect ${lb.address} ${PORT} ${n} ${sources.join(",")}`);
  }
  await waitFor(async () => (await sumReports(clients)).subscribed === CONNECTIONS, 120_000, `${CONNECTIONS} subscribers`);
  const rampS = (performance.now() - t0) / 1000;
  const reports = await sumReports(clients);
  const perNode = nodes.slice(0, NODES).map((n) => nodeConnections(n.name));
  const even = CONNECTIONS / NODES;
  const spread = Math.max(...perNode.map((c) => Math.abs(c - even) / even));
  report.spread = { perNode, maxDeviation: round(spread, 3), rampPerS: Math.round(CONNECTIONS / rampS) };
  log(`spread: ${perNode.join(" / ")} connections (even share ${even.toFixed(0)}, largest deviation ${(spread * 100).toFixed(1)}%), ${Math.round(CONNECTIONS / rampS)}/s ramp`);
  expectThat(perNode.reduce((a, b) => a + b, 0) === CONNECTIONS, `the nodes hold all ${CONNECTIONS} connections`);
  expectThat(spread <= 0.1, "connections within 10% of even over the nodes");
  expectThat(reports.addrOk === CONNECTIONS && reports.addrBad === 0, `every node saw the client's own address (addr ok ${reports.addrOk}, wrong ${reports.addrBad})`);

  // Fan-out through the bus.
  let seq = 0;
  const round1 = await publishRound(clients, lb.address, seq + 1, seq + MESSAGES);
  seq += MESSAGES;
  report.fanout = round1;
  report.busAfterFanout = Object.fromEntries(nodes.slice(0, NODES).map((n) => [n.name, nodeStats(n.name)?.bus ?? null]));
  log(`fan-out: ${MESSAGES} messages to ${CONNECTIONS} subscribers on ${NODES} nodes: ${round1.deliveries} deliveries in ${round1.ms} ms = ${round1.perS.toLocaleString()}/s`);
  expectThat(round1.complete === CONNECTIONS, `every subscriber got every message once, in order (${round1.complete}/${CONNECTIONS})`);

  const lat = await clients[0]!.call(`latency ${nodes[0]!.address} ${PORT} ${nodes[1]!.address} ${PORT} ${LATENCY_SAMPLES}`);
  report.busLatency = lat;
  log(`bus latency: local delivery p50 ${fmt(lat.localP50Ms)} ms, other node p50 ${fmt(lat.remoteP50Ms)} ms: the bus adds p50 ${fmt(lat.addedP50Ms)} ms, p90 ${fmt(lat.addedP90Ms)} ms (${lat.samples} samples)`);
  expectThat(lat.samples === LATENCY_SAMPLES, `every latency probe arrived on both nodes (${lat.samples}/${LATENCY_SAMPLES})`);

  // The bus down and back, every node up: nodes must resubscribe and deliver across again.
  busProc.kill("SIGKILL");
  await busProc.exited;
  await waitFor(() => nodesAlive(nodeProcs).every((n) => busUp(n) === false), 10_000, "every node to see the bus down");
  await waitFor(() => nodesAlive(nodeProcs).every((n) => haproxyUp(0).has(n)), 30_000, "the balancer to route to every live node");
  const duringOutage = await clients[0]!.call(`publish ${lb.address} ${PORT} ${seq + 1} ${seq + 10}`);
  seq += 10;
  const stillServing = nodesAlive(nodeProcs).every((n) => readyz(n) === 200);
  const busRestart = spawn("bus", [...lab.on("bus"), "redis-server", "--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--loglevel", "warning"]);
  void busRestart;
  const down = performance.now();
  await waitFor(() => nodesAlive(nodeProcs).every((n) => busUp(n) === true), 30_000, "every node to resubscribe to the bus");
  const resubscribedMs = performance.now() - down;
  const after = await publishRound(clients, lb.address, seq + 1, seq + MESSAGES);
  seq += MESSAGES;
  report.busAfterOutage = Object.fromEntries(nodesAlive(nodeProcs).map((n) => [n, nodeStats(n)?.bus ?? null]));
  report.busOutage = { publishesDuringOutage: duringOutage, resubscribedMs: Math.round(resubscribedMs), after };
  log(`bus outage: ${duringOutage.errors}/${duringOutage.published} publishes answered an error while down; nodes resubscribed ${Math.round(resubscribedMs)} ms after the restart; then ${after.complete}/${CONNECTIONS} got every message`);
  expectThat(duringOutage.replies === duringOutage.published, "every publish during the outage was answered (nothing hung)");
  expectThat(duringOutage.errors === duringOutage.published, "publishes during the outage failed with an error reply");
  expectThat(stillServing, "nodes stayed ready for the balancer while the bus was down");
  expectThat(after.complete === CONNECTIONS, "after the bus came back every subscriber got every message");

  // Graceful stop of the last node while messages keep flowing.
  const stopped = nodes[NODES - 1]!;
  const firstDuring = seq + 1;
  for (const c of clients) await c.call("mark");
  const stoppedConnections = nodeConnections(stopped.name);
  const stoppedProc = nodeProcs.get(stopped.name)!;
  const stopAt = performance.now();
  stoppedProc.kill("SIGTERM");
  let markedDownMs = -1;
  let connectionsWhenMarkedDown = -1;
  const pumping = (async () => {
    while (stoppedProc.exitCode === null && stoppedProc.signalCode === null) {
      if (markedDownMs < 0 && !haproxyUp(0).has(stopped.name)) {
        markedDownMs = performance.now() - stopAt;
        connectionsWhenMarkedDown = nodeConnections(stopped.name);
      }
      await clients[0]!.call(`publish ${nodes[0]!.address} ${PORT} ${seq + 1} ${seq + 10} proxy`);
      seq += 10;
      await Bun.sleep(50);
    }
  })();
  await waitFor(() => stoppedProc.exitCode !== null || stoppedProc.signalCode !== null, 30_000, `node ${stopped.name} to stop`);
  await pumping;
  const exitedMs = performance.now() - stopAt;
  await waitFor(async () => (await sumReports(clients)).subscribed === CONNECTIONS, 60_000, "the stopped node's clients resubscribed elsewhere");
  const lastDuring = seq;
  // The last publishes may still be on their way through the bus: wait for them (bounded).
  await waitFor(async () => {
    const c = await clientChecks(clients, firstDuring, lastDuring);
    return c.stayersIncomplete === 0;
  }, 10_000, "the stop window's messages at the other nodes' clients").catch(() => {});
  const checkStop = await clientChecks(clients, firstDuring, lastDuring);
  const rs = await sumReports(clients);
  report.gracefulStop = {
    markedDownMs: Math.round(markedDownMs),
    exitedMs: Math.round(exitedMs),
    connectionsWhenMarkedDown,
    stoppedNodeConnections: stoppedConnections,
    reconnected: checkStop.reconnected,
    stayersIncomplete: checkStop.stayersIncomplete,
  };
  log(`graceful stop of ${stopped.name}: balancer marked it down after ${Math.round(markedDownMs)} ms while it still held ${connectionsWhenMarkedDown} connections; it exited after ${Math.round(exitedMs)} ms; ${checkStop.reconnected} clients reconnected`);
  expectThat(markedDownMs >= 0 && connectionsWhenMarkedDown > 0, "the balancer marked the stopping node down before it closed its connections");
  expectThat(rs.subscribed === CONNECTIONS, "every client of the stopped node reconnected to another node");
  expectThat(checkStop.reconnected === stoppedConnections, `the stopped node's clients, and only they, reconnected (${checkStop.reconnected} of its ${stoppedConnections})`);
  expectThat(checkStop.stayersIncomplete === 0, `the other nodes' clients missed nothing published during the stop (${checkStop.stayersIncomplete} missed some)`);

  // A node killed.
  if (NODES >= 3) {
    const killed = nodes[NODES - 2]!;
    nodeProcs.get(killed.name)!.kill("SIGKILL");
    await waitFor(() => !haproxyUp(0).has(killed.name), 10_000, `haproxy marks ${killed.name} down`);
    await waitFor(async () => (await sumReports(clients)).subscribed === CONNECTIONS, 60_000, "the killed node's clients resubscribed elsewhere");
    const r = await publishRound(clients, lb.address, seq + 1, seq + MESSAGES);
    seq += MESSAGES;
    report.nodeKilled = r;
    log(`node ${killed.name} killed: the others deliver ${r.complete}/${CONNECTIONS}`);
    expectThat(r.complete === CONNECTIONS, "after a node was killed every client (reconnected or not) gets every new message");
  }

  for (const c of clients) await c.call("quit").catch(() => {});
}

async function publishRound(clients: ClientProc[], host: string, from: number, to: number) {
  const before = await sumReports(clients);
  const pub = await clients[0]!.call(`publish ${host} ${PORT} ${from} ${to}`);
  await waitFor(async () => (await clientChecks(clients, from, to)).complete === CONNECTIONS, 60_000, `messages ${from}..${to} at every subscriber`).catch(() => {});
  const afterR = await sumReports(clients);
  const checks = await clientChecks(clients, from, to);
  const deliveries = afterR.deliveries - before.deliveries;
  const ms = Math.max(1, afterR.lastDeliveryMs - pub.publishStartedMs);
  return { published: pub.published, errors: pub.errors, deliveries, ms: Math.round(ms), perS: Math.round((deliveries / ms) * 1000), complete: checks.complete };
}

async function clientChecks(clients: ClientProc[], from: number, to: number) {
  const sum = { complete: 0, incomplete: 0, reconnected: 0, stayersIncomplete: 0 };
  for (const c of clients) {
    const r = await c.call(`check ${from} ${to}`);
    sum.complete += r.complete;
    sum.incomplete += r.incomplete;
    sum.reconnected += r.reconnected;
    sum.stayersIncomplete += r.stayersIncomplete;
  }
  return sum;
}

async function sumReports(clients: ClientProc[]) {
  const sum = { connections: 0, open: 0, subscribed: 0, addrOk: 0, addrBad: 0, reconnects: 0, deliveries: 0, lastDeliveryMs: 0 };
  for (const c of clients) {
    const r = await c.call("report");
    for (const k of ["connections", "open", "subscribed", "addrOk", "addrBad", "reconnects", "deliveries"] as const) sum[k] += r[k];
    sum.lastDeliveryMs = Math.max(sum.lastDeliveryMs, r.lastDeliveryMs);
  }
  return sum;
}

/** A client process on the client machine, driven one command per line. */
class ClientProc {
  private readonly proc;
  private buf = "";
  private readonly waiting: ((v: any) => void)[] = [];
  constructor(name: string) {
    this.proc = spawn(name, [...lab.on("cl"), process.execPath, "bench/fleet/client.ts"], "pipe");
    void this.read();
  }
  private async read(): Promise<void> {
    const reader = (this.proc.stdout as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      this.buf += dec.decode(value);
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiting.shift()?.(JSON.parse(line));
      }
    }
  }
  call(line: string): Promise<any> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client: no answer to "${line}" in 120 s`)), 120_000);
      this.waiting.push((v) => {
        clearTimeout(timer);
        if (v && v.error) reject(new Error(`client: ${line}: ${v.error}`));
        else resolve(v);
      });
      (this.proc.stdin as import("bun").FileSink).write(line + "\n");
      (this.proc.stdin as import("bun").FileSink).flush();
    });
  }
}

function haproxyConfig(nodes: { name: string; address: string }[], address: string, k: number, sources: string[]): string {
  // Each server line may use another source address of the balancer: one address has ~64k
  // ports towards one node, and a node of more connections than that needs more of them.
  const servers = nodes.flatMap((n) =>
    (sources.length > 1 ? sources : [""]).map((src, i) =>
      `    server ${n.name}${sources.length > 1 ? `-${i}` : ""} ${n.address}:${PORT} send-proxy-v2 check port ${ADMIN_PORT} inter ${HEALTH_INTER_MS}ms fall ${HEALTH_FALL} rise 2${src ? ` source ${src}` : ""}`,
    ),
  );
  return `global
    maxconn ${HAPROXY_MAXCONN}
    log stdout format raw local0 err

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout check 5s
    retries 3
    option redispatch

frontend kv
    bind ${address}:${PORT}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
${servers.join("\n")}

listen stats
    mode http
    bind 127.0.0.1:${8404 + k}
    stats enable
    stats uri /stats
`;
}

/** Node names (without a "-i" source suffix) that haproxy process k reports UP. */
function haproxyUp(k: number): Set<string> {
  const csv = sh([...lab.on("lb"), "curl", "-s", "--max-time", "5", `http://127.0.0.1:${8404 + k}/stats;csv`]);
  const up = new Set<string>();
  for (const line of csv.split("\n")) {
    const f = line.split(",");
    if (f[0] === "nodes" && f[1] !== "BACKEND" && f[17]?.startsWith("UP")) up.add(f[1]!.replace(/-\d+$/, ""));
  }
  return up;
}

/** The node's /stats (a node busy fanning out may answer late: a few tries), or null. */
function nodeStats(name: string): any {
  for (let attempt = 0; attempt < 3; attempt++) {
    const body = sh([...lab.on(name), "curl", "-s", "--max-time", "5", "-H", `authorization: Bearer ${TOKEN}`, `http://127.0.0.1:${ADMIN_PORT}/stats`]);
    try {
      return JSON.parse(body);
    } catch {
      // not answered in time: try again
    }
  }
  return null;
}
function nodeConnections(name: string): number {
  return nodeStats(name)?.totals?.connections ?? -1;
}
function busUp(name: string): boolean | undefined {
  return nodeStats(name)?.bus?.up;
}
function readyz(name: string): number {
  return Number(sh([...lab.on(name), "curl", "-s", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${ADMIN_PORT}/readyz`]) || 0);
}
function nodesAlive(nodeProcs: Map<string, ReturnType<typeof Bun.spawn>>): string[] {
  return [...nodeProcs].filter(([, p]) => p.exitCode === null && p.signalCode === null).map(([n]) => n);
}

function spawn(name: string, argv: string[], stdio: "pipe" | "ignore" = "ignore") {
  const proc = Bun.spawn(argv, { stdin: stdio === "pipe" ? "pipe" : "ignore", stdout: stdio === "pipe" ? "pipe" : "ignore", stderr: "inherit", cwd: `${import.meta.dir}/..` });
  procs.push({ name, proc });
  return proc;
}

function sh(argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "ignore" });
  return r.stdout.toString();
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(50);
  }
}

function round(x: number, d: number): number {
  return Math.round(x * 10 ** d) / 10 ** d;
}
function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : "n/a";
}
