/**
 * What one accepted connection costs a server worker: c1m's two kinds of worker (myriad's
 * echo worker and bench/c1m-raw-worker.ts, both under runCluster with one worker on
 * --ports ports), opened --connections times by --client-procs client processes (each
 * connection sends one byte and waits for the echo, as c1m's confirm does, then stays open
 * idle), held --hold-ms, then closed by the clients.
 *
 *   bun bench/accept.ts [--connections 15000] [--client-procs 3] [--ports 4] [--rounds 3] [--hold-ms 2000]
 *                       [--stats-ms 500]   (the workers' stats reports: c1m's --sample, 500 ms)
 *                       [--env NAME=VALUE]... (extra environment for both kinds of worker, e.g. BUN_JSC_ options)
 *                       [--ftl no|yes|auto]  (ClusterOptions.ftl for both kinds; default no, what a c1m run's
 *                                             tens of workers per CPU get; auto: the supervisor's rule for 1 worker)
 *                       [--latency]          (measureLatency on in the myriad worker; c1m turns it off)
 *
 * Reported per kind (median over rounds, with min-max): the worker's CPU time per connection
 * while they open (from /proc/<pid>/stat: utime + stime, 10 ms resolution), while they are
 * held idle (CPU ms per second: wake-ups, stats reports, GC), and while they close; the open
 * rate; the worker's RSS growth per connection. CPU time per connection is the figure that
 * holds on a machine shared with other work: rates there say as much about the neighbours.
 */
import { join } from "node:path";
import { runCluster } from "../src/cluster/index.ts";
import { readdirSync, readFileSync } from "node:fs";
import { cpuMs, intFlag, median, rssBytes } from "./lib/measure.ts";

/** CPU ms of pid's threads by name (JITWorker, HeapHelper, ...; the main thread is "main"), since they started. */
function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const name = tid === String(pid) ? "main" : readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      out.set(name, (out.get(name) ?? 0) + ((Number(f[11]) + Number(f[12])) * 1000) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Process pid's user-mode CPU time in ms (utime: what its JavaScript and Bun's runtime cost, not the kernel's socket work). */
function userMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[11]) * 1000) / 100;
}

const args = process.argv.slice(2);
const ROOT = join(import.meta.dir, "..");
const HOST = "127.0.0.1";
/** --raw-entry: another baseline worker script (to measure what one Bun.listen feature costs). */
const rawEntryAt = args.indexOf("--raw-entry");
const rawEntry = rawEntryAt >= 0 ? args[rawEntryAt + 1] : undefined;
const ftlAt = args.indexOf("--ftl");
const ftl = ftlAt >= 0 ? args[ftlAt + 1]! : "no";
if (!["no", "yes", "auto"].includes(ftl)) throw new Error(`--ftl takes no, yes or auto, got ${ftl}`);
const latency = args.includes("--latency");




// ---- client role: n connections to ports, each confirmed by one echo; "close" closes all ----

async function client(ports: number[], n: number): Promise<void> {
  const byte = new Uint8Array([120]);
  let confirmed = 0;
  let closed = 0;
  const sockets: import("bun").Socket<number>[] = [];
  let next = 0;
  const window = 256;
  let inFlight = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => (done = r));
  const open = (): void => {
    while (inFlight < window && next < n) {
      const k = next++;
      inFlight++;
      void Bun.connect<number>({
        hostname: HOST,
        port: ports[k % ports.length]!,
        data: k,
        socket: {
          binaryType: "uint8array",
          open: (s) => void s.write(byte),
          data() {
            inFlight--;
            if (++confirmed === n) done();
            open();
          },
          close() {
            closed++;
          },
          error() {},
        },
      }).then((s) => sockets.push(s), (e) => console.error(`connect: ${e}`));
    }
  };
  open();
  await all;
  process.stdout.write(JSON.stringify({ confirmed }) + "\n");
  for await (const line of console) {
    if (line.trim() === "close") {
      for (const s of sockets) s.end();
      for (let i = 0; i < 6000 && closed < n; i++) await Bun.sleep(5);
      process.stdout.write(JSON.stringify({ closed }) + "\n");
      process.exit(0);
    }
  }
}

// ---- parent ------------------------------------------------------------------------------

interface Round {
  openCpuUs: number;
  /** Of openCpuUs, user mode. */
  openUserUs: number;
  rate: number;
  idleCpuMsPerS: number;
  closeCpuUs: number;
  closeUserUs: number;
  /** CPU of the JIT compiler threads over the worker's whole life, per connection. */
  jitUs: number;
  rssPerConn: number;
}

