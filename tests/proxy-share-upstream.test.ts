/**
 * `bun run proxy --workers 3 --share-upstream` against two real redis-servers: clients reach
 * every worker, their keys land where the pool's placement says, MGET is split and merged by
 * the hub, each server sees exactly server_connections connections from the whole proxy
 * (plus a dedicated one only while a SUBSCRIBE or BLPOP needs it), PSUBSCRIBE gets the
 * pmessages of channels on every server and PUNSUBSCRIBE ends them, the hub's socket is
 * private, a killed hub is restarted while clients get answers or errors (never a hang),
 * and SIGTERM leaves no process and no socket directory behind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Placement, readProxyConfig } from "../src/proxy/index.ts";
import { freePort } from "./helpers/ports.ts";
import { alive } from "./helpers/process.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { respConnect, type RespConn } from "./helpers/resp-conn.ts";
import { until } from "./helpers/until.ts";

const ROOT = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "myriad-proxy-share-"));
const redis: RedisServer[] = [];
let proc: Subprocess<"ignore", "pipe", "pipe">;
let out = "";
let port = 0;
let adminPort = 0;
let cfgPath = "";
const SERVER_CONNECTIONS = 2;

/** The hub's view of the pool, from the admin server. */
async function hubPool(): Promise<{ blockedClients: number; subscribedClients: number }> {
  const stats = (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as { proxy: Array<{ worker: string; pools: Array<{ blockedClients: number; subscribedClients: number }> }> };
  return stats.proxy.find((g) => g.worker === "hub")!.pools[0]!;
}

async function counts(): Promise<number[]> {
  return Promise.all(redis.map((r) => r.otherClients()));
}

/** The pids the startup block names: the workers and the hub. */
function pids(): { workers: number[]; hub: number } {
  const m = /\(pids ([0-9, ]+)\) sharing hub pid (\d+)/.exec(out)!;
  return { workers: m[1]!.split(", ").map(Number), hub: Number(m[2]) };
}

beforeAll(async () => {
  for (let i = 0; i < 2; i++) redis.push(await RedisServer.start());
  [port, adminPort] = [freePort(), freePort()];
  cfgPath = join(dir, "share.yml");
  writeFileSync(
    cfgPath,
    `shared:\n  listen: 127.0.0.1:${port}\n  redis: true\n  hash: md5\n  timeout: 3000\n  preconnect: true\n  server_connections: ${SERVER_CONNECTIONS}\n` +
      `  servers:\n   - 127.0.0.1:${redis[0]!.port}:1 one\n   - 127.0.0.1:${redis[1]!.port}:1 two\n`,
  );
  proc = Bun.spawn([process.execPath, join(ROOT, "src/cli/proxy.ts"), "--config", cfgPath, "--workers", "3", "--share-upstream", "--admin-port", String(adminPort)], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stdout) out += dec.decode(chunk);
  })();
  await until(() => `the startup block (stdout: ${out})`, () => out.includes("stop: Ctrl-C"), 60_000);
}, 90_000);

