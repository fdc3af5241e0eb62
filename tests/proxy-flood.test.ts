/**
 * A client that pipelines faster than the servers answer, against two real redis-servers:
 * with the server it writes to SIGSTOPped, the proxy stops reading it once its requests in
 * flight pass the bound (backpressure: its own writes back up), instead of buffering it;
 * another client of the same proxy is served meanwhile; after SIGCONT every request of the
 * flooding client is answered, in order, none lost. And a `redis-cli --pipe` mass insert
 * through the proxy completes with every key set.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createProxy, type Proxy, type ProxyConfig, proxyConfigFromObject } from "../src/proxy/index.ts";
import { join } from "node:path";
import { renderMetrics } from "../src/admin/index.ts";
import { flooder, nameOn, rpush, serverIndexOf } from "./helpers/flood.ts";
import { freePort } from "./helpers/ports.ts";
import { rawCommand, RedisServer } from "./helpers/redis-server.ts";
import { respConnect } from "./helpers/resp-conn.ts";
import { until } from "./helpers/until.ts";

const ROOT = join(import.meta.dir, "..");
const MAX_IN_FLIGHT = 4096;
const MAX_IN_FLIGHT_BYTES = 1 << 20;

const redis: RedisServer[] = [];
let config: ProxyConfig;
let proxy: Proxy;
let port = 0;

/** The redis-server holding `key`. */
function holder(key: string): RedisServer {
  return redis[serverIndexOf(config.pools[0]!, key)]!;
}

/** The first key `prefix<i>` that `server` holds. */
function keyOn(server: RedisServer, prefix: string): string {
  return nameOn(config.pools[0]!, redis.indexOf(server), prefix);
}

beforeAll(async () => {
  if (!Bun.which("redis-cli")) throw new Error("redis-cli is missing: apt-get install redis-tools (Debian), or your system's redis package");
  for (let i = 0; i < 2; i++) redis.push(await RedisServer.start());
  port = freePort();
  config = proxyConfigFromObject({
    // A timeout long past the test: the stopped server's requests must wait, not fail.
    flood: {
      listen: `127.0.0.1:${port}`,
      redis: true,
      timeout: 120_000,
      servers: redis.map((r, i) => `127.0.0.1:${r.port}:1 r${i}`),
    },
  });
  proxy = await createProxy(config, {
    maxClientInFlightRequests: MAX_IN_FLIGHT,
    maxClientInFlightBytes: MAX_IN_FLIGHT_BYTES,
  });
}, 30_000);

afterAll(async () => {
  for (const r of redis) if (r.pid > 0) process.kill(r.pid, "SIGCONT");
  await proxy?.stop({ graceful: false });
  await Promise.all(redis.map((r) => r.stop()));
});

