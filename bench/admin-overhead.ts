/**
 * Does the admin server slow the data path? Echo throughput of one server process with its
 * admin server attached but unwatched ("off") against the same process while the dashboard
 * is open in headless chromium ("on"), polling /stats and /readyz once a second and drawing
 * its charts (or, with --fetch, /stats and /metrics fetched once a second each, as a
 * dashboard and a Prometheus scrape would). Phases alternate off, on, on, off, ... in one
 * run, so drift (thermal, neighbours) cancels out; each round's on/off ratio is taken and the
 * median ratio reported, with the spread of the rounds' ratios. Goal: within 2%.
 *
 *   bun bench/admin-overhead.ts            # 5 rounds x 2 phases x 10 s, 64 connections
 *   bun bench/admin-overhead.ts --quick    # 2 rounds x 2 phases x 2 s (a smoke run)
 *   options: --fetch --no-pin --connections N --seconds S --rounds R --message-bytes B --depth D --json
 *
 * Processes: this one (coordinator, and the browser it drives), one echo server with its
 * admin server, one load client (pipelined echo over raw TCP, D messages in flight per
 * connection). With 2 CPUs or more the server is pinned to CPU 0 and everything else (this
 * process, the client and chromium, which inherit it) to CPU 1 with taskset, as bench/resp.ts
 * does: floating, the scheduler now and then put the client or the browser on the server's
 * core, which moved a round's throughput far more than the admin server did. The browser
 * runs for the whole measurement, on about:blank during "off" phases, so that only the
 * dashboard page differs between phases. Every child is stopped by pid.
 */
import { readFileSync } from "node:fs";
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

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (USER_HZ 100). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime
}

