/**
 * Regenerates bench/results/dashboard.png: the admin dashboard, open in headless chromium
 * for the whole run, of a server under real load.
 *
 *   bun bench/dashboard-screenshot.ts            # 3,000 connections, 90 s of load
 *   bun bench/dashboard-screenshot.ts --quick    # 500 connections, 15 s
 *   options: --connections N --seconds S --out path.png
 *
 * The server (a child process) is a small cache front: a `lines` protocol server whose every
 * request line `k` runs INCR k on a real redis-server through myriad's pooled RESP client,
 * so the pool panel shows a real pool. Its idle timeout is short, so idle closes happen.
 * The load (this process) ramps the connections up and holds them: a tenth are busy (a
 * request every 100 ms), most send a heartbeat every 10 s, one in twenty stays silent and is
 * closed by the server's idle timeout (and replaced), and a few per second are closed by the
 * client and replaced (peer closes). Without
 * redis-server on PATH the pool is left out and requests are echoed.
 * Needs chromium (`apt-get install -y chromium`). Every child is stopped by pid.
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";

if (process.argv[2] === "--role-server") await runServer(Number(process.argv[3]));
else await main();

async function runServer(redisPort: number): Promise<void> {
  const { createServer } = await import("../src/reactor/index.ts");
  const { createRespClient } = await import("../src/pool/index.ts");
  const { startAdminServer, serverSource } = await import("../src/admin/index.ts");
  const redis = redisPort > 0 ? createRespClient({ port: redisPort, pool: { max: 4, min: 2 } }) : null;
  const server = await createServer({
    port: 0,
    hostname: "127.0.0.1",
    protocol: "lines",
    idleTimeoutMs: 20_000,
    handler: {
      message(conn, frame: Uint8Array) {
        if (!redis) {
          conn.write(frame);
          conn.write("\n");
          return;
        }
        const ref = conn.ref();
        const key = new TextDecoder().decode(frame);
        redis.send(["INCR", key]).then(
          (n) => ref.write(`${String(n)}\n`),
          () => ref.write("-ERR upstream\n"),
        );
      },
    },
  });
  const admin = await startAdminServer({ port: 0, source: serverSource(server, { pools: redis ? { redis: redis.pool } : {} }) });
  process.stdout.write(JSON.stringify({ port: server.port, adminPort: admin.port }) + "\n");
  process.on("SIGTERM", () => {
    void Promise.all([server.stop({ graceful: false }), admin.stop(), redis?.close()]).finally(() => process.exit(0));
  });
}

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: "boolean", default: process.env.BENCH_QUICK === "1" },
      connections: { type: "string" },
      seconds: { type: "string" },
      out: { type: "string", default: join(import.meta.dir, "results/dashboard.png") },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log("usage: bun bench/dashboard-screenshot.ts [--quick] [--connections N] [--seconds S] [--out path.png]");
    return;
  }
  const connections = Number(values.connections ?? (values.quick ? 500 : 3000));
  const seconds = Number(values.seconds ?? (values.quick ? 15 : 90));
  for (const [flag, v] of [["connections", connections], ["seconds", seconds]] as const) {
    if (!Number.isInteger(v) || v <= 0) {
      console.error(`--${flag} accepts a positive integer`);
      process.exit(2);
    }
  }

  const children: Bun.Subprocess[] = [];
  type Kind = "busy" | "heartbeat" | "silent";
  const kindOf = (i: number): Kind => (i % 10 === 0 ? "busy" : i % 20 === 1 ? "silent" : "heartbeat");
  const sockets = new Set<Bun.Socket<{ kind: Kind; phase: number }>>();
  let browser: { close(): Promise<void> } | null = null;
  let timers: Timer[] = [];
  try {
    let redisPort = 0;
    if (Bun.which("redis-server")) {
      redisPort = freePort();
      const redis = Bun.spawn(["redis-server", "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdout: "ignore", stderr: "inherit" });
      children.push(redis);
      for (let i = 0; i < 100; i++) {
        const ok = await Bun.connect({ hostname: "127.0.0.1", port: redisPort, socket: { data() {} } }).then((s) => (s.end(), true), () => false);
        if (ok) break;
        await Bun.sleep(50);
      }
    } else {
      console.warn("redis-server not found (apt-get install redis-server): the pool panel will be empty");
    }

    const server = Bun.spawn(["bun", import.meta.path, "--role-server", String(redisPort)], { stdout: "pipe", stderr: "inherit" });
    children.push(server);
    const reader = server.stdout.getReader();
    let buf = "";
    while (!buf.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("server exited before listening");
      buf += new TextDecoder().decode(value);
    }
    const { port, adminPort } = JSON.parse(buf.slice(0, buf.indexOf("\n"))) as { port: number; adminPort: number };

    const { launchBrowser } = await import("../tests/helpers/browser.ts");
    const b = await launchBrowser({ width: 1400, height: 1000 });
    browser = b;
    await b.page.goto(`http://127.0.0.1:${adminPort}/`);

    const open = async (kind: Kind) => {
      const s = await Bun.connect<{ kind: Kind; phase: number }>({
        hostname: "127.0.0.1",
        port,
        data: { kind, phase: Math.floor(Math.random() * 100) },
        socket: {
          data() {},
          close(sock) {
            sockets.delete(sock);
          },
          error() {},
        },
      });
      sockets.add(s);
    };
    const started = Date.now();
    const rampMs = Math.min(20_000, (seconds * 1000) / 3);
    let opened = 0;
    let key = 0;
    // Ramp: open connections in steps over rampMs.
    timers.push(
      setInterval(() => {
        const target = Math.min(connections, Math.ceil((connections * (Date.now() - started)) / rampMs));
        const batch: Promise<void>[] = [];
        while (opened < target) batch.push(open(kindOf(opened++)).catch(() => {}));
        void Promise.all(batch);
      }, 100),
    );
    // Busy connections send a request every 100 ms; each heartbeat connection one every 10 s.
    let beat = 0;
    timers.push(
      setInterval(() => {
        beat++;
        for (const s of sockets) {
          if (s.data.kind === "busy" || (s.data.kind === "heartbeat" && beat % 100 === s.data.phase)) s.write(`k${key++ % 1000}\n`);
        }
      }, 100),
    );
    // Churn after the ramp: a few peer closes per second, and replacements for those and for
    // the connections the server closed as idle.
    timers.push(
      setInterval(() => {
        if (Date.now() - started < rampMs) return;
        let n = 0;
        for (const s of sockets) {
          if (n++ >= 5) break;
          s.end();
        }
        const missing = Math.min(connections - sockets.size, 500);
        for (let i = 0; i < missing; i++) void open(kindOf(opened++)).catch(() => {});
      }, 1000),
    );

    const endAt = started + seconds * 1000;
    while (Date.now() < endAt) {
      await Bun.sleep(Math.min(5000, endAt - Date.now()));
      process.stdout.write(`\r${Math.round((Date.now() - started) / 1000)}s, ${sockets.size} connections   `);
    }
    process.stdout.write("\n");
    mkdirSync(dirname(values.out), { recursive: true });
    await b.page.screenshot({ path: values.out, fullPage: true });
    const shown = await b.page.textContent("#connections");
    console.log(`wrote ${values.out} (dashboard showed ${shown} connections; client held ${sockets.size})`);
  } finally {
    for (const t of timers) clearInterval(t);
    timers = [];
    for (const s of sockets) s.end();
    await browser?.close();
    for (const c of children.reverse()) if (c.exitCode === null) c.kill("SIGTERM");
    await Promise.all(children.map((c) => c.exited));
  }
  if (!existsSync(values.out)) process.exit(1);
}