afterAll(async () => {
  if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
    const left = out.includes("sharing hub pid") ? pids() : { workers: [], hub: 0 };
    for (const pid of [proc.pid, ...left.workers, left.hub]) if (pid > 0 && alive(pid)) process.kill(pid, "SIGKILL");
  }
  await proc?.exited;
  await Promise.all(redis.map((r) => r.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe("bun run proxy --workers 3 --share-upstream", () => {
  test("every worker's clients go through the hub's server_connections; keys land by placement; MGET is split and merged", async () => {
    expect(out).toContain(`upstream connections: ${2 * SERVER_CONNECTIONS} shared by every worker`);
    // The hub's socket: in a directory only this user can enter, itself read-write for the owner only.
    const socketDir = /through the hub's socket in (\S+)/.exec(out)![1]!;
    expect(statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(socketDir, "pool-0.sock")).mode & 0o777).toBe(0o600);
    // preconnect: the hub alone holds server_connections to each server, for all three workers.
    await until("server_connections to each server", async () => (await counts()).every((n) => n === SERVER_CONNECTIONS));

    const placement = new Placement(readProxyConfig(cfgPath).pools[0]!);
    const clients: RespConn[] = await Promise.all(Array.from({ length: 60 }, () => respConnect(port)));
    const keys = clients.map((_, i) => `share:${i}`);
    for (const [i, c] of clients.entries()) expect(await c.call(["SET", keys[i]!, `v${i}`], ["GET", keys[i]!])).toEqual(["OK", `v${i}`]);
    // Each key is on the server the placement names, and only there.
    const direct = await Promise.all(redis.map((r) => respConnect(r.port)));
    const where = keys.map((k) => placement.serverOf(Buffer.from(k), 0, Buffer.byteLength(k)));
    expect(new Set(where).size).toBe(2); // md5 over 60 keys uses both servers
    for (const [i, k] of keys.entries()) {
      expect(await direct[where[i]!]!.call(["GET", k])).toEqual([`v${i}`]);
      expect(await direct[1 - where[i]!]!.call(["EXISTS", k])).toEqual([0]);
    }
    for (const d of direct) d.close();
    // MGET over both servers, with a missing key, through one worker; DEL split and summed.
    expect(await clients[0]!.call(["MGET", ...keys, "share:none"])).toEqual([[...keys.map((_, i) => `v${i}`), null]]);
    expect(await clients[1]!.call(["DEL", keys[0]!, keys[1]!, keys[2]!, keys[3]!, "share:none"])).toEqual([4]);
    // Answered by the worker, or refused with the proxy's usual text.
    const [pong, keysErr, selectErr] = await clients[2]!.call(["PING"], ["KEYS", "*"], ["SELECT", "1"]);
    expect(pong).toBe("PONG");
    expect(String(keysErr)).toContain("ERR proxy: KEYS is not supported through the proxy");
    expect(String(selectErr)).toContain("ERR proxy: SELECT 1 is not supported: the proxy serves database 0 only (its servers' database is redis_db 0)");
    for (const c of clients) c.close();

    // reusePort spread the 60 clients over all three workers; the hub saw their requests.
    const stats = (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as {
      proxy: Array<{ worker: string; pools: Array<{ clientsAccepted: number; requests: number; servers: Array<{ address: string; connections: number; requests: number }> }> }>;
    };
    const fronts = stats.proxy.filter((g) => g.worker !== "hub");
    const hub = stats.proxy.find((g) => g.worker === "hub")!;
    expect(fronts.length).toBe(3);
    for (const f of fronts) expect(f.pools[0]!.clientsAccepted).toBeGreaterThan(0);
    expect(hub.pools[0]!.servers.map((s) => s.address)).toEqual(redis.map((r) => `127.0.0.1:${r.port}`));
    expect(hub.pools[0]!.servers.map((s) => s.connections)).toEqual([SERVER_CONNECTIONS, SERVER_CONNECTIONS]);
    expect(hub.pools[0]!.servers.every((s) => s.requests > 0)).toBe(true);
    // /metrics: the hub's series carry worker="hub" and the real servers; the workers' the hub's socket.
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    for (const r of redis) expect(metrics).toContain(`myriad_proxy_server_connections{worker="hub",pool="shared",server="127.0.0.1:${r.port}",server_name="${r === redis[0] ? "one" : "two"}"} ${SERVER_CONNECTIONS}`);
    expect(metrics).toMatch(/myriad_proxy_client_connections\{worker="worker-0",pool="shared"\} \d+/);
  }, 90_000);

  test("SUBSCRIBE and BLPOP take a dedicated connection only while in use", async () => {
    const base = await counts();
    expect(base).toEqual([SERVER_CONNECTIONS, SERVER_CONNECTIONS]);
    const placement = new Placement(readProxyConfig(cfgPath).pools[0]!);
    const sub = await respConnect(port);
    expect(await sub.call(["SUBSCRIBE", "share:ch"])).toEqual([["subscribe", "share:ch", 1]]);
    const chServer = placement.serverOf(Buffer.from("share:ch"), 0, 8);
    await until("one more connection to the channel's server", async () => (await counts())[chServer] === base[chServer]! + 1);
    const pub = await respConnect(port);
    // PUBLISH goes by its channel to the same server as the subscription.
    await until("the message delivered", async () => {
      await pub.call(["PUBLISH", "share:ch", "hi"]);
      return sub.buffered() > 0;
    });
    expect(await sub.read(1)).toEqual([["message", "share:ch", "hi"]]);
    sub.close();
    await until("the subscriber connection closed", async () => (await counts())[chServer] === base[chServer]!);

    const blocked = await respConnect(port);
    await blocked.send(["BLPOP", "share:list", "0"]);
    const listServer = placement.serverOf(Buffer.from("share:list"), 0, 10);
    await until("one more connection to the list's server", async () => (await counts())[listServer] === base[listServer]! + 1);
    expect(await pub.call(["RPUSH", "share:list", "x"])).toEqual([1]);
    expect(await blocked.read(1)).toEqual([["share:list", "x"]]);
    // Blocked again, then gone: the hub's dedicated connection closes with its client.
    await blocked.send(["BLPOP", "share:list", "0"]);
    await until("the hub sees the client blocked", async () => (await hubPool()).blockedClients === 1);
    blocked.close();
    await until("the dedicated connection closed with its client", async () => (await counts()).every((n, i) => n === base[i]));

    // A transaction and a script whose keys share a server run on it (the hub checks and pins).
    const keys = Array.from({ length: 20 }, (_, i) => `share:t${i}`);
    const on = keys.map((k) => placement.serverOf(Buffer.from(k), 0, k.length));
    const same = keys.filter((_, i) => on[i] === on[0]).slice(0, 2);
    expect(same.length).toBe(2);
    expect(await pub.call(["MULTI"], ["SET", same[0]!, "t"], ["GET", same[1]!], ["EXEC"])).toEqual(["OK", "QUEUED", "QUEUED", ["OK", null]]);
    expect(await pub.call(["EVAL", "return redis.call('GET', KEYS[1])", "1", same[0]!])).toEqual(["t"]);
    const other = keys.find((_, i) => on[i] !== on[0])!;
    const [cross] = await pub.call(["EVAL", "return 1", "2", same[0]!, other]);
    expect(String(cross)).toContain("are on different servers");
    pub.close();
  }, 90_000);

  test("PSUBSCRIBE through the hub: pmessages from channels on every server, once each; PUNSUBSCRIBE ends it", async () => {
    const base = await counts();
    const placement = new Placement(readProxyConfig(cfgPath).pools[0]!);
    const on = (ch: string) => placement.serverOf(Buffer.from(ch), 0, ch.length);
    // A matching channel on each server: the pattern must be subscribed on both.
    const names = Array.from({ length: 40 }, (_, i) => `share:p:${i}`);
    const channels = [names.find((n) => on(n) === 0)!, names.find((n) => on(n) === 1)!];
    const sub = await respConnect(port);
    expect(await sub.call(["PSUBSCRIBE", "share:p:*"])).toEqual([["psubscribe", "share:p:*", 1]]);
    // Confirmed once both servers confirmed: the hub holds one subscriber connection to each.
    await until("a subscriber connection to each server", async () => (await counts()).every((n, i) => n === base[i]! + 1));
    const pub = await respConnect(port);
    // Each PUBLISH goes to its channel's server, where the hub's connection is its one receiver.
    expect(await pub.call(["PUBLISH", channels[0]!, "m0"], ["PUBLISH", channels[1]!, "m1"], ["PUBLISH", "share:q", "no"])).toEqual([1, 1, 0]);
    // Two servers' deliveries travel over two connections: either may come first.
    const got = (await sub.read(2)) as string[][];
    expect(got.sort((a, b) => a[3]!.localeCompare(b[3]!))).toEqual([
      ["pmessage", "share:p:*", channels[0]!, "m0"],
      ["pmessage", "share:p:*", channels[1]!, "m1"],
    ]);
    // Nothing else came before the PING's reply: no second copy, nothing for share:q.
    expect(await sub.call(["PING"])).toEqual([["pong", ""]]);
    // A second pattern counts as redis counts; unsubscribing one keeps the other.
    expect(await sub.call(["PSUBSCRIBE", "share:x:*"], ["PUNSUBSCRIBE", "share:p:*"])).toEqual([
      ["psubscribe", "share:x:*", 2],
      ["punsubscribe", "share:p:*", 1],
    ]);
    await until("share:p:* unsubscribed upstream", async () => (await pub.call(["PUBLISH", channels[0]!, "late"]))[0] === 0);
    expect(await pub.call(["PUBLISH", "share:x:1", "x1"])).toEqual([1]);
    expect(await sub.read(1)).toEqual([["pmessage", "share:x:*", "share:x:1", "x1"]]);
    // PUNSUBSCRIBE with no pattern: all of them; the client is back to normal commands.
    expect(await sub.call(["PUNSUBSCRIBE"])).toEqual([["punsubscribe", "share:x:*", 0]]);
    expect(await sub.call(["SET", "share:after-sub", "1"], ["GET", "share:after-sub"])).toEqual(["OK", "1"]);
    await until("the subscriber connections closed", async () => (await counts()).every((n, i) => n === base[i]));
    expect(await pub.call(["PUBLISH", "share:x:1", "gone"])).toEqual([0]);
    sub.close();
    pub.close();
  }, 60_000);

  test("a killed hub is restarted: clients get answers or errors meanwhile, never a hang", async () => {
    const before = pids();
    const c = await respConnect(port);
    expect(await c.call(["SET", "share:k", "1"])).toEqual(["OK"]);
    process.kill(before.hub, "SIGKILL");
    // Each request is answered (by an error while the hub is down): read() is bounded in time.
    const [during] = await c.call(["GET", "share:k"]);
    const text = during instanceof Error ? during.message : String(during);
    expect(text === "1" || text.startsWith("ERR proxy:") ? "answered" : text).toBe("answered");
    await until(() => `the hub restarted (stdout: ${out})`, () => out.split("proxy: hub ready").length === 3, 60_000);
    await until("requests served again", async () => (await c.call(["GET", "share:k"]))[0] === "1", 30_000);
    c.close();
    // The dead hub's connections are gone; the new one holds server_connections again.
    await until("server_connections to each server again", async () => (await counts()).every((n) => n === SERVER_CONNECTIONS), 30_000);
    for (const pid of before.workers) expect(alive(pid)).toBe(true);
  }, 120_000);

  test("SIGTERM stops the workers and the hub and removes the socket directory", async () => {
    const socketDir = /through the hub's socket in (\S+)/.exec(out)![1]!;
    const { workers } = pids();
    const hubPid = Number([...out.matchAll(/hub ready \(pid (\d+)\)/g)].at(-1)![1]);
    process.kill(proc.pid, "SIGTERM");
    expect(await proc.exited).toBe(0);
    for (const pid of [...workers, hubPid]) await until(`pid ${pid} gone`, () => !alive(pid));
    expect(existsSync(socketDir)).toBe(false);
    await until("no connection to the servers left", async () => (await counts()).every((n) => n === 0));
  }, 60_000);
});

describe("the hub's unix socket and a password", () => {
  test("--share-upstream without --workers N (N >= 2) is a flag error", async () => {
    const p = Bun.spawn([process.execPath, join(ROOT, "src/cli/proxy.ts"), "--listen", "127.0.0.1:1", "--servers", "127.0.0.1:2", "--share-upstream"], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
    expect(await p.exited).toBe(2);
    expect(await new Response(p.stderr).text()).toContain("--share-upstream goes with --workers N (N >= 2)");
  }, 30_000);

  test("the pooled client connects over a unix socket (option unix); a client with neither port nor unix is refused", async () => {
    const { createRespClient, PoolOptionError } = await import("../src/pool/index.ts");
    const sock = join(dir, "redis.sock");
    const r = await RedisServer.start({ args: ["--unixsocket", sock, "--unixsocketperm", "700"] });
    redis.push(r);
    const client = createRespClient({ unix: sock });
    try {
      expect(await client.send(["SET", "over-unix", "1"])).toBe("OK");
      const direct = await respConnect(r.port);
      expect(await direct.call(["GET", "over-unix"])).toEqual(["1"]);
      direct.close();
    } finally {
      await client.close();
    }
    expect(() => createRespClient({} as never)).toThrow(PoolOptionError);
  }, 30_000);

  test("redis_auth and redis_db: a worker answers AUTH with the proxy password, the hub AUTHs and SELECTs upstream", async () => {
    const r = await RedisServer.start({ args: ["--requirepass", "s3cret"] });
    redis.push(r);
    const authPort = freePort();
    const cfg = join(dir, "auth.yml");
    writeFileSync(cfg, `auth:\n  listen: 127.0.0.1:${authPort}\n  redis: true\n  redis_auth: s3cret\n  redis_db: 2\n  servers:\n   - 127.0.0.1:${r.port}:1\n`);
    const p = Bun.spawn([process.execPath, join(ROOT, "src/cli/proxy.ts"), "--config", cfg, "--workers", "2", "--share-upstream", "--no-admin"], {
      cwd: ROOT,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "ignore",
    });
    let text = "";
    void (async () => {
      const dec = new TextDecoder();
      for await (const chunk of p.stdout) text += dec.decode(chunk);
    })();
    try {
      await until(() => `the startup block (stdout: ${text})`, () => text.includes("stop: Ctrl-C"), 60_000);
      const c = await respConnect(authPort);
      const [noauth, wrong, ok, set, select] = await c.call(["GET", "a"], ["AUTH", "nope"], ["AUTH", "s3cret"], ["SET", "in-db-2", "yes"], ["SELECT", "1"]);
      expect(String(noauth)).toContain("NOAUTH Authentication required.");
      expect(String(wrong)).toContain("WRONGPASS");
      expect([ok, set]).toEqual(["OK", "OK"]);
      // The error text names the configured database, as without --share-upstream.
      expect(String(select)).toContain("its servers' database is redis_db 2");
      c.close();
      const direct = await respConnect(r.port);
      expect(await direct.call(["AUTH", "s3cret"], ["SELECT", "2"], ["GET", "in-db-2"], ["SELECT", "0"], ["EXISTS", "in-db-2"])).toEqual(["OK", "OK", "yes", "OK", 0]);
      direct.close();
    } finally {
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
    }
  }, 90_000);
});
