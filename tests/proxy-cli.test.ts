/**
 * `bun run proxy` as a user runs it: --check (as nutcracker -t), a configuration file with
 * the admin server (per pool and per server in /stats, /metrics checked by promtool, the
 * dashboard's proxy tables in headless chromium, their read-backpressure cells live while a
 * client floods a SIGSTOPped redis-server), SIGTERM; and --workers 2, where each worker
 * keeps its own server_connections per server and the admin server shows both.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readProxyConfig, type PoolProxyStats } from "../src/proxy/index.ts";
import { launchBrowser } from "./helpers/browser.ts";
import { flooder, nameOn, rpush } from "./helpers/flood.ts";
import { freePort } from "./helpers/ports.ts";
import { promtoolCheckMetrics } from "./helpers/promtool.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { respConnect } from "./helpers/resp-conn.ts";
import { until } from "./helpers/until.ts";

const ROOT = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "myriad-proxy-cli-"));
const redis: RedisServer[] = [];
const procs: Subprocess[] = [];

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  await Promise.all(redis.map((r) => r.stop()));
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function run(args: string[]): Subprocess<"ignore", "pipe", "pipe"> {
  const p = Bun.spawn([process.execPath, join(ROOT, "src/cli/proxy.ts"), ...args], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  procs.push(p);
  return p;
}

/** Collects a stream's text as it arrives. */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string } {
  let text = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of stream) text += dec.decode(chunk);
  })();
  return { text: () => text };
}

