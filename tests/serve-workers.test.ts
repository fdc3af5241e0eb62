// `bun run serve --workers N` as a subprocess: every worker serves echo round trips, the admin
// server shows each worker and their sum, a worker killed by pid comes back under a new pid
// while the other keeps serving, SIGTERM stops every worker (checked by pid) and prints the
// summed final stats; port ranges; the settings it refuses.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Socket } from "bun";
import { resolveWorkers } from "../src/cluster/index.ts";
import { readSystemLimits } from "../src/system/index.ts";
import { parsePrometheusText, sampleValue, samples } from "./helpers/prom-parse.ts";
import { promtoolCheckMetrics } from "./helpers/promtool.ts";
import { alive } from "./helpers/process.ts";
import { errLines, killAllServes, startServe, stopServe, type Served } from "./helpers/serve-process.ts";
import { Wire } from "./helpers/kv.ts";
import { freePort, holdPorts } from "./helpers/ports.ts";
import { until } from "./helpers/until.ts";

const root = join(import.meta.dir, "..");
const started: Bun.Subprocess[] = [];
const workerPids = new Set<number>();

afterAll(async () => {
  for (const p of started) {
    if (p.exitCode === null && p.signalCode === null) {
      process.kill(p.pid, "SIGKILL");
      await p.exited;
    }
  }
  // A supervisor killed here leaves its workers to stop on the IPC disconnect; make sure.
  await killAllServes(workerPids);
});

interface Client {
  sock: Socket<undefined>;
  got: string;
  closed: boolean;
}

