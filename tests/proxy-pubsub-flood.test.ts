/**
 * Subscribers and the proxy's read backpressure (a client with more than 4096 requests or
 * 1 MiB in flight is not read until they fall to half), against two real redis-servers:
 * deliveries to a subscriber are not requests in flight, so a subscriber receiving far more
 * than either bound is never paused and gets every message in order, while a client flooding
 * a SIGSTOPped server at the same time is paused and, after SIGCONT, served completely. Also
 * when the deliveries queue behind one of the subscriber's own requests still unanswered (a
 * SUBSCRIBE on the stopped server): they are written after its reply, in order, and the
 * subscriber's next request is read, not paused. The same through `--share-upstream`, where
 * fronts and the hub each apply the bound.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createProxy, type PoolProxyStats, type Proxy, type ProxyConfig, proxyConfigFromObject, readProxyConfig } from "../src/proxy/index.ts";
import { flooder, nameOn } from "./helpers/flood.ts";
import { freePort } from "./helpers/ports.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { respConnect, type RespConn } from "./helpers/resp-conn.ts";
import { until } from "./helpers/until.ts";

const ROOT = join(import.meta.dir, "..");
const MAX_IN_FLIGHT = 4096;
const MAX_IN_FLIGHT_BYTES = 1 << 20;
/** Publishes per round: each reaches the subscriber twice (its channel and its pattern). */
const PUBLISHES = 3000;
const MESSAGE_BYTES = 256;

const redis: RedisServer[] = [];
let config: ProxyConfig;
let proxy: Proxy;
let port = 0;

beforeAll(async () => {
  if (!Bun.which("ss")) throw new Error("ss is missing: apt-get install iproute2");
  for (let i = 0; i < 2; i++) redis.push(await RedisServer.start());
  port = freePort();
  config = proxyConfigFromObject({
    // A timeout long past the test: requests to the stopped server wait, they do not fail.
    subs: { listen: `127.0.0.1:${port}`, redis: true, timeout: 120_000, servers: redis.map((r, i) => `127.0.0.1:${r.port}:1 r${i}`) },
  });
  proxy = await createProxy(config, { maxClientInFlightRequests: MAX_IN_FLIGHT, maxClientInFlightBytes: MAX_IN_FLIGHT_BYTES });
}, 30_000);

afterAll(async () => {
  for (const r of redis) if (r.pid > 0) process.kill(r.pid, "SIGCONT");
  await proxy?.stop({ graceful: false });
  await Promise.all(redis.map((r) => r.stop()));
});

/** A RESP bulk string. */
function bulk(s: string): string {
  return `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
}

/** Message i of round `round`, MESSAGE_BYTES long. */
function message(round: number, i: number): string {
  return `r${round}m${i}:`.padEnd(MESSAGE_BYTES, "x");
}

/** What the subscriber gets for one round: per publish, the message then the pmessage. */
function deliveries(channel: string, pattern: string, round: number): string {
  let out = "";
  for (let i = 0; i < PUBLISHES; i++) {
    const m = message(round, i);
    out += `*3\r\n${bulk("message")}${bulk(channel)}${bulk(m)}*4\r\n${bulk("pmessage")}${bulk(pattern)}${bulk(channel)}${bulk(m)}`;
  }
  return out;
}

/** Publishes a round straight to the redis-server at `redisPort`, in pipelined batches; each PUBLISH reaches 2 subscriptions. */
async function publishRound(redisPort: number, channel: string, round: number): Promise<void> {
  const pub: RespConn = await respConnect(redisPort);
  try {
    for (let i = 0; i < PUBLISHES; i += 500) {
      const batch: string[][] = [];
      for (let k = i; k < Math.min(PUBLISHES, i + 500); k++) batch.push(["PUBLISH", channel, message(round, k)]);
      await pub.send(...batch);
      expect(await pub.read(batch.length, 30_000)).toEqual(batch.map(() => 2));
    }
  } finally {
    pub.close();
  }
}

/** Fails naming the first byte where `got` differs from `want` (the streams are megabytes: no whole diff). */
function expectStream(got: string, want: string): void {
  if (got === want) return;
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  throw new Error(`the subscriber's stream differs at byte ${i} of ${want.length} (got ${got.length}): got ${JSON.stringify(got.slice(i, i + 80))}, want ${JSON.stringify(want.slice(i, i + 80))}`);
}