/** The median of a non-empty list. (A function declaration: the role dispatch at the top runs before any const here is set.) */
function median(a: readonly number[]): number {
  const v = [...a].sort((x, y) => x - y);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

async function runCoordinator(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: "boolean", default: process.env.BENCH_QUICK === "1" },
      fetch: { type: "boolean", default: false },
      browser: { type: "boolean", default: false },
      control: { type: "boolean", default: false },
      "no-pin": { type: "boolean", default: false },
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
    console.log(
      "usage: bun bench/admin-overhead.ts [--quick] [--fetch] [--control] [--no-pin] [--connections N] [--seconds S] [--rounds R] [--message-bytes B] [--depth D] [--json]\n" +
        "  default poller: the dashboard in headless chromium (--browser, kept for older scripts); --fetch: /stats + /metrics every second\n" +
        "  --control: 'on' phases poll nothing (an A/A run: the spread of identical phases, the noise floor the ratio is read against)",
    );
    return;
  }
  if (values.fetch && values.browser) {
    console.error("--fetch and --browser choose the poller: give one");
    process.exit(2);
  }
  const useBrowser = !values.fetch;
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
  const rounds = num("rounds", values.rounds, values.quick ? 2 : 5);
  const messageBytes = num("message-bytes", values["message-bytes"], 64);
  const depth = num("depth", values.depth, 8);

  // Pin: the server alone on CPU 0; this process, and so the client and chromium it starts
  // (affinity is inherited), on CPU 1.
  const cpus = navigator.hardwareConcurrency;
  const tasksetBin = !values["no-pin"] && cpus >= 2 ? Bun.which("taskset") : null;
  if (!values["no-pin"] && cpus >= 2 && tasksetBin === null) console.error("bench/admin-overhead.ts: taskset not found (apt-get install util-linux); running unpinned");
  if (tasksetBin !== null) {
    const r = Bun.spawnSync([tasksetBin, "-a", "-p", "-c", "1", String(process.pid)], { stdout: "ignore", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`taskset could not pin this process to CPU 1: ${r.stderr.toString().trim()}`);
  }
  const onCpu0 = (argv: string[]): string[] => (tasksetBin === null ? argv : [tasksetBin, "-c", "0", ...argv]);

  const children: Bun.Subprocess[] = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  };
  process.on("SIGINT", () => {
    killAll();
    process.exit(130);
  });

  const server = Bun.spawn(onCpu0(["bun", import.meta.path, "--role-server"]), { stdout: "pipe", stderr: "inherit" });
  children.push(server);
  type Page = { goto(u: string): Promise<unknown>; evaluate<T>(f: () => T): Promise<T> };
  let browser: { page: Page; close(): Promise<void> } | null = null;
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

    /** Echoed bytes over `ms`, and the server's CPU seconds meanwhile (its own cost, which
     *  the client's limits do not blur). */
    const measure = async (ms: number) => {
      const cpu0 = cpuSeconds(server.pid);
      client.stdin.write(`measure ${ms}\n`);
      client.stdin.flush();
      const m = JSON.parse(await readLine(cr, cstate)) as { bytes: number; ms: number };
      return { ...m, serverCpuS: cpuSeconds(server.pid) - cpu0 };
    };

    if (useBrowser) {
      const { launchBrowser } = await import("../tests/helpers/browser.ts");
      browser = (await launchBrowser()) as unknown as { page: Page; close(): Promise<void> };
      await browser.page.goto("about:blank");
    }

    // "on": the dashboard page (it polls by itself), or fetch polling.
    let polling: Timer | null = null;
    let polls = 0;
    // "on" phases at whose end the page showed the server's connection count (it was live).
    let pageLive = 0;
    const startPolling = async () => {
      if (values.control) return;
      if (browser) {
        await browser.page.goto(`${adminBase}/`);
        // Let the page build its charts and draw its first points before measuring.
        await Bun.sleep(1500);
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
      if (browser && !values.control) {
        const shown = await browser.page.evaluate(() => document.getElementById("connections")?.dataset.value ?? "");
        if (shown === String(connections)) pageLive++;
        await browser.page.goto("about:blank");
      }
    };

    await measure(Math.min(2000, seconds * 1000)); // warm-up, discarded
    const off: number[] = [], on: number[] = [], ratios: number[] = [];
    // Server CPU microseconds per MB echoed, per phase, and their on/off ratio per round.
    const cpuOff: number[] = [], cpuOn: number[] = [], cpuRatios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ["off", "on"] : ["on", "off"];
      const round: Record<string, number> = {};
      const roundCpu: Record<string, number> = {};
      for (const phase of order) {
        if (phase === "on") await startPolling();
        const m = await measure(seconds * 1000);
        if (phase === "on") await stopPolling();
        const mbps = m.bytes / (m.ms / 1000) / 1e6;
        const cpuUsPerMB = (m.serverCpuS * 1e6) / (m.bytes / 1e6);
        round[phase] = mbps;
        roundCpu[phase] = cpuUsPerMB;
        (phase === "on" ? on : off).push(mbps);
        (phase === "on" ? cpuOn : cpuOff).push(cpuUsPerMB);
        if (!values.json) console.log(`round ${r + 1} ${phase.padEnd(3)} ${mbps.toFixed(2)} MB/s echoed, server CPU ${cpuUsPerMB.toFixed(0)} us/MB`);
      }
      ratios.push((round.on as number) / (round.off as number));
      cpuRatios.push((roundCpu.on as number) / (roundCpu.off as number));
      if (!values.json) console.log(`round ${r + 1} on/off ${(ratios.at(-1) as number).toFixed(4)} (server CPU per MB ${(cpuRatios.at(-1) as number).toFixed(4)})`);
    }
    const medianRatio = median(ratios);
    const deltaPct = (medianRatio - 1) * 100;
    const statsRes = await fetch(`${adminBase}/stats`);
    const totals = ((await statsRes.json()) as { totals: { connections: number } }).totals;
    // The admin server's own cost, read off the server's CPU clock: throughput rounds on 2
    // shared cores spread far wider than 2%, this does not. The load stops first, so the
    // server's clock counts the requests alone (its connections stay open).
    client.stdin.write("quit\n");
    client.stdin.flush();
    await Bun.sleep(500);
    const requestCpuUs: Record<string, number> = {};
    for (const path of ["/stats", "/readyz", "/metrics", "/"]) {
      const n = values.quick ? 100 : 2000;
      const c0 = cpuSeconds(server.pid);
      for (let i = 0; i < n; i++) await (await fetch(`${adminBase}${path}`)).arrayBuffer();
      requestCpuUs[path] = ((cpuSeconds(server.pid) - c0) * 1e6) / n;
    }
    // The dashboard polls /stats and /readyz once a second.
    const dashboardCorePct = (((requestCpuUs["/stats"] ?? 0) + (requestCpuUs["/readyz"] ?? 0)) / 1e6) * 100;
    const report = {
      connections,
      seconds,
      rounds,
      messageBytes,
      depth,
      pinned: tasksetBin !== null ? "server on CPU 0; client and poller on CPU 1" : "no",
      poller: useBrowser ? "dashboard in headless chromium (polls /stats and /readyz every 1 s)" : "fetch /stats + /metrics every 1 s",
      ...(useBrowser ? { onPhasesWithLivePage: pageLive } : { polls }),
      serverConnections: totals.connections,
      offMBps: off,
      onMBps: on,
      ratios,
      medianRatio,
      ratioMin: Math.min(...ratios),
      ratioMax: Math.max(...ratios),
      deltaPct,
      withinGoal: Math.abs(deltaPct) <= 2,
      serverCpuUsPerMBOff: cpuOff,
      serverCpuUsPerMBOn: cpuOn,
      serverCpuRatios: cpuRatios,
      serverCpuMedianRatio: median(cpuRatios),
      control: values.control,
      /** Server CPU per admin request (µs), measured after the load stopped. */
      requestCpuUs,
      /** What the dashboard's polling costs the server: % of one core. */
      dashboardCorePct,
    };
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else
      console.log(
        `admin on/off, median of ${rounds} rounds: ${medianRatio.toFixed(4)} (${deltaPct >= 0 ? "+" : ""}${deltaPct.toFixed(2)}%; goal: within 2%), ` +
          `rounds ${report.ratioMin.toFixed(4)}..${report.ratioMax.toFixed(4)}; server CPU per MB on/off median ${report.serverCpuMedianRatio.toFixed(4)} ` +
          `— ${values.control ? "CONTROL (A/A: 'on' phases poll nothing)" : report.poller}, ${connections} connections, pinned: ${report.pinned}\n` +
          `server CPU per admin request: ${Object.entries(requestCpuUs)
            .map(([k, v]) => `${k} ${v.toFixed(0)} µs`)
            .join(", ")}; the dashboard's polling (/stats + /readyz each second) takes ${dashboardCorePct.toFixed(3)}% of the server's core`,
      );
  } finally {
    await browser?.close();
    killAll();
    await Promise.all(children.map((c) => c.exited));
  }
}
