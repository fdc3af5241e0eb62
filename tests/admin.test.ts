// The admin server over a real Bun.serve on port 0, queried with fetch. The stats come from
// constructed snapshots here (several workers, pools with hostile names, exact histograms);
// tests/admin-live.test.ts drives the same endpoints from a real reactor server.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  createAdminApp,
  PROMETHEUS_CONTENT_TYPE,
  startAdminServer,
  type AdminServer,
  type AdminServerStats,
  type AdminPoolStats,
  type AdminSnapshot,
  type AdminStatsBody,
  type AdminStatsSource,
} from "../src/admin/index.ts";
import { MyriadError } from "../src/errors.ts";
import { parsePrometheusText, sampleValue, samples } from "./helpers/prom-parse.ts";
import { promtoolCheckMetrics } from "./helpers/promtool.ts";
import { until } from "./helpers/until.ts";

function serverStats(seed: number): AdminServerStats {
  return {
    connections: 100 * seed,
    peakConnections: 150 * seed,
    accepted: 1000 * seed,
    rejected: seed,
    closed: { peer: 10 * seed, idle: 2 * seed, handshake: 0, protocol: 3, writeStall: 1, shutdown: 0, server: 4, error: seed, proxy: seed },
    bytesIn: 1e6 * seed,
    bytesOut: 2e6 * seed,
    framesIn: 5000 * seed,
    framesOut: 4000 * seed,
    writeQueueBytes: 4096 * seed,
    pausedConnections: seed,
    rssBytes: 64 * 1024 * 1024 * seed,
    baselineRssBytes: 40 * 1024 * 1024 * seed,
    heapUsedBytes: 8 * 1024 * 1024 * seed,
    uptimeMs: 60_000 * seed,
    requestLatency: { boundsMs: [0.1, 1, 10], counts: [5 * seed, 3, 2, seed], sumMs: 12.5 * seed, count: 5 * seed + 5 + seed },
  };
}

function poolStats(seed: number): AdminPoolStats {
  return {
    size: 8,
    idle: 8 - seed,
    borrowed: seed,
    waiting: 2,
    pending: 1,
    created: 10,
    destroyed: 2,
    acquired: 500,
    released: 500 - seed,
    timeouts: 3,
    createErrors: 1,
    rejected: 0,
    acquireWaitMs: { p50: 0.2, p90: 1, p99: 4, max: 9, boundsMs: [0.5, 5, 50], counts: [400, 90, 10, 0], sumMs: 321, count: 500 },
  };
}

const TRICKY_POOL = 'a"b\\c\nd';

/** A stats source over a mutable snapshot, recording stop() calls. */
function fixtureSource(snap: AdminSnapshot) {
  const state = { accepting: true, stops: 0, stopDone: Promise.withResolvers<void>(), snapshotError: null as Error | null };
  const source: AdminStatsSource = {
    snapshot() {
      if (state.snapshotError) throw state.snapshotError;
      return snap;
    },
    isAccepting: () => state.accepting,
    stop() {
      state.stops++;
      state.accepting = false;
      return state.stopDone.promise;
    },
  };
  return { source, state };
}

const SNAP: AdminSnapshot = {
  workers: [
    { worker: "w0", pid: 1001, stats: serverStats(1) },
    { worker: "w1", pid: 1002, stats: serverStats(2) },
  ],
  pools: [
    { name: "redis", stats: poolStats(3) },
    { name: TRICKY_POOL, stats: poolStats(5) },
  ],
};

const started: AdminServer[] = [];
async function start(opts: { token?: string; snap?: AdminSnapshot } = {}) {
  const fx = fixtureSource(opts.snap ?? SNAP);
  const admin = await startAdminServer({ port: 0, host: "127.0.0.1", token: opts.token ?? "", source: fx.source });
  started.push(admin);
  return { ...fx, admin, base: `http://127.0.0.1:${admin.port}` };
}
afterEach(async () => {
  while (started.length > 0) await started.pop()!.stop();
});

