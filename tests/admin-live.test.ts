// The admin server over REAL sources: a reactor server on loopback with real client sockets,
// and a real Pool whose name needs escaping, observed through /stats, /metrics and /readyz.
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import {
  serverSource,
  startAdminServer,
  type AdminPoolStats,
  type AdminServer,
  type AdminServerStats,
  type AdminStatsBody,
} from "../src/admin/index.ts";
import { Pool, type PoolStats } from "../src/pool/index.ts";
import { createServer, type Server, type ServerStats } from "../src/reactor/index.ts";
import { parsePrometheusText, sampleValue, samples } from "./helpers/prom-parse.ts";
import { until } from "./helpers/until.ts";

const POOL_NAME = 'a"b\\c\nd';
// POST /admin/stop needs a token; the reads then need it too.
const TOKEN = "live-token-3c1e";
const AUTH = { authorization: `Bearer ${TOKEN}` };

// The admin module mirrors the reactor's and the pool's stats shapes; typecheck fails here
// if they drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const serverStatsMatch: Same<ServerStats, AdminServerStats> = true;
const poolStatsMatch: Same<PoolStats, AdminPoolStats> = true;
void serverStatsMatch;
void poolStatsMatch;

type Client = Bun.Socket<{ received: number }>;

async function connect(port: number): Promise<Client> {
  return Bun.connect<{ received: number }>({
    hostname: "127.0.0.1",
    port,
    data: { received: 0 },
    socket: {
      data(s, buf) {
        s.data.received += buf.length;
      },
    },
  });
}

let server: Server;
let admin: AdminServer;
let pool: Pool<{ id: number }>;
let base: string;
const clients: Client[] = [];

beforeAll(async () => {
  server = await createServer({
    port: 0,
    hostname: "127.0.0.1",
    protocol: "lines",
    handler: {
      message(conn, frame: Uint8Array) {
        conn.write(frame);
        conn.write("\n");
      },
    },
  });
  let nextId = 0;
  pool = new Pool({ name: POOL_NAME, max: 2, create: () => ({ id: nextId++ }) });
  admin = await startAdminServer({ port: 0, token: TOKEN, source: serverSource(server, { pools: { [POOL_NAME]: pool }, stopTimeoutMs: 2000 }) });
  base = `http://127.0.0.1:${admin.port}`;
});

afterEach(() => {
  for (const c of clients.splice(0)) c.end();
});

afterAll(async () => {
  await admin.stop();
  if (server.accepting) await server.stop({ graceful: false });
  await pool.drain({ timeoutMs: 1000 });
});

async function stats(): Promise<AdminStatsBody> {
  return (await (await fetch(`${base}/stats`, { headers: AUTH })).json()) as AdminStatsBody;
}

test("/stats and /metrics count real connections, bytes, frames, closes and request latency", async () => {
  const before = (await stats()).totals;
  const N = 12;
  for (let i = 0; i < N; i++) clients.push(await connect(server.port));
  await until(`${N} connections`, async () => (await stats()).totals.connections === before.connections + N);

  const line = "hello admin\n"; // 12 bytes, echoed back as the same 12
  for (const c of clients) c.write(line + line);
  await until("the echoes", () => clients.every((c) => c.data.received === 2 * line.length));

  const body = await stats();
  expect(body.workers).toHaveLength(1);
  expect(body.workers[0]!.pid).toBe(process.pid);
  const t = body.totals;
  expect(t.connections).toBe(before.connections + N);
  expect(t.peakConnections).toBeGreaterThanOrEqual(N);
  expect(t.accepted).toBe(before.accepted + N);
  expect(t.bytesIn).toBe(before.bytesIn + N * 2 * line.length);
  expect(t.bytesOut).toBe(before.bytesOut + N * 2 * line.length);
  expect(t.framesIn).toBe(before.framesIn + N * 2);
  // One observation per request frame (two lines per client, sent in one write).
  expect(t.requestLatency.count).toBe(before.requestLatency.count + N * 2);
  expect(t.rssBytes).toBeGreaterThan(0);
  // The RSS with no connection open (at listen): the base of the dashboard's per-connection figure.
  expect(t.baselineRssBytes).toBeGreaterThan(0);

  // Close 4 from the client side: counted as "peer".
  for (const c of clients.splice(0, 4)) c.end();
  await until("4 peer closes", async () => (await stats()).totals.closed.peer === before.closed.peer + 4);

  const res = await fetch(`${base}/metrics`, { headers: AUTH });
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const fams = parsePrometheusText(await res.text(), { prefix: "myriad_" });
  const w = { worker: "0" };
  expect(sampleValue(fams, "myriad_connections", w)).toBe(before.connections + N - 4);
  expect(sampleValue(fams, "myriad_connections_accepted_total", w)).toBe(before.accepted + N);
  expect(sampleValue(fams, "myriad_connections_closed_total", { ...w, reason: "peer" })).toBe(before.closed.peer + 4);
  expect(sampleValue(fams, "myriad_received_bytes_total", w)).toBe(before.bytesIn + N * 2 * line.length);
  expect(sampleValue(fams, "myriad_frames_received_total", w)).toBe(before.framesIn + N * 2);
  const count = sampleValue(fams, "myriad_request_duration_seconds", w, "myriad_request_duration_seconds_count");
  expect(count).toBe(before.requestLatency.count + N * 2);
  const inf = samples(fams, "myriad_request_duration_seconds", { ...w, le: "+Inf" }, "myriad_request_duration_seconds_bucket");
  expect(inf.map((s) => s.value)).toEqual([count]);
});

