import { afterEach, describe, expect, jest, test } from "bun:test";
import fc from "fast-check";
import { MyriadError } from "../src/errors.ts";
import { Channel, ChannelClosedError, PoolOptionError } from "../src/pool/index.ts";

/** Lets every settled promise's callbacks run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

afterEach(() => {
  if (jest.isFakeTimers()) jest.useRealTimers();
});

describe("Channel basics", () => {
  test("capacity must be an integer >= 1", () => {
    expect(() => new Channel(0)).toThrow(/capacity=0 is invalid: expected an integer in 1\.\.2\^30/);
    expect(() => new Channel(1.5)).toThrow(RangeError);
    expect(() => new Channel(Number.NaN)).toThrow(PoolOptionError);
    expect(new Channel(3).capacity).toBe(3);
  });

  test("bad timeouts are refused by rejecting, open or closed, empty or full", async () => {
    const ch = new Channel<number>(1);
    for (let round = 0; round < 3; round++) {
      if (round === 1) ch.tryPush(7); // full: a push would wait, a pop would not
      if (round === 2) ch.close();
      await expect(ch.pop(-1)).rejects.toMatchObject({ code: "ERR_POOL_OPTION", message: expect.stringMatching(/Channel\.pop timeoutMs=-1 is invalid/) });
      await expect(ch.push(1, Number.NaN)).rejects.toBeInstanceOf(RangeError);
      await expect(ch.push(1, Number.NaN)).rejects.toBeInstanceOf(MyriadError);
    }
    expect(ch.length).toBe(1); // nothing was taken or added by the refused calls
  });

  test("tryPush fills up to capacity, tryPop drains FIFO", () => {
    const ch = new Channel<number>(3);
    expect(ch.tryPush(1)).toBe(true);
    expect(ch.tryPush(2)).toBe(true);
    expect(ch.tryPush(3)).toBe(true);
    expect(ch.tryPush(4)).toBe(false);
    expect(ch.length).toBe(3);
    expect([ch.tryPop(), ch.tryPop(), ch.tryPop(), ch.tryPop()]).toEqual([1, 2, 3, undefined]);
  });

  test("waiting poppers are served FIFO, a push goes straight to the oldest", async () => {
    const ch = new Channel<string>(1);
    const got: string[] = [];
    const a = ch.pop().then((v) => got.push(`a:${v}`));
    const b = ch.pop().then((v) => got.push(`b:${v}`));
    const c = ch.pop().then((v) => got.push(`c:${v}`));
    expect(ch.waitingPoppers).toBe(3);
    expect(await ch.push("x")).toBe(true);
    expect(ch.tryPush("y")).toBe(true);
    expect(ch.length).toBe(0);
    await Promise.all([a, b]);
    expect(got).toEqual(["a:x", "b:y"]);
    ch.tryPush("z");
    await c;
    expect(got).toEqual(["a:x", "b:y", "c:z"]);
  });

  test("waiting pushers enter FIFO as pops make room", async () => {
    const ch = new Channel<number>(1);
    ch.tryPush(0);
    const order: number[] = [];
    const ps = [1, 2, 3].map((v) => ch.push(v).then((ok) => ok && order.push(v)));
    expect(ch.waitingPushers).toBe(3);
    const popped = [];
    for (let i = 0; i < 4; i++) popped.push(await ch.pop());
    await Promise.all(ps);
    expect(popped).toEqual([0, 1, 2, 3]);
    expect(order).toEqual([1, 2, 3]);
    expect(ch.waitingPushers).toBe(0);
  });

  test("close: pop drains what is left then resolves undefined; waiters are woken", async () => {
    const ch = new Channel<number>(2);
    ch.tryPush(1);
    ch.tryPush(2);
    const blockedPush = ch.push(3);
    ch.close();
    expect(ch.closed).toBe(true);
    await expect(blockedPush).rejects.toBeInstanceOf(ChannelClosedError);
    await expect(ch.push(4)).rejects.toMatchObject({ code: "ERR_CHANNEL_CLOSED" });
    expect(() => ch.tryPush(5)).toThrow(ChannelClosedError);
    expect(await ch.pop()).toBe(1);
    expect(ch.tryPop()).toBe(2);
    expect(await ch.pop()).toBeUndefined();
    expect(await ch.pop(1000)).toBeUndefined();

    const empty = new Channel<number>(1);
    const waiting = [empty.pop(), empty.pop(5_000), empty.pop()];
    empty.close();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined, undefined]);
    expect(empty.waitingPoppers).toBe(0);
    empty.close(); // idempotent
  });

  test("async iteration ends at close once drained", async () => {
    const ch = new Channel<number>(4);
    const seen: number[] = [];
    const consumer = (async () => {
      for await (const v of ch) seen.push(v);
    })();
    for (let i = 0; i < 10; i++) await ch.push(i);
    ch.close();
    await consumer;
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("a pop timeout resolves undefined and leaves nothing pending (real timers)", async () => {
    const ch = new Channel<number>(1);
    const t0 = performance.now();
    expect(await ch.pop(20)).toBeUndefined();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
    expect(ch.waitingPoppers).toBe(0);
    ch.tryPush(7);
    expect(ch.length).toBe(1); // the timed-out popper did not swallow it
    expect(await ch.push(8, 10)).toBe(false);
    expect(ch.waitingPushers).toBe(0);
    expect(ch.tryPop()).toBe(7);
    expect(ch.tryPop()).toBeUndefined();
  });

  test("a timeout beyond a timer's 32-bit range waits forever instead of firing at once", async () => {
    const ch = new Channel<number>(1);
    const p = ch.pop(2 ** 31 + 5);
    let settled = false;
    p.then(() => (settled = true));
    await Bun.sleep(30);
    expect(settled).toBe(false);
    ch.tryPush(1);
    expect(await p).toBe(1);
  });

  test("timeout 0 never waits", async () => {
    const ch = new Channel<number>(1);
    expect(await ch.pop(0)).toBeUndefined();
    ch.tryPush(1);
    expect(await ch.push(2, 0)).toBe(false);
    expect(ch.waitingPushers + ch.waitingPoppers).toBe(0);
  });

  test("timed-out waiters in the middle of 10,000 leave the rest in FIFO order, timers all cleared", async () => {
    jest.useFakeTimers();
    const ch = new Channel<number>(1);
    const n = 10_000;
    const results = new Array<number | undefined | "pending">(n).fill("pending");
    for (let i = 0; i < n; i++) {
      // Every third waiter has a short timeout, the others a long one.
      const p = ch.pop(i % 3 === 0 ? 10 : 1_000_000);
      p.then((v) => {
        results[i] = v;
      });
    }
    expect(jest.getTimerCount()).toBe(n);
    jest.advanceTimersByTime(10);
    await flush();
    const expired = Math.ceil(n / 3);
    expect(ch.waitingPoppers).toBe(n - expired);
    expect(jest.getTimerCount()).toBe(n - expired);
    let v = 0;
    while (ch.waitingPoppers > 0) ch.tryPush(v++);
    await flush();
    expect(jest.getTimerCount()).toBe(0);
    let next = 0;
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) expect(results[i]).toBeUndefined();
      else expect(results[i]).toBe(next++);
    }
  });
});

// ------------------------------------------------------------------ model-based property test

type Op =
  | { t: "tryPush"; v: number }
  | { t: "tryPop" }
  | { t: "push"; v: number; timeoutMs: number | undefined }
  | { t: "pop"; timeoutMs: number | undefined }
  | { t: "advance"; ms: number }
  | { t: "close" };

const timeoutArb = fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("tryPush" as const), v: fc.nat(1000) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("tryPop" as const) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("push" as const), v: fc.nat(1000), timeoutMs: timeoutArb }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("pop" as const), timeoutMs: timeoutArb }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 30 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant("close" as const) }), weight: 1 },
);

type Outcome = { ok: unknown } | { err: string };

/** The reference: plain arrays and obvious rules. */
class Model {
  buffer: number[] = [];
  pushers: { id: number; v: number; deadline: number }[] = [];
  poppers: { id: number; deadline: number }[] = [];
  closed = false;
  now = 0;
  outcomes = new Map<number, Outcome>();
  constructor(readonly capacity: number) {}

