/**
 * The dashboard's WebSocket panel, end to end: `bun run serve --app ws-echo` (one process,
 * then two workers under the supervisor) with the admin server, real WebSocket clients (Bun's
 * own) that send messages and close with codes, an upgrade refused, and headless chromium
 * reading the page's WebSocket tables: open connections, upgrades, refusals, messages in and
 * out (totals and per second), closes by code; per worker and in all under the supervisor.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import type { AdminStatsBody } from "../src/admin/index.ts";
import { launchBrowser, type Browser } from "./helpers/browser.ts";
import { killAllServes, startServe, stopServe, type Served } from "./helpers/serve-process.ts";
import { until } from "./helpers/until.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser({ width: 1400, height: 1000 });
}, 30_000);
afterAll(async () => {
  await browser?.close();
  await killAllServes();
}, 30_000);

/** The app's port and the admin server's base URL, from serve's startup block. */
function addresses(s: Served): { port: number; admin: string } {
  return { port: Number(/listening on 127\.0\.0\.1:(\d+)/.exec(s.out.text)![1]), admin: /admin: (http:\/\/[^ ]+)/.exec(s.out.text)![1]! };
}

async function stats(admin: string): Promise<AdminStatsBody> {
  return (await (await fetch(`${admin}stats`)).json()) as AdminStatsBody;
}

/** Opens a WebSocket and resolves once it is open. */
async function open(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("WebSocket failed to open"));
  });
  return ws;
}

/** Sends `n` text messages and resolves once all n echoes are back. */
async function echo(ws: WebSocket, n: number): Promise<void> {
  let got = 0;
  const done = new Promise<void>((resolve) => {
    ws.onmessage = () => {
      if (++got === n) resolve();
    };
  });
  for (let i = 0; i < n; i++) ws.send(`message ${i}`);
  await done;
}

/** A plain HTTP request to the WebSocket port: not an upgrade, so it is refused. */
async function refusedStatus(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/`)).status;
}

/** The rows of a table body, as the page shows them. */
async function rows(page: Page, tbody: string): Promise<string[][]> {
  return page.$$eval(`#${tbody} tr`, (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent ?? "")));
}

/** Waits until the page's WebSocket table has a row for `worker` satisfying `ok`, and returns it. */
async function rowOf(page: Page, worker: string, ok: (row: string[]) => boolean, what: string): Promise<string[]> {
  let seen: string[][] = [];
  return until(
    () => `${what}; the table shows ${JSON.stringify(seen)}`,
    async () => {
      seen = await rows(page, "ws-body");
      return seen.find((r) => r[0] === worker && ok(r));
    },
    20_000,
  );
}

// Columns of #ws-body.
const OPEN = 1, UPGRADES = 2, REFUSED = 3, IN_RATE = 4, OUT_RATE = 5, IN = 6, OUT = 7;

