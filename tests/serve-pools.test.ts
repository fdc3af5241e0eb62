// `bun run serve --app tests/fixtures/pool-app.ts`: a module app (a RESP proxy in front of a
// real redis-server) registers its upstream Pool, and the admin server of the CLI shows it:
// per worker in cluster mode (IPC stats reports) and in one process, in /stats and in
// /metrics with worker and pool labels; /metrics passes both our parser and promtool.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AdminStatsBody } from "../src/admin/index.ts";
import { parsePrometheusText, sampleValue, samples } from "./helpers/prom-parse.ts";
import { promtoolCheckMetrics } from "./helpers/promtool.ts";
import { freePort } from "./helpers/ports.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { alive } from "./helpers/process.ts";
import { errLines, killAllServes, startServe, stopServe, workerPidsOf } from "./helpers/serve-process.ts";
import { concat } from "./helpers/net.ts";
import { encodeCommand, text as latin1Text, Wire } from "./helpers/kv.ts";
import { until } from "./helpers/until.ts";

const TOKEN = "pools-token-91d0";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const APP = "tests/fixtures/pool-app.ts";
let redis: RedisServer;
const workerPids = new Set<number>();

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await killAllServes(workerPids);
  await redis?.kill();
});

async function adminJson(adminPort: number): Promise<AdminStatsBody> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/stats`, { headers: AUTH });
  expect(r.status).toBe(200);
  return (await r.json()) as AdminStatsBody;
}

async function adminMetrics(adminPort: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { headers: AUTH });
  expect(r.status).toBe(200);
  return r.text();
}

/** Opens n RESP connections and sends INCR `key` once on each; resolves the replies. */
async function incrOnEach(port: number, n: number, key: string): Promise<{ wires: Wire[]; replies: string[] }> {
  const wires: Wire[] = [];
  for (let i = 0; i < n; i++) wires.push(await Wire.connect(port));
  const replies = await Promise.all(wires.map((w) => w.call("INCR", key)));
  return { wires, replies };
}

/** The replies of n INCRs of one fresh key, in any order: :1 to :n, each once. */
function incrReplies(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `:${i + 1}\r\n`);
}

describe("serve --workers 2 --app <module with a pool>", () => {
  test("each worker's registered pool is in /stats and in /metrics with its worker label; promtool finds no problem", async () => {
    const port = freePort();
    const adminPort = freePort();
    const s = await startServe(
      ["--app", APP, "--workers", "2", "--port", String(port), "--admin-port", String(adminPort), "--admin-token", TOKEN],
      { MYRIAD_POOL_APP_UPSTREAM_PORT: String(redis.port), MYRIAD_POOL_APP_MAX: "2" },
    );
    for (const pid of workerPidsOf(s)) workerPids.add(pid);
    expect(s.out.text).toContain(`serve: ${APP} on 2 workers listening on 127.0.0.1:${port}`);

    // 40 connections: the kernel puts some on each worker (all on one: probability 2^-39).
    const N = 40;
    const { wires, replies } = await incrOnEach(port, N, "cluster-key");
    expect([...replies].sort((a, b) => Number(a.slice(1, -2)) - Number(b.slice(1, -2)))).toEqual(incrReplies(N));
    expect(await redis.command("GET cluster-key")).toBe(`$${String(N).length}\r\n${N}\r\n`);

    // Each worker's pool counts exactly the requests that worker proxied.
    const body = await until("both workers' reports of all 40 requests", async () => {
      const b = await adminJson(adminPort);
      const acquired = b.pools.reduce((n, p) => n + p.stats.acquired, 0);
      return b.pools.length === 2 && acquired === N && b.totals.framesIn === N ? b : undefined;
    });
    expect(body.pools.map((p) => [p.worker, p.name])).toEqual([
      ["worker-0", "upstream"],
      ["worker-1", "upstream"],
    ]);
    for (const p of body.pools) {
      const w = body.workers.find((x) => x.worker === p.worker)!;
      expect(w.stats.framesIn).toBeGreaterThan(0);
      expect(p.stats.acquired).toBe(w.stats.framesIn);
      expect(p.stats.size).toBeGreaterThanOrEqual(1); // min: 1, a real upstream connection
      expect(p.stats.size).toBeLessThanOrEqual(2);
      expect(p.stats.createErrors).toBe(0);
    }

    const text = await adminMetrics(adminPort);
    const fams = parsePrometheusText(text, { prefix: "myriad_" });
    for (const p of body.pools) {
      const l = { worker: p.worker!, pool: "upstream" };
      expect(sampleValue(fams, "myriad_pool_acquired_total", l)).toBe(p.stats.acquired);
      expect(sampleValue(fams, "myriad_pool_size", l)).toBeGreaterThanOrEqual(1);
      expect(samples(fams, "myriad_pool_acquire_wait_seconds", { ...l, le: "+Inf" }, "myriad_pool_acquire_wait_seconds_bucket").map((x) => x.value)).toEqual([
        p.stats.acquired,
      ]);
    }
    // Request latency per worker: one observation per request frame.
    const perWorker = samples(fams, "myriad_request_duration_seconds", {}, "myriad_request_duration_seconds_count");
    expect(perWorker.map((x) => x.labels.worker)).toEqual(["worker-0", "worker-1"]);
    expect(perWorker.reduce((n, x) => n + x.value, 0)).toBe(N);
    const check = await promtoolCheckMetrics(text);
    expect(check).toEqual({ code: 0, output: "" });

    for (const w of wires) w.close();
    const r = await stopServe(s);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/serve: stopped after .*accepted 40, rejected 0/);
    expect(errLines(r.err)).toEqual([]);
    for (const pid of workerPidsOf(s)) expect(alive(pid)).toBe(false);
  }, 30_000);
});

describe("serve --app <module with a pool> in one process", () => {
  test("the registered pool is in /stats and /metrics (worker 0); promtool finds no problem", async () => {
    const port = freePort();
    const adminPort = freePort();
    const s = await startServe(
      ["--app", APP, "--port", String(port), "--admin-port", String(adminPort), "--admin-token", TOKEN],
      { MYRIAD_POOL_APP_UPSTREAM_PORT: String(redis.port), MYRIAD_POOL_APP_DEPTH: "2" },
    );
    expect(s.out.text).toContain(`serve: ${APP} (resp) listening on 127.0.0.1:${port}, pid ${s.pid}`);
    expect(s.out.text).toContain("metrics, pools upstream;");

    const N = 12;
    const { wires, replies } = await incrOnEach(port, N, "single-key");
    expect(replies.length).toBe(N);
    expect(new Set(replies)).toEqual(new Set(incrReplies(N)));
    // A pipelined client gets its replies in order, whichever upstream connection answered.
    // (Two requests in flight per upstream connection: 20 spread over all four.)
    const w = wires[0]!;
    w.send(concat(Array.from({ length: 20 }, (_, i) => encodeCommand(["ECHO", `m${i}`]))));
    const pipelined: string[] = [];
    for (let i = 0; i < 20; i++) pipelined.push(latin1Text(await w.reply()));
    expect(pipelined).toEqual(Array.from({ length: 20 }, (_, i) => `$${`m${i}`.length}\r\nm${i}\r\n`));

    const body = await adminJson(adminPort);
    expect(body.workers.map((x) => x.worker)).toEqual(["0"]);
    expect(body.pools.map((p) => [p.worker, p.name])).toEqual([["0", "upstream"]]);
    const pool = body.pools[0]!.stats;
    expect(pool.acquired).toBe(N + 20);
    expect(pool.acquired).toBe(body.totals.framesIn);
    expect(pool.size).toBeGreaterThanOrEqual(1);

    const text = await adminMetrics(adminPort);
    const fams = parsePrometheusText(text, { prefix: "myriad_" });
    expect(sampleValue(fams, "myriad_pool_acquired_total", { worker: "0", pool: "upstream" })).toBe(N + 20);
    expect(sampleValue(fams, "myriad_request_duration_seconds", { worker: "0" }, "myriad_request_duration_seconds_count")).toBe(N + 20);
    expect(await promtoolCheckMetrics(text)).toEqual({ code: 0, output: "" });

    for (const x of wires) x.close();
    const r = await stopServe(s);
    expect(r.code).toBe(0);
    expect(errLines(r.err)).toEqual([]);
  }, 30_000);

  test("a module that is missing or exports no factory: exit non-zero with one line naming --app", async () => {
    const missing = Bun.spawnSync([process.execPath, "src/cli/serve.ts", "--app", "./no/such-app.ts", "--no-admin"], { cwd: `${import.meta.dir}/..` });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.toString()).toBe("serve: --app ./no/such-app.ts: no such file (give kv, echo or the path of a module app)\n");
    const bare = Bun.spawnSync([process.execPath, "src/cli/serve.ts", "--app", "redis", "--no-admin"], { cwd: `${import.meta.dir}/..` });
    expect(bare.exitCode).toBe(2);
    expect(bare.stderr.toString()).toBe('serve: --app must be kv, echo, ws-echo, ws-chat or the path of a module app (like ./my-app.ts), got "redis"\n');
    // A file that is not an app (no default export function): exit 1 before listening.
    const notApp = Bun.spawnSync([process.execPath, "src/cli/serve.ts", "--app", "tests/helpers/promtool.ts", "--no-admin", "--port", "0"], {
      cwd: `${import.meta.dir}/..`,
    });
    expect(notApp.exitCode).toBe(1);
    const lines = notApp.stderr.toString().trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toStartWith("serve: --app tests/helpers/promtool.ts: ");
    expect(lines[0]).toContain('has no function export "default"');
  });
});
