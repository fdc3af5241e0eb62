// End to end: `bun run serve` as a child process, real client connections, and the dashboard
// in headless Debian chromium showing the count. Keeps a screenshot of the page in the temp
// directory (MYRIAD_DASHBOARD_PNG to put it elsewhere, e.g. bench/results/dashboard.png;
// bench/dashboard-screenshot.ts makes the published one under heavier load).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { AdminStatsBody } from "../src/admin/index.ts";
import { launchBrowser, type Browser } from "./helpers/browser.ts";
import { freePort } from "./helpers/ports.ts";
import { terminate } from "./helpers/process.ts";
import { until } from "./helpers/until.ts";

const ROOT = join(import.meta.dir, "..");
const SCREENSHOT = process.env.MYRIAD_DASHBOARD_PNG ?? join(tmpdir(), "myriad-dashboard-e2e.png");
const N = 40;
const TOKEN = "e2e-token-7f3a9c";

let serve: Bun.Subprocess<"ignore", "pipe", "pipe"> | null = null;
let browser: Browser | null = null;
const clients: Array<Bun.Socket<undefined>> = [];
let port = 0;
let adminPort = 0;
let output = "";

async function adminGet(path: string, token = TOKEN): Promise<Response> {
  return fetch(`http://127.0.0.1:${adminPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

async function totals(): Promise<AdminStatsBody["totals"]> {
  const res = await adminGet("/stats");
  if (!res.ok) throw new Error(`/stats: ${res.status}`);
  return ((await res.json()) as AdminStatsBody).totals;
}

beforeAll(async () => {
  port = freePort();
  adminPort = freePort();
  serve = Bun.spawn(
    ["bun", "run", "serve", "--port", String(port), "--admin-port", String(adminPort), "--admin-token", TOKEN],
    { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
  );
  // Keep the child's output for the failure messages.
  for (const stream of [serve.stdout, serve.stderr]) {
    void (async () => {
      for await (const chunk of stream) output += new TextDecoder().decode(chunk);
    })();
  }
  await until(() => `the admin server's /healthz; serve output:\n${output}`, async () => (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).ok, 15_000);
}, 30_000);

afterAll(async () => {
  await browser?.close();
  for (const c of clients) c.end();
  if (serve) await terminate(serve, 10_000);
}, 30_000);

test("the dashboard in chromium shows the number of open connections", async () => {
  const base = await totals();
  for (let i = 0; i < N; i++) {
    clients.push(await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }));
  }
  await until(() => `${N} connections in /stats; serve output:\n${output}`, async () => (await totals()).connections === base.connections + N, 15_000);

  // Some traffic so the rate charts have something to draw: RESP PINGs on every connection.
  const ping = new TextEncoder().encode("*1\r\n$4\r\nPING\r\n");
  const traffic = setInterval(() => {
    for (const c of clients) c.write(ping);
  }, 50);

  try {
    browser = await launchBrowser({ width: 1400, height: 1000 });
    const page = browser.page;
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`http://127.0.0.1:${adminPort}/?token=${TOKEN}`);
    // The token left the address bar (it is kept in sessionStorage).
    expect(new URL(page.url()).searchParams.has("token")).toBe(false);

    const expected = String(base.connections + N);
    await page.waitForFunction((want) => document.getElementById("connections")?.dataset.value === want, expected, { timeout: 15_000 });
    const shown = (await page.textContent("#connections"))!.replace(/,/g, "");
    expect(shown).toBe(expected);
    expect(await page.textContent("#status")).toBe("accepting");
    // A TCP server: no WebSocket panel, no proxy tables.
    expect(await page.isHidden("#ws-section")).toBe(true);
    expect(await page.isHidden("#ws-chart-panel")).toBe(true);
    expect(await page.isHidden("#proxy-pools-section")).toBe(true);

    // Memory per connection leaves the process's own footprint out: (rss - rss at 0
    // connections) / connections, from the same poll as the raw rss shown beside it.
    const mem = await page.evaluate(() => {
      const v = (id: string) => Number(document.getElementById(id)?.dataset.value);
      return { perConn: v("mem-per-conn"), rss: v("rss"), baseline: v("rss-baseline"), conns: v("connections") };
    });
    expect(mem.rss).toBeGreaterThan(0);
    expect(mem.baseline).toBeGreaterThan(0);
    expect(mem.conns).toBe(base.connections + N);
    expect(mem.perConn).toBeCloseTo(Math.max(0, mem.rss - mem.baseline) / mem.conns, 6);
    expect(mem.perConn).toBeLessThan(mem.rss / mem.conns);

    // Live: close some connections and the page follows.
    for (const c of clients.splice(0, 10)) c.end();
    const after = String(base.connections + N - 10);
    await page.waitForFunction((want) => document.getElementById("connections")?.dataset.value === want, after, { timeout: 15_000 });
    expect((await page.textContent("#connections"))!.replace(/,/g, "")).toBe(after);

    // Let four polls of history accumulate (the page's "updated" time moves with each), then keep a picture of it.
    const polls = new Set<string | null>();
    await until(() => `4 more polls of the dashboard (saw ${polls.size})`, async () => polls.add(await page.textContent("#updated")).size >= 5, 15_000);
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(pageErrors).toEqual([]);
  } finally {
    clearInterval(traffic);
  }
}, 60_000);

test("without the token the page says so and the API answers 401", async () => {
  expect((await adminGet("/stats", "wrong")).status).toBe(401);
  expect((await fetch(`http://127.0.0.1:${adminPort}/metrics`)).status).toBe(401);
  const page = (browser ??= await launchBrowser()).page;
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`http://127.0.0.1:${adminPort}/`);
  await page.waitForFunction(() => document.getElementById("status")?.textContent?.includes("token required"), undefined, { timeout: 10_000 });
}, 30_000);