async function round(kind: "myriad" | "raw", n: number, procs: number, nPorts: number, holdMs: number, statsMs: number, env: Record<string, string>): Promise<Round> {
  const base = 7400 + Math.floor(Math.random() * 400) * 4;
  const cluster = await runCluster({
    workers: 1,
    listen: Array.from({ length: nPorts }, (_, i) => ({ hostname: HOST, port: base + i })),
    app: { kind: "echo" },
    workerEntry: kind === "raw" ? (rawEntry ?? join(ROOT, "bench", "c1m-raw-worker.ts")) : undefined,
    statsIntervalMs: statsMs,
    restart: false,
    env,
    ...(ftl === "auto" ? {} : { ftl: ftl === "yes" }),
    server: { measureLatency: latency },
  });
  const pid = cluster.pids()[0]!;
  const ports = Array.from({ length: nPorts }, (_, i) => base + i);
  try {
    await Bun.sleep(500);
    const rss0 = rssBytes(pid);
    const cpu0 = cpuMs(pid);
    const user0 = userMs(pid);
    const t0 = performance.now();
    const kids = Array.from({ length: procs }, (_, p) =>
      Bun.spawn([process.execPath, import.meta.path, "--role", "client", ports.join(","), String(Math.floor(n / procs) + (p < n % procs ? 1 : 0))], {
        stdin: "pipe",
        stdout: "pipe",
        stderr: "inherit",
      }),
    );
    const readers = kids.map((k) => (k.stdout as ReadableStream<Uint8Array>).getReader());
    const dec = new TextDecoder();
    const nextLine = async (i: number): Promise<any> => {
      const { value } = await readers[i]!.read();
      return JSON.parse(dec.decode(value).trim());
    };
    for (let i = 0; i < procs; i++) await nextLine(i);
    const openMs = performance.now() - t0;
    const cpu1 = cpuMs(pid);
    const user1 = userMs(pid);
    await Bun.sleep(holdMs);
    const cpu2 = cpuMs(pid);
    const user2 = userMs(pid);
    const rss1 = rssBytes(pid);
    for (const k of kids) {
      (k.stdin as import("bun").FileSink).write("close\n");
      (k.stdin as import("bun").FileSink).flush();
    }
    for (let i = 0; i < procs; i++) await nextLine(i);
    for (let i = 0; i < 2000 && cluster.totals().connections > 0; i++) await Bun.sleep(5);
    const cpu3 = cpuMs(pid);
    const user3 = userMs(pid);
    const threads = threadCpuMs(pid);
    for (const k of kids) k.kill();
    return {
      openCpuUs: ((cpu1 - cpu0) * 1000) / n,
      openUserUs: ((user1 - user0) * 1000) / n,
      rate: n / (openMs / 1000),
      idleCpuMsPerS: (cpu2 - cpu1) / (holdMs / 1000),
      closeCpuUs: ((cpu3 - cpu2) * 1000) / n,
      closeUserUs: ((user3 - user2) * 1000) / n,
      jitUs: ((threads.get("JITWorker") ?? 0) * 1000) / n,
      rssPerConn: (rss1 - rss0) / n,
    };
  } finally {
    await cluster.stop({ graceful: false });
  }
}


async function main(): Promise<void> {
  const at = args.indexOf("--role");
  if (at >= 0) return client(args[at + 2]!.split(",").map(Number), Number(args[at + 3]));
  const n = intFlag(args, "--connections", 15_000);
  const procs = intFlag(args, "--client-procs", 3);
  const nPorts = intFlag(args, "--ports", 4);
  const rounds = intFlag(args, "--rounds", 3);
  const holdMs = intFlag(args, "--hold-ms", 2000);
  const statsMs = intFlag(args, "--stats-ms", 500);
  const env: Record<string, string> = {};
  args.forEach((a, i) => {
    if (a !== "--env") return;
    const [k, ...v] = (args[i + 1] ?? "").split("=");
    if (!k || v.length === 0) throw new Error(`--env takes NAME=VALUE, got ${args[i + 1]}`);
    env[k] = v.join("=");
  });
  if (Object.keys(env).length > 0) console.error(`worker environment: ${JSON.stringify(env)}`);
  const results: Record<string, Round[]> = { myriad: [], raw: [] };
  for (let r = 0; r < rounds; r++) {
    for (const kind of ["raw", "myriad"] as const) {
      const x = await round(kind, n, procs, nPorts, holdMs, statsMs, env);
      results[kind]!.push(x);
      console.error(`round ${r + 1} ${kind}: ${JSON.stringify(x, (_k, v) => (typeof v === "number" ? Math.round(v * 100) / 100 : v))}`);
    }
  }
  console.log(`${n} connections over ${nPorts} ports, ${procs} client processes, ${rounds} rounds; median (min-max)`);
  const row = (label: string, pick: (x: Round) => number, digits: number) => {
    const cells = (["raw", "myriad"] as const).map((k) => {
      const xs = results[k]!.map(pick);
      return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`.padEnd(26);
    });
    console.log(`${label.padEnd(30)} ${cells.join(" ")}`);
  };
  console.log(`${"".padEnd(30)} ${"raw".padEnd(26)} myriad`);
  row("open: worker CPU us/conn", (x) => x.openCpuUs, 1);
  row("  of which user mode", (x) => x.openUserUs, 1);
  row("open rate conn/s", (x) => x.rate, 0);
  row("held idle: worker CPU ms/s", (x) => x.idleCpuMsPerS, 1);
  row("close: worker CPU us/conn", (x) => x.closeCpuUs, 1);
  row("  of which user mode", (x) => x.closeUserUs, 1);
  row("JIT threads: CPU us/conn", (x) => x.jitUs, 1);
  row("worker RSS B/conn", (x) => x.rssPerConn, 0);
}

await main();
process.exit(0);
