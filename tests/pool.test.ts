/**
 * Pool logic over an in-process resource factory: real objects with a switchable "upstream",
 * counting every create/destroy. Time-dependent cases run on bun:test fake timers (which also
 * drive performance.now()), so they are deterministic and fast.
 */
import { afterEach, describe, expect, jest, test } from "bun:test";
import fc from "fast-check";
import {
  AcquireRejectedError,
  AcquireTimeoutError,
  Pool,
  PoolOptionError,
  type PoolOptions,
  PoolReleaseError,
  backoffCeilingMs,
  fullJitterDelayMs,
} from "../src/pool/index.ts";

class Conn {
  static seq = 0;
  readonly id = ++Conn.seq;
  closed = false;
}

/** A resource factory with a switchable upstream that counts what it did. */
class Upstream {
  up = true;
  /** Milliseconds each create takes (setTimeout, so fake timers drive it). */
  delayMs = 0;
  /** A create that never settles (for createTimeoutMs). */
  hang = false;
  attempts = 0;
  concurrent = 0;
  maxConcurrent = 0;
  readonly created: Conn[] = [];
  readonly destroyed: Conn[] = [];
  readonly signals: AbortSignal[] = [];

  create = async (ctx: { signal: AbortSignal }): Promise<Conn> => {
    this.attempts++;
    this.signals.push(ctx.signal);
    this.concurrent++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.concurrent);
    try {
      if (this.hang) await new Promise(() => {});
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      if (!this.up) throw new Error(`connect ECONNREFUSED (upstream down, attempt ${this.attempts})`);
      const c = new Conn();
      this.created.push(c);
      return c;
    } finally {
      this.concurrent--;
    }
  };
  destroy = (c: Conn): void => {
    c.closed = true;
    this.destroyed.push(c);
  };
}

