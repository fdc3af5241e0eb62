/**
 * Does the admin server slow the data path? Echo throughput of one server process with its
 * admin server idle ("off") against the same process while the admin server is polled
 * ("on"): /stats and /metrics once a second each, as an open dashboard and a Prometheus
 * scrape would (or the real dashboard in headless chromium with --browser). Phases alternate
 * off, on, on, off, ... in one run, so drift (thermal, neighbours) cancels out. Goal: "on"
 * within 2% of "off".
 *
 *   bun bench/admin-overhead.ts            # 4 rounds x 2 phases x 10 s, 64 connections
 *   bun bench/admin-overhead.ts --quick    # 2 rounds x 2 phases x 2 s (a smoke run)
 *   bun bench/admin-overhead.ts --browser  # poll with the real dashboard in chromium
 *   options: --connections N --seconds S --rounds R --message-bytes B --depth D --json
 *
 * Processes: this one (coordinator and poller), one echo server with its admin server, one
 * load client (pipelined echo over raw TCP, D messages in flight per connection). Every
 * child is stopped by pid.
 */
import { parseArgs } from "node:util";

const role = process.argv[2];
if (role === "--role-server") await runServer();
else if (role === "--role-client") await runClient();
else await runCoordinator();

// ---- server process ----------------------------------------------------------------------

async function runServer(): Promise<void> {
  const { createServer } = await import("../src/reactor/index.ts");
  const { createEchoApp } = await import("../src/apps/index.ts");
  const { startAdminServer, serverSource } = await import("../src/admin/index.ts");
  const app = createEchoApp({ protocol: "raw" });
  const server = await createServer({ port: 0, hostname: "127.0.0.1", protocol: app.protocol, handler: app.handler });
  const admin = await startAdminServer({ port: 0, host: "127.0.0.1", token: "", source: serverSource(server) });
  process.stdout.write(JSON.stringify({ port: server.port, adminPort: admin.port }) + "\n");
  process.on("SIGTERM", () => {
    void Promise.all([server.stop({ graceful: false }), admin.stop()]).finally(() => process.exit(0));
  });
}

// ---- load client process -------------------------------------------------------------------

/** Keeps `depth` messages of `messageBytes` in flight on each connection; on a line
 *  "measure <ms>" on stdin, reports echoed bytes over that many milliseconds. */
async function runClient(): Promise<void> {
  const [, , , portArg, connArg, msgArg, depthArg] = process.argv;
  const port = Number(portArg), connections = Number(connArg), messageBytes = Number(msgArg), depth = Number(depthArg);
  const inFlight = messageBytes * depth;
  const payload = new Uint8Array(inFlight).fill(120);
  let echoed = 0;
  type S = { pending: Uint8Array | null };
  const sockets: Array<Bun.Socket<S>> = [];
  const send = (s: Bun.Socket<S>, n: number) => {
    let left = n;
    while (left > 0) {
      const chunk = payload.subarray(0, Math.min(left, payload.length));
      if (s.data.pending) {
        const merged = new Uint8Array(s.data.pending.length + chunk.length);
        merged.set(s.data.pending);
        merged.set(chunk, s.data.pending.length);
        s.data.pending = merged;
      } else {
        const w = s.write(chunk);
        if (w < chunk.length) s.data.pending = chunk.slice(Math.max(0, w));
      }
      left -= chunk.length;
    }
  };
  for (let i = 0; i < connections; i++) {
    const s = await Bun.connect<S>({
      hostname: "127.0.0.1",
      port,
      data: { pending: null },
      socket: {
        data(sock, buf) {
          echoed += buf.length;
          send(sock, buf.length); // keep the same number of bytes in flight
        },
        drain(sock) {
          const p = sock.data.pending;
          if (!p) return;
          const w = sock.write(p);
          sock.data.pending = w < p.length ? p.slice(Math.max(0, w)) : null;
        },
        error() {},
        close() {},
      },
    });
    sockets.push(s);
  }
  for (const s of sockets) send(s, inFlight);
  process.stdout.write("ready\n");
  for await (const line of console) {
    const m = /^measure (\d+)$/.exec(line.trim());
    if (m) {
      const ms = Number(m[1]);
      const from = echoed, t0 = performance.now();
      await Bun.sleep(ms);
      const bytes = echoed - from, dt = performance.now() - t0;
      process.stdout.write(JSON.stringify({ bytes, ms: dt }) + "\n");
    } else if (line.trim() === "quit") {
      for (const s of sockets) s.end();
      process.exit(0);
    }
  }
}

// ---- coordinator -------------------------------------------------------------------------

async function readLine(reader: ReadableStreamDefaultReader<Uint8Array>, state: { buf: string }): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const nl = state.buf.indexOf("\n");
    if (nl >= 0) {
      const line = state.buf.slice(0, nl);
      state.buf = state.buf.slice(nl + 1);
      return line;
    }
    if (Date.now() > deadline) throw new Error("child did not answer within 60 s");
    const { value, done } = await reader.read();
    if (done) throw new Error("child exited early");
    state.buf += new TextDecoder().decode(value);
  }
}

