/**
 * The proxy when upstream servers fail, over three real redis-servers stopped and killed by
 * pid: `timeout` bounds every request (a server that stops answering); a server killed
 * mid-load is ejected after server_failure_limit failures and its keys go to the others,
 * every request meanwhile gets a reply (never a hang), clients of the other servers see no
 * error, and the server comes back after server_retry_timeout once restarted; a client that
 * stops reading is closed by the reactor's write limits without holding anyone's replies.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RespError, type RespValue } from "../src/codec/index.ts";
import { createProxy, Placement, type Proxy, type ProxyConfig, proxyConfigFromObject } from "../src/proxy/index.ts";
import { freePorts } from "./helpers/ports.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { type RespConn, respConnect } from "./helpers/resp-conn.ts";
import { until } from "./helpers/until.ts";

const redis: RedisServer[] = [];
let proxy: Proxy;
let config: ProxyConfig;
const ports: Record<string, number> = {};
const conns: RespConn[] = [];

async function conn(pool: string): Promise<RespConn> {
  const c = await respConnect(ports[pool]!);
  conns.push(c);
  return c;
}

/** The redis-server holding `key` while every server is live. */
function holder(key: string): RedisServer {
  const pool = config.pools[0]!;
  const b = Buffer.from(key);
  return redis.find((r) => r.port === pool.servers[new Placement(pool).serverOf(b, 0, b.length)]!.port)!;
}

/** n keys held by `server`, and n held by each of the others (interleaved). */
function keysOn(server: RedisServer, n: number, prefix: string): { on: string[]; off: string[] } {
  const on: string[] = [];
  const byOther = new Map<RedisServer, string[]>();
  for (const r of redis) if (r !== server) byOther.set(r, []);
  for (let i = 0; on.length < n || [...byOther.values()].some((l) => l.length < n); i++) {
    const k = `${prefix}${i}`;
    const h = holder(k);
    const list = h === server ? on : byOther.get(h)!;
    if (list.length < n) list.push(k);
  }
  const off: string[] = [];
  for (let i = 0; i < n; i++) for (const l of byOther.values()) off.push(l[i]!);
  return { on, off };
}

const isError = (v: RespValue) => v instanceof RespError;

beforeAll(async () => {
  for (let i = 0; i < 3; i++) redis.push(await RedisServer.start());
  const servers = redis.map((r, i) => `127.0.0.1:${r.port}:1 r${i}`);
  const [steady, ejecting] = freePorts(2); // distinct: both pools listen at once
  ports.steady = steady!;
  ports.ejecting = ejecting!;
  config = proxyConfigFromObject({
    // The same servers in both pools: one never ejects, one does.
    steady: { listen: `127.0.0.1:${ports.steady}`, redis: true, timeout: 500, servers },
    ejecting: {
      listen: `127.0.0.1:${ports.ejecting}`,
      redis: true,
      timeout: 500,
      auto_eject_hosts: true,
      server_failure_limit: 2,
      server_retry_timeout: 1500,
      servers,
    },
  });
  // Small write limits: a client that stops reading is closed soon.
  proxy = await createProxy(config, { maxWriteBufferBytes: 256 * 1024, writeStallTimeoutMs: 2000 });
}, 30_000);

afterAll(async () => {
  for (const c of conns) c.close();
  await proxy?.stop({ graceful: false });
  for (const r of redis) if (r.pid > 0) process.kill(r.pid, "SIGCONT");
  await Promise.all(redis.map((r) => r.stop()));
});