function makePool(up: Upstream, opts: Partial<PoolOptions<Conn>> = {}): Pool<Conn> {
  return new Pool<Conn>({ create: up.create, destroy: up.destroy, max: 4, ...opts });
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Advances fake time in small steps, letting promise callbacks run in between. */
async function tick(ms: number, stepMs = 1): Promise<void> {
  await flush();
  for (let t = 0; t < ms; t += stepMs) {
    jest.advanceTimersByTime(Math.min(stepMs, ms - t));
    await flush();
  }
}

function settleState<T>(p: Promise<T>): { state: "pending" | "fulfilled" | "rejected"; value?: T; error?: any } {
  const s: { state: "pending" | "fulfilled" | "rejected"; value?: T; error?: any } = { state: "pending" };
  p.then(
    (value) => Object.assign(s, { state: "fulfilled", value }),
    (error) => Object.assign(s, { state: "rejected", error }),
  );
  return s;
}

afterEach(() => {
  if (jest.isFakeTimers()) jest.useRealTimers();
});

describe("options", () => {
  const base = { create: () => new Conn(), max: 2 };
  test("unknown option names itself and lists the accepted ones", () => {
    expect(() => new Pool({ ...base, maxSize: 3 } as PoolOptions<Conn>)).toThrow(/unknown Pool option "maxSize"; accepted options: create, .*acquireTimeoutMs/);
  });
  test("bad values name the option, the value and what is allowed", () => {
    const cases: [Partial<PoolOptions<Conn>>, RegExp][] = [
      [{ acquireTimeoutMs: -1 }, /acquireTimeoutMs=-1 is invalid: expected milliseconds >= 0, or Infinity/],
      [{ max: 0 }, /max=0 is invalid: expected an integer in 1\.\.2\^30/],
      [{ max: 2.5 }, /max=2\.5 is invalid/],
      [{ min: 3 }, /min=3 is invalid: expected an integer >= 0 and <= max \(max=2\)/],
      [{ idleTimeoutMs: Number.NaN }, /idleTimeoutMs=NaN is invalid/],
      [{ maxWaiting: -5 }, /maxWaiting=-5 is invalid: expected an integer >= 0, or Infinity/],
      [{ name: "" }, /name="" is invalid: expected a non-empty string/],
      [{ create: 42 as unknown as () => Conn }, /create=42 is invalid: expected a function/],
      [{ createBackoffInitialMs: 500, createBackoffMaxMs: 100 }, /createBackoffInitialMs=500 is invalid: .*<= createBackoffMaxMs \(100\)/],
      [{ failFastAfterCreateErrors: 0 }, /failFastAfterCreateErrors=0 is invalid/],
    ];
    for (const [bad, re] of cases) {
      let err: unknown;
      try {
        new Pool({ ...base, ...bad } as PoolOptions<Conn>);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PoolOptionError);
      expect((err as PoolOptionError).code).toBe("ERR_POOL_OPTION");
      expect((err as Error).message).toMatch(re);
    }
  });
  test("missing max is named", () => {
    expect(() => new Pool({ create: () => new Conn() } as unknown as PoolOptions<Conn>)).toThrow(/option "max" is required/);
  });
  test("Infinity is accepted where documented", () => {
    const p = new Pool({ ...base, acquireTimeoutMs: Infinity, idleTimeoutMs: Infinity, maxLifetimeMs: Infinity, maxWaiting: Infinity });
    expect(p.stats().size).toBe(0);
  });
});

describe("acquire and release", () => {
  test("creates on demand up to max, reuses idle LIFO", async () => {
    const up = new Upstream();
    const pool = makePool(up, { max: 3 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(a).not.toBe(b);
    expect(pool.stats()).toMatchObject({ size: 2, borrowed: 2, idle: 0, created: 2, acquired: 2 });
    pool.release(a);
    pool.release(b);
    expect(pool.stats()).toMatchObject({ idle: 2, borrowed: 0, released: 2 });
    // Most recently released first.
    expect(await pool.acquire()).toBe(b);
    expect(pool.tryAcquire()).toBe(a);
    expect(pool.tryAcquire()).toBeUndefined(); // never creates
    expect(up.attempts).toBe(2);
    pool.release(a);
    pool.release(b);
    await pool.drain();
  });

  test("waiters are served FIFO when at max", async () => {
    const up = new Upstream();
    const pool = makePool(up, { max: 1 });
    const held = await pool.acquire();
    const order: number[] = [];
    const ws = [1, 2, 3].map((i) =>
      pool.acquire().then((c) => {
        order.push(i);
        return c;
      }),
    );
    expect(pool.stats().waiting).toBe(3);
    pool.release(held);
    const c1 = await ws[0]!;
    pool.release(c1);
    const c2 = await ws[1]!;
    pool.release(c2);
    const c3 = await ws[2]!;
    expect(order).toEqual([1, 2, 3]);
    expect(c3).toBe(held); // one connection all along
    expect(up.attempts).toBe(1);
    pool.release(c3);
    await pool.drain();
  });

  test("timeout when exhausted says so, with counts", async () => {
    jest.useFakeTimers();
    const up = new Upstream();
    const pool = makePool(up, { max: 2, acquireTimeoutMs: 100, name: "db" });
    const held = [await pool.acquire(), await pool.acquire()];
    const s = settleState(pool.acquire());
    const other = settleState(pool.acquire({ timeoutMs: 300 }));
    await tick(99, 10);
    expect(s.state).toBe("pending");
    await tick(2);
    expect(s.state).toBe("rejected");
    expect(s.error).toBeInstanceOf(AcquireTimeoutError);
    expect(s.error.code).toBe("ERR_POOL_EXHAUSTED");
    expect(s.error.message).toMatch(/pool "db" exhausted: no connection within acquireTimeoutMs=100 ms \(max=2: 2 borrowed, 0 idle, 0 being created, 1 others waiting\)/);
    expect(s.error.waitedMs).toBeGreaterThanOrEqual(100);
    expect(pool.stats()).toMatchObject({ timeouts: 1, waiting: 1 });
    expect(other.state).toBe("pending"); // per-call timeout
    pool.release(held[0]!);
    await flush();
    expect(other.state).toBe("fulfilled");
    expect(pool.stats().waiting).toBe(0);
    expect(jest.getTimerCount()).toBe(0); // the served waiter's timer is gone
  });

  test("waiters queued at different times expire at their own deadlines (shared timer), custom timeouts too", async () => {
    jest.useFakeTimers();
    const pool = makePool(new Upstream(), { max: 1, acquireTimeoutMs: 100 });
    const held = await pool.acquire();
    const a = settleState(pool.acquire()); // deadline 100
    await tick(30, 10);
    const custom = settleState(pool.acquire({ timeoutMs: 20 })); // deadline 50
    const b = settleState(pool.acquire()); // deadline 130
    await tick(30, 10);
    const c = settleState(pool.acquire()); // deadline 160
    await tick(19, 1); // t = 79
    expect([a.state, custom.state, b.state, c.state]).toEqual(["pending", "rejected", "pending", "pending"]);
    await tick(22, 1); // t = 101
    expect([a.state, b.state, c.state]).toEqual(["rejected", "pending", "pending"]);
    await tick(30, 1); // t = 131
    expect([b.state, c.state]).toEqual(["rejected", "pending"]);
    pool.release(held);
    await flush();
    expect(c.state).toBe("fulfilled");
    expect(pool.stats()).toMatchObject({ timeouts: 3, waiting: 0 });
    await tick(40, 10); // past c's old deadline: the shared timer fires once, finds nothing, stops
    expect(jest.getTimerCount()).toBe(0);
    expect(pool.stats().timeouts).toBe(3);
    pool.release(c.value!);
    await pool.drain();
  });

  test("the shared deadline timer does not keep the process alive once nobody waits", async () => {
    const script = `
      import { Pool } from ${JSON.stringify(`${import.meta.dir}/../src/pool/index.ts`)};
      const pool = new Pool({ create: () => ({}), max: 1, acquireTimeoutMs: 20_000 });
      const a = await pool.acquire();
      const waiting = pool.acquire();
      pool.release(a);
      pool.release(await waiting);
      console.log("done");
    `;
    const t0 = performance.now();
    const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    const exited = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "hung")]);
    if (exited === "hung") proc.kill("SIGKILL");
    expect(exited).toBe(0);
    expect(await new Response(proc.stdout).text()).toBe("done\n");
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  test("timeouts beyond a timer's 32-bit range wait instead of firing at once", async () => {
    const pool = makePool(new Upstream(), { max: 1, acquireTimeoutMs: 2 ** 32 });
    const held = await pool.acquire();
    const a = settleState(pool.acquire());
    const b = settleState(pool.acquire({ timeoutMs: 2 ** 40 }));
    await Bun.sleep(30);
    expect([a.state, b.state]).toEqual(["pending", "pending"]);
    pool.release(held);
    await flush();
    expect(a.state).toBe("fulfilled");
    pool.release(a.value!);
    await flush();
    pool.release(b.value!);
    await pool.drain();
  });

  test("timeoutMs 0 never waits", async () => {
    const pool = makePool(new Upstream(), { max: 1 });
    const c = await pool.acquire();
    await expect(pool.acquire({ timeoutMs: 0 })).rejects.toMatchObject({ code: "ERR_POOL_EXHAUSTED" });
    pool.release(c);
    await pool.drain();
  });

  test("AbortSignal while queued removes the waiter; the next release skips it", async () => {
    const pool = makePool(new Upstream(), { max: 1 });
    const held = await pool.acquire();
    const ac = new AbortController();
    const aborted = pool.acquire({ signal: ac.signal });
    const next = pool.acquire();
    expect(pool.stats().waiting).toBe(2);
    ac.abort(new Error("user gave up"));
    await expect(aborted).rejects.toMatchObject({ code: "ERR_POOL_ABORTED", cause: { message: "user gave up" } });
    expect(pool.stats().waiting).toBe(1);
    pool.release(held);
    expect(await next).toBe(held);
    // Already aborted: refused at once.
    await expect(pool.acquire({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AcquireRejectedError);
    expect(pool.stats().rejected).toBe(2);
    pool.release(held);
    await pool.drain();
  });

  test("maxWaiting fails fast past the limit", async () => {
    const pool = makePool(new Upstream(), { max: 1, maxWaiting: 2 });
    const held = await pool.acquire();
    const w1 = pool.acquire();
    const w2 = pool.acquire();
    await expect(pool.acquire()).rejects.toMatchObject({ code: "ERR_POOL_QUEUE_FULL", message: expect.stringMatching(/2 callers already waiting \(maxWaiting=2\)/) });
    expect(pool.stats()).toMatchObject({ waiting: 2, rejected: 1 });
    pool.release(held);
    pool.release(await w1);
    pool.release(await w2);
    await pool.drain();
  });

  test("use() releases when fn throws, and returns fn's value", async () => {
    const pool = makePool(new Upstream(), { max: 1 });
    await expect(
      pool.use(() => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await expect(pool.use(async () => Promise.reject(new Error("async boom")))).rejects.toThrow("async boom");
    expect(pool.stats()).toMatchObject({ borrowed: 0, idle: 1, acquired: 2, released: 2 });
    expect(await pool.use((c) => c.id)).toBeGreaterThan(0);
    await pool.drain();
  });

  test("double and foreign release throw clearly and leave the counts alone", async () => {
    const up = new Upstream();
    const pool = makePool(up, { max: 2 });
    const c = await pool.acquire();
    pool.release(c);
    const before = pool.stats();
    expect(() => pool.release(c)).toThrow(PoolReleaseError);
    expect(() => pool.release(c)).toThrow(/not borrowed \(already released or destroyed\)/);
    expect(() => pool.release(new Conn())).toThrow(/did not lend/);
    try {
      pool.release(new Conn());
    } catch (e) {
      expect((e as PoolReleaseError).code).toBe("ERR_POOL_FOREIGN_RESOURCE");
    }
    expect(pool.stats()).toEqual(before);
    // After destroy() a release is a double release too.
    const d = await pool.acquire();
    await pool.destroy(d);
    expect(() => pool.release(d)).toThrow(expect.objectContaining({ code: "ERR_POOL_DOUBLE_RELEASE" }));
    await expect(pool.destroy(d)).rejects.toMatchObject({ code: "ERR_POOL_DOUBLE_RELEASE" });
    expect(pool.stats()).toMatchObject({ borrowed: 0, size: 0, destroyed: 1 });
    // The pool still works.
    const e = await pool.acquire();
    pool.release(e);
    await pool.drain();
  });
});

describe("broken connections", () => {
  test("a connection that closed while idle is never handed out", async () => {
    const up = new Upstream();
    const pool = makePool(up, { max: 2, isBroken: (c) => c.closed });
    const a = await pool.acquire();
    const b = await pool.acquire();
    pool.release(a);
    pool.release(b);
    b.closed = true; // died idle, nobody told the pool
    const got = await pool.acquire();
    expect(got).toBe(a);
    expect(pool.stats()).toMatchObject({ size: 1, destroyed: 1 });
    a.closed = true;
    pool.release(a); // released broken: destroyed
    expect(pool.stats()).toMatchObject({ size: 0, idle: 0, destroyed: 2 });
    const fresh = await pool.acquire();
    expect(fresh.closed).toBe(false);
    expect(up.attempts).toBe(3);
    pool.release(fresh);
    await pool.drain();
  });

  test("invalidate() drops an idle connection at once and a borrowed one at release", async () => {
    const up = new Upstream();
    const pool = makePool(up, { max: 2 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    pool.release(a);
    expect(pool.invalidate(a)).toBe(true);
    expect(pool.stats()).toMatchObject({ idle: 0, size: 1 });
    expect(pool.invalidate(a)).toBe(false);
    pool.invalidate(b);
    pool.release(b);
    expect(pool.stats()).toMatchObject({ size: 0, destroyed: 2 });
    await flush();
    expect(up.destroyed).toEqual([a, b]);
    await pool.drain();
  });

  test("destroy(conn) replaces it for the next waiter", async () => {
    const up = new Upstream();
    const pool = makePool(up, { max: 1 });
    const a = await pool.acquire();
    const waiter = pool.acquire();
    await pool.destroy(a);
    expect(a.closed).toBe(true);
    const b = await waiter;
    expect(b).not.toBe(a);
    expect(up.attempts).toBe(2);
    pool.release(b);
    await pool.drain();
  });

  test("validate runs on borrow only after validateAfterIdleMs; a failing one is replaced", async () => {
    jest.useFakeTimers();
    const up = new Upstream();
    const validated: Conn[] = [];
    let verdict = true;
    const pool = makePool(up, {
      max: 2,
      validateAfterIdleMs: 50,
      validate: async (c) => {
        validated.push(c);
        return verdict;
      },
    });
    const a = await pool.acquire();
    expect(validated).toEqual([]); // fresh connections are not validated
    pool.release(a);
    await tick(10);
    expect(await pool.acquire()).toBe(a);
    expect(validated).toEqual([]); // idle 10 ms < 50 ms
    pool.release(a);
    await tick(60, 10);
    const got = settleState(pool.acquire());
    await flush();
    expect(got.value).toBe(a);
    expect(validated).toEqual([a]);
    pool.release(a);
    await tick(60, 10);
    verdict = false;
    const got2 = settleState(pool.acquire());
    await tick(1);
    expect(got2.state).toBe("fulfilled");
    expect(got2.value).not.toBe(a);
    expect(a.closed).toBe(true);
    pool.release(got2.value!);
    await pool.drain({ timeoutMs: 100 });
  });
});

describe("create failures", () => {
  test("full jitter backoff stays in [0, min(max, initial * 2^(n-1))]", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffCeilingMs(n, 50, 1000))).toEqual([50, 100, 200, 400, 800, 1000]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 60_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, init, max, r) => {
        const d = fullJitterDelayMs(n, Math.min(init, max), max, () => r);
        return d >= 0 && d <= Math.min(max, Math.min(init, max) * 2 ** (n - 1)) && d <= max;
      }),
    );
  });

  test("while the upstream is down: one probe at a time with backoff, waiters fail at their deadline with the create error, then the circuit opens and new acquires fail fast; first success recovers", async () => {
    jest.useFakeTimers();
    const up = new Upstream();
    up.up = false;
    up.delayMs = 2;
    const pool = makePool(up, {
      max: 8,
      acquireTimeoutMs: 500,
      createBackoffInitialMs: 20,
      createBackoffMaxMs: 100,
      failFastAfterCreateErrors: 3,
      name: "redis",
    });
    const waiters = Array.from({ length: 20 }, () => settleState(pool.acquire()));
    // The first wave cannot know the upstream is down: one create per waiter, up to max.
    expect(up.concurrent).toBe(8);
    await tick(3);
    // All eight failed; the first probe may already be under way if its jitter drew < 1 ms.
    expect(pool.stats().createErrors).toBe(8);
    expect(up.concurrent).toBeLessThanOrEqual(1);
    up.maxConcurrent = up.concurrent;
    await tick(496, 4);
    expect(waiters.map((w) => w.state)).toEqual(waiters.map(() => "pending"));
    expect(up.maxConcurrent).toBe(1); // from then on, probes never overlap
    // Ceiling grows 20, 40, 80, 100...: at least one attempt per 102 ms, at most one per 2 ms create.
    expect(up.attempts).toBeGreaterThanOrEqual(5);
    expect(up.attempts).toBeLessThanOrEqual(Math.ceil(500 / 2));
    await tick(2);
    for (const w of waiters) {
      expect(w.state).toBe("rejected");
      expect(w.error.code).toBe("ERR_POOL_UPSTREAM_FAILING");
      expect(w.error.cause).toBeInstanceOf(Error);
      expect(w.error.cause.message).toMatch(/ECONNREFUSED/);
      expect(w.error.message).toMatch(/pool "redis": no connection within acquireTimeoutMs=500 ms because the upstream is failing: \d+ creates failed in a row, last: connect ECONNREFUSED/);
    }
    // Circuit open: no idle, nothing borrowed -> fail fast.
    const t0 = performance.now();
    const fast = settleState(pool.acquire());
    await flush();
    expect(fast.state).toBe("rejected");
    expect(fast.error.code).toBe("ERR_POOL_CIRCUIT_OPEN");
    expect(fast.error.cause.message).toMatch(/ECONNREFUSED/);
    expect(performance.now() - t0).toBe(0);
    const stats = pool.stats();
    expect(stats.timeouts).toBe(20);
    expect(stats.rejected).toBe(1);
    expect(stats.createErrors).toBe(up.attempts - stats.pending);
    // The pool keeps probing with nobody waiting, so it notices the recovery by itself. Flip
    // the upstream between probes: a probe in flight at the flip would succeed without a new
    // attempt, and the test would not show that probing goes on.
    for (let i = 0; i < 10 && up.concurrent > 0; i++) await tick(1);
    expect(up.concurrent).toBe(0);
    expect(pool.stats().size).toBe(0);
    const attemptsBefore = up.attempts;
    up.up = true;
    await tick(110, 5);
    expect(up.attempts).toBeGreaterThan(attemptsBefore);
    expect(pool.stats()).toMatchObject({ size: 1, idle: 1, created: 1 });
    const c = settleState(pool.acquire());
    await flush();
    expect(c.state).toBe("fulfilled");
    pool.release(c.value!);
    await pool.drain();
  });

  test("createTimeoutMs: a hung create counts as failed, its signal aborts, and a late resource is closed", async () => {
    jest.useFakeTimers();
    const up = new Upstream();
    up.hang = true;
    const pool = makePool(up, { max: 1, createTimeoutMs: 50, acquireTimeoutMs: 80, createBackoffMaxMs: 1000 });
    const w = settleState(pool.acquire());
    await tick(51);
    expect(up.signals[0]!.aborted).toBe(true);
    expect(up.signals[0]!.reason.code).toBe("ERR_POOL_CREATE_TIMEOUT");
    expect(pool.stats()).toMatchObject({ createErrors: 1, pending: up.attempts - 1 });
    await tick(40, 5);
    expect(w.state).toBe("rejected");
    expect(w.error.code).toBe("ERR_POOL_UPSTREAM_FAILING");
    expect(w.error.cause.code).toBe("ERR_POOL_CREATE_TIMEOUT");
    await pool.drain({ timeoutMs: 10 });
  });

  test("a create that resolves after its timeout is destroyed, not leaked", async () => {
    jest.useFakeTimers();
    const destroyed: Conn[] = [];
    const late = new Conn();
    const pool = new Pool<Conn>({
      max: 1,
      createTimeoutMs: 10,
      create: () => new Promise((r) => setTimeout(() => r(late), 30)),
      destroy: (c) => void destroyed.push(c),
    });
    const w = settleState(pool.acquire({ timeoutMs: 15 }));
    await tick(40, 5);
    expect(w.state).toBe("rejected");
    expect(destroyed).toContain(late);
    expect(pool.stats().size).toBe(0);
    await pool.drain({ timeoutMs: 10 });
  });
});

describe("leaks, lifetimes, min, drain", () => {
  test("leakDetectionMs warns once with the acquiring stack", async () => {
    jest.useFakeTimers();
    const warnings: string[] = [];
    const pool = makePool(new Upstream(), { leakDetectionMs: 100, onWarning: (m) => warnings.push(m) });
    async function leakyCaller(): Promise<Conn> {
      return pool.acquire();
    }
    const c = await leakyCaller();
    const ok = await pool.acquire();
    await tick(50, 10);
    pool.release(ok); // released in time: no warning for it
    await tick(100, 10);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/borrowed for more than leakDetectionMs=100 ms without release/);
    expect(warnings[0]).toMatch(/leakyCaller/);
    await tick(500, 50);
    expect(warnings).toHaveLength(1); // once
    pool.release(c);
    await pool.drain();
  });

  test("min connections are created at start, kept through idle timeouts, and replaced", async () => {
    jest.useFakeTimers();
    const up = new Upstream();
    const pool = makePool(up, { min: 2, max: 4, idleTimeoutMs: 100, reapIntervalMs: 20 });
    await flush();
    expect(pool.stats()).toMatchObject({ size: 2, idle: 2, created: 2 });
    const conns = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()]);
    expect(pool.stats().size).toBe(4);
    for (const c of conns) pool.release(c);
    await tick(150, 10);
    expect(pool.stats()).toMatchObject({ size: 2, idle: 2, destroyed: 2 });
    // The two kept are the most recently released (LIFO keeps them warm).
    const kept = [await pool.acquire(), await pool.acquire()];
    expect(kept.map((c) => c.closed)).toEqual(kept.map(() => false));
    await pool.destroy(kept[0]!);
    await flush();
    expect(pool.stats().size).toBe(2); // replaced to stay at min
    pool.release(kept[1]!);
    await pool.drain();
    expect(up.created.map((c) => c.closed)).toEqual(up.created.map(() => true));
  });

  test("maxLifetimeMs retires connections with jitter (within the last 10%)", async () => {
    jest.useFakeTimers();
    const up = new Upstream();
    const pool = makePool(up, { max: 20, maxLifetimeMs: 1000, reapIntervalMs: 10, idleTimeoutMs: Infinity });
    const conns = await Promise.all(Array.from({ length: 20 }, () => pool.acquire()));
    for (const c of conns) pool.release(c);
    await tick(880, 20);
    expect(up.destroyed).toHaveLength(0);
    const retiredAt = new Map<Conn, number>();
    for (let t = 880; t <= 1020; t += 10) {
      await tick(10);
      for (const c of up.destroyed) if (!retiredAt.has(c)) retiredAt.set(c, t);
    }
    expect(retiredAt.size).toBe(20);
    const times = new Set(retiredAt.values());
    expect(times.size).toBeGreaterThan(3); // not all at once
    await pool.drain();
  });

  test("a borrowed connection past its lifetime is retired at release", async () => {
    jest.useFakeTimers();
    const up = new Upstream();
    const pool = makePool(up, { max: 1, maxLifetimeMs: 100 });
    const c = await pool.acquire();
    await tick(120, 20);
    pool.release(c);
    expect(c.closed || up.destroyed.length === 0, `closed ${c.closed}, ${up.destroyed.length} destroyed`).toBe(true);
    await flush();
    expect(up.destroyed).toEqual([c]);
    await pool.drain();
  });

  test("drain: stops acquires, rejects waiters, waits for borrowed, closes all", async () => {
    const up = new Upstream();
    const pool = makePool(up, { max: 2 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    pool.release(b);
    const held = await pool.acquire();
    const waiter = pool.acquire();
    const drained = settleState(pool.drain({ timeoutMs: 5_000 }));
    expect(pool.closed).toBe(true);
    await expect(waiter).rejects.toMatchObject({ code: "ERR_POOL_CLOSED" });
    await expect(pool.acquire()).rejects.toMatchObject({ code: "ERR_POOL_CLOSED" });
    expect(pool.tryAcquire()).toBeUndefined();
    await flush();
    expect(drained.state).toBe("pending");
    pool.release(a);
    await flush();
    expect(a.closed).toBe(true);
    expect(drained.state).toBe("pending");
    pool.release(held);
    await new Promise((r) => setTimeout(r, 0));
    expect(drained.state).toBe("fulfilled");
    expect(up.created.map((c) => c.closed)).toEqual(up.created.map(() => true));
    expect(pool.stats()).toMatchObject({ size: 0, borrowed: 0, idle: 0 });
  });

  test("drain deadline force-closes what is still borrowed; its late release is ignored", async () => {
    jest.useFakeTimers();
    const up = new Upstream();
    const pool = makePool(up, { max: 2 });
    const a = await pool.acquire();
    const drained = settleState(pool.drain({ timeoutMs: 100 }));
    await tick(90, 10);
    expect(drained.state).toBe("pending");
    await tick(20, 10);
    expect(drained.state).toBe("fulfilled");
    expect(a.closed).toBe(true);
    expect(() => pool.release(a)).not.toThrow();
    expect(pool.stats()).toMatchObject({ size: 0, borrowed: 0 });
  });
});

describe("stats", () => {
  test("acquire wait-time histogram", async () => {
    jest.useFakeTimers();
    const pool = makePool(new Upstream(), { max: 1 });
    for (let i = 0; i < 10; i++) pool.release(await pool.acquire());
    const held = await pool.acquire();
    const w = settleState(pool.acquire());
    await tick(30, 10);
    pool.release(held);
    await flush();
    pool.release(w.value!);
    const s = pool.stats().acquireWaitMs;
    expect(s.count).toBe(12);
    expect(s.counts.reduce((x, y) => x + y, 0)).toBe(12);
    expect(s.counts.length).toBe(s.boundsMs.length + 1);
    expect(s.p50).toBe(0);
    expect(s.max).toBeGreaterThanOrEqual(30);
    expect(s.p99).toBeGreaterThan(10);
    expect(s.p99).toBeLessThanOrEqual(s.max);
    expect(s.sumMs).toBeCloseTo(s.max, 5);
    await pool.drain();
  });
});

// ------------------------------------------------------------------ invariants under random schedules

type PoolOp =
  | { t: "acquire"; timeoutMs: number }
  | { t: "release" }
  | { t: "releaseBroken" }
  | { t: "destroy" }
  | { t: "killIdle" }
  | { t: "upstream"; up: boolean }
  | { t: "advance"; ms: number };

const poolOpArb: fc.Arbitrary<PoolOp> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("acquire" as const), timeoutMs: fc.integer({ min: 0, max: 50 }) }), weight: 5 },
  { arbitrary: fc.record({ t: fc.constant("release" as const) }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant("releaseBroken" as const) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("destroy" as const) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("killIdle" as const) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("upstream" as const), up: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 40 }) }), weight: 3 },
);