async function runCoordinator(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: "boolean", default: process.env.BENCH_QUICK === "1" },
      browser: { type: "boolean", default: false },
      connections: { type: "string" },
      seconds: { type: "string" },
      rounds: { type: "string" },
      "message-bytes": { type: "string", default: "64" },
      depth: { type: "string", default: "8" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log("usage: bun bench/admin-overhead.ts [--quick] [--browser] [--connections N] [--seconds S] [--rounds R] [--message-bytes B] [--depth D] [--json]");
    return;
  }
  const num = (name: string, v: string | undefined, dflt: number) => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n <= 0) {
      console.error(`--${name} accepts a positive integer, got ${v}`);
      process.exit(2);
    }
    return n;
  };
  const connections = num("connections", values.connections, values.quick ? 16 : 64);
  const seconds = num("seconds", values.seconds, values.quick ? 2 : 10);
  const rounds = num("rounds", values.rounds, values.quick ? 2 : 4);
  const messageBytes = num("message-bytes", values["message-bytes"], 64);
  const depth = num("depth", values.depth, 8);

  const children: Bun.Subprocess[] = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  };
  process.on("SIGINT", () => {
    killAll();
    process.exit(130);
  });

  const server = Bun.spawn(["bun", import.meta.path, "--role-server"], { stdout: "pipe", stderr: "inherit" });
  children.push(server);
  let browser: { close(): Promise<void> } | null = null;
  try {
    const sr = server.stdout.getReader();
    const { port, adminPort } = JSON.parse(await readLine(sr, { buf: "" })) as { port: number; adminPort: number };
    const adminBase = `http://127.0.0.1:${adminPort}`;

    const client = Bun.spawn(["bun", import.meta.path, "--role-client", String(port), String(connections), String(messageBytes), String(depth)], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    children.push(client);
    const cr = client.stdout.getReader();
    const cstate = { buf: "" };
    if ((await readLine(cr, cstate)) !== "ready") throw new Error("client did not start");

    const measure = async (ms: number) => {
      client.stdin.write(`measure ${ms}\n`);
      client.stdin.flush();
      return JSON.parse(await readLine(cr, cstate)) as { bytes: number; ms: number };
    };

    // "on": poll like a dashboard plus a Prometheus scrape, or run the real page.
    let polling: Timer | null = null;
    let polls = 0;
    const startPolling = async () => {
      if (values.browser) {
        const { launchBrowser } = await import("../tests/helpers/browser.ts");
        browser = await launchBrowser();
        await (browser as unknown as { page: { goto(u: string): Promise<unknown> } }).page.goto(`${adminBase}/`);
        return;
      }
      const tick = () => {
        void Promise.all([fetch(`${adminBase}/stats`).then((r) => r.arrayBuffer()), fetch(`${adminBase}/metrics`).then((r) => r.arrayBuffer())]).then(() => polls++);
      };
      tick();
      polling = setInterval(tick, 1000);
    };
    const stopPolling = async () => {
      if (polling) clearInterval(polling);
      polling = null;
      if (browser) await browser.close();
      browser = null;
    };

    await measure(Math.min(2000, seconds * 1000)); // warm-up, discarded
    const off: number[] = [], on: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ["off", "on"] : ["on", "off"];
      for (const phase of order) {
        if (phase === "on") await startPolling();
        const m = await measure(seconds * 1000);
        if (phase === "on") await stopPolling();
        const mbps = m.bytes / (m.ms / 1000) / 1e6;
        (phase === "on" ? on : off).push(mbps);
        if (!values.json) console.log(`round ${r + 1} ${phase.padEnd(3)} ${mbps.toFixed(2)} MB/s echoed`);
      }
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const offMean = mean(off), onMean = mean(on);
    const deltaPct = ((onMean - offMean) / offMean) * 100;
    // How far apart the "off" rounds are from each other: a delta inside this is noise.
    const offSpreadPct = ((Math.max(...off) - Math.min(...off)) / offMean) * 100;
    const statsRes = await fetch(`${adminBase}/stats`);
    const totals = ((await statsRes.json()) as { totals: { connections: number } }).totals;
    const report = {
      connections,
      seconds,
      rounds,
      messageBytes,
      depth,
      poller: values.browser ? "chromium dashboard" : "fetch /stats + /metrics every 1 s",
      polls,
      serverConnections: totals.connections,
      offMBps: off,
      onMBps: on,
      offMeanMBps: offMean,
      onMeanMBps: onMean,
      deltaPct,
      offSpreadPct,
      withinGoal: Math.abs(deltaPct) <= 2,
    };
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else
      console.log(
        `admin off ${offMean.toFixed(2)} MB/s, on ${onMean.toFixed(2)} MB/s: ${deltaPct >= 0 ? "+" : ""}${deltaPct.toFixed(2)}% (goal: within 2%); off rounds spread ${offSpreadPct.toFixed(1)}% — ${report.poller}, ${connections} connections`,
      );
    client.stdin.write("quit\n");
    client.stdin.flush();
  } finally {
    await (browser as { close(): Promise<void> } | null)?.close();
    killAll();
    await Promise.all(children.map((c) => c.exited));
  }
}
