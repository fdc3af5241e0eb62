// The admin server of `bun run serve` while it stops: /readyz answers 503 for the whole
// graceful stop that SIGTERM starts (held open by a client that does not read its echoes),
// in one process and with workers; POST /admin/stop without a token is refused and the
// server keeps serving; a non-loopback --admin-host without a token is refused at start.
import { afterAll, describe, expect, test } from "bun:test";
import { connect, type TestClient } from "./helpers/net.ts";
import { parsePrometheusText, sampleValue } from "./helpers/prom-parse.ts";
import { promtoolCheckMetrics } from "./helpers/promtool.ts";
import { freePort } from "./helpers/ports.ts";
import { alive } from "./helpers/process.ts";
import { errLines, killAllServes, startServe, workerPidsOf, type Served } from "./helpers/serve-process.ts";
import { until } from "./helpers/until.ts";

const ROOT = `${import.meta.dir}/..`;
const workerPids = new Set<number>();
const clients: TestClient[] = [];
afterAll(async () => {
  for (const c of clients) if (!c.closed) c.close();
  await killAllServes(workerPids);
});

type Totals = { connections: number; writeQueueBytes: number; accepted: number };

async function totals(adminPort: number): Promise<Totals> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/stats`);
  if (r.status !== 200) throw new Error(`/stats: ${r.status}`);
  return ((await r.json()) as { totals: Totals }).totals;
}

const status = async (adminPort: number, path: string) => (await fetch(`http://127.0.0.1:${adminPort}${path}`)).status;

/**
 * A client that sends 32 MiB to the echo server and reads nothing: the echoes fill the
 * kernel's buffers and then the server's write queue, which a graceful stop must flush
 * before it closes the connection, so the stop lasts until the client reads again.
 */
async function stuckReader(port: number, adminPort: number): Promise<TestClient> {
  const c = await connect({ port });
  clients.push(c);
  c.pause();
  void c.send(new Uint8Array(32 << 20).fill(97)).catch(() => {});
  await until("the server's write queue to fill", async () => (await totals(adminPort)).writeQueueBytes > 0, 15_000);
  return c;
}

/**
 * SIGTERM while `c` holds the graceful stop open: /readyz turns 503 (and stays so) while the
 * admin server still answers /healthz; once `c` reads, the stop completes and serve exits 0
 * having closed it as "shutdown". Returns serve's stdout.
 */
async function readyzThroughStop(s: Served, adminPort: number, c: TestClient): Promise<string> {
  expect(await status(adminPort, "/readyz")).toBe(200);
  process.kill(s.pid, "SIGTERM");
  await until("/readyz to answer 503", async () => (await status(adminPort, "/readyz")) === 503, 5000);
  await until("serve to say it stops", () => s.out.text.includes("SIGTERM: stopping"));
  // Still stopping (the client has not read): not ready, but alive, several polls in a row.
  for (let i = 0; i < 5; i++) {
    expect(await status(adminPort, "/readyz")).toBe(503);
    expect(await status(adminPort, "/healthz")).toBe(200);
    expect(s.proc.exitCode).toBeNull();
    await Bun.sleep(50);
  }
  c.resume();
  const code = await Promise.race([s.proc.exited, Bun.sleep(20_000).then(() => -1)]);
  await Promise.race([s.out.done, Bun.sleep(2000)]);
  expect(code).toBe(0);
  await c.waitClosed(5000);
  expect(errLines(s.err.text)).toEqual([]);
  return s.out.text;
}