/** A raw client that writes what it is given and keeps every byte it receives. */
async function rawClient(port: number): Promise<{ socket: Socket<undefined>; text: () => string }> {
  let text = "";
  const dec = new TextDecoder();
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data: (_s, d: Uint8Array) => void (text += dec.decode(d, { stream: true })) } });
  return { socket, text: () => text };
}

/**
 * Waits until everything the redis-server at `redisPort` sent has been read by its clients:
 * no reply waiting in its own output buffers (CLIENT LIST omem), then nothing in the kernel's
 * queues of its TCP connections, either way (ss). Nothing is being published meanwhile, so
 * once empty they stay empty; the proxy handles what it reads in the same turn it reads it.
 */
async function redisDrained(redisPort: number): Promise<void> {
  await until(`redis :${redisPort}'s output buffers to empty`, async () => {
    const c = await respConnect(redisPort);
    try {
      const [list] = await c.call(["CLIENT", "LIST"]);
      return [...(list as string).matchAll(/ omem=(\d+)/g)].every((m) => m[1] === "0");
    } finally {
      c.close();
    }
  });
  await until(`the kernel's queues of redis :${redisPort}'s connections to empty`, () => {
    const ss = Bun.spawnSync(["ss", "-tnH", "state", "established", `( sport = :${redisPort} or dport = :${redisPort} )`]);
    const lines = ss.stdout.toString().trim().split("\n").filter((l) => l !== "");
    return ss.exitCode === 0 && lines.length > 0 && lines.every((l) => /^\s*0\s+0\s/.test(l));
  });
}

test("a subscriber receiving far past both bounds is never paused and gets every message in order, also queued behind its own SUBSCRIBE to a stopped server, while a flooding client is paused and later served", async () => {
  const pool = config.pools[0]!;
  const [stopped, running] = [redis[0]!, redis[1]!];
  const channel = nameOn(pool, 1, "news:");
  const late = nameOn(pool, 0, "late:");
  const pattern = "news:*";
  const stats = (): PoolProxyStats => proxy.stats().pools[0]!;

  const sub = await rawClient(port);
  let expected = `*3\r\n${bulk("subscribe")}${bulk(channel)}:1\r\n*3\r\n${bulk("psubscribe")}${bulk(pattern)}:2\r\n`;
  sub.socket.write(`*2\r\n${bulk("SUBSCRIBE")}${bulk(channel)}*2\r\n${bulk("PSUBSCRIBE")}${bulk(pattern)}`);
  await until(() => `the subscriptions' confirmations (have ${JSON.stringify(sub.text())})`, () => sub.text() === expected);

  const flood = await flooder(port, nameOn(pool, 0, "flood:"));
  process.kill(stopped.pid, "SIGSTOP");
  try {
    expect(await flood.untilPushedBack()).toBe(true);
    await until(() => `the flooding client to be paused (${JSON.stringify({ ...stats(), servers: undefined })})`, () => stats().pausedClients === 1, 20_000);
    // Paused with its server stopped: the flooding client's requests in flight stay as they are.
    const flooding = stats().inFlightRequests;
    expect(flooding).toBeGreaterThan(0);

    // Round 1: 6000 deliveries, about 2 MiB, straight through.
    await publishRound(running.port, channel, 1);
    expected += deliveries(channel, pattern, 1);
    await until(() => `round 1's deliveries (have ${sub.text().length} of ${expected.length} bytes)`, () => sub.text().length >= expected.length, 30_000);
    expectStream(sub.text(), expected);
    expect([stats().pausedClients, stats().inFlightRequests]).toEqual([1, flooding]);

    // Round 2: the same, queued behind a SUBSCRIBE to the stopped server, which cannot be answered yet.
    let requests = stats().requests;
    sub.socket.write(`*2\r\n${bulk("SUBSCRIBE")}${bulk(late)}`);
    await until("the SUBSCRIBE to be handled", () => stats().requests === requests + 1);
    await publishRound(running.port, channel, 2);
    await redisDrained(running.port);
    // Every delivery of round 2 is in the proxy now, waiting behind the SUBSCRIBE: the
    // subscriber's next request is still read, and it is not paused.
    requests = stats().requests;
    sub.socket.write(`*1\r\n${bulk("PING")}`);
    await until("the PING to be handled", () => stats().requests === requests + 1);
    const held = stats();
    expect([held.pausedClients, held.inFlightRequests, held.subscribedClients]).toEqual([1, flooding + 2, 1]);
    expectStream(sub.text(), expected);
  } finally {
    process.kill(stopped.pid, "SIGCONT");
  }
  await flood.expectAllInOrder();
  flood.socket.end();
  expected += `*3\r\n${bulk("subscribe")}${bulk(late)}:3\r\n${deliveries(channel, pattern, 2)}*2\r\n${bulk("pong")}${bulk("")}`;
  await until(() => `round 2's deliveries and the PONG (have ${sub.text().length} of ${expected.length} bytes)`, () => sub.text().length >= expected.length, 30_000);
  expectStream(sub.text(), expected);
  expect([stats().pausedClients, stats().inFlightRequests]).toEqual([0, 0]);
  sub.socket.end();
}, 120_000);