describe("probes", () => {
  test("GET /healthz answers 200 ok", async () => {
    const { base } = await start();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok");
  });

  test("GET /readyz follows source.isAccepting()", async () => {
    const { base, state } = await start();
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    state.accepting = false;
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("stopping");
    state.accepting = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  test("an HTTP/1.0 health check without a Host header (HAProxy's httpchk) reaches /readyz", async () => {
    const { admin } = await start();
    let reply = "";
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: admin.port,
      socket: {
        data(_s, d) {
          reply += new TextDecoder().decode(d);
        },
        error() {},
      },
    });
    socket.write("GET /readyz HTTP/1.0\r\n\r\n");
    await until("the health check's reply", () => reply.includes("\r\n\r\n") && reply.endsWith("ready"), 5_000);
    expect(reply.startsWith("HTTP/1.1 200")).toBe(true);
    socket.end();
  });

  test("/readyz stays 200 but says so while the node bus is down; /stats and /metrics show the bus", async () => {
    const bus = { up: false, channels: 2, published: 5, publishErrors: 1, lastPublishError: "", received: 7, ownDropped: 5, connects: 1, disconnects: 1 };
    const fx = fixtureSource({ ...SNAP, bus });
    const source: AdminStatsSource = { ...fx.source, busUp: () => bus.up };
    const admin = await startAdminServer({ port: 0, host: "127.0.0.1", token: "", source });
    started.push(admin);
    const base = `http://127.0.0.1:${admin.port}`;
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ready (bus down)");
    bus.up = true;
    expect(await (await fetch(`${base}/readyz`)).text()).toBe("ready");
    expect((await (await fetch(`${base}/stats`)).json()).bus).toEqual(bus);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain("myriad_bus_up 1\n");
    expect(metrics).toContain("myriad_bus_publish_errors_total 1\n");
  });
});