test("a client flooding a stopped server is paused at the in-flight bound, others are served, and after SIGCONT it gets every reply in order", async () => {
  const [stopped, running] = [redis[0]!, redis[1]!];
  const floodKey = keyOn(stopped, "flood:");
  const otherKey = keyOn(running, "other:");
  const flood = await flooder(port, floodKey);
  const pool = () => proxy.stats().pools[0]!;
  process.kill(stopped.pid, "SIGSTOP");
  try {
    expect(await flood.untilPushedBack()).toBe(true);
    await until(
      () => `the flooding client to be paused (stats: ${JSON.stringify({ ...pool(), servers: undefined })})`,
      () => pool().pausedClients === 1,
      20_000,
    );
    const requestBytes = rpush(floodKey, flood.sent).length;
    const atPause = pool();
    expect(atPause.inFlightBytes).toBeLessThanOrEqual(MAX_IN_FLIGHT_BYTES + requestBytes);
    expect(atPause.inFlightBytes).toBeGreaterThan(MAX_IN_FLIGHT_BYTES);
    // The client keeps trying: its writes back up again (the kernel takes what its buffers hold, no more).
    expect(await flood.untilPushedBack()).toBe(true);
    // Another client, of the server still running, is served meanwhile.
    const other = await respConnect(port);
    expect(await other.call(["SET", otherKey, "fine"], ["GET", otherKey])).toEqual(["OK", "fine"]);
    other.close();
    // Still held at the bound, whatever the flooding client tried meanwhile.
    const held = pool();
    expect(held.pausedClients).toBe(1);
    expect(held.inFlightBytes).toBeLessThanOrEqual(MAX_IN_FLIGHT_BYTES + requestBytes);
    // The admin server's /metrics shows the same (renderMetrics is what it serves).
    const metrics = renderMetrics({ workers: [], pools: [], proxy: [{ worker: "0", pools: proxy.stats().pools }] });
    expect(metrics).toMatch(/myriad_proxy_paused_clients\{worker="0",pool="[^"]+"\} 1\n/);
    expect(Number(/myriad_proxy_in_flight_bytes\{[^}]*\} (\d+)\n/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(MAX_IN_FLIGHT_BYTES);
    expect(proxy.serverStats()[0]!.inputBufferBytes!).toBeLessThan(MAX_IN_FLIGHT_BYTES);
    expect(flood.replyCount()).toBe(0);
  } finally {
    process.kill(stopped.pid, "SIGCONT");
  }
  // The rest of the last batch goes on drain, once the proxy reads again.
  await flood.expectAllInOrder();
  expect(pool().pausedClients).toBe(0);
  flood.socket.end();
}, 120_000);

test("requests pipelined behind a blocking command pause the client past the bound (it is not closed); the BLPOP's answer lets them all through in order", async () => {
  const server = redis[1]!;
  const listKey = keyOn(server, "blocked:");
  const floodKey = keyOn(server, "behind:");
  const flood = await flooder(port, floodKey);
  // BLPOP with no timeout first: everything after it waits in the client's backlog.
  flood.socket.write(`*3\r\n$5\r\nBLPOP\r\n$${listKey.length}\r\n${listKey}\r\n$1\r\n0\r\n`);
  const pool = () => proxy.stats().pools[0]!;
  await until("the BLPOP to block", () => pool().blockedClients === 1);
  expect(await flood.untilPushedBack()).toBe(true);
  await until("the client to be paused", () => pool().pausedClients === 1, 20_000);
  expect(pool().inFlightBytes).toBeLessThanOrEqual(MAX_IN_FLIGHT_BYTES + rpush(floodKey, 0).length);
  expect(proxy.serverStats()[0]!.closed.error).toBe(0);
  // Another client unblocks it.
  const other = await respConnect(port);
  expect(await other.call(["LPUSH", listKey, "wake"])).toEqual([1]);
  other.close();
  // The BLPOP's reply first, then every RPUSH in order.
  const blpopReply = `*2\r\n$${listKey.length}\r\n${listKey}\r\n$4\r\nwake\r\n`;
  await until("the BLPOP reply", () => flood.replyCount() >= 5);
  const total = flood.sent;
  await until(
    () => `${total} RPUSH replies (have ${flood.replyCount() - 5})`,
    () => flood.replyCount() - 5 >= total,
    60_000,
  );
  const text = flood.text();
  expect(text.startsWith(blpopReply)).toBe(true);
  const lines = text.slice(blpopReply.length).split("\r\n");
  for (let i = 0; i < total; i++) if (lines[i] !== `:${i + 1}`) throw new Error(`reply ${i} is ${lines[i]}, expected :${i + 1}`);
  expect(pool().pausedClients).toBe(0);
  flood.socket.end();
}, 120_000);

test("a redis-cli --pipe mass insert through the proxy sets every key", async () => {
  const n = 50_000;
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = `mass:${i}`;
    const v = `value-${i}`;
    parts.push(`*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${v.length}\r\n${v}\r\n`);
  }
  const input = new TextEncoder().encode(parts.join(""));
  const p = Bun.spawn(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "--pipe"], { stdin: input, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  expect({ code, err }).toEqual({ code: 0, err: "" });
  expect(out).toContain(`errors: 0, replies: ${n}`);
  // Every key is on its server, with its value.
  let keys = 0;
  for (const r of redis) {
    const reply = await rawCommand(r.port, "EVAL \"return #redis.call('keys','mass:*')\" 0");
    keys += Number(reply.slice(1).trim());
  }
  expect(keys).toBe(n);
  for (const i of [0, 1, n >> 1, n - 1]) expect(await rawCommand(holder(`mass:${i}`).port, `GET mass:${i}`)).toBe(`$${`value-${i}`.length}\r\nvalue-${i}\r\n`);
  expect(proxy.stats().pools[0]!.inFlightRequests).toBe(0);
}, 90_000);

test("--workers 2 --share-upstream: with the hub SIGSTOPped, a front stops reading a flooding client; after SIGCONT every reply comes in order", async () => {
  const running = redis[1]!;
  const frontPort = freePort();
  // A timeout long past the test: requests wait for the hub, they do not fail.
  const proc = Bun.spawn(
    [
      process.execPath,
      join(ROOT, "src/cli/proxy.ts"),
      "--listen",
      `127.0.0.1:${frontPort}`,
      "--servers",
      `127.0.0.1:${running.port}`,
      "--timeout",
      "120000",
      "--workers",
      "2",
      "--share-upstream",
      "--no-admin",
    ],
    { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  let out = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stdout) out += dec.decode(chunk);
  })();
  let hubPid = 0;
  try {
    await until(
      () => `the proxy's startup block (stdout: ${out})`,
      () => out.includes("stop: Ctrl-C"),
      60_000,
    );
    hubPid = Number(/sharing hub pid (\d+)/.exec(out)![1]);
    const flood = await flooder(frontPort, "shareflood");
    process.kill(hubPid, "SIGSTOP");
    try {
      // Before the bound, a front read everything it was sent (about 200 MB/s: the 32 MiB
      // below in a fraction of a second); now its reading stops at ~1 MiB in flight and the
      // client's writes stay backed up once the kernel's buffers (some MiB) are full. The
      // client keeps trying for 50 rounds (a second at least), writing whenever it drains.
      for (let round = 0; round < 50; round++) {
        expect(await flood.untilPushedBack()).toBe(true);
        await Bun.sleep(20);
      }
      expect(flood.sent).toBeLessThan(32 * 1024);
      // The front still answers what it answers itself, to another client.
      const other = await respConnect(frontPort);
      expect(await other.call(["PING"])).toEqual(["PONG"]);
      other.close();
      expect(flood.replyCount()).toBe(0);
    } finally {
      process.kill(hubPid, "SIGCONT");
    }
    await flood.expectAllInOrder();
    expect(await rawCommand(running.port, "LLEN shareflood")).toBe(`:${flood.sent}\r\n`);
    flood.socket.end();
  } finally {
    if (hubPid > 0) process.kill(hubPid, "SIGCONT");
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    await proc.exited;
    clearTimeout(timer);
  }
}, 120_000);
