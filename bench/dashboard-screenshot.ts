/**
 * Regenerates bench/results/dashboard.png: the admin dashboard of `bun run serve`, open in
 * headless chromium for the whole run, while `bun run load` drives real request traffic.
 *
 *   bun bench/dashboard-screenshot.ts            # 3,000 connections, 90 s
 *   bun bench/dashboard-screenshot.ts --quick    # 600 connections, 30 s
 *   options: --connections N --seconds S --rate R --workers W --out path.png
 *
 * What runs (every child is stopped by pid):
 * - redis-server on a free loopback port (the upstream);
 * - `bun run serve --app tests/fixtures/pool-app.ts`: a RESP proxy whose every request goes
 *   to redis through myriad's pooled RESP client; the app registers that Pool, so the pool
 *   chart shows a real pool (one request in flight per upstream connection, 4 connections:
 *   borrowed is the requests in flight upstream, waiting what is over 4); idle timeout a
 *   quarter of the run;
 * - `bun run load --mode rr --protocol resp` with 70% of the connections, GET/SET of 256-byte
 *   values at --rate requests per second for the whole run (accepts, bytes, request
 *   latency, pool use);
 * - `bun run load --mode idle` with the other 30%, from a fifth of the run: silent
 *   connections the server closes as idle (closes by reason);
 * - one client that pipelines 7 GETs of a 1 MiB value and reads nothing for a while: the
 *   replies fill the kernel's buffers and then the server's write queue (write-queue chart,
 *   a paused connection), drained when it reads again.
 * The screenshot is taken at nine tenths of the run, while the rr load still runs.
 * Needs redis-server and chromium (`apt-get install -y redis-server chromium`).
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";

const ROOT = join(import.meta.dir, "..");
const TOKEN = "dashboard-screenshot";

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** A RESP command as bytes. */
function command(...args: string[]): Uint8Array {
  return new TextEncoder().encode(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
}

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: "boolean", default: process.env.BENCH_QUICK === "1" },
    connections: { type: "string" },
    seconds: { type: "string" },
    rate: { type: "string" },
    workers: { type: "string", default: "1" },
    out: { type: "string", default: join(import.meta.dir, "results/dashboard.png") },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (values.help) {
  console.log("usage: bun bench/dashboard-screenshot.ts [--quick] [--connections N] [--seconds S] [--rate R] [--workers W] [--out path.png]");
  process.exit(0);
}
const num = (flag: string, v: string | undefined, dflt: number): number => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${flag} accepts a positive integer, got ${v}`);
    process.exit(2);
  }
  return n;
};
const connections = num("connections", values.connections, values.quick ? 600 : 3000);
const seconds = num("seconds", values.seconds, values.quick ? 30 : 90);
const rate = num("rate", values.rate, values.quick ? 2000 : 5000);
const workers = num("workers", values.workers, 1);
for (const tool of ["redis-server"]) {
  if (!Bun.which(tool)) {
    console.error(`${tool} not found: apt-get install -y redis-server`);
    process.exit(1);
  }
}

const children: Bun.Subprocess[] = [];
/** Stops every child by pid: SIGTERM, then SIGKILL after 10 s. */
async function stopAll(): Promise<void> {
  for (const c of [...children].reverse()) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  const killer = setTimeout(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }, 10_000);
  await Promise.all(children.map((c) => c.exited));
  clearTimeout(killer);
}
process.on("SIGINT", () => void stopAll().finally(() => process.exit(130)));

let browser: { close(): Promise<void> } | null = null;
let stuck: Bun.Socket<undefined> | null = null;
let shown = "";
try {
  const redisPort = freePort();
  children.push(
    Bun.spawn(["redis-server", "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"], {
      stdout: "ignore",
      stderr: "inherit",
    }),
  );
  await waitUntil("redis-server", () => Bun.connect({ hostname: "127.0.0.1", port: redisPort, socket: { data() {} } }).then((s) => (s.end(), true)));

  const port = freePort();
  const adminPort = freePort();
  const idleMs = Math.round((seconds * 1000) / 4);
  const serve = Bun.spawn(
    [
      process.execPath, "run", "serve",
      "--app", "tests/fixtures/pool-app.ts",
      "--workers", String(workers),
      "--port", String(port),
      "--admin-port", String(adminPort),
      "--admin-token", TOKEN,
      "--idle-timeout-ms", `${idleMs}ms`,
      "--max-connections", String(connections + 100),
    ],
    {
      cwd: ROOT,
      stdout: "ignore",
      stderr: "inherit",
      env: { ...process.env, MYRIAD_POOL_APP_UPSTREAM_PORT: String(redisPort), MYRIAD_POOL_APP_MAX: "4", MYRIAD_POOL_APP_DEPTH: "1" },
    },
  );
  children.push(serve);
  const admin = `http://127.0.0.1:${adminPort}`;
  await waitUntil("serve's admin server", async () => (await fetch(`${admin}/readyz`)).ok);
  await waitUntil("serve's port", () => Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then((s) => (s.end(), true)));

  const { launchBrowser } = await import("../tests/helpers/browser.ts");
  const b = await launchBrowser({ width: 1400, height: 1000 });
  browser = b;
  await b.page.goto(`${admin}/?token=${TOKEN}`);

  const started = Date.now();
  const at = (fraction: number) => Bun.sleep(Math.max(0, started + fraction * seconds * 1000 - Date.now()));
  const load = (args: string[]) => {
    const p = Bun.spawn([process.execPath, "run", "load", "-t", `127.0.0.1:${port}`, "--no-progress", ...args], { cwd: ROOT, stdout: "ignore", stderr: "inherit" });
    children.push(p);
    return p;
  };
  const rrConnections = Math.round(connections * 0.7);
  const rr = load([
    "-c", String(rrConnections),
    "--mode", "rr",
    "--protocol", "resp",
    "--rate", String(rate),
    "--payload-bytes", "256",
    "--connect-rate", String(Math.max(50, Math.round(rrConnections / (seconds * 0.15)))),
    "--duration", `${seconds}s`,
  ]);

  await at(0.2);
  const idle = load(["-c", String(connections - rrConnections), "--mode", "idle", "--duration", `${Math.round(seconds * 0.5)}s`, "--connect-rate", "200"]);

  // The stuck reader's value, 1 MiB, stored in redis directly.
  await new Promise<void>((resolve, reject) => {
    void Bun.connect({
      hostname: "127.0.0.1",
      port: redisPort,
      socket: {
        data(sock, d) {
          if (new TextDecoder().decode(d).startsWith("+OK")) resolve();
          else reject(new Error(`SET big: ${new TextDecoder().decode(d)}`));
          sock.end();
        },
        open(sock) {
          sock.write(command("SET", "big", "v".repeat(1 << 20)));
        },
        error(_s, e) {
          reject(e);
        },
      },
    }).catch(reject);
  });

  await at(0.3);
  // The stuck reader: 7 pipelined GETs of the 1 MiB value, replies not read for a while:
  // the kernel takes a few MiB, the rest queues (under the 8 MiB hard limit, which would close it).
  stuck = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, error() {} } });
  stuck.pause();
  const get = command("GET", "big");
  for (let i = 0; i < 7; i++) stuck.write(get);
  await at(0.42);
  stuck.resume();
  await at(0.5);
  stuck.end();
  stuck = null;

  while (Date.now() < started + 0.9 * seconds * 1000) {
    await Bun.sleep(Math.min(5000, started + 0.9 * seconds * 1000 - Date.now()));
    process.stdout.write(`\r${Math.round((Date.now() - started) / 1000)}s of ${seconds}s   `);
  }
  process.stdout.write("\n");
  mkdirSync(dirname(values.out), { recursive: true });
  await b.page.screenshot({ path: values.out, fullPage: true });
  shown = (await b.page.textContent("#connections")) ?? "";
  const stats = (await (await fetch(`${admin}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
    totals: { connections: number; accepted: number; closed: Record<string, number>; framesIn: number };
    pools: Array<{ name: string; stats: { acquired: number; size: number } }>;
  };
  console.log(
    `wrote ${values.out}: the dashboard showed ${shown} connections; server: ${stats.totals.connections} open, ${stats.totals.accepted} accepted, ` +
      `closed ${JSON.stringify(stats.totals.closed)}, ${stats.totals.framesIn} requests; pools ${stats.pools.map((p) => `${p.name} size ${p.stats.size} acquired ${p.stats.acquired}`).join(", ")}`,
  );
  await Promise.all([rr.exited, idle.exited].map((e) => Promise.race([e, Bun.sleep(1)])));
} finally {
  stuck?.end();
  await browser?.close();
  await stopAll();
}
if (!existsSync(values.out)) process.exit(1);