describe("GET /stats", () => {
  test("returns every worker, their sums and the pools", async () => {
    const { base } = await start();
    const before = Date.now();
    const res = await fetch(`${base}/stats`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as AdminStatsBody;
    expect(body.timeMs).toBeGreaterThanOrEqual(before);
    expect(body.workers.map((w) => [w.worker, w.pid])).toEqual([["w0", 1001], ["w1", 1002]]);
    expect(body.workers[1]!.stats).toEqual(serverStats(2));
    const a = serverStats(1), b = serverStats(2), t = body.totals;
    expect(t.connections).toBe(a.connections + b.connections);
    expect(t.accepted).toBe(a.accepted + b.accepted);
    expect(t.closed.peer).toBe(a.closed.peer + b.closed.peer);
    expect(t.closed.error).toBe(a.closed.error + b.closed.error);
    expect(t.bytesOut).toBe(a.bytesOut + b.bytesOut);
    expect(t.rssBytes).toBe(a.rssBytes + b.rssBytes);
    expect(t.baselineRssBytes).toBe(a.baselineRssBytes! + b.baselineRssBytes!);
    expect(t.writeQueueBytes).toBe(a.writeQueueBytes + b.writeQueueBytes);
    expect(t.uptimeMs).toBe(Math.max(a.uptimeMs, b.uptimeMs));
    expect(t.requestLatency.boundsMs).toEqual([0.1, 1, 10]);
    expect(t.requestLatency.counts).toEqual(a.requestLatency.counts.map((c, i) => c + b.requestLatency.counts[i]!));
    expect(t.requestLatency.count).toBe(a.requestLatency.count + b.requestLatency.count);
    expect(body.pools.map((p) => p.name)).toEqual(["redis", TRICKY_POOL]);
    expect(body.pools[1]!.stats).toEqual(poolStats(5));
  });

  test("answers 500 with the error when the source fails", async () => {
    const { base, state } = await start();
    state.snapshotError = new Error("worker 3 did not answer");
    const res = await fetch(`${base}/stats`);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toBe("worker 3 did not answer");
  });

  test("an async source (a cluster asking its workers) is awaited", async () => {
    const fx = fixtureSource(SNAP);
    const app = createAdminApp({
      source: { ...fx.source, snapshot: () => Bun.sleep(5).then(() => SNAP) },
    });
    const res = await app.request("/stats");
    expect(((await res.json()) as AdminStatsBody).totals.connections).toBe(300);
  });
});

describe("GET /metrics", () => {
  test("is valid Prometheus 0.0.4 text whose values are the snapshot's", async () => {
    const { base } = await start();
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(PROMETHEUS_CONTENT_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    const fams = parsePrometheusText(text, { prefix: "myriad_" });

    for (const f of fams.values()) {
      expect(f.help).not.toBeNull();
      if (f.type === "counter") expect(f.name).toEndWith("_total");
    }
    expect(fams.get("myriad_connections")!.type).toBe("gauge");
    expect(fams.get("myriad_connections_accepted_total")!.type).toBe("counter");
    expect(fams.get("myriad_request_duration_seconds")!.type).toBe("histogram");
    expect(fams.get("myriad_pool_acquire_wait_seconds")!.type).toBe("histogram");

    expect(sampleValue(fams, "myriad_workers")).toBe(2);
    expect(sampleValue(fams, "myriad_worker_info", { worker: "w1", pid: "1002" })).toBe(1);
    for (const [i, w] of SNAP.workers.entries()) {
      const s = serverStats(i + 1);
      const l = { worker: w.worker };
      expect(sampleValue(fams, "myriad_connections", l)).toBe(s.connections);
      expect(sampleValue(fams, "myriad_connections_peak", l)).toBe(s.peakConnections);
      expect(sampleValue(fams, "myriad_connections_accepted_total", l)).toBe(s.accepted);
      expect(sampleValue(fams, "myriad_connections_rejected_total", l)).toBe(s.rejected);
      for (const [reason, n] of Object.entries(s.closed)) {
        expect(sampleValue(fams, "myriad_connections_closed_total", { ...l, reason })).toBe(n);
      }
      expect(sampleValue(fams, "myriad_received_bytes_total", l)).toBe(s.bytesIn);
      expect(sampleValue(fams, "myriad_sent_bytes_total", l)).toBe(s.bytesOut);
      expect(sampleValue(fams, "myriad_frames_received_total", l)).toBe(s.framesIn);
      expect(sampleValue(fams, "myriad_frames_sent_total", l)).toBe(s.framesOut);
      expect(sampleValue(fams, "myriad_write_queue_bytes", l)).toBe(s.writeQueueBytes);
      expect(sampleValue(fams, "myriad_paused_connections", l)).toBe(s.pausedConnections);
      expect(sampleValue(fams, "myriad_resident_memory_bytes", l)).toBe(s.rssBytes);
      expect(sampleValue(fams, "myriad_baseline_resident_memory_bytes", l)).toBe(s.baselineRssBytes!);
      expect(sampleValue(fams, "myriad_heap_used_bytes", l)).toBe(s.heapUsedBytes);
      expect(sampleValue(fams, "myriad_uptime_seconds", l)).toBe(s.uptimeMs / 1000);

      // Buckets in seconds, cumulative; the parser already checked +Inf == _count.
      const buckets = samples(fams, "myriad_request_duration_seconds", l, "myriad_request_duration_seconds_bucket");
      expect(buckets.map((b) => b.labels.le)).toEqual(["0.0001", "0.001", "0.01", "+Inf"]);
      let cum = 0;
      expect(buckets.map((b) => b.value)).toEqual(s.requestLatency.counts.map((c) => (cum += c)));
      expect(sampleValue(fams, "myriad_request_duration_seconds", l, "myriad_request_duration_seconds_count")).toBe(s.requestLatency.count);
      expect(sampleValue(fams, "myriad_request_duration_seconds", l, "myriad_request_duration_seconds_sum")).toBeCloseTo(s.requestLatency.sumMs / 1000, 12);
    }

    // The pool named a"b\c<newline>d comes back intact through escaping and parsing.
    for (const [name, seed] of [["redis", 3], [TRICKY_POOL, 5]] as const) {
      const p = poolStats(seed);
      const l = { pool: name };
      expect(sampleValue(fams, "myriad_pool_size", l)).toBe(p.size);
      expect(sampleValue(fams, "myriad_pool_idle", l)).toBe(p.idle);
      expect(sampleValue(fams, "myriad_pool_borrowed", l)).toBe(p.borrowed);
      expect(sampleValue(fams, "myriad_pool_waiting", l)).toBe(p.waiting);
      expect(sampleValue(fams, "myriad_pool_pending_creates", l)).toBe(p.pending);
      expect(sampleValue(fams, "myriad_pool_acquired_total", l)).toBe(p.acquired);
      expect(sampleValue(fams, "myriad_pool_released_total", l)).toBe(p.released);
      expect(sampleValue(fams, "myriad_pool_acquire_timeouts_total", l)).toBe(p.timeouts);
      expect(sampleValue(fams, "myriad_pool_create_errors_total", l)).toBe(p.createErrors);
      const buckets = samples(fams, "myriad_pool_acquire_wait_seconds", l, "myriad_pool_acquire_wait_seconds_bucket");
      expect(buckets.map((b) => [b.labels.le, b.value])).toEqual([["0.0005", 400], ["0.005", 490], ["0.05", 500], ["+Inf", 500]]);
    }
    expect(text).toContain('pool="a\\"b\\\\c\\nd"');
    // Prometheus's own parser and linter agree, hostile pool name included.
    expect(await promtoolCheckMetrics(text)).toEqual({ code: 0, output: "" });
  });

  test("pools registered by workers carry the worker's label: one name under two workers is two series, a repeat within one worker gets #2", async () => {
    const snap: AdminSnapshot = {
      workers: SNAP.workers,
      pools: [
        { worker: "w0", name: "upstream", stats: poolStats(1) },
        { worker: "w1", name: "upstream", stats: poolStats(2) },
        { worker: "w1", name: "upstream", stats: poolStats(4) },
      ],
    };
    const { base } = await start({ snap });
    const body = (await (await fetch(`${base}/stats`)).json()) as AdminStatsBody;
    expect(body.pools.map((p) => [p.worker, p.name, p.stats.borrowed])).toEqual([["w0", "upstream", 1], ["w1", "upstream", 2], ["w1", "upstream", 4]]);
    const fams = parsePrometheusText(await (await fetch(`${base}/metrics`)).text(), { prefix: "myriad_" });
    expect(samples(fams, "myriad_pool_borrowed").map((x) => [x.labels.worker, x.labels.pool, x.value])).toEqual([
      ["w0", "upstream", 1],
      ["w1", "upstream", 2],
      ["w1", "upstream#2", 4],
    ]);
    const waits = samples(fams, "myriad_pool_acquire_wait_seconds", { worker: "w1", pool: "upstream", le: "+Inf" }, "myriad_pool_acquire_wait_seconds_bucket");
    expect(waits.map((x) => x.value)).toEqual([500]);
  });

  test("stays valid with duplicate names, no pools, no workers and hostile worker names", async () => {
    const snap: AdminSnapshot = {
      workers: [
        { worker: "x", pid: 1, stats: serverStats(1) },
        { worker: "x", pid: 2, stats: serverStats(2) },
        { worker: '\\"\n', pid: 3, stats: serverStats(3) },
      ],
      pools: [],
    };
    const { base } = await start({ snap });
    const text = await (await fetch(`${base}/metrics`)).text();
    const fams = parsePrometheusText(text, { prefix: "myriad_" });
    expect(samples(fams, "myriad_connections").map((s) => s.labels.worker)).toEqual(["x", "x#2", '\\"\n']);
    expect(await promtoolCheckMetrics(text)).toEqual({ code: 0, output: "" });
    expect([...fams.keys()].filter((k) => k.startsWith("myriad_pool_"))).toEqual([]);

    const empty = await start({ snap: { workers: [], pools: [] } });
    const fams2 = parsePrometheusText(await (await fetch(`${empty.base}/metrics`)).text(), { prefix: "myriad_" });
    expect(sampleValue(fams2, "myriad_workers")).toBe(0);
  });
});

describe("token", () => {
  const TOKEN = "s3cret-Token_0123456789";

  test("without the bearer token, /stats /metrics and /admin/stop answer 401; probes and the page stay open", async () => {
    const { base, state } = await start({ token: TOKEN });
    const wrong = [
      undefined,
      "",
      `Bearer`,
      `Bearer ${TOKEN.slice(0, -1)}`, // a prefix
      `Bearer ${TOKEN}x`, // longer
      `Bearer ${TOKEN.toUpperCase()}`, // case matters in the token
      `Bearer ${TOKEN.slice(0, -1)}X`, // same length, last byte differs
      `Basic ${btoa(`admin:${TOKEN}`)}`,
      `Token ${TOKEN}`,
      TOKEN,
    ];
    for (const authorization of wrong) {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
      for (const [method, path] of [["GET", "/stats"], ["GET", "/metrics"], ["POST", "/admin/stop"]] as const) {
        const res = await fetch(`${base}${path}`, { method, headers });
        expect({ authorization, path, status: res.status }).toEqual({ authorization, path, status: 401 });
        expect(res.headers.get("www-authenticate")).toBe('Bearer realm="myriad-admin"');
      }
    }
    expect(state.stops).toBe(0);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/`)).status).toBe(200);
    expect((await fetch(`${base}/assets/uplot.js`)).status).toBe(200);

    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER   ${TOKEN} `]) {
      const ok = await fetch(`${base}/stats`, { headers: { authorization } });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as AdminStatsBody).totals.connections).toBe(300);
    }
    const m = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(m.status).toBe(200);
    parsePrometheusText(await m.text(), { prefix: "myriad_" });
  });

  test("POST /admin/stop with the token stops, even from a browser page (the token proves intent)", async () => {
    const { base, state } = await start({ token: TOKEN });
    const res = await fetch(`${base}/admin/stop`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, origin: "http://elsewhere.example" },
    });
    expect(res.status).toBe(202);
    expect(state.stops).toBe(1);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
  });

  test("startAdminServer takes MYRIAD_ADMIN_TOKEN when no token is passed", async () => {
    const saved = process.env.MYRIAD_ADMIN_TOKEN;
    process.env.MYRIAD_ADMIN_TOKEN = TOKEN;
    try {
      const fx = fixtureSource(SNAP);
      const admin = await startAdminServer({ port: 0, source: fx.source });
      started.push(admin);
      expect((await fetch(`${admin.url}stats`)).status).toBe(401);
      expect((await fetch(`${admin.url}stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    } finally {
      if (saved === undefined) delete process.env.MYRIAD_ADMIN_TOKEN;
      else process.env.MYRIAD_ADMIN_TOKEN = saved;
    }
  });
});

describe("POST /admin/stop", () => {
  const TOKEN = "stop-token-5b2d";
  const auth = { authorization: `Bearer ${TOKEN}` };

  test("with the token: starts one graceful stop, /readyz turns 503, ?wait=1 waits for it", async () => {
    const { base, state } = await start({ token: TOKEN });
    const first = await fetch(`${base}/admin/stop`, { method: "POST", headers: auth });
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({ stopping: true });
    expect(state.stops).toBe(1);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    expect((await fetch(`${base}/admin/stop`, { method: "POST", headers: auth })).status).toBe(202);
    expect(state.stops).toBe(1);

    let waited = false;
    const waiting = fetch(`${base}/admin/stop?wait=1`, { method: "POST", headers: auth }).then(async (r) => {
      waited = true;
      return r;
    });
    await Bun.sleep(50);
    expect(waited).toBe(false);
    state.stopDone.resolve();
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ stopped: true });
    expect(state.stops).toBe(1);
  });

  test("without a token configured: refused (403) from loopback too, saying how to enable it; the server keeps running", async () => {
    const { base, state } = await start();
    for (const headers of [
      {},
      { origin: base, "sec-fetch-site": "same-origin" },
      { authorization: "Bearer anything" },
      { origin: "http://evil.example" },
      { host: "evil.example" },
    ] as Array<Record<string, string>>) {
      for (const path of ["/admin/stop", "/admin/stop?wait=1"]) {
        const res = await fetch(`${base}${path}`, { method: "POST", headers });
        expect({ headers, path, status: res.status }).toEqual({ headers, path, status: 403 });
        const { error } = (await res.json()) as { error: string };
        expect(error).toContain("set --admin-token or MYRIAD_ADMIN_TOKEN to enable /admin/stop");
      }
    }
    // Nothing was stopped: the source was never asked, and it still reports ready and serves.
    expect(state.stops).toBe(0);
    expect(state.accepting).toBe(true);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/stats`)).status).toBe(200);
    // The app as mounted elsewhere refuses too.
    const fx = fixtureSource(SNAP);
    const app = createAdminApp({ source: fx.source });
    expect((await app.request("/admin/stop", { method: "POST", headers: { host: "127.0.0.1:9180" } })).status).toBe(403);
    expect(fx.state.stops).toBe(0);
  });

  test("GET /admin/stop is not a stop", async () => {
    const { base, state } = await start({ token: TOKEN });
    expect((await fetch(`${base}/admin/stop`, { headers: auth })).status).toBe(404);
    expect(state.stops).toBe(0);
  });
});

