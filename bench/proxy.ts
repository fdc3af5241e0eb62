/**
 * The RESP proxy against nutcracker (twemproxy 0.5.0) in one run, the same configuration for
 * both (server_connections 1, ketama/fnv1a_64 over two redis-servers):
 *
 * 1. throughput: `redis-benchmark -t set,get,mget -c <50|1000> -P <1|16> --csv` against one
 *    redis-server directly, through nutcracker and through myriad's proxy, several rounds
 *    (the order rotates each round); per round the ratio myriad/nutcracker, reported as the
 *    median with its spread (min-max); rps columns are medians.
 * 2. idle clients: memory per idle client connection (RSS after - before, over N) and the
 *    upstream connections each redis-server sees (CLIENT LIST), with 10,000 idle clients for
 *    both proxies and 100,000 for myriad's (`bun run load` opens them over several processes
 *    and source addresses). At ulimit -n 20,000 one process cannot hold 100,000 sockets: the
 *    proxy then runs with --workers (each worker keeps its own server_connections), and with
 *    --workers --share-upstream (the workers share one hub's server_connections; its RSS is
 *    summed in).
 * 3. hop (--only hop): what --share-upstream's extra hop costs, `redis-benchmark -t set,get
 *    -c 50 -P 16` through `--workers 1` and `--workers 2 --share-upstream`, rounds alternating,
 *    the ratio per round and the proxy processes' CPU per request (workers + hub summed).
 *
 *   flock /work/bench.lock bun bench/proxy.ts            # full (several minutes)
 *   bun bench/proxy.ts --quick                           # a short end-to-end check
 *   bun bench/proxy.ts --only memory --idle 10000        # one part
 *   flock /work/bench.lock bun bench/proxy.ts --only throughput --clients 50 --tests set,get \
 *     --no-direct --builds before=/tmp/myriad-before --rounds 8   # another checkout beside this one
 *
 * --builds runs the proxy of other checkouts (their src/cli/proxy.ts) beside this one's in the
 * same rounds (the order rotating over all targets), each against nutcracker and against this
 * checkout's, with each proxy's CPU per request per round (median and min-max): a change's
 * cost measured back to back rather than across days.
 *
 * Pinning (as bench/resp.ts): the server side (the proxy under test and its redis-servers,
 * or the redis-server measured directly) on CPU 0, redis-benchmark on CPU 1; both proxies get
 * exactly the same treatment. Goals (issue 12): myriad >= 1.5x nutcracker at -P 16 and >= 1.0x
 * at -P 1; 100,000 idle clients on at most server_connections upstream connections per
 * server; about 1 KB or less per idle client. --check exits 1 when a throughput goal is missed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineCommand, runCommand } from "../src/config/index.ts";

const ROOT = join(import.meta.dir, "..");

const cmd = defineCommand({
  name: "bench/proxy.ts",
  usage: "bun bench/proxy.ts [flags]",
  summary: "redis-benchmark directly, through nutcracker and through myriad's proxy in one run; idle-client memory and upstream connections.",
  flags: {
    quick: { type: "bool", help: "short run: few requests, one round, 2,000 idle clients", env: "BENCH_QUICK" },
    only: { type: "enum", choices: ["all", "throughput", "memory", "hop"], default: "all", help: "which part to run (hop: not part of all)" },
    requests: { type: "int", default: 100_000, min: 1000, short: "n", help: "requests per test at -P 1 (x5 at -P 16); --quick: 10000" },
    clients: { type: "list", default: ["50", "1000"], help: "redis-benchmark -c values" },
    pipelines: { type: "list", default: ["1", "16"], help: "redis-benchmark -P values" },
    tests: { type: "list", default: ["set", "get", "mget"], help: "tests: redis-benchmark's own (-t set,get,...) and mget (redis-benchmark has none: MGET of 10 random keys as a command line)" },
    keyspace: { type: "int", default: 100_000, min: 1, help: "redis-benchmark -r: random keys over this many, so that keys spread over both servers" },
    rounds: { type: "int", default: 3, min: 1, max: 20, help: "rounds; --quick: 1" },
    idle: { type: "list", default: ["10000", "100000"], help: "idle client counts for the memory part (nutcracker only up to one process's ulimit -n)" },
    workers: { type: "int", default: 0, min: 0, max: 64, help: "proxy workers for the largest idle count (0: enough for ulimit -n)" },
    share: {
      type: "enum",
      choices: ["both", "only", "none"],
      default: "both",
      help: "idle counts beyond one process: run --workers without and with --share-upstream (both), only with it, or only without",
    },
    builds: { type: "list", default: [], help: "other checkouts whose proxy runs beside this one's in the throughput part: label=dir or dir" },
    direct: { type: "bool", default: true, help: "measure one redis-server directly too in the throughput part (--no-direct: not)" },
    pin: { type: "bool", default: true, help: "pin the server side to CPU 0 and redis-benchmark to CPU 1 (taskset)" },
    check: { type: "bool", help: "exit 1 when a throughput goal is missed" },
  },
});
const { values: opt } = runCommand(cmd);
const rounds = opt.quick ? 1 : opt.rounds;
const requests = opt.quick ? 10_000 : opt.requests;
const idleCounts = opt.quick ? [2000] : opt.idle.map(Number);

function need(tool: string, hint: string, path?: string): string {
  const p = Bun.which(tool) ?? (path !== undefined ? Bun.which(tool, { PATH: path }) : null);
  if (!p) {
    console.error(`bench/proxy.ts: ${tool} not found: ${hint}`);
    process.exit(1);
  }
  return p;
}
const redisBin = need("redis-server", "apt-get install redis-server");
const benchBin = need("redis-benchmark", "apt-get install redis-tools");
const nutBin = need("nutcracker", "apt-get install nutcracker", "/usr/sbin:/usr/local/sbin");
const tasksetBin = opt.pin && navigator.hardwareConcurrency >= 2 ? Bun.which("taskset") : null;
const onCpu = (cpu: number, argv: string[]): string[] => (tasksetBin === null ? argv : [tasksetBin, "-c", String(cpu), ...argv]);

const dir = mkdtempSync(join(tmpdir(), "bench-proxy-"));
const procs: Bun.Subprocess[] = [];
function spawn(argv: string[], opts: { stdout?: "pipe" | "ignore"; cwd?: string } = {}): Bun.Subprocess<"ignore", "pipe" | "ignore", "inherit"> {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: opts.stdout ?? "ignore", stderr: "inherit", ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) });
  procs.push(p);
  return p as Bun.Subprocess<"ignore", "pipe" | "ignore", "inherit">;
}
async function stop(p: Bun.Subprocess): Promise<void> {
  if (p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGTERM");
  const t = setTimeout(() => p.exitCode === null && p.signalCode === null && process.kill(p.pid, "SIGKILL"), 10_000);
  await p.exited;
  clearTimeout(t);
}
async function cleanup(): Promise<void> {
  await Promise.all(procs.map(stop));
  rmSync(dir, { recursive: true, force: true });
}
process.on("SIGINT", () => {
  void cleanup().then(() => process.exit(130));
});

/**
 * Ports below the ephemeral range: on a machine busy with other connections a port picked
 * free by binding 0 may be taken as a source port before the server binds it.
 */