  tryPush(v: number): boolean | "throws" {
    if (this.closed) return "throws";
    const p = this.poppers.shift();
    if (p) {
      this.outcomes.set(p.id, { ok: v });
      return true;
    }
    if (this.buffer.length < this.capacity) {
      this.buffer.push(v);
      return true;
    }
    return false;
  }
  push(id: number, v: number, timeoutMs: number | undefined): void {
    if (this.closed) return void this.outcomes.set(id, { err: "ERR_CHANNEL_CLOSED" });
    if (this.tryPush(v) === true) return void this.outcomes.set(id, { ok: true });
    if (timeoutMs === 0) return void this.outcomes.set(id, { ok: false });
    this.pushers.push({ id, v, deadline: timeoutMs === undefined ? Infinity : this.now + timeoutMs });
  }
  tryPop(): number | undefined {
    const v = this.buffer.shift();
    if (v === undefined) return undefined;
    const p = this.pushers.shift();
    if (p) {
      this.buffer.push(p.v);
      this.outcomes.set(p.id, { ok: true });
    }
    return v;
  }
  pop(id: number, timeoutMs: number | undefined): void {
    if (this.buffer.length > 0) return void this.outcomes.set(id, { ok: this.tryPop() });
    if (this.closed || timeoutMs === 0) return void this.outcomes.set(id, { ok: undefined });
    this.poppers.push({ id, deadline: timeoutMs === undefined ? Infinity : this.now + timeoutMs });
  }
  advance(ms: number): void {
    this.now += ms;
    this.pushers = this.pushers.filter((p) => {
      if (p.deadline > this.now) return true;
      this.outcomes.set(p.id, { ok: false });
      return false;
    });
    this.poppers = this.poppers.filter((p) => {
      if (p.deadline > this.now) return true;
      this.outcomes.set(p.id, { ok: undefined });
      return false;
    });
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pushers) this.outcomes.set(p.id, { err: "ERR_CHANNEL_CLOSED" });
    for (const p of this.poppers) this.outcomes.set(p.id, { ok: undefined });
    this.pushers = [];
    this.poppers = [];
  }
  timedWaiters(): number {
    return [...this.pushers, ...this.poppers].filter((w) => w.deadline !== Infinity).length;
  }
}