describe("invariants (fast-check)", () => {
  test("counts stay consistent, no resource is lent twice, every acquire settles", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 2 }), fc.array(poolOpArb, { maxLength: 50 }), async (max, minRaw, ops) => {
        jest.useFakeTimers();
        try {
          const up = new Upstream();
          const pool = makePool(up, {
            max,
            min: Math.min(minRaw, max),
            isBroken: (c) => c.closed,
            createBackoffInitialMs: 5,
            createBackoffMaxMs: 20,
            onWarning: () => {},
          });
          const borrowed = new Set<Conn>();
          const settled: { n: number } = { n: 0 };
          let issued = 0;
          for (const op of ops) {
            switch (op.t) {
              case "acquire":
                issued++;
                pool.acquire({ timeoutMs: op.timeoutMs }).then(
                  (c) => {
                    settled.n++;
                    expect(borrowed.has(c)).toBe(false); // never lent twice
                    expect(c.closed).toBe(false); // never a dead one
                    borrowed.add(c);
                  },
                  (e) => {
                    settled.n++;
                    expect(["ERR_POOL_EXHAUSTED", "ERR_POOL_UPSTREAM_FAILING", "ERR_POOL_CIRCUIT_OPEN"]).toContain(e.code);
                  },
                );
                break;
              case "release":
              case "releaseBroken":
              case "destroy": {
                const c = borrowed.values().next().value;
                if (c === undefined) break;
                borrowed.delete(c);
                if (op.t === "releaseBroken") c.closed = true;
                if (op.t === "destroy") void pool.destroy(c);
                else pool.release(c);
                break;
              }
              case "killIdle":
                for (const c of up.created) if (!borrowed.has(c)) c.closed = true;
                break;
              case "upstream":
                up.up = op.up;
                break;
              case "advance":
                await tick(op.ms, 5);
                break;
            }
            await flush();
            const s = pool.stats();
            expect(s.borrowed).toBe(borrowed.size);
            expect(s.size).toBe(s.idle + s.borrowed);
            expect(s.size + s.pending).toBeLessThanOrEqual(max);
            expect(s.size).toBe(s.created - s.destroyed);
            expect(s.waiting === 0 || s.idle === 0, `${s.waiting} waiting while ${s.idle} idle`).toBe(true);
          }
          // Bring the upstream back and let every deadline pass: every acquire settled.
          up.up = true;
          await tick(60, 5);
          expect(settled.n).toBe(issued);
          for (const c of borrowed) pool.release(c);
          await pool.drain({ timeoutMs: 10 });
          await flush();
          expect(up.created.map((c) => c.closed)).toEqual(up.created.map(() => true));
        } finally {
          jest.useRealTimers();
        }
      }),
      { numRuns: 150 },
    );
  });
});