describe("dashboard", () => {
  test("GET / serves the page, uPlot from the package and the page script, no CDN", async () => {
    const { base } = await start();
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('id="connections"');
    expect(html).toContain('src="assets/uplot.js"');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);

    const js = await fetch(`${base}/assets/uplot.js`);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const uplotPath = fileURLToPath(import.meta.resolve("uplot/dist/uPlot.iife.min.js"));
    expect(new Uint8Array(await js.arrayBuffer())).toEqual(new Uint8Array(readFileSync(uplotPath)));
    const css = await fetch(`${base}/assets/uplot.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(await css.text()).toContain(".uplot");
    const client = await fetch(`${base}/assets/dashboard.js`);
    const clientJs = await client.text();
    expect(clientJs).toContain("Authorization".toLowerCase());
    expect(clientJs).not.toMatch(/^\s*import /m); // types stripped, nothing left to import

    const etag = js.headers.get("etag")!;
    const again = await fetch(`${base}/assets/uplot.js`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
  });

  test("unknown paths answer 404", async () => {
    const { base } = await start();
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/assets/../package.json`)).status).toBe(404);
  });
});

describe("startAdminServer", () => {
  let saved: string | undefined;
  beforeAll(() => {
    saved = process.env.MYRIAD_ADMIN_TOKEN;
    delete process.env.MYRIAD_ADMIN_TOKEN;
  });
  afterAll(() => {
    if (saved !== undefined) process.env.MYRIAD_ADMIN_TOKEN = saved;
  });

  test("a non-loopback host without a token throws ERR_ADMIN_TOKEN_REQUIRED naming the flag and variable", async () => {
    const fx = fixtureSource(SNAP);
    for (const host of ["0.0.0.0", "::", "192.0.2.10"]) {
      let err: unknown;
      try {
        started.push(await startAdminServer({ host, port: 0, source: fx.source }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MyriadError);
      expect((err as MyriadError).code).toBe("ERR_ADMIN_TOKEN_REQUIRED");
      expect((err as Error).message).toContain("--admin-token");
      expect((err as Error).message).toContain("MYRIAD_ADMIN_TOKEN");
    }
  });

  test("defaults to 127.0.0.1, binds ::1 too, reports its port and url, and stop() closes it", async () => {
    const fx = fixtureSource(SNAP);
    const v6 = await startAdminServer({ host: "::1", port: 0, source: fx.source });
    expect(v6.url).toBe(`http://[::1]:${v6.port}/`);
    expect((await fetch(`${v6.url}healthz`)).status).toBe(200);
    await v6.stop();
    const v4 = await startAdminServer({ port: 0, source: fx.source });
    expect(v4.host).toBe("127.0.0.1");
    expect(v4.port).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${v4.port}/healthz`)).status).toBe(200);
    await v4.stop();
    let refused = false;
    await fetch(`http://127.0.0.1:${v4.port}/healthz`).catch(() => (refused = true));
    expect(refused).toBe(true);
  });

  test("a taken port throws ERR_ADMIN_LISTEN; a bad port ERR_ADMIN_BAD_PORT", async () => {
    const { admin, source } = await start();
    await expect(startAdminServer({ port: admin.port, source })).rejects.toMatchObject({ code: "ERR_ADMIN_LISTEN" });
    await expect(startAdminServer({ port: 70000, source })).rejects.toMatchObject({ code: "ERR_ADMIN_BAD_PORT" });
    await expect(startAdminServer({ port: 1.5, source })).rejects.toMatchObject({ code: "ERR_ADMIN_BAD_PORT" });
  });
});