describe("serve in one process", () => {
  test("/readyz answers 503 during the graceful stop SIGTERM starts", async () => {
    const port = freePort();
    const adminPort = freePort();
    const s = await startServe(["--app", "echo", "--port", String(port), "--admin-port", String(adminPort), "--stop-timeout-ms", "25s"]);
    const c = await stuckReader(port, adminPort);
    const out = await readyzThroughStop(s, adminPort, c);
    expect(out).toMatch(/serve: stopped after .*closed shutdown 1;/);
  }, 30_000);

  test("POST /admin/stop without a token is refused (403) and the server keeps serving; /metrics passes promtool", async () => {
    const port = freePort();
    const adminPort = freePort();
    const s = await startServe(["--port", String(port), "--admin-port", String(adminPort)]);
    expect(s.out.text).toContain("POST /admin/stop needs --admin-token");
    const c = await connect({ port });
    clients.push(c);
    await c.send("*1\r\n$4\r\nPING\r\n");
    await c.waitBytes(7);
    const res = await fetch(`http://127.0.0.1:${adminPort}/admin/stop`, { method: "POST" });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toContain("set --admin-token or MYRIAD_ADMIN_TOKEN to enable /admin/stop");
    // Still running and serving: ready, the same connection answers, a new one is accepted.
    expect(await status(adminPort, "/readyz")).toBe(200);
    await c.send("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n");
    await c.waitBytes(7 + 8);
    expect(c.text()).toBe("+PONG\r\n$2\r\nhi\r\n");
    const again = await connect({ port });
    clients.push(again);
    await until("the second connection in /stats", async () => (await totals(adminPort)).connections === 2);
    expect(s.proc.exitCode).toBeNull();
    expect(s.out.text).not.toContain("stopping");

    // The kv server's own /metrics, through Prometheus's parser as well as ours.
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const fams = parsePrometheusText(text, { prefix: "myriad_" });
    expect(sampleValue(fams, "myriad_connections", { worker: "0" })).toBe(2);
    expect(sampleValue(fams, "myriad_request_duration_seconds", { worker: "0" }, "myriad_request_duration_seconds_count")).toBe(2);
    expect(await promtoolCheckMetrics(text)).toEqual({ code: 0, output: "" });

    c.close();
    again.close();
    process.kill(s.pid, "SIGTERM");
    expect(await Promise.race([s.proc.exited, Bun.sleep(20_000).then(() => -1)])).toBe(0);
  }, 30_000);
});

describe("serve --workers 2", () => {
  test("/readyz answers 503 during the graceful stop SIGTERM starts, until every worker has stopped", async () => {
    const port = freePort();
    const adminPort = freePort();
    const s = await startServe(["--app", "echo", "--workers", "2", "--port", String(port), "--admin-port", String(adminPort), "--stop-timeout-ms", "25s"]);
    const pids = workerPidsOf(s);
    expect(pids).toHaveLength(2);
    for (const pid of pids) workerPids.add(pid);
    const c = await stuckReader(port, adminPort);
    const out = await readyzThroughStop(s, adminPort, c);
    expect(out).toContain("serve: SIGTERM: stopping 2 workers gracefully");
    expect(out).toMatch(/serve: stopped after .*\(2 workers summed, 0 restarts\).*closed shutdown 1;/);
    for (const pid of [...pids, s.pid]) expect(alive(pid)).toBe(false);
  }, 30_000);
});

describe("--admin-host off loopback without a token", () => {
  test("exits 2 before listening, with one line naming --admin-host and how to give a token", async () => {
    const port = freePort();
    for (const args of [
      ["--admin-host", "0.0.0.0"],
      ["--admin-host", "::", "--app", "echo", "--workers", "2"],
    ]) {
      const proc = Bun.spawn([process.execPath, "src/cli/serve.ts", "--port", String(port), ...args], {
        cwd: ROOT,
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
      });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect(code).toBe(2);
      expect(out).toBe(""); // nothing started: no startup block, no worker
      const lines = err.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toStartWith(`serve: --admin-host ${args[1]} is reachable from other machines and needs --admin-token <secret> (or MYRIAD_ADMIN_TOKEN)`);
    }
    // Nothing listens on the port it would have served.
    await expect(Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })).rejects.toBeDefined();
  });
});