describe("bun run proxy", () => {
  test("--check validates like nutcracker -t: ok with the pools, or the file, line and key of the error", async () => {
    const good = file("good.yml", "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash: murmur\n  servers:\n   - 127.0.0.1:6379:1 one\n");
    const ok = run(["--check", "--config", good]);
    expect(await ok.exited).toBe(0);
    const out = await new Response(ok.stdout).text();
    expect(out).toContain(`configuration file '${good}' syntax is ok`);
    expect(out).toContain("pool alpha: 127.0.0.1:22121 -> 1 server (127.0.0.1:6379:1 one); ketama/murmur");
    const bad = file("bad.yml", "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash: murmur3\n  servers:\n   - 127.0.0.1:6379:1\n");
    const no = run(["--check", "--config", bad]);
    expect(await no.exited).toBe(2);
    expect(await new Response(no.stderr).text()).toBe(`proxy: ${bad}:4: hash: "murmur3" is not a valid hash; one of one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins\n`);
    const flags = run(["--listen", "127.0.0.1:1"]);
    expect(await flags.exited).toBe(2);
    expect(await new Response(flags.stderr).text()).toContain("--listen and --servers go together");
  });

  test("a configuration file with the admin server: stats per pool and server, promtool-valid metrics, the dashboard's tables, their read-backpressure cells live during a flood; SIGTERM stops it", async () => {
    for (let i = 0; i < 2; i++) redis.push(await RedisServer.start());
    const [port, adminPort] = [freePort(), freePort()];
    const cfg = file(
      "run.yml",
      // A timeout past the test: the requests of the flooding client below wait for the stopped server, they do not fail.
      `front:\n  listen: 127.0.0.1:${port}\n  redis: true\n  timeout: 60000\n  servers:\n   - 127.0.0.1:${redis[0]!.port}:1 a\n   - 127.0.0.1:${redis[1]!.port}:1 b\n`,
    );
    const p = run(["--config", cfg, "--admin-port", String(adminPort)]);
    const out = collect(p.stdout);
    await until(() => `the startup block (stdout: ${out.text()})`, () => out.text().includes("stop: Ctrl-C"));
    expect(out.text()).toContain(`pool front: 127.0.0.1:${port} -> 2 servers`);
    const c = await respConnect(port);
    for (let i = 0; i < 50; i++) await c.send(["SET", `k${i}`, String(i)]);
    await c.read(50);
    c.close();

    const stats = (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as {
      proxy: Array<{ worker: string; pools: Array<{ name: string; requests: number; servers: Array<{ name: string; requests: number; live: boolean }> }> }>;
    };
    const pool = stats.proxy[0]!.pools[0]!;
    expect(pool.name).toBe("front");
    expect(pool.requests).toBe(50);
    expect(pool.servers.map((s) => s.name).sort()).toEqual(["a", "b"]);
    expect(pool.servers.reduce((n, s) => n + s.requests, 0)).toBe(50);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(await promtoolCheckMetrics(metrics)).toEqual({ code: 0, output: "" });
    expect(metrics).toMatch(/myriad_proxy_requests_total\{worker="0",pool="front"\} 50/);
    expect(metrics).toMatch(/myriad_proxy_server_live\{worker="0",pool="front",server="127\.0\.0\.1:\d+",server_name="a"\} 1/);
    expect(metrics).toContain("myriad_proxy_server_request_duration_seconds_bucket");
    // The read backpressure's gauges: every request answered, nobody paused.
    expect(metrics).toMatch(/myriad_proxy_paused_clients\{worker="0",pool="front"\} 0\n/);
    expect(metrics).toMatch(/myriad_proxy_in_flight_requests\{worker="0",pool="front"\} 0\n/);
    expect(metrics).toMatch(/myriad_proxy_in_flight_bytes\{worker="0",pool="front"\} 0\n/);

    let served = 50;
    const browser = await launchBrowser();
    try {
      await browser.page.goto(`http://127.0.0.1:${adminPort}/`);
      await browser.page.waitForFunction(() => document.querySelectorAll("#proxy-body tr").length === 2, undefined, { timeout: 15_000 });
      const rows = await browser.page.$$eval("#proxy-body tr", (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
      expect(rows.map((r) => [r[1], r[3]])).toEqual([
        ["front", "live"],
        ["front", "live"],
      ]);
      // Per pool: client connections (the one client has left), requests, live servers, upstream connections, latency.
      await browser.page.waitForFunction(() => document.querySelector("#proxy-pools-body tr")?.children[3]?.textContent === "0", undefined, { timeout: 15_000 });
      const pools = await browser.page.$$eval("#proxy-pools-body tr", (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
      expect(pools.map((r) => [r[1], r[2], r[3], r[4], r[6], r[7], r[11], r[12], r[14], r[15], r[16]])).toEqual([
        ["front", `127.0.0.1:${port}`, "0", "1", "50", "0", "2 / 2", "2 + 0", "0", "0", "0 B"],
      ]);
      expect(pools[0]![17]).toMatch(/^\d+\.\d\d ms$/);

      // The read backpressure, live: a client flooding server a, SIGSTOPped, is paused at the
      // CLI's default bound (4096 requests or 1 MiB in flight); the row shows it, with the
      // requests and bytes in flight /stats has, and 0 again once every reply is out.
      const flood = await flooder(port, nameOn(readProxyConfig(cfg).pools[0]!, 0, "flood:"));
      process.kill(redis[0]!.pid, "SIGSTOP");
      try {
        expect(await flood.untilPushedBack()).toBe(true);
        await browser.page.waitForFunction(() => document.querySelector("#proxy-pools-body tr")?.children[14]?.textContent === "1", undefined, { timeout: 15_000 });
        // Paused, with its server stopped: nothing of it moves until SIGCONT, so the page and /stats agree.
        const [row] = await browser.page.$$eval("#proxy-pools-body tr", (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
        const live = ((await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as { proxy: Array<{ pools: PoolProxyStats[] }> }).proxy[0]!.pools[0]!;
        expect(live.pausedClients).toBe(1);
        expect(live.inFlightBytes).toBeGreaterThan(1 << 20);
        expect(live.inFlightBytes).toBeLessThanOrEqual((1 << 20) + rpush("flood:0", 0).length);
        expect([row![3], row![14], row![15]!.replaceAll(",", ""), row![16]]).toEqual(["1", "1", String(live.inFlightRequests), "1.0 MiB"]);
      } finally {
        process.kill(redis[0]!.pid, "SIGCONT");
      }
      await flood.expectAllInOrder();
      flood.socket.end();
      await browser.page.waitForFunction(
        () => {
          const cells = document.querySelector("#proxy-pools-body tr")?.children;
          return cells?.[3]?.textContent === "0" && cells[14]?.textContent === "0" && cells[15]?.textContent === "0" && cells[16]?.textContent === "0 B";
        },
        undefined,
        { timeout: 15_000 },
      );
      served += flood.sent;
    } finally {
      await browser.close();
    }

    process.kill(p.pid, "SIGTERM");
    expect(await p.exited).toBe(0);
    expect(out.text()).toContain(`proxy: stopped; ${served} requests served`);
  }, 60_000);

  test("--workers 2: each worker holds server_connections to each server; the admin server shows both", async () => {
    const [port, adminPort] = [freePort(), freePort()];
    const cfg = file(
      "workers.yml",
      `front:\n  listen: 127.0.0.1:${port}\n  redis: true\n  preconnect: true\n  server_connections: 2\n  servers:\n   - 127.0.0.1:${redis[0]!.port}:1\n   - 127.0.0.1:${redis[1]!.port}:1\n`,
    );
    const before = await Promise.all(redis.map((r) => r.otherClients()));
    const p = run(["--config", cfg, "--workers", "2", "--admin-port", String(adminPort)]);
    const out = collect(p.stdout);
    await until(() => `the startup block (stdout: ${out.text()})`, () => out.text().includes("stop: Ctrl-C"), 30_000);
    expect(out.text()).toContain("upstream connections: 2 workers x 4 = 8 shared");
    // preconnect: 2 workers x server_connections 2 to each server, whatever the clients.
    await until("2 x 2 connections to each server", async () => (await Promise.all(redis.map((r) => r.otherClients()))).every((n, i) => n - before[i]! === 4));
    const clients = await Promise.all(Array.from({ length: 40 }, () => respConnect(port)));
    for (const [i, c] of clients.entries()) expect(await c.call(["SET", `w${i}`, "1"], ["GET", `w${i}`])).toEqual(["OK", "1"]);
    for (const c of clients) c.close();
    expect((await Promise.all(redis.map((r) => r.otherClients()))).map((n, i) => n - before[i]!)).toEqual([4, 4]);
    const stats = (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as { proxy: Array<{ worker: string; pools: Array<{ requests: number }> }> };
    expect(stats.proxy.map((w) => w.worker).sort()).toEqual(["worker-0", "worker-1"]);
    expect(stats.proxy.reduce((n, w) => n + w.pools[0]!.requests, 0)).toBe(80);
    process.kill(p.pid, "SIGTERM");
    expect(await p.exited).toBe(0);
  }, 60_000);
});