/** Opens n raw connections to port (in batches, so the listen queue is never the limit). */
async function openClients(port: number, n: number, hostname = "127.0.0.1"): Promise<Client[]> {
  const out: Client[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, async () => {
      const c = { got: "", closed: false } as Client;
      c.sock = await Bun.connect({
        hostname,
        port,
        socket: {
          data(_s, d) {
            c.got += d.toString();
          },
          close() {
            c.closed = true;
          },
          error() {},
        },
      });
      return c;
    });
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** Sends a distinct line on every client; resolves once each got exactly its own line back. */
async function echoEvery(clients: Client[], tag: string): Promise<void> {
  const want = clients.map((c, i) => {
    const line = `${tag}-${i}\n`;
    c.got = "";
    c.sock.write(line);
    return line;
  });
  await until(`${clients.length} echoes (${tag})`, () => clients.every((c, i) => c.got.length >= want[i]!.length), 10_000);
  for (let i = 0; i < clients.length; i++) expect(clients[i]!.got).toBe(want[i]!);
}

interface StatsBody {
  workers: Array<{ worker: string; pid: number; stats: { connections: number; accepted: number } }>;
  totals: { connections: number };
}

async function stats(adminPort: number, token?: string): Promise<StatsBody> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/stats`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as StatsBody;
}

describe("serve --workers 2: 200 connections, admin view, a worker killed by pid, SIGTERM", () => {
  let s: Served;
  let port = 0;
  let adminPort = 0;
  let clients: Client[] = [];
  let pidsAtStart: number[] = [];

  test("starts two workers and prints their pids, where they listen and the derived limits", async () => {
    port = await freePort();
    adminPort = await freePort();
    s = await startServe(["--app", "echo", "--workers", "2", "--port", String(port), "--admin-port", String(adminPort), "--max-connections", "1000"]);
    const out = s.out.text;
    expect(out).toContain(`echo (raw) on 2 workers listening on 127.0.0.1:${port}, supervisor pid ${s.pid}`);
    const m = /workers: worker-0 pid (\d+), worker-1 pid (\d+)/.exec(out);
    expect(m).not.toBeNull();
    pidsAtStart = [Number(m![1]), Number(m![2])];
    for (const pid of pidsAtStart) {
      workerPids.add(pid);
      expect(alive(pid)).toBe(true);
    }
    expect(pidsAtStart).not.toContain(s.pid);
    const l = readSystemLimits();
    const plan = resolveWorkers(2, 1000, l.nofileSoft, l.cpus);
    expect(out).toContain(`limits: max connections 1000 total, ${plan.maxConnectionsPerWorker} per worker`);
    expect(out).toContain(`admin: http://127.0.0.1:${adminPort}/`);
  });

  test("echo round trips on 200 connections; /stats and /metrics see both workers and their sum", async () => {
    clients = await openClients(port, 200);
    await echoEvery(clients, "first");
    const body = await until("/stats to count 200 connections", async () => {
      const b = await stats(adminPort);
      return b.totals.connections === 200 ? b : undefined;
    });
    expect(body.workers.map((w) => w.worker)).toEqual(["worker-0", "worker-1"]);
    expect(body.workers.map((w) => w.pid)).toEqual(pidsAtStart);
    const per = body.workers.map((w) => w.stats.connections);
    expect(per[0]! + per[1]!).toBe(200);
    // The kernel spreads connections over both listeners (all 200 on one: probability 2^-199).
    expect(Math.min(...per)).toBeGreaterThan(0);

    // The cluster's /metrics, read by our strict parser and by Prometheus's own (promtool).
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const fams = parsePrometheusText(metrics, { prefix: "myriad_" });
    const open = samples(fams, "myriad_connections").map((x) => [x.labels.worker, x.value] as const);
    expect(open.map(([w]) => w)).toEqual(["worker-0", "worker-1"]);
    expect(open[0]![1] + open[1]![1]).toBe(200);
    expect(sampleValue(fams, "myriad_workers")).toBe(2);
    for (const [i, pid] of pidsAtStart.entries()) expect(sampleValue(fams, "myriad_worker_info", { worker: `worker-${i}`, pid: String(pid) })).toBe(1);
    expect(await promtoolCheckMetrics(metrics)).toEqual({ code: 0, output: "" });
  });

  test("SIGKILL to one worker: its connections close, it comes back under a new pid, the other keeps serving", async () => {
    const before = await stats(adminPort);
    const [victim, survivor] = before.workers;
    process.kill(victim!.pid, "SIGKILL");

    // Exactly the victim's connections are closed by the kernel; the survivor's stay open.
    await until("the killed worker's connections to close", () => clients.filter((c) => c.closed).length >= victim!.stats.connections);
    await Bun.sleep(100);
    const open = clients.filter((c) => !c.closed);
    expect(open.length).toBe(survivor!.stats.connections);
    await echoEvery(open, "after-kill");

    const after = await until("worker-0 to come back under a new pid", async () => {
      const b = await stats(adminPort);
      const w0 = b.workers[0]!;
      return w0.pid !== victim!.pid && w0.pid > 0 && alive(w0.pid) ? b : undefined;
    });
    const newPid = after.workers[0]!.pid;
    workerPids.add(newPid);
    expect(after.workers[1]!.pid).toBe(survivor!.pid);
    expect(alive(victim!.pid)).toBe(false);
    // /stats names the new process from its spawn; serve reports it once it listens.
    await until("serve to report the restarted worker ready", () => s.out.text.includes(`serve: worker 0 ready, pid ${newPid}\n`));
    expect(s.out.text).toContain("serve: worker 0: restart 1 in 100ms");

    // New connections are served too (by either worker), and both serve again.
    const fresh = await openClients(port, 40);
    await echoEvery(fresh, "fresh");
    clients = [...open, ...fresh];
    const b = await until("/stats to count every open connection", async () => {
      const x = await stats(adminPort);
      return x.totals.connections === clients.length ? x : undefined;
    });
    expect(b.workers[0]!.stats.connections + b.workers[1]!.stats.connections).toBe(clients.length);
  });

  test("SIGTERM: exit 0, every open connection closed as shutdown, summed final stats, every worker pid gone", async () => {
    const snap = await stats(adminPort);
    const pids = snap.workers.map((w) => w.pid);
    const openNow = clients.filter((c) => !c.closed).length;
    const r = await stopServe(s);
    expect(r.code).toBe(0);
    expect(r.out).toContain("serve: SIGTERM: stopping 2 workers gracefully");
    const final = r.out.split("\n").find((l) => l.startsWith("serve: stopped after"));
    expect(final).toBeDefined();
    expect(final).toContain("(2 workers summed, 1 restart)");
    expect(final).toMatch(new RegExp(`closed (.*, )?shutdown ${openNow}(,|;)`));
    await until("the clients to see the closes", () => clients.every((c) => c.closed), 5000);
    for (const pid of [...pids, ...pidsAtStart, s.pid]) expect(alive(pid)).toBe(false);
    // One crash reported; nothing else on stderr.
    expect(errLines(r.err)).toEqual([`serve: worker 0 (pid ${pidsAtStart[0]}) died (SIGKILL)`]);
  });
});

