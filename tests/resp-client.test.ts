/**
 * createRespClient against a real redis-server started on a free port (no persistence),
 * stopped by pid: correctness under 10,000 concurrent tasks, redis killed mid-load and
 * restarted, idle connections killed by CLIENT KILL, per-request timeouts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RespError } from "../src/codec/index.ts";
import { createRespClient, PoolOptionError } from "../src/pool/index.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { loopLag, timerLateness } from "./helpers/timing.ts";
import { until } from "./helpers/until.ts";
import { expectSame } from "./helpers/assert.ts";

// Long tests pass their own timeout: Bun 1.4.5 ignores bunfig's [test] timeout, so the default
// is 5 s, which a loaded 2-core machine can exceed.

let redis: RedisServer;

beforeAll(async () => {
  redis = await RedisServer.start();
});

afterAll(async () => {
  await redis?.kill();
});

function connectedClients(info: string): number {
  const m = /connected_clients:(\d+)/.exec(info);
  if (!m) throw new Error(`no connected_clients in INFO reply: ${info.slice(0, 200)}`);
  return Number(m[1]);
}

async function infoClients(): Promise<number> {
  // INFO's reply is a multi-line bulk string: read it with a one-off client (itself one of the counted).
  const c = createRespClient({ port: redis.port, pool: { max: 1 } });
  try {
    return connectedClients((await c.send(["INFO", "clients"])) as string) - 1;
  } finally {
    await c.close();
  }
}

describe("replies", () => {
  test("strings, integers, null, arrays, error replies", async () => {
    const client = createRespClient({ host: "127.0.0.1", port: redis.port, pool: { max: 2 } });
    try {
      expect(await client.send(["SET", "r:k", "héllo"])).toBe("OK");
      expect(await client.send(["GET", "r:k"])).toBe("héllo");
      expect(await client.send(["GET", "r:missing"])).toBeNull();
      expect(await client.send(["DEL", "r:n"])).toBe(0);
      expect(await client.send(["INCRBY", "r:n", 41])).toBe(41);
      expect(await client.send(["INCR", "r:n"])).toBe(42);
      await client.send(["DEL", "r:list"]);
      expect(await client.send(["RPUSH", "r:list", "a", "b", "c"])).toBe(3);
      expect(await client.send(["LRANGE", "r:list", 0, -1])).toEqual(["a", "b", "c"]);
      expect(await client.send(["LRANGE", "r:none", 0, -1])).toEqual([]);
      const err = await client.send(["INCR", "r:k"]).catch((e) => e);
      expect(err).toBeInstanceOf(RespError);
      expect(err.prefix).toBe("ERR");
      expect(err.message).toMatch(/not an integer/);
      const unknown = await client.send(["NOSUCHCOMMAND"]).catch((e) => e);
      expect(unknown).toBeInstanceOf(RespError);
      // An error reply does not poison the pipeline: the next reply still matches.
      expect(await client.send(["GET", "r:n"])).toBe("42");
      // Encode errors reject without touching the connection.
      await expect(client.send([])).rejects.toMatchObject({ code: "ERR_CODEC_ENCODE" });
      expect(await client.send(["PING"])).toBe("PONG");
    } finally {
      await client.close();
    }
  });

  test("binary mode returns bulk strings as bytes", async () => {
    const client = createRespClient({ port: redis.port, binary: true });
    try {
      const bytes = new Uint8Array(256).map((_, i) => i);
      expect(await client.send(["SET", "r:bin", bytes])).toBe("OK");
      const got = await client.send(["GET", "r:bin"]);
      expect(got).toBeInstanceOf(Uint8Array);
      expect([...(got as Uint8Array)]).toEqual([...bytes]);
    } finally {
      await client.close();
    }
  });

  test("db option selects the database on every connection", async () => {
    const c0 = createRespClient({ port: redis.port });
    const c3 = createRespClient({ port: redis.port, db: 3, pool: { max: 3 }, maxInFlightPerConnection: 1 });
    try {
      await c0.send(["SET", "r:db", "zero"]);
      await Promise.all([1, 2, 3].map((i) => c3.send(["SET", `r:db${i}`, "three"])));
      expect(c3.connections).toBe(3);
      expect(await c3.send(["GET", "r:db"])).toBeNull();
      expect(await c0.send(["GET", "r:db1"])).toBeNull();
      expect(await c3.send(["GET", "r:db2"])).toBe("three");
    } finally {
      await Promise.all([c0.close(), c3.close()]);
    }
  });

  test("bad options name themselves", () => {
    expect(() => createRespClient({ port: redis.port, poolSize: 3 } as never)).toThrow(/unknown RESP client option "poolSize"/);
    expect(() => createRespClient({ port: 0 })).toThrow(/port=0 is invalid: expected an integer port in 1\.\.65535/);
    expect(() => createRespClient({ port: redis.port, pool: { max: -1 } })).toThrow(/RESP client pool option max=-1 is invalid/);
    expect(() => createRespClient({ port: redis.port, pool: { create: () => 1 } as never })).toThrow(/unknown RESP client pool option "create"/);
    expect(() => createRespClient({ port: redis.port, username: "u" })).toThrow(PoolOptionError);
    expect(() => createRespClient({ port: redis.port, db: -1 })).toThrow(/db=-1 is invalid/);
  });

  test("a refused AUTH is a create error: sends fail with the reason", async () => {
    const client = createRespClient({ port: redis.port, password: "wrong", requestTimeoutMs: 1_000, pool: { max: 1 } });
    try {
      const err = await client.send(["PING"]).catch((e) => e);
      expect(["ERR_POOL_UPSTREAM_FAILING", "ERR_POOL_CIRCUIT_OPEN"]).toContain(err.code);
      expect(err.cause).toBeInstanceOf(RespError);
      expect(client.stats().pool.createErrors).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });
});

describe("load", () => {
  test("10,000 concurrent tasks over max: 8 all get their own correct replies, pipelined", async () => {
    const client = createRespClient({ port: redis.port, pool: { max: 8 }, requestTimeoutMs: 20_000 });
    const tag = Math.random().toString(36).slice(2);
    let peakInFlight = 0;
    try {
      const results = await Promise.all(
        Array.from({ length: 10_000 }, async (_, i) => {
          const key = `load:${tag}:${i}`;
          const value = `v${i}:${tag}`;
          const set = await client.send(["SET", key, value]);
          peakInFlight = Math.max(peakInFlight, client.inFlight);
          const got = await client.send(["GET", key]);
          const len = await client.send(["STRLEN", key]);
          return set === "OK" && got === value && len === value.length;
        }),
      );
      expect(results.filter((ok) => !ok)).toHaveLength(0);
      const s = client.stats();
      expect(s.requests).toBe(30_000);
      expect(s.replies).toBe(30_000);
      expect(s.pool.created).toBeLessThanOrEqual(8);
      expect(s.pool.size).toBeLessThanOrEqual(8);
      expect(client.connections).toBeLessThanOrEqual(8);
      // More requests in flight than connections: they were pipelined.
      expect(peakInFlight).toBeGreaterThan(8);
      expect(s.inFlight).toBe(0);
      expect(await infoClients()).toBeLessThanOrEqual(8);
    } finally {
      await client.close();
    }
    expect(client.connections).toBe(0);
  }, 30_000);

  test("large values: partial writes wait for drain, replies still match", async () => {
    const client = createRespClient({ port: redis.port, pool: { max: 2 }, maxWriteBufferBytes: 1 << 20 });
    try {
      const size = 3 << 20;
      const values = Array.from({ length: 8 }, (_, i) => String.fromCharCode(97 + i).repeat(size));
      const sets = await Promise.all(values.map((v, i) => client.send(["SET", `big:${i}`, v])));
      expect(sets).toEqual(values.map(() => "OK"));
      const lens = await Promise.all(values.map((_, i) => client.send(["STRLEN", `big:${i}`])));
      expect(lens).toEqual(values.map(() => size));
      const got = (await client.send(["GET", "big:5"])) as string;
      expect(got.length).toBe(size);
      expectSame(got, values[5]!);
      await client.send(["DEL", ...values.map((_, i) => `big:${i}`)]);
    } finally {
      await client.close();
    }
  });
});

describe("failures", () => {
  test("per-request timeout: a blocked command times out, its connection is replaced, the client goes on", async () => {
    const client = createRespClient({ port: redis.port, pool: { max: 2 }, requestTimeoutMs: 5_000 });
    try {
      await client.send(["DEL", "r:empty"]);
      const t0 = performance.now();
      const lag = timerLateness(200 + 100); // a control timer due with the sweep that must fire
      const err = await client.send(["BLPOP", "r:empty", "3"], { timeoutMs: 200 }).catch((e) => e);
      const elapsed = performance.now() - t0;
      expect(err.code).toBe("ERR_REQUEST_TIMEOUT");
      expect(elapsed).toBeGreaterThanOrEqual(195);
      expect(elapsed).toBeLessThan(200 + 800 + (await lag)); // sweep resolution 100 ms + what the loop lagged + slack
      expect(await client.send(["PING"])).toBe("PONG");
      const s = client.stats();
      expect(s.timeouts).toBe(1);
      expect(s.pool.destroyed).toBeGreaterThanOrEqual(1); // the silent connection was retired
    } finally {
      await client.close({ timeoutMs: 1_000 });
    }
  });

  test("idle connections killed by CLIENT KILL are dropped and never handed out", async () => {
    if (!Bun.which("redis-cli")) throw new Error("redis-cli not found: install it (Debian/Ubuntu: apt-get install redis-tools)");
    const client = createRespClient({
      port: redis.port,
      // The reaper would drop dead idle connections too; with it a minute away, the second
      // half below proves the close itself takes them out of the pool.
      pool: { max: 4, validateAfterIdleMs: 20, reapIntervalMs: 60_000 },
      maxInFlightPerConnection: 1,
    });
    try {
      // Four connections, then idle.
      await Promise.all([0, 1, 2, 3].map((i) => client.send(["SET", `ck:${i}`, `x${i}`])));
      expect(client.stats().pool).toMatchObject({ size: 4, idle: 4 });
      await Bun.sleep(50);
      // spawnSync blocks the event loop: the FINs are not seen before the next send.
      const out = Bun.spawnSync(["redis-cli", "-p", String(redis.port), "CLIENT", "KILL", "TYPE", "normal"]);
      expect(Number(out.stdout.toString().trim())).toBeGreaterThanOrEqual(4);
      expect(await client.send(["GET", "ck:2"])).toBe("x2");
      const s = client.stats();
      expect(s.pool.destroyed).toBeGreaterThanOrEqual(4);
      expect(s.pool.created).toBeGreaterThanOrEqual(5);

      // Killed while idle and noticed: dropped from the pool before anyone asks.
      await Promise.all([0, 1, 2].map((i) => client.send(["GET", `ck:${i}`])));
      const sizeBefore = client.stats().pool.size;
      expect(sizeBefore).toBeGreaterThanOrEqual(1);
      const destroyedBefore = client.stats().pool.destroyed;
      expect(await redis.command("CLIENT KILL TYPE normal")).toMatch(/^:\d+/);
      await until(() => `the pool to drop the killed connections (size ${client.stats().pool.size})`, () => client.stats().pool.size === 0, 2_000);
      expect(client.stats().pool).toMatchObject({ size: 0, idle: 0, destroyed: destroyedBefore + sizeBefore });
      expect(client.connections).toBe(0);
      expect(await client.send(["GET", "ck:3"])).toBe("x3");
    } finally {
      await client.close();
    }
  });

  test("redis-server killed mid-load: every request settles with an error within its timeout; restarted: recovers within 2 s without a reconnect storm", async () => {
    const timeoutMs = 2_000;
    // Sweep resolution is timeoutMs / 20 = 100 ms; the rest is scheduling: slack, plus the most
    // the event loop lagged during the run (sampled), so a busy machine does not fail it.
    const slackMs = 500;
    const lag = loopLag();
    const client = createRespClient({ port: redis.port, pool: { max: 8 }, requestTimeoutMs: timeoutMs });
    let stop = false;
    let issued = 0;
    let settled = 0;
    let ok = 0;
    let okAfterKill = 0;
    let maxSettleMs = 0;
    let killedAt = Infinity;
    const errors = new Map<string, number>();
    const task = async (i: number) => {
      const key = `kill:${i}`;
      for (let j = 0; !stop; j++) {
        const t = performance.now();
        issued++;
        try {
          const reply = await client.send(j % 2 === 0 ? ["SET", key, String(j)] : ["GET", key]);
          ok++;
          if (t > killedAt) okAfterKill++;
          if (j % 2 === 1 && reply !== String(j - 1)) throw new Error(`wrong reply ${String(reply)} for ${key}`);
        } catch (e) {
          const code = (e as { code?: string }).code ?? String(e);
          errors.set(code, (errors.get(code) ?? 0) + 1);
          await Bun.sleep(50); // a retrying caller backs off a little
        } finally {
          settled++;
          const d = performance.now() - t;
          if (d > maxSettleMs) maxSettleMs = d;
        }
      }
    };
    try {
      const tasks = Array.from({ length: 1_000 }, (_, i) => task(i));
      await until(() => `20,000 replies under load (${ok})`, () => ok >= 20_000);
      const attemptsAtKill = poolAttempts();
      await redis.kill();
      killedAt = performance.now();
      // New requests keep coming during the outage.
      await Bun.sleep(500);
      stop = true;
      const allDone = await Promise.race([
        Promise.all(tasks).then(() => true),
        Bun.sleep(timeoutMs + slackMs + 2_000).then(() => false),
      ]);
      expect(allDone).toBe(true); // nothing hangs
      expect(settled).toBe(issued);
      expect(maxSettleMs).toBeLessThanOrEqual(timeoutMs + slackMs + lag.maxMs);
      expect(okAfterKill).toBe(0);
      expect(errors.get("ERR_CONNECTION_CLOSED") ?? 0).toBeGreaterThan(0); // the in-flight ones
      const allowed = ["ERR_CONNECTION_CLOSED", "ERR_POOL_CIRCUIT_OPEN", "ERR_POOL_UPSTREAM_FAILING"];
      expect([...errors.keys()].filter((k) => !allowed.includes(k))).toEqual([]);
      expect(client.inFlight).toBe(0);

      // Restart on the same port: the pool's own probes find it.
      await redis.restart();
      const restartedAt = performance.now();
      let recoveredMs = Infinity;
      while (performance.now() - restartedAt < 3_000) {
        const reply = await client.send(["PING"]).catch(() => undefined);
        if (reply === "PONG") {
          recoveredMs = performance.now() - restartedAt;
          break;
        }
        await Bun.sleep(20);
      }
      expect(recoveredMs).toBeLessThan(2_000 + lag.maxMs);
      // No storm: after the first wave (<= max), one probe at a time with a full-jitter
      // backoff capped at createBackoffMaxMs (1 s): about 2 per second. 10 per second of
      // outage would take ten back-to-back draws averaging < 100 ms.
      const outageS = (performance.now() - killedAt) / 1_000;
      const attempts = poolAttempts() - attemptsAtKill;
      if (process.env.POOL_TEST_VERBOSE) console.log({ errors, maxSettleMs, recoveredMs, attempts, outageS, issued });
      expect(attempts).toBeLessThanOrEqual(8 + Math.ceil(outageS * 10));
      // And it serves load again.
      const again = await Promise.all(
        Array.from({ length: 1_000 }, async (_, i) => {
          await client.send(["SET", `again:${i}`, String(i)]);
          return (await client.send(["GET", `again:${i}`])) === String(i);
        }),
      );
      expect(again.indexOf(false), "the first key whose GET did not return its SET").toBe(-1);
    } finally {
      stop = true;
      lag.stop();
      await client.close({ timeoutMs: 2_000 });
    }

    function poolAttempts(): number {
      const p = client.stats().pool;
      return p.created + p.createErrors + p.pending;
    }
  }, 30_000);
});