/** The proxy pools of every process an admin server reports, by worker ("worker-0", "worker-1", "hub"). */
type ProxyGroups = Array<{ worker: string; pools: PoolProxyStats[] }>;

/** Sums one pool number over the fronts (every worker but the hub). */
function fronts(groups: ProxyGroups, get: (p: PoolProxyStats) => number): number {
  return groups.filter((g) => g.worker !== "hub").reduce((n, g) => n + get(g.pools[0]!), 0);
}

/** The hub's pool. */
function hub(groups: ProxyGroups): PoolProxyStats {
  return groups.find((g) => g.worker === "hub")!.pools[0]!;
}

test("--workers 2 --share-upstream: the same through the fronts and the hub; deliveries held at the hub behind the stopped server's SUBSCRIBE pause neither the subscriber's front connection nor its hub connection", async () => {
  const dir = mkdtempSync(join(tmpdir(), "myriad-pubsub-flood-"));
  const [frontPort, adminPort] = [freePort(), freePort()];
  const cfgPath = join(dir, "share.yml");
  // A timeout long past the test: requests to the stopped server wait, they do not fail.
  writeFileSync(cfgPath, `share:\n  listen: 127.0.0.1:${frontPort}\n  redis: true\n  timeout: 120000\n  servers:\n${redis.map((r, i) => `   - 127.0.0.1:${r.port}:1 r${i}\n`).join("")}`);
  const pool = readProxyConfig(cfgPath).pools[0]!;
  const proc = Bun.spawn(
    [process.execPath, join(ROOT, "src/cli/proxy.ts"), "--config", cfgPath, "--workers", "2", "--share-upstream", "--admin-port", String(adminPort)],
    { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  let out = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stdout) out += dec.decode(chunk);
  })();
  const [stopped, running] = [redis[0]!, redis[1]!];
  const channel = nameOn(pool, 1, "share:");
  const late = nameOn(pool, 0, "sharelate:");
  const extra = nameOn(pool, 1, "shareextra:");
  const pattern = "share:*";
  const groups = async (): Promise<ProxyGroups> => ((await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as { proxy: ProxyGroups }).proxy;
  try {
    await until(() => `the proxy's startup block (stdout: ${out})`, () => out.includes("stop: Ctrl-C"), 60_000);
    const sub = await rawClient(frontPort);
    let expected = `*3\r\n${bulk("subscribe")}${bulk(channel)}:1\r\n*3\r\n${bulk("psubscribe")}${bulk(pattern)}:2\r\n`;
    sub.socket.write(`*2\r\n${bulk("SUBSCRIBE")}${bulk(channel)}*2\r\n${bulk("PSUBSCRIBE")}${bulk(pattern)}`);
    await until(() => `the subscriptions' confirmations (have ${JSON.stringify(sub.text())})`, () => sub.text() === expected, 20_000);

    const flood = await flooder(frontPort, nameOn(pool, 0, "shareflood:"));
    process.kill(stopped.pid, "SIGSTOP");
    try {
      expect(await flood.untilPushedBack()).toBe(true);
      // Its front pauses it; the hub has read every request the front sent on (paused or not, it holds them all).
      let seen: ProxyGroups = [];
      const atPause = await until(
        () => `the flooding client to be paused by its front and its requests to reach the hub (${JSON.stringify(seen)})`,
        async () => {
          const g = (seen = await groups());
          return fronts(g, (p) => p.pausedClients) === 1 && fronts(g, (p) => p.inFlightRequests) === hub(g).inFlightRequests && g;
        },
        20_000,
      );
      const flooding = fronts(atPause, (p) => p.inFlightRequests);
      const hubPaused = hub(atPause).pausedClients;
      expect(flooding).toBeGreaterThan(0);

      // Round 1: 6000 deliveries through the hub and a front.
      await publishRound(running.port, channel, 1);
      expected += deliveries(channel, pattern, 1);
      await until(() => `round 1's deliveries (have ${sub.text().length} of ${expected.length} bytes)`, () => sub.text().length >= expected.length, 30_000);
      expectStream(sub.text(), expected);
      const after1 = await groups();
      expect([fronts(after1, (p) => p.pausedClients), hub(after1).pausedClients, fronts(after1, (p) => p.inFlightRequests), hub(after1).inFlightRequests]).toEqual([
        1,
        hubPaused,
        flooding,
        flooding,
      ]);

      // Round 2, held at the hub behind the SUBSCRIBE to the stopped server; then a SUBSCRIBE
      // the hub must read (the front answers PING itself) and a PING.
      sub.socket.write(`*2\r\n${bulk("SUBSCRIBE")}${bulk(late)}`);
      await until("the hub to have the SUBSCRIBE", async () => hub(await groups()).inFlightRequests === flooding + 1);
      await publishRound(running.port, channel, 2);
      await redisDrained(running.port);
      const before = await groups();
      sub.socket.write(`*2\r\n${bulk("SUBSCRIBE")}${bulk(extra)}*1\r\n${bulk("PING")}`);
      const held = await until(
        "the front to handle the SUBSCRIBE and the PING, and the hub the SUBSCRIBE",
        async () => {
          const g = await groups();
          return fronts(g, (p) => p.requests) === fronts(before, (p) => p.requests) + 2 && hub(g).requests === hub(before).requests + 1 && g;
        },
      );
      expect([fronts(held, (p) => p.pausedClients), hub(held).pausedClients, fronts(held, (p) => p.inFlightRequests), hub(held).inFlightRequests]).toEqual([
        1,
        hubPaused,
        flooding + 3,
        flooding + 2,
      ]);
      expectStream(sub.text(), expected);
    } finally {
      process.kill(stopped.pid, "SIGCONT");
    }
    await flood.expectAllInOrder();
    flood.socket.end();
    // The hub writes the SUBSCRIBE's confirmation, round 2, then the second confirmation; the
    // front had handed out its sequences for the two SUBSCRIBEs and the PING before round 2
    // reached it, so there round 2 comes after the PONG.
    expected += `*3\r\n${bulk("subscribe")}${bulk(late)}:3\r\n*3\r\n${bulk("subscribe")}${bulk(extra)}:4\r\n*2\r\n${bulk("pong")}${bulk("")}${deliveries(channel, pattern, 2)}`;
    await until(() => `round 2's deliveries (have ${sub.text().length} of ${expected.length} bytes)`, () => sub.text().length >= expected.length, 30_000);
    expectStream(sub.text(), expected);
    // Every reply is out: nothing paused or in flight anywhere (polled: a worker's stats may lag the last reply by a poll).
    let end: ProxyGroups = [];
    const settled = async () => {
      end = await groups();
      return [fronts(end, (p) => p.pausedClients), hub(end).pausedClients, fronts(end, (p) => p.inFlightRequests), hub(end).inFlightRequests];
    };
    await until(() => `nothing paused or in flight (${JSON.stringify(end)})`, async () => (await settled()).every((n) => n === 0));
    sub.socket.end();
  } finally {
    process.kill(stopped.pid, "SIGCONT");
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    await proc.exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