describe("serve --workers auto", () => {
  test("sizes the cluster for --max-connections at this ulimit -n; port 0 shared by all; POST /admin/stop stops them all", async () => {
    const l = readSystemLimits();
    const plan = resolveWorkers("auto", 40_000, l.nofileSoft, l.cpus);
    const adminPort = await freePort();
    const token = "auto-token-0c4f";
    const s = await startServe(["--app", "echo", "--workers", "auto", "--max-connections", "40k", "--port", "0", "--admin-port", String(adminPort), "--admin-token", token]);
    const m = new RegExp(`on ${plan.workers} workers \\(auto\\) listening on 127\\.0\\.0\\.1:(\\d+),`).exec(s.out.text);
    expect(m).not.toBeNull();
    const port = Number(m![1]);
    expect(port).toBeGreaterThan(0);
    expect(s.out.text).toContain(`max connections 40000 total, ${plan.maxConnectionsPerWorker} per worker`);
    const c = await openClients(port, 30);
    await echoEvery(c, "auto");
    const body = await until("/stats to count 30 connections", async () => {
      const b = await stats(adminPort, token);
      return b.totals.connections === 30 ? b : undefined;
    });
    expect(body.workers).toHaveLength(plan.workers);
    const pids = body.workers.map((w) => w.pid);
    for (const pid of pids) workerPids.add(pid);
    expect((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status).toBe(200);
    const stop = await fetch(`http://127.0.0.1:${adminPort}/admin/stop`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect(stop.status).toBe(202);
    const code = await Promise.race([s.proc.exited, Bun.sleep(20_000).then(() => -1)]);
    await s.out.done;
    expect(code).toBe(0);
    expect(s.out.text).toContain(`serve: POST /admin/stop: stopping ${plan.workers} workers gracefully`);
    expect(s.out.text).toMatch(/serve: stopped after .*; connections: accepted 30, rejected 0, peak \d+, closed shutdown 30;/);
    for (const pid of [...pids, s.pid]) expect(alive(pid)).toBe(false);
  });
});

describe("serve: port ranges", () => {
  test("--workers 2 --port A-(A+1): connections to each port echo; both workers listen on both", async () => {
    // Held until serve's workers listen too (reusePort), so no other socket takes them first.
    const held = holdPorts(2);
    const [host] = held.hosts;
    const a = held.port;
    const s = await startServe(["--app", "echo", "--protocol", "lines", "--workers", "2", "--host", host!, "--port", `${a}-${a + 1}`, "--no-admin"]).finally(held.release);
    expect(s.out.text).toContain(`on 2 workers listening on ${host}:${a}-${a + 1}`);
    const onA = await openClients(a, 30, host);
    const onB = await openClients(a + 1, 30, host);
    await echoEvery(onA, "port-a");
    await echoEvery(onB, "port-b");
    const r = await stopServe(s);
    expect(r.code).toBe(0);
    const final = r.out.split("\n").find((l) => l.startsWith("serve: stopped after"))!;
    expect(final).toContain("(2 workers summed, 0 restarts)");
    expect(final).toContain("accepted 60, rejected 0");
    expect(final).toMatch(/closed shutdown 60;/);
    expect(final).toContain("frames in 60,");
    expect(final).toContain("bytes in 580, out 580");
    expect(errLines(r.err)).toEqual([]);
  });

  test("kv with one worker on a port range and two hosts: one store behind every listener", async () => {
    const held = holdPorts(2, 2);
    const [h1, h2] = held.hosts as [string, string];
    const a = held.port;
    const s = await startServe(["--port", `${a}-${a + 1}`, "--host", `${h1},${h2}`, "--no-admin"]).finally(held.release);
    expect(s.out.text).toContain(`kv (resp) on 1 worker listening on ${h1}:${a}-${a + 1}, ${h2}:${a}-${a + 1}`);
    const w1 = await Wire.connect(a, h1);
    expect(await w1.call("SET", "k", "set on the first port")).toBe("+OK\r\n");
    const w2 = await Wire.connect(a + 1, h1);
    expect(await w2.call("GET", "k")).toBe("$21\r\nset on the first port\r\n");
    w1.close();
    w2.close();
    let got = "";
    const other = await Bun.connect({ hostname: h2, port: a + 1, socket: { data: (_s, d) => void (got += d.toString()) } });
    other.write("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    await until(`a reply on ${h2}`, () => got.length >= 27);
    expect(got).toBe("$21\r\nset on the first port\r\n");
    other.end();
    const r = await stopServe(s);
    expect(r.code).toBe(0);
    expect(r.out).toContain("(1 worker summed, 0 restarts)");
  });
});

describe("serve: settings it refuses with workers", () => {
  const run = async (...args: string[]) => {
    const proc = Bun.spawn([process.execPath, "src/cli/serve.ts", ...args], { cwd: root, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    started.push(proc);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { out, err, code };
  };

  test("kv with more than one worker, unix with more than one worker, a bad --workers: exit 2, one line naming the flag", async () => {
    const [kv, unix, bad] = await Promise.all([
      run("--workers", "2", "--no-admin"),
      run("--app", "echo", "--workers", "2", "--unix", "/tmp/myriad-never.sock", "--no-admin"),
      run("--app", "echo", "--workers", "many", "--no-admin"),
    ]);
    for (const r of [kv, unix, bad]) {
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toEndWith("\n");
      expect(r.err.trimEnd().split("\n")).toHaveLength(1);
      expect(r.err).toStartWith("serve: --workers ");
    }
    expect(kv.err).toContain("--app kv: each worker would keep its own store");
    expect(kv.err).toContain("use --workers 1 for kv");
    expect(unix.err).toContain("--unix: workers share a TCP port through reusePort");
    expect(bad.err).toBe('serve: --workers must be auto or an integer from 1 to 4096, got "many"\n');
  });

  test("a port held by another process: exit 1 naming where, no worker left behind", async () => {
    const blocker = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await run("--app", "echo", "--workers", "2", "--port", String(blocker.port), "--no-admin");
      expect(r.code).toBe(1);
      expect(r.err).toStartWith(`serve: cannot start 2 workers on 127.0.0.1:${blocker.port}: worker `);
      expect(r.err).toContain("EADDRINUSE");
      const pid = Number(/\(pid (\d+)\)/.exec(r.err)?.[1]);
      expect(pid).toBeGreaterThan(0);
      expect(alive(pid)).toBe(false);
    } finally {
      blocker.stop(true);
    }
  });
});
