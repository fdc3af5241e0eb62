// The KV app over real sockets through createServer: pipelining, binary safety, expiry on
// the wheel, QUIT, concurrency, and real clients (ioredis, redis-benchmark).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import { createKvApp, type KvApp } from "../src/apps/index.ts";
import { createServer, type Server } from "../src/reactor/index.ts";
import { encodeCommand, latin1, text, Wire } from "./helpers/kv.ts";
import { concat } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";
import { expectSame } from "./helpers/assert.ts";

let app: KvApp;
let server: Server;

beforeAll(async () => {
  app = createKvApp({ tickMs: 10 });
  server = await createServer({ port: 0, hostname: "127.0.0.1", protocol: app.protocol, handler: app.handler, tickMs: 10 });
});

afterAll(async () => {
  await server?.stop({ graceful: false });
  app?.close();
});

describe("KV over real sockets", () => {
  test("1000 pipelined commands in one write come back in order", async () => {
    const w = await Wire.connect(server.port);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 500; i++) parts.push(encodeCommand(["SET", `p${i}`, `v${i}`]), encodeCommand(["GET", `p${i}`]));
    w.send(concat(parts));
    for (let i = 0; i < 500; i++) {
      expect(text(await w.reply())).toBe("+OK\r\n");
      expect(text(await w.reply())).toBe(`$${`v${i}`.length}\r\nv${i}\r\n`);
    }
    w.close();
  });

  test("the replies to one read leave in one send (counted by the kernel: one data segment)", async () => {
    // The app writes each reply during message(); the reactor must gather them into one
    // socket write per read. The server socket's tcp_info (ss -ti) counts the data segments
    // it sent: one send of a few hundred bytes on loopback is one segment; one send per reply
    // would be 32.
    const ssBin = Bun.which("ss");
    if (!ssBin) throw new Error("ss not found on PATH: install iproute2 (apt-get install iproute2) to run this test");
    let received = 0;
    const chunks: Uint8Array[] = [];
    const sock = await Bun.connect({
      hostname: "127.0.0.1",
      port: server.port,
      socket: {
        data(_s, d) {
          chunks.push(d.slice());
          received += d.length;
        },
      },
    });
    const segments = () => {
      const out = Bun.spawnSync([ssBin, "-tinH", "state", "established", `( sport = :${server.port} and dport = :${sock.localPort} )`]).stdout.toString();
      if (!out.includes(`:${sock.localPort}`)) throw new Error(`ss shows no server socket for the test's connection: ${JSON.stringify(out)}`);
      return { in: Number(/data_segs_in:(\d+)/.exec(out)?.[1] ?? 0), out: Number(/data_segs_out:(\d+)/.exec(out)?.[1] ?? 0) };
    };
    try {
      const parts: Uint8Array[] = [];
      let want = "";
      for (let i = 0; i < 16; i++) {
        parts.push(encodeCommand(["SET", `seg${i}`, `v${i}`]), encodeCommand(["GET", `seg${i}`]));
        want += `+OK\r\n$${`v${i}`.length}\r\nv${i}\r\n`;
      }
      const batch = concat(parts);
      // A batch the kernel split (it arrived as more than one segment, so maybe over more
      // than one read) proves nothing: send it again, a few times at most.
      let checked = false;
      for (let attempt = 0; attempt < 5 && !checked; attempt++) {
        const before = segments();
        received = 0;
        chunks.length = 0;
        sock.write(batch);
        await until(() => `${want.length} reply bytes (got ${received})`, () => received >= want.length, 5000);
        // Every reply byte arrived, so the server had read every request segment and sent
        // every reply segment: the kernel's counts are complete.
        const after = segments();
        expect(text(concat(chunks))).toBe(want);
        if (after.in - before.in !== 1) continue;
        expect(after.out - before.out).toBe(1);
        checked = true;
      }
      expect(checked).toBe(true);
    } finally {
      sock.end();
    }
  });

  test("a command split across many writes is answered once complete", async () => {
    const w = await Wire.connect(server.port);
    const bytes = encodeCommand(["SET", "split", "abcdefghij"]);
    for (const byte of bytes) {
      w.send(Uint8Array.of(byte));
      await Bun.sleep(1);
    }
    expect(text(await w.reply())).toBe("+OK\r\n");
    expect(await w.call("GET", "split")).toBe("$10\r\nabcdefghij\r\n");
    w.close();
  });

  test("keys and values are binary-safe (all 256 byte values, 512 KiB value)", async () => {
    const w = await Wire.connect(server.port);
    const every = new Uint8Array(256).map((_, i) => i);
    expect(await w.call("SET", every, every)).toBe("+OK\r\n");
    expect(await w.call("GET", every)).toBe(`$256\r\n${text(every)}\r\n`);
    const big = new Uint8Array(512 * 1024).map((_, i) => (i * 7) & 0xff);
    expect(await w.call("SET", "big", big)).toBe("+OK\r\n");
    const reply = await w.call("GET", "big");
    expect(reply.length).toBe(big.length + `$${big.length}\r\n\r\n`.length);
    expectSame(reply.slice(`$${big.length}\r\n`.length, -2), text(big));
    expect(await w.call("DEL", every, "big")).toBe(":2\r\n");
    w.close();
  });

  test("expiry: lazy on access, and reaped by the wheel without access", async () => {
    const w = await Wire.connect(server.port);
    // PTTL on a key with a long TTL: a 40 ms one may be gone by the time PTTL runs on a busy machine.
    expect(await w.call("SET", "e0", "v", "PX", "60000")).toBe("+OK\r\n");
    const ttl = Number((await w.call("PTTL", "e0")).slice(1, -2));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60000);
    expect(await w.call("DEL", "e0")).toBe(":1\r\n");
    const before = app.store.expiredKeys;
    expect(await w.call("SET", "e1", "v", "PX", "40")).toBe("+OK\r\n");
    expect(await w.call("SET", "e2", "v")).toBe("+OK\r\n");
    expect(await w.call("PEXPIRE", "e2", "40")).toBe(":1\r\n");
    // Nobody reads them: the wheel alone removes them, at most a tick or so after 40 ms.
    await until(() => `the wheel to reap e1 and e2 (${app.store.expiredKeys - before} reaped)`, () => app.store.expiredKeys - before >= 2);
    expect(app.store.expiredKeys - before).toBe(2);
    expect(await w.call("EXISTS", "e1", "e2")).toBe(":0\r\n");
    expect(await w.call("TTL", "e1")).toBe(":-2\r\n");
    w.close();
  });

  test("QUIT answers +OK and the server closes the connection", async () => {
    const w = await Wire.connect(server.port);
    w.send(Uint8Array.from([...encodeCommand(["QUIT"]), ...encodeCommand(["SET", "after-quit", "x"])]));
    expect(text(await w.reply())).toBe("+OK\r\n");
    await w.closedByPeer();
    const w2 = await Wire.connect(server.port);
    expect(await w2.call("EXISTS", "after-quit")).toBe(":0\r\n");
    w2.close();
  });

  test("50 clients x 100 INCR: every increment counted once", async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => Wire.connect(server.port)));
    const incr = encodeCommand(["INCR", "counter"]);
    await Promise.all(
      clients.map(async (c) => {
        const batch = new Uint8Array(incr.length * 100);
        for (let i = 0; i < 100; i++) batch.set(incr, i * incr.length);
        c.send(batch);
        for (let i = 0; i < 100; i++) expect(text(await c.reply())).toMatch(/^:\d+\r\n$/);
      }),
    );
    expect(await clients[0]!.call("GET", "counter")).toBe("$4\r\n5000\r\n");
    for (const c of clients) c.close();
  });

  test("PUBLISH reaches every subscriber, once, with the exact bytes; closed subscribers are dropped", async () => {
    const subs = await Promise.all([0, 1, 2].map(() => Wire.connect(server.port)));
    for (const w of subs) expect(await w.call("SUBSCRIBE", "news")).toBe("*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    const pub = await Wire.connect(server.port);
    const payload = "\u0000\u00ffhello\r\n";
    expect(await pub.call("PUBLISH", "news", payload)).toBe(":3\r\n");
    for (const w of subs) expect(text(await w.reply())).toBe(`*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$${payload.length}\r\n${payload}\r\n`);
    expect(await pub.call("PUBLISH", "other", "x")).toBe(":0\r\n");
    subs[0]!.close();
    await until(() => `the closed subscriber to be dropped (${app.pubsub.subscribers} subscribers)`, () => app.pubsub.subscribers <= 2);
    expect(await pub.call("PUBLISH", "news", "again")).toBe(":2\r\n");
    for (const w of subs.slice(1)) {
      expect(text(await w.reply())).toBe("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nagain\r\n");
      w.close();
    }
    pub.close();
  });

  test("garbage or an oversized request gets -ERR Protocol error, then the connection closes; others are unaffected", async () => {
    const small = createKvApp();
    const s2 = await createServer({ port: 0, hostname: "127.0.0.1", protocol: small.protocol, handler: small.handler, maxFrameBytes: 1024 });
    try {
      const bystander = await Wire.connect(s2.port);
      expect(await bystander.call("SET", "k", "v")).toBe("+OK\r\n");
      const bad = await Wire.connect(s2.port);
      expect(await bad.call("PING")).toBe("+PONG\r\n");
      bad.send("*2\r\n$3\r\nGET\r\nxyz\r\n");
      expect(text(await bad.reply())).toBe("-ERR Protocol error: invalid request\r\n");
      await bad.closedByPeer();
      const big = await Wire.connect(s2.port);
      big.send(encodeCommand(["SET", "k", "x".repeat(4096)]));
      expect(text(await big.reply())).toBe("-ERR Protocol error: request larger than maxFrameBytes\r\n");
      await big.closedByPeer();
      expect(await bystander.call("GET", "k")).toBe("$1\r\nv\r\n");
      bystander.close();
    } finally {
      await s2.stop({ graceful: false });
      small.close();
    }
  });

  test("INFO counts connected clients", async () => {
    const a = await Wire.connect(server.port);
    const b = await Wire.connect(server.port);
    const info = await a.call("INFO", "clients");
    const n = Number(/connected_clients:(\d+)/.exec(info)?.[1]);
    expect(n).toBe(server.connections);
    expect(n).toBeGreaterThanOrEqual(2);
    a.close();
    b.close();
  });

  test("ioredis works against it", async () => {
    const r = new Redis({ host: "127.0.0.1", port: server.port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    try {
      await r.connect();
      expect(await r.set("io", "hello", "EX", 100)).toBe("OK");
      expect(await r.get("io")).toBe("hello");
      expect(await r.ttl("io")).toBe(100);
      expect(await r.incrby("io-n", 5)).toBe(5);
      expect(await r.mget("io", "io-n", "none")).toEqual(["hello", "5", null]);
      const pipe = r.pipeline();
      for (let i = 0; i < 100; i++) pipe.set(`io${i}`, String(i));
      pipe.get("io99");
      const res = await pipe.exec();
      expect(res?.at(-1)).toEqual([null, "99"]);
      await expect(r.call("nosuch", "a")).rejects.toThrow("ERR unknown command 'nosuch', with args beginning with: 'a' ");
    } finally {
      r.disconnect();
    }
  });

  test("redis-benchmark runs its ping/set/get tests to completion", async () => {
    const bin = Bun.which("redis-benchmark");
    if (!bin) throw new Error("redis-benchmark not found: install redis-tools (apt-get install redis-tools)");
    const proc = Bun.spawn([bin, "-h", "127.0.0.1", "-p", String(server.port), "-t", "ping,set,get", "-c", "5", "-n", "2000", "-P", "4", "--csv"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, , code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(0);
    for (const t of ["PING_INLINE", "PING_MBULK", "SET", "GET"]) expect(out).toMatch(new RegExp(`^"${t}","\\d`, "m"));
  });
});

test("latin1 helper sanity", () => {
  expect(text(latin1("\u00ff\u0000a"))).toBe("\u00ff\u0000a");
});