let nextPort = 20_000 + (process.pid % 5000);
async function port(): Promise<number> {
  for (;;) {
    const p = nextPort++;
    try {
      const s = Bun.listen({ hostname: "0.0.0.0", port: p, socket: { data() {} } });
      s.stop(true);
      return p;
    } catch {
      // taken
    }
  }
}

async function waitListening(p: number, proc: Bun.Subprocess, name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode} before listening on ${p}`);
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port: p, socket: { data() {} } });
      s.end();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${name} not listening on ${p} after 30 s`);
      await Bun.sleep(25);
    }
  }
}

async function startRedis(): Promise<{ port: number; proc: Bun.Subprocess }> {
  const p = await port();
  const proc = spawn(onCpu(0, [redisBin, "--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", "--maxclients", "10000"]));
  await waitListening(p, proc, "redis-server");
  return { port: p, proc };
}

/** The one configuration both proxies run. */
function configYaml(listenPort: number, backends: number[], extra = ""): string {
  return (
    `bench:\n  listen: 0.0.0.0:${listenPort}\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  server_connections: 1\n${extra}` +
    `  servers:\n${backends.map((b, i) => `   - 127.0.0.1:${b}:1 r${i}\n`).join("")}`
  );
}

async function startNutcracker(backends: number[], extra = ""): Promise<{ port: number; proc: Bun.Subprocess }> {
  const p = await port();
  const file = join(dir, `nut-${p}.yml`);
  writeFileSync(file, configYaml(p, backends, extra));
  const proc = spawn(onCpu(0, [nutBin, "-c", file, "-s", String(await port()), "-a", "127.0.0.1", "-o", join(dir, `nut-${p}.log`)]));
  await waitListening(p, proc, "nutcracker");
  return { port: p, proc };
}