test("a real pool's stats and acquire-wait histogram, under a name that needs escaping", async () => {
  const a = await pool.acquire();
  const b = await pool.acquire();
  const waiter = pool.acquire({ timeoutMs: 2000 }); // waits: max is 2
  await until("a waiter", () => pool.stats().waiting === 1);
  const mid = (await stats()).pools;
  expect(mid.map((p) => [p.worker, p.name])).toEqual([["0", POOL_NAME]]);
  expect(mid[0]!.stats).toMatchObject({ size: 2, borrowed: 2, waiting: 1 });
  await Bun.sleep(20);
  pool.release(a);
  pool.release(await waiter);
  pool.release(b);

  const text = await (await fetch(`${base}/metrics`, { headers: AUTH })).text();
  expect(text).toContain('pool="a\\"b\\\\c\\nd"');
  const fams = parsePrometheusText(text, { prefix: "myriad_" });
  const l = { worker: "0", pool: POOL_NAME };
  expect(sampleValue(fams, "myriad_pool_size", l)).toBe(2);
  expect(sampleValue(fams, "myriad_pool_borrowed", l)).toBe(0);
  expect(sampleValue(fams, "myriad_pool_acquired_total", l)).toBe(3);
  expect(sampleValue(fams, "myriad_pool_released_total", l)).toBe(3);
  expect(sampleValue(fams, "myriad_pool_acquire_wait_seconds", l, "myriad_pool_acquire_wait_seconds_count")).toBe(3);
  // The waiter waited at least the 20 ms sleep.
  expect(sampleValue(fams, "myriad_pool_acquire_wait_seconds", l, "myriad_pool_acquire_wait_seconds_sum")).toBeGreaterThanOrEqual(0.02);
});

test("POST /admin/stop: /readyz turns 503 while the graceful stop runs, then the server is stopped", async () => {
  const c = await connect(server.port);
  clients.push(c);
  await until("the connection", async () => (await stats()).totals.connections >= 1);
  expect((await fetch(`${base}/readyz`)).status).toBe(200);

  const res = await fetch(`${base}/admin/stop`, { method: "POST", headers: AUTH });
  expect(res.status).toBe(202);
  expect((await fetch(`${base}/readyz`)).status).toBe(503);
  expect(server.accepting).toBe(false);
  // The admin server keeps answering during the stop.
  expect((await fetch(`${base}/healthz`)).status).toBe(200);

  const done = await fetch(`${base}/admin/stop?wait=1`, { method: "POST", headers: AUTH });
  expect(done.status).toBe(200);
  expect((await fetch(`${base}/readyz`)).status).toBe(503);
  expect((await stats()).totals.connections).toBe(0);
  // The listener is closed: a new connection is refused.
  await expect(connect(server.port)).rejects.toBeDefined();
});