describe("proxy failures", () => {
  test("timeout bounds a request to a server that stopped answering; other servers' clients are served meanwhile", async () => {
    const victim = redis[0]!;
    const { on, off } = keysOn(victim, 1, "to");
    const c = await conn("steady");
    const other = await conn("steady");
    expect(await c.call(["SET", on[0]!, "1"], ["SET", off[0]!, "2"])).toEqual(["OK", "OK"]);
    process.kill(victim.pid, "SIGSTOP");
    try {
      const t0 = performance.now();
      await c.send(["GET", on[0]!]);
      // Meanwhile: a client of another server is answered at once.
      expect(await other.call(["GET", off[0]!], ["SET", off[0]!, "3"])).toEqual(["2", "OK"]);
      const [r] = await c.read(1, 5000);
      expect(isError(r!)).toBe(true);
      expect((r as RespError).message).toContain("within timeout 500 ms");
      expect(performance.now() - t0).toBeGreaterThanOrEqual(400);
    } finally {
      process.kill(victim.pid, "SIGCONT");
    }
    // Answering again: the server is used again (a new connection replaces the presumed-dead one).
    await until("the stopped server to answer through the proxy again", async () => (await c.call(["GET", on[0]!]))[0] === "1");
    const stats = proxy.stats().pools.find((p) => p.name === "steady")!;
    expect(stats.servers.find((s) => s.address.endsWith(`:${victim.port}`))!.timeouts).toBeGreaterThanOrEqual(1);
    expect(stats.ejections).toBe(0);
  }, 30_000);

  test("a server killed mid-load: every request answered, its keys ejected to the others, the rest undisturbed; it returns once restarted", async () => {
    const victim = redis[1]!;
    const { on, off } = keysOn(victim, 8, "ld");
    const CLIENTS = 40;
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => conn("ejecting")));
    let stop = false;
    let sent = 0;
    let answered = 0;
    const offErrors: string[] = [];
    const onErrors: string[] = [];
    let onOkAfterEject = 0;
    // Each client: one request at a time, a key of the victim or of the others in turn; every read bounded.
    const loops = clients.map(async (c, i) => {
      for (let n = 0; !stop; n++) {
        const key = n % 2 === 0 ? on[(i + n) % on.length]! : off[(i + n) % off.length]!;
        sent++;
        const [r] = await c.call(["SET", key, `${i}:${n}`]);
        answered++;
        if (isError(r!)) (n % 2 === 0 ? onErrors : offErrors).push((r as RespError).message);
        else if (n % 2 === 0 && proxy.stats().pools.find((p) => p.name === "ejecting")!.ejections > 0) onOkAfterEject++;
      }
    });
    const pool = () => proxy.stats().pools.find((p) => p.name === "ejecting")!;
    const victimStats = () => pool().servers.find((s) => s.address.endsWith(`:${victim.port}`))!;
    await until("load through every server", () => pool().servers.every((s) => s.replies > 50));
    await victim.kill();
    await until("the killed server to be ejected", () => victimStats().ejections >= 1 && !victimStats().live);
    expect(pool().liveServers).toBe(2);
    // Its keys now live on the other two servers: writes to them succeed again.
    await until("writes to the victim's keys to succeed on the other servers", () => onOkAfterEject >= 20);
    await victim.restart();
    await until("the restarted server back on the continuum and used", () => victimStats().live && victimStats().replies > 0 && pool().liveServers === 3, 15_000);
    const repliesBack = victimStats().replies;
    await until("replies from the returned server", () => victimStats().replies > repliesBack + 20);
    stop = true;
    await Promise.all(loops);
    expect(answered).toBe(sent); // no request left without a reply
    expect(offErrors).toEqual([]); // the other servers' keys never saw an error
    expect(onErrors.length).toBeGreaterThan(0); // the victim's in-flight and failing requests got error replies
    for (const e of onErrors) expect(e).toMatch(/^ERR proxy: (the connection to server|server .* is unavailable|no reply from server)/);
  }, 60_000);

  test("a client that stops reading is closed by the write limits and holds nobody's replies", async () => {
    const big = "x".repeat(256 * 1024);
    const c = await conn("steady");
    expect(await c.call(["SET", "{big}v", big])).toEqual(["OK"]);
    const stalled = await conn("steady");
    stalled.client.pause();
    const before = proxy.serverStats()[0]!.closed.writeStall;
    // 64 replies of 256 KiB: far over the 256 KiB mark and its 512 KiB hard limit.
    await stalled.send(...Array.from({ length: 64 }, () => ["GET", "{big}v"]));
    // Everyone else is served while it does not read.
    const other = await conn("steady");
    for (let i = 0; i < 20; i++) expect(await other.call(["SET", `{small}${i}`, "1"], ["GET", `{small}${i}`])).toEqual(["OK", "1"]);
    await until("the stalled client to be closed (writeStall)", () => proxy.serverStats()[0]!.closed.writeStall > before, 15_000);
    expect(await other.call(["GET", "{big}v"])).toEqual([big]);
  }, 30_000);
});