test("one process: open connections, upgrades, a refusal, messages in and out per second, closes by code", async () => {
  const served = await startServe(["--app", "ws-echo", "--port", "0", "--admin-port", "0"]);
  const clients: WebSocket[] = [];
  let traffic: ReturnType<typeof setInterval> | undefined;
  try {
    const { port, admin } = addresses(served);
    const page = browser.page;
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(admin);
    // No WebSocket yet, but the server has a WebSocket listener: the panel is there, with zeros.
    const first = await rowOf(page, "0", (r) => r[UPGRADES] === "0", "the WebSocket row before any client");
    expect(first[OPEN]).toBe("0");
    expect(await page.isHidden("#ws-section")).toBe(false);
    expect(await page.isHidden("#proxy-section")).toBe(true);

    for (let i = 0; i < 5; i++) clients.push(await open(port));
    for (const ws of clients) await echo(ws, 3);
    const status = await refusedStatus(port);
    expect(status).toBeGreaterThanOrEqual(400);

    const row = await rowOf(page, "0", (r) => r[IN] === "15", "15 messages in");
    expect([row[OPEN], row[UPGRADES], row[REFUSED], row[IN], row[OUT]]).toEqual(["5", "5", "1", "15", "15"]);

    // Messages per second while clients keep sending: the rate cells show a positive number.
    traffic = setInterval(() => {
      for (const ws of clients) ws.send("tick");
    }, 20);
    const busy = await rowOf(page, "0", (r) => Number(r[IN_RATE]) > 0 && Number(r[OUT_RATE]) > 0, "messages in and out per second above 0");
    expect(busy[OPEN]).toBe("5");
    clearInterval(traffic);
    traffic = undefined;

    // Closes with codes: three with 4001, two with 1000; the table follows.
    clients.slice(0, 3).forEach((ws) => ws.close(4001, "done"));
    clients.slice(3).forEach((ws) => ws.close(1000));
    await rowOf(page, "0", (r) => r[OPEN] === "0", "no WebSocket open after the closes");
    let codes: string[][] = [];
    await until(
      () => `closes by code in the page; it shows ${JSON.stringify(codes)}`,
      async () => (codes = await rows(page, "ws-codes-body")).some((r) => r[2] === "4001" && r[3] === "3") && codes.some((r) => r[2] === "1000" && r[3] === "2"),
      20_000,
    );
    expect(codes.map((r) => r.slice(0, 4))).toEqual([
      ["0", "closed", "1000", "2"],
      ["0", "closed", "4001", "3"],
      ["0", "refused", String(status), "1"],
    ]);
    // The page agrees with /stats.
    const ws = (await stats(admin)).totals.websocket!;
    expect(ws.closeCodes).toEqual({ "1000": 2, "4001": 3 });
    expect(await page.isHidden("#ws-chart-panel")).toBe(false);
    expect(pageErrors).toEqual([]);
  } finally {
    if (traffic !== undefined) clearInterval(traffic);
    for (const ws of clients) ws.close();
    expect((await stopServe(served)).code).toBe(0);
  }
}, 60_000);

test("two workers under the supervisor: a row per worker and one for all, closes by code per worker", async () => {
  const served = await startServe(["--app", "ws-echo", "--port", "0", "--workers", "2", "--admin-port", "0"]);
  const clients: WebSocket[] = [];
  try {
    const { port, admin } = addresses(served);
    for (let i = 0; i < 8; i++) clients.push(await open(port));
    for (const ws of clients) await echo(ws, 2);
    clients.slice(0, 5).forEach((ws) => ws.close(4002, "bye"));
    await until("5 closes in /stats", async () => (await stats(admin)).totals.websocket?.closeCodes["4002"] === 5);

    const page = browser.page;
    await page.goto(admin);
    const all = await rowOf(page, "all", (r) => r[IN] === "16" && r[OPEN] === "3", "the all row: 16 messages in, 3 open");
    expect([all[UPGRADES], all[OUT]]).toEqual(["8", "16"]);
    // One row per worker after "all", in the supervisor's order, adding up to it.
    const table = await rows(page, "ws-body");
    expect(table.map((r) => r[0])).toEqual(["all", "worker-0", "worker-1"]);
    const sum = (col: number) => table.slice(1).reduce((n, r) => n + Number(r[col]), 0);
    expect([sum(OPEN), sum(UPGRADES), sum(IN), sum(OUT)]).toEqual([3, 8, 16, 16]);

    const codes = await rows(page, "ws-codes-body");
    expect(codes.filter((r) => r[0] === "all").map((r) => r.slice(1, 4))).toEqual([["closed", "4002", "5"]]);
    const perWorker = codes.filter((r) => r[0] !== "all");
    expect(perWorker.every((r) => r[1] === "closed" && r[2] === "4002")).toBe(true);
    expect(perWorker.reduce((n, r) => n + Number(r[3]), 0)).toBe(5);
  } finally {
    for (const ws of clients) ws.close();
    expect((await stopServe(served)).code).toBe(0);
  }
}, 60_000);