async function startMyriad(
  backends: number[],
  extra = "",
  workers = 1,
  share = false,
  root = ROOT,
): Promise<{ port: number; proc: Bun.Subprocess<"ignore", "pipe", "inherit">; pids: number[] }> {
  const p = await port();
  const file = join(dir, `myriad-${p}.yml`);
  writeFileSync(file, configYaml(p, backends, extra));
  const argv = [process.execPath, join(root, "src/cli/proxy.ts"), "--config", file, "--no-admin", "--workers", String(workers), ...(share ? ["--share-upstream"] : [])];
  const proc = spawn(onCpu(0, argv), { stdout: "pipe", cwd: root }) as Bun.Subprocess<
    "ignore",
    "pipe",
    "inherit"
  >;
  // The startup block names the pids (the workers' with --workers).
  let text = "";
  const reader = proc.stdout.getReader();
  const dec = new TextDecoder();
  const deadline = Date.now() + 60_000;
  while (!text.includes("stop: Ctrl-C")) {
    if (Date.now() > deadline) throw new Error(`myriad proxy did not start: ${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`myriad proxy exited: ${text}`);
    text += dec.decode(value);
  }
  reader.releaseLock();
  void proc.stdout.pipeTo(new WritableStream()).catch(() => {});
  const m = /workers \(pids ([\d, ]+)\)/.exec(text);
  const pids = m ? m[1]!.split(", ").map(Number) : [proc.pid];
  // --share-upstream: the hub is a proxy process too.
  const hub = /sharing hub pid (\d+)/.exec(text);
  if (hub) pids.push(Number(hub[1]));
  await waitListening(p, proc, "myriad proxy");
  return { port: p, proc, pids };
}

/** MGET of 10 random keys: redis-benchmark has no mget test, so it runs as a command line. */
const MGET = ["MGET", ...Array.from({ length: 10 }, () => "key:__rand_int__")];

/** redis-benchmark --csv → test → rps: its -t tests, then MGET when asked. */
async function benchmark(p: number, clients: string, pipeline: string, n: number, tests: readonly string[] = opt.tests): Promise<Map<string, number>> {
  const own = tests.filter((t) => t.toLowerCase() !== "mget");
  const runs: string[][] = [];
  const common = ["-h", "127.0.0.1", "-p", String(p), "-c", clients, "-n", String(n), "-P", pipeline, "-r", String(opt.keyspace), "--csv"];
  if (own.length > 0) runs.push([...common, "-t", own.join(",")]);
  if (own.length < tests.length) runs.push([...common, ...MGET]);
  const rps = new Map<string, number>();
  for (const args of runs) {
    const proc = Bun.spawn(onCpu(1, [benchBin, ...args]), { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`redis-benchmark exited with ${code}: ${err.trim()}`);
    for (const line of out.split("\n")) {
      const cells = line.trim().match(/"([^"]*)"/g)?.map((c) => c.slice(1, -1));
      if (!cells || cells.length < 2 || cells[0] === "test") continue;
      const v = Number(cells[1]);
      // "MGET key:__rand_int__ ..." → "MGET"
      if (Number.isFinite(v)) rps.set(cells[0]!.split(" ")[0]!, v);
    }
  }
  return rps;
}

function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-");
function printTable(header: string[], rows: string[][], numericFrom = 2): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= numericFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

let missed = false;

/** --builds: label and checkout directory of each other build ("label=dir", or "dir" labelled by its last path segment). */
const builds = opt.builds.map((b) => {
  const eq = b.indexOf("=");
  const dir = eq > 0 ? b.slice(eq + 1) : b;
  return { label: eq > 0 ? b.slice(0, eq) : dir.replace(/\/+$/, "").split("/").pop()!, dir };
});

/** "median (min-max)" of xs with `digits` decimals. */
function medRange(xs: number[], digits = 2, unit = ""): string {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return "-";
  const m = `${median(v).toFixed(digits)}${unit}`;
  return v.length > 1 ? `${m} (${Math.min(...v).toFixed(digits)}-${Math.max(...v).toFixed(digits)})` : m;
}

async function throughput(): Promise<void> {
  const direct = opt.direct ? await startRedis() : null;
  const a = await startRedis();
  const b = await startRedis();
  const nut = await startNutcracker([a.port, b.port]);
  const my = await startMyriad([a.port, b.port]);
  const others = [];
  for (const bd of builds) others.push({ ...bd, proc: await startMyriad([a.port, b.port], "", 1, false, bd.dir) });
  type Target = { name: string; port: number; pid: number };
  const targets: Target[] = [
    ...(direct === null ? [] : [{ name: "direct", port: direct.port, pid: direct.proc.pid }]),
    { name: "nutcracker", port: nut.port, pid: nut.proc.pid },
    { name: "myriad", port: my.port, pid: my.proc.pid },
    ...others.map((o) => ({ name: `myriad@${o.label}`, port: o.proc.port, pid: o.proc.proc.pid })),
  ];
  const proxies = targets.filter((t) => t.name !== "direct").map((t) => t.name);
  // The proxies' CPU (user + system) per request, per -c/-P: steadier than rps on a shared
  // machine. Summed over all rounds (s, n) and per round (us per request).
  const cpu = new Map<string, Record<string, { s: number; n: number; perRound: number[] }>>();
  console.log(
    `throughput: redis-benchmark -t ${opt.tests.join(",")} -r ${opt.keyspace} -c ${opt.clients.join("/")} -P ${opt.pipelines.join("/")}, -n ${requests} (x5 at -P >= 16), ${rounds} round(s); ` +
      `${targets.map((t) => `${t.name} pid ${t.pid}`).join(", ")}, backends pids ${a.proc.pid} ${b.proc.pid}; ` +
      (others.length > 0 ? `builds: myriad = ${ROOT}, ${others.map((o) => `myriad@${o.label} = ${o.dir}`).join(", ")}; ` : "") +
      (tasksetBin === null ? "unpinned" : "server side on CPU 0, redis-benchmark on CPU 1"),
  );
  // Warm-up (JIT, connections): one unmeasured pass through each.
  for (const t of targets) await benchmark(t.port, "50", "16", Math.max(1000, requests / 2));
  type Row = { test: string; c: string; p: string; rps: Record<string, number[]> };
  const rows = new Map<string, Row>();
  for (const c of opt.clients) {
    for (const p of opt.pipelines) {
      const n = Number(p) >= 16 ? requests * 5 : requests;
      const k = `-c ${c} -P ${p}`;
      const e: Record<string, { s: number; n: number; perRound: number[] }> = {};
      for (const name of proxies) e[name] = { s: 0, n: 0, perRound: [] };
      cpu.set(k, e);
      for (let r = 0; r < rounds; r++) {
        // Rotate who goes first: load on a shared machine drifts within a round.
        const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
        for (const t of order) {
          const cpu0 = t.name === "direct" ? 0 : cpuSeconds(t.pid);
          const res = await benchmark(t.port, c, p, n);
          if (t.name !== "direct") {
            const used = cpuSeconds(t.pid) - cpu0;
            e[t.name]!.s += used;
            e[t.name]!.n += n * res.size;
            e[t.name]!.perRound[r] = (used * 1e6) / (n * res.size);
          }
          for (const [test, v] of res) {
            const key = `${test} ${c} ${p}`;
            let row = rows.get(key);
            if (row === undefined) rows.set(key, (row = { test, c, p, rps: Object.fromEntries(targets.map((x) => [x.name, [] as number[]])) }));
            row.rps[t.name]![r] = v;
          }
        }
      }
    }
  }
  const ratiosOf = (row: Row, x: string, y: string) => row.rps[x]!.map((m, i) => m / row.rps[y]![i]!).filter(Number.isFinite);
  const table = [...rows.values()].map((row) => {
    const ratios = ratiosOf(row, "myriad", "nutcracker");
    const ratio = median(ratios);
    const goal = Number(row.p) >= 16 ? 1.5 : 1.0;
    const ok = ratio >= goal;
    if (!ok) missed = true;
    const spread = ratios.length > 1 ? `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}` : "-";
    return [row.test, row.c, row.p, direct === null ? "-" : fmt(median(row.rps.direct!)), fmt(median(row.rps.nutcracker!)), fmt(median(row.rps.myriad!)), `${ratio.toFixed(2)}x`, spread, `>= ${goal.toFixed(1)}x`, ok ? "ok" : "MISS"];
  });
  printTable(["test", "-c", "-P", "direct rps", "nutcracker rps", "myriad rps", "myriad/nutcracker", "spread", "goal", ""], table, 3);
  console.log("ratio: median of the per-round ratios (the two proxies back to back in each round); spread: their min-max; rps: medians over the rounds");
  if (others.length > 0) {
    const bt: string[][] = [];
    for (const row of rows.values()) {
      for (const name of proxies.filter((x) => x !== "nutcracker")) {
        bt.push([name, row.test, row.c, row.p, fmt(median(row.rps[name]!)), medRange(ratiosOf(row, name, "nutcracker"), 2, "x"), name === "myriad" ? "-" : medRange(ratiosOf(row, "myriad", name), 2, "x")]);
      }
    }
    console.log("\nbuilds side by side (same rounds):");
    printTable(["build", "test", "-c", "-P", "rps", "/nutcracker: median (min-max)", "myriad/this build: median (min-max)"], bt, 4);
  }
  console.log("\nproxy CPU (user + system) per request, lower is better; all tests and rounds summed, then median (min-max) of the per-round figures:");
  for (const [k, e] of cpu) {
    const us = (x: { s: number; n: number }) => (x.n > 0 ? (x.s * 1e6) / x.n : NaN);
    for (const name of proxies) {
      const vs = name === "nutcracker" ? "" : `   /nutcracker ${(us(e[name]!) / us(e.nutcracker!)).toFixed(2)}x`;
      const perRoundVsMyriad =
        name === "nutcracker" || name === "myriad" ? "" : `   myriad/this per round ${medRange(e.myriad!.perRound.map((m, i) => m / e[name]!.perRound[i]!), 3, "x")}`;
      console.log(`  ${k.padEnd(14)} ${name.padEnd(18)} ${us(e[name]!).toFixed(2)} us   per round ${medRange(e[name]!.perRound, 2, " us")}${vs}${perRoundVsMyriad}`);
    }
  }
  await Promise.all([...(direct === null ? [] : [direct]), a, b, nut, my, ...others.map((o) => o.proc)].map((x) => stop(x.proc)));
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** RSS of a process in bytes (VmRSS). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Established TCP connections whose local port is `p` (the proxy's clients). */
function clientsOn(p: number): number {
  const out = Bun.spawnSync(["ss", "-Htn", "state", "established", `( sport = :${p} )`]).stdout.toString();
  return out.split("\n").filter((l) => l.trim() !== "").length;
}

/** Client connections a redis-server holds (CLIENT LIST), without the asking one. */
async function redisClients(p: number): Promise<number> {
  const out = Bun.spawnSync(["redis-cli", "-p", String(p), "CLIENT", "LIST"]).stdout.toString();
  return out.split("\n").filter((l) => l.startsWith("id=")).length - 1;
}

async function idleRun(label: string, proxyPort: number, pids: number[], n: number, backends: number[], upstreamBefore: number[]): Promise<string[]> {
  await Bun.sleep(1000);
  const before = pids.map(rss);
  const holdS = Math.ceil(30 + n / 2000);
  const load = Bun.spawn(
    [process.execPath, join(ROOT, "src/cli/load.ts"), "-c", String(n), "-t", `127.0.0.1:${proxyPort}`, "--mode", "idle", "--protocol", "resp", "--confirm", "--duration", `${holdS}s`, "--ramp-timeout", "5m", "--json", "--no-progress"],
    { stdin: "ignore", stdout: "pipe", stderr: "ignore" },
  );
  procs.push(load);
  const deadline = Date.now() + 300_000;
  while (clientsOn(proxyPort) < n) {
    if (load.exitCode !== null || Date.now() > deadline) throw new Error(`${label}: ${clientsOn(proxyPort)} of ${n} idle clients connected`);
    await Bun.sleep(500);
  }
  await Bun.sleep(2000); // let allocations settle (the proxy allocates nothing per idle client itself)
  const held = clientsOn(proxyPort);
  const after = pids.map(rss);
  const upstream = await Promise.all(backends.map(redisClients));
  const delta = after.reduce((s, v, i) => s + v - before[i]!, 0);
  await stop(load);
  return [
    label,
    fmt(n),
    fmt(held),
    String(pids.length),
    `${(before.reduce((s, v) => s + v, 0) / 2 ** 20).toFixed(1)} MiB`,
    `${(after.reduce((s, v) => s + v, 0) / 2 ** 20).toFixed(1)} MiB`,
    `${Math.round(delta / n)} B`,
    upstream.map((u, i) => u - upstreamBefore[i]!).join(" / "),
  ];
}

async function memory(): Promise<void> {
  const a = await startRedis();
  const b = await startRedis();
  const backends = [a.port, b.port];
  const rows: string[][] = [];
  const perProcess = 19_000;
  // preconnect: each proxy process holds its server_connections from the start, whatever the clients do.
  const extra = "  preconnect: true\n";
  for (const n of idleCounts) {
    if (n <= perProcess) {
      const base = await Promise.all(backends.map(redisClients));
      const nut = await startNutcracker(backends, extra);
      rows.push(await idleRun("nutcracker", nut.port, [nut.proc.pid], n, backends, base));
      await stop(nut.proc);
    } else {
      rows.push(["nutcracker", fmt(n), "-", "-", "-", "-", "-", `(one process: at most ${fmt(perProcess)} at ulimit -n 20,000)`]);
    }
    const workers = n <= perProcess ? 1 : opt.workers > 0 ? opt.workers : Math.ceil((n * 1.15) / perProcess);
    const modes = workers === 1 ? [false] : opt.share === "both" ? [false, true] : [opt.share === "only"];
    for (const share of modes) {
      const base = await Promise.all(backends.map(redisClients));
      const my = await startMyriad(backends, extra, workers, share);
      rows.push(await idleRun(`myriad${workers > 1 ? ` (--workers ${workers}${share ? " --share-upstream" : ""})` : ""}`, my.port, my.pids, n, backends, base));
      await stop(my.proc);
      // The next proxy's upstream count starts from none of this one's.
      await waitUntil(async () => (await Promise.all(backends.map(redisClients))).every((c, i) => c <= base[i]!), 30_000);
    }
  }
  console.log("\nidle clients (bun run load --mode idle --protocol resp --confirm; one PING each, answered by the proxy), preconnect: true, server_connections 1:");
  printTable(["proxy", "clients", "held", "processes", "rss before", "rss with clients", "rss / client", "upstream conns (r0 / r1)"], rows, 1);
  console.log(
    "rss / client: (sum of the proxy processes' RSS with the clients - before) / clients (with --share-upstream: the workers and the hub); upstream conns: the proxy's connections each redis-server counts (CLIENT LIST)",
  );
  await Promise.all([a, b].map((x) => stop(x.proc)));
}

/** Polls cond every 200 ms until it holds or timeoutMs passes (then goes on: the table shows the counts). */
async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !(await cond())) await Bun.sleep(200);
}

/** --only hop: `--workers 2 --share-upstream` (one more hop) against `--workers 1`, -c 50 -P 16 SET/GET, rounds alternating. */
async function hop(): Promise<void> {
  const a = await startRedis();
  const b = await startRedis();
  const backends = [a.port, b.port];
  const single = await startMyriad(backends, "", 1);
  const shared = await startMyriad(backends, "", 2, true);
  const targets = [
    { name: "--workers 1", port: single.port, pids: single.pids },
    { name: "--workers 2 --share-upstream", port: shared.port, pids: shared.pids },
  ];
  const n = requests * 5;
  console.log(
    `\nhop: redis-benchmark -t set,get -r ${opt.keyspace} -c 50 -P 16 -n ${n}, ${rounds} round(s), order alternating; ` +
      `--workers 1 pid ${single.pids.join(" ")}, --workers 2 --share-upstream pids ${shared.pids.join(" ")} (workers, hub); ` +
      (tasksetBin === null ? "unpinned" : "proxies and redis-servers on CPU 0, redis-benchmark on CPU 1"),
  );
  const tests = ["set", "get"];
  for (const t of targets) await benchmark(t.port, "50", "16", Math.max(1000, requests / 2), tests);
  const rps: Record<string, Record<string, number[]>> = { SET: {}, GET: {} };
  const cpu: Record<string, { s: number; n: number }> = {};
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const cpu0 = t.pids.reduce((x, pid) => x + cpuSeconds(pid), 0);
      const res = await benchmark(t.port, "50", "16", n, tests);
      const c = (cpu[t.name] ??= { s: 0, n: 0 });
      c.s += t.pids.reduce((x, pid) => x + cpuSeconds(pid), 0) - cpu0;
      c.n += n * res.size;
      for (const [test, v] of res) ((rps[test] ??= {})[t.name] ??= [])[r] = v;
    }
  }
  const rows = Object.entries(rps).map(([test, byTarget]) => {
    const one = byTarget[targets[0]!.name]!;
    const two = byTarget[targets[1]!.name]!;
    const ratios = two.map((v, i) => v / one[i]!).filter(Number.isFinite);
    const spread = ratios.length > 1 ? `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}` : "-";
    return [test, fmt(median(one)), fmt(median(two)), `${median(ratios).toFixed(2)}x`, spread];
  });
  printTable(["test", "--workers 1 rps", "--workers 2 --share-upstream rps", "shared/single", "spread"], rows, 1);
  for (const t of targets) console.log(`  proxy CPU per request (all its processes), ${t.name}: ${((cpu[t.name]!.s * 1e6) / cpu[t.name]!.n).toFixed(2)} us`);
  await Promise.all([single, shared, a, b].map((x) => stop(x.proc)));
}

try {
  if (opt.only === "hop") await hop();
  else {
    if (opt.only !== "memory") await throughput();
    if (opt.only !== "throughput") await memory();
  }
} finally {
  await cleanup();
}
if (opt.quick) console.log("(quick run: small counts, one round; figures are indicative only)");
process.exit(opt.check && missed ? 1 : 0);