describe("Channel against a model (fast-check)", () => {
  test("every operation sequence behaves like the model; no timer outlives its waiter", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(opArb, { maxLength: 60 }), async (capacity, ops) => {
        jest.useFakeTimers();
        try {
          const ch = new Channel<number>(capacity);
          const model = new Model(capacity);
          const outcomes = new Map<number, Outcome>();
          let nextId = 0;
          for (const op of ops) {
            switch (op.t) {
              case "tryPush": {
                let real: boolean | "throws";
                try {
                  real = ch.tryPush(op.v);
                } catch (e) {
                  expect(e).toBeInstanceOf(ChannelClosedError);
                  real = "throws";
                }
                expect(real).toBe(model.tryPush(op.v));
                break;
              }
              case "tryPop":
                expect(ch.tryPop()).toBe(model.tryPop());
                break;
              case "push": {
                const id = nextId++;
                ch.push(op.v, op.timeoutMs).then(
                  (ok) => outcomes.set(id, { ok }),
                  (e) => outcomes.set(id, { err: e.code }),
                );
                model.push(id, op.v, op.timeoutMs);
                break;
              }
              case "pop": {
                const id = nextId++;
                ch.pop(op.timeoutMs).then((ok) => outcomes.set(id, { ok }));
                model.pop(id, op.timeoutMs);
                break;
              }
              case "advance":
                jest.advanceTimersByTime(op.ms);
                model.advance(op.ms);
                break;
              case "close":
                ch.close();
                model.close();
                break;
            }
            expect(ch.length).toBe(model.buffer.length);
            expect(ch.waitingPushers).toBe(model.pushers.length);
            expect(ch.waitingPoppers).toBe(model.poppers.length);
            expect(ch.closed).toBe(model.closed);
            // Exactly one timer per waiter with a finite timeout: none leaked, none missing.
            expect(jest.getTimerCount()).toBe(model.timedWaiters());
          }
          await flush();
          expect(outcomes).toEqual(model.outcomes);
          // Closing at the end settles every remaining waiter.
          ch.close();
          model.close();
          await flush();
          expect(outcomes).toEqual(model.outcomes);
          expect(outcomes.size).toBe(nextId);
          expect(jest.getTimerCount()).toBe(0);
        } finally {
          jest.useRealTimers();
        }
      }),
      { numRuns: 300 },
    );
  });
});
