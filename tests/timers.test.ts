import { describe, expect, test } from "bun:test";
import { TimerRangeError, TimerReentrancyError, TimerTypeError, TimingWheel } from "../src/timers/index.ts";
import { MyriadError } from "../src/errors.ts";

const LEVELS = TimingWheel.LEVELS;

/** Advances and returns the ids fired, in order. */
function fire(wheel: TimingWheel, nowMs: number): number[] {
  const out: number[] = [];
  const n = wheel.advance(nowMs, (id) => out.push(id));
  expect(n).toBe(out.length);
  return out;
}

/** Tick boundary at or after `deadline`: when the wheel's contract says the timer fires. */
function firingTime(wheel: TimingWheel, deadline: number): number {
  return wheel.startMs + Math.ceil((deadline - wheel.startMs) / wheel.tickMs) * wheel.tickMs;
}

/** Small deterministic PRNG (mulberry32) so that failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Drives the wheel as a real event loop would: sleep nextDueMs(), advance, repeat. Returns
 * when each id fired and how many wake-ups fired nothing.
 */
function drive(wheel: TimingWheel, maxWakeups: number): { firedAt: Map<number, number>; idleWakeups: number; wakeups: number } {
  const firedAt = new Map<number, number>();
  let idleWakeups = 0;
  let wakeups = 0;
  for (;;) {
    const d = wheel.nextDueMs();
    if (d === Infinity) break;
    expect(d).toBeGreaterThanOrEqual(0);
    const now = wheel.nowMs + d;
    // Nothing may fire strictly before the time nextDueMs() announced.
    if (d > 0) {
      const justBefore = wheel.nowMs + d / 2;
      if (justBefore > wheel.nowMs && justBefore < now) expect(fire(wheel, justBefore)).toEqual([]);
    }
    const ids = fire(wheel, now);
    for (const id of ids) {
      expect(firedAt.has(id)).toBe(false);
      firedAt.set(id, now);
    }
    if (ids.length === 0) idleWakeups++;
    if (++wakeups > maxWakeups) throw new Error(`driver did not finish within ${maxWakeups} wake-ups`);
  }
  return { firedAt, idleWakeups, wakeups };
}

describe("TimingWheel basics", () => {
  test("schedule, isPending, size, cancel, re-arm moves the timer", () => {
    const w = new TimingWheel({ capacity: 8, tickMs: 10 });
    expect(w.size).toBe(0);
    expect(w.nowMs).toBe(0);
    w.schedule(3, 100);
    expect(w.isPending(3)).toBe(true);
    expect(w.isPending(2)).toBe(false);
    expect(w.size).toBe(1);
    w.schedule(3, 500); // moves, not a second timer
    expect(w.size).toBe(1);
    expect(fire(w, 490)).toEqual([]);
    expect(fire(w, 500)).toEqual([3]);
    expect(w.size).toBe(0);
    expect(w.isPending(3)).toBe(false);
    w.schedule(5, 50);
    expect(w.cancel(5)).toBe(true);
    expect(w.cancel(5)).toBe(false);
    expect(w.size).toBe(0);
    expect(fire(w, 10_000)).toEqual([]);
  });

  test("re-arm to an earlier time also moves it", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 1 });
    w.schedule(1, 1_000_000);
    w.schedule(1, 5);
    expect(fire(w, 5)).toEqual([1]);
    expect(fire(w, 2_000_000)).toEqual([]);
  });

  test("a timer fires on the first tick boundary at or after its deadline", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 10 });
    w.schedule(0, 25); // deadline 25 -> fires at 30
    w.schedule(1, 30); // deadline 30 -> fires at 30
    w.schedule(2, 31); // deadline 31 -> fires at 40
    expect(fire(w, 24)).toEqual([]);
    expect(fire(w, 29)).toEqual([]);
    expect(fire(w, 30).sort()).toEqual([0, 1]);
    expect(fire(w, 39)).toEqual([]);
    expect(fire(w, 40)).toEqual([2]);
  });

  test("a cascaded timer fires at its own tick, not with the slot it cascades from", () => {
    // Deadline 645 is tick 65: filed in level 1 (ticks 64..127). advance(646) reaches tick 64
    // and cascades it; its tick is still ahead, so it waits for 650 although 645 <= 646.
    const w = new TimingWheel({ capacity: 2, tickMs: 10 });
    w.schedule(0, 645);
    expect(fire(w, 646)).toEqual([]);
    expect(w.nextDueMs()).toBe(4);
    expect(fire(w, 649)).toEqual([]);
    expect(fire(w, 650)).toEqual([0]);
  });

  test("startMs sets the clock, and fractional times are accepted", () => {
    const w = new TimingWheel({ capacity: 2, tickMs: 4, startMs: 1000.5 });
    expect(w.nowMs).toBe(1000.5);
    w.schedule(0, 7.25); // deadline 1007.75 -> first boundary 1000.5 + 8 = 1008.5
    expect(fire(w, 1007.5)).toEqual([]);
    expect(w.nextDueMs()).toBe(1);
    expect(fire(w, 1008.4)).toEqual([]);
    expect(fire(w, 1008.5)).toEqual([0]);
  });

  test("delay 0 is due at once: the next advance fires it, even at the same time", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 10, startMs: 5 });
    w.schedule(2, 0);
    expect(w.nextDueMs()).toBe(0);
    expect(fire(w, 5)).toEqual([2]);
    expect(w.nextDueMs()).toBe(Infinity);
  });

  test("BYTES_PER_TIMER is the sum of the element sizes of the per-id typed arrays, <= 24", () => {
    const capacity = 17;
    const w = new TimingWheel({ capacity });
    let sum = 0;
    for (const value of Object.values(w)) {
      if (ArrayBuffer.isView(value) && (value as unknown as { length: number }).length === capacity) {
        sum += (value as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
      }
    }
    expect(sum).toBe(TimingWheel.BYTES_PER_TIMER);
    expect(TimingWheel.BYTES_PER_TIMER).toBeLessThanOrEqual(24);
  });

  test("capacity 2^24 is accepted and the last id works", () => {
    const w = new TimingWheel({ capacity: TimingWheel.MAX_CAPACITY, tickMs: 1 });
    const last = TimingWheel.MAX_CAPACITY - 1;
    w.schedule(last, 3);
    expect(fire(w, 3)).toEqual([last]);
  });
});

describe("level edges: delays of 64^k - 1, 64^k, 64^k + 1 ticks", () => {
  for (const tickMs of [1, 10]) {
    for (const offsetTicks of [0, 1, 37, 63, 64 * 64 - 1, 123_456_789]) {
      test(`tickMs ${tickMs}, clock at tick ${offsetTicks}: each fires exactly at its tick, never before`, () => {
        const w = new TimingWheel({ capacity: 64, tickMs, startMs: 0 });
        expect(fire(w, offsetTicks * tickMs)).toEqual([]);
        const base = w.nowMs;
        const deadlines = new Map<number, number>();
        let id = 0;
        for (let k = 1; k <= LEVELS; k++) {
          for (const delta of [-1, 0, 1]) {
            const ticks = 64 ** k + delta;
            deadlines.set(id, base + ticks * tickMs);
            w.schedule(id++, ticks * tickMs);
            if (tickMs > 1) {
              // Off-boundary deadline: due half a tick before the boundary it fires on.
              deadlines.set(id, base + ticks * tickMs - tickMs / 2);
              w.schedule(id++, ticks * tickMs - tickMs / 2);
            }
          }
        }
        // Approach every edge by one big jump, then tick by tick across it.
        const times = [...new Set([...deadlines.values()].map((d) => firingTime(w, d)))].sort((a, b) => a - b);
        const firedAt = new Map<number, number>();
        for (const t of times) {
          for (let step = 3; step >= 0; step--) {
            const now = t - step * tickMs;
            if (now < w.nowMs) continue;
            for (const fid of fire(w, now)) firedAt.set(fid, now);
            if (step > 0) {
              // One ms before the boundary nothing due at the boundary may fire.
              if (now + tickMs - 1 > w.nowMs) for (const fid of fire(w, now + tickMs - 1)) firedAt.set(fid, now + tickMs - 1);
            }
          }
        }
        expect(w.size).toBe(0);
        for (const [fid, deadline] of deadlines) {
          expect(firedAt.get(fid)).toBe(firingTime(w, deadline));
        }
      });
    }
  }

  test("jumping straight onto each edge fires exactly the timers of that edge", () => {
    const w = new TimingWheel({ capacity: 16, tickMs: 1 });
    for (let k = 1; k <= 5; k++) w.schedule(k, 64 ** k);
    for (let k = 1; k <= 5; k++) {
      expect(fire(w, 64 ** k - 1)).toEqual([]);
      expect(fire(w, 64 ** k)).toEqual([k]);
    }
  });
});

describe("tick arithmetic past 2^31 ms and 2^32 ticks", () => {
  const cases: Array<{ name: string; startMs: number; tickMs: number; advanceTo: number }> = [
    { name: "clock crossing 2^31 ticks (tickMs 1, startMs 0)", startMs: 0, tickMs: 1, advanceTo: 2 ** 31 - 40 },
    { name: "startMs 2^31 + 12345", startMs: 2 ** 31 + 12345, tickMs: 1, advanceTo: 2 ** 31 + 12345 + 2 ** 31 - 7 },
    { name: "startMs 2^40 + 7, 2^33 ticks elapsed", startMs: 2 ** 40 + 7, tickMs: 1, advanceTo: 2 ** 40 + 7 + 2 ** 33 + 5 },
    { name: "tickMs 10, 2^35 ticks elapsed", startMs: 3, tickMs: 10, advanceTo: 3 + 2 ** 35 * 10 - 20 },
    { name: "clock just before the top level wraps (2^36 ticks)", startMs: 0, tickMs: 1, advanceTo: 2 ** 36 - 100 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const w = new TimingWheel({ capacity: 256, tickMs: c.tickMs, startMs: c.startMs });
      expect(fire(w, c.advanceTo)).toEqual([]);
      expect(w.nowMs).toBe(c.advanceTo);
      const random = rng(7);
      const deadlines = new Map<number, number>();
      for (let id = 0; id < 256; id++) {
        let delay: number;
        if (id < 80) delay = id; // straddles the boundary tick by tick
        else if (id < 98) {
          const k = 1 + ((id - 80) % 6);
          delay = (64 ** k + ((id % 3) - 1)) * c.tickMs; // level edges
        } else delay = Math.floor(random() * 2 ** 38); // up to and past the horizon at tickMs 1
        deadlines.set(id, c.advanceTo + delay);
        w.schedule(id, delay);
      }
      const { firedAt } = drive(w, 256 * LEVELS * 3);
      expect(firedAt.size).toBe(256);
      for (const [id, deadline] of deadlines) {
        const at = firedAt.get(id)!;
        expect(at).toBeGreaterThanOrEqual(deadline);
        expect(at).toBeLessThan(deadline + c.tickMs);
        expect(at).toBe(firingTime(w, deadline));
      }
    });
  }
});

describe("long stalls and delays beyond the horizon", () => {
  test("one advance of 10^9 ms fires all 10,000 due timers, none early", () => {
    const w = new TimingWheel({ capacity: 10_000, tickMs: 1 });
    const random = rng(42);
    const deadlines = new Float64Array(10_000);
    for (let id = 0; id < 10_000; id++) {
      const delay = Math.floor(random() * 1e9);
      deadlines[id] = delay;
      w.schedule(id, delay);
    }
    w.schedule(0, 1e9 + 1); // not yet due
    deadlines[0] = 1e9 + 1;
    const seen = new Uint8Array(10_000);
    const n = w.advance(1e9, (id) => {
      expect(deadlines[id]!).toBeLessThanOrEqual(1e9);
      seen[id] = seen[id]! + 1;
    });
    expect(n).toBe(9_999);
    for (let id = 1; id < 10_000; id++) expect(seen[id]).toBe(1);
    expect(w.size).toBe(1);
    expect(w.isPending(0)).toBe(true);
    expect(fire(w, 1e9 + 1)).toEqual([0]);
  });

  test("a jump of 2^52 ms over an almost empty wheel returns at once (no walk over ticks)", () => {
    // Walking every tick would take 2^52 iterations: this test would never finish.
    const w = new TimingWheel({ capacity: 4, tickMs: 1 });
    w.schedule(1, 2 ** 51);
    w.schedule(2, 5);
    expect(fire(w, 2 ** 51 - 1)).toEqual([2]);
    expect(fire(w, 2 ** 52)).toEqual([1]);
    expect(w.nowMs).toBe(2 ** 52);
    w.schedule(3, 0);
    expect(fire(w, 2 ** 52)).toEqual([3]);
  });

  test("delays past the top level's span are clamped and re-filed, never fired early", () => {
    const horizonTicks = 64 ** LEVELS; // 2^36
    for (const tickMs of [1, 10]) {
      const w = new TimingWheel({ capacity: 4, tickMs });
      const far = 5 * horizonTicks * tickMs + 12_345 * tickMs;
      w.schedule(0, far);
      w.schedule(1, horizonTicks * tickMs); // exactly the horizon
      w.schedule(2, horizonTicks * tickMs - tickMs); // one tick inside
      // Walk up in uneven jumps, each shorter than the horizon: nothing fires early.
      let now = 0;
      const firedAt = new Map<number, number>();
      const step = Math.floor(horizonTicks * 0.37) * tickMs;
      while (now + step < far) {
        now += step;
        for (const id of fire(w, now)) firedAt.set(id, now);
      }
      expect(firedAt.has(0)).toBe(false);
      expect(firedAt.get(1)).toBeGreaterThanOrEqual(horizonTicks * tickMs);
      expect(firedAt.get(2)).toBeGreaterThanOrEqual(horizonTicks * tickMs - tickMs);
      expect(fire(w, far - 1)).toEqual([]);
      expect(w.nextDueMs()).toBe(1);
      expect(fire(w, far)).toEqual([0]);
    }
  });

  test("a clamped timer is exact when reached by a single jump or by the driver", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 1 });
    const far = 2 ** 45 + 3;
    w.schedule(0, far);
    expect(fire(w, far - 1)).toEqual([]);
    expect(fire(w, far)).toEqual([0]);
    const w2 = new TimingWheel({ capacity: 4, tickMs: 1 });
    w2.schedule(0, far);
    const { firedAt, wakeups } = drive(w2, 10_000);
    expect(firedAt.get(0)).toBe(far);
    // 2^45 ticks is 512 horizons: one wake-up per re-filing, a few hundred at most.
    expect(wakeups).toBeLessThan(2 * (far / (64 ** 5 * 63)) + LEVELS + 2);
  });
});

describe("nextDueMs", () => {
  test("Infinity when empty, 0 when due, exact within the lowest level", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 10 });
    expect(w.nextDueMs()).toBe(Infinity);
    w.schedule(0, 125); // fires at 130
    expect(w.nextDueMs()).toBe(130);
    w.schedule(1, 47); // fires at 50
    expect(w.nextDueMs()).toBe(50);
    expect(fire(w, 44)).toEqual([]);
    expect(w.nextDueMs()).toBe(6);
    w.schedule(2, 0);
    expect(w.nextDueMs()).toBe(0);
    expect(fire(w, 44)).toEqual([2]);
    expect(w.cancel(1)).toBe(true);
    expect(w.nextDueMs()).toBe(86);
    expect(w.cancel(0)).toBe(true);
    expect(w.nextDueMs()).toBe(Infinity);
  });

  test("for far timers it is a lower bound; the driver fires each exactly at its tick with few idle wake-ups", () => {
    const random = rng(99);
    for (const tickMs of [1, 10]) {
      const w = new TimingWheel({ capacity: 500, tickMs, startMs: 17 });
      const deadlines = new Map<number, number>();
      for (let id = 0; id < 500; id++) {
        const delay = Math.floor(random() * 64 ** (1 + (id % 5)) * tickMs);
        deadlines.set(id, w.nowMs + delay);
        w.schedule(id, delay);
      }
      const { firedAt, idleWakeups } = drive(w, 500 * LEVELS);
      expect(firedAt.size).toBe(500);
      for (const [id, d] of deadlines) expect(firedAt.get(id)).toBe(firingTime(w, d));
      // Each idle wake-up cascades a slot one level down: at most LEVELS - 1 per timer, far fewer in practice.
      expect(idleWakeups).toBeLessThanOrEqual(500 * (LEVELS - 1));
    }
  });

  test("never overshoots: advancing to just before nowMs + nextDueMs() fires nothing", () => {
    const w = new TimingWheel({ capacity: 3, tickMs: 1 });
    w.schedule(0, 64 ** 3 + 5);
    for (let i = 0; i < LEVELS + 1 && w.size > 0; i++) {
      const d = w.nextDueMs();
      expect(d).toBeGreaterThan(0);
      expect(fire(w, w.nowMs + d - 1)).toEqual([]);
      fire(w, w.nowMs + 1);
    }
    expect(w.size).toBe(0);
  });
});

describe("callbacks that schedule and cancel", () => {
  test("a timer re-armed with delay 0 in its callback fires on the next advance, not this one", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 10 });
    w.schedule(1, 10);
    let calls = 0;
    const n = w.advance(10, (id) => {
      calls++;
      expect(w.isPending(id)).toBe(false);
      expect(w.nowMs).toBe(10);
      w.schedule(id, 0);
      expect(w.isPending(id)).toBe(true);
    });
    expect(n).toBe(1);
    expect(calls).toBe(1);
    expect(w.nextDueMs()).toBe(0);
    expect(fire(w, 10)).toEqual([1]);
    expect(w.size).toBe(0);
  });

  test("a periodic timer re-arming itself fires once per period, also across one long stall", () => {
    const w = new TimingWheel({ capacity: 2, tickMs: 10 });
    w.schedule(0, 100);
    let fired = 0;
    const rearm = (id: number) => {
      fired++;
      w.schedule(id, 100);
    };
    for (let t = 100; t <= 1000; t += 100) w.advance(t, rearm);
    expect(fired).toBe(10);
    // A stall of 10^6 ms: it fires once (it was due once), and is re-armed relative to the new time.
    expect(w.advance(1_001_000, rearm)).toBe(1);
    expect(w.nextDueMs()).toBe(100);
  });

  test("a callback can cancel a timer of the same batch before it fires", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 1 });
    w.schedule(0, 5);
    w.schedule(1, 5);
    const order: number[] = [];
    const cancelled: boolean[] = [];
    w.advance(5, (id) => {
      order.push(id);
      cancelled.push(w.cancel(1 - id));
    });
    expect(order.length).toBe(1);
    expect(cancelled).toEqual([true]);
    expect(w.size).toBe(0);
  });

  test("a callback can re-arm a collected timer that has not fired: it moves instead of firing", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 1 });
    w.schedule(0, 5);
    w.schedule(1, 5);
    const first: number[] = [];
    w.advance(5, (id) => {
      first.push(id);
      w.schedule(1 - id, 50);
    });
    expect(first.length).toBe(1);
    const other = 1 - first[0]!;
    expect(w.isPending(other)).toBe(true);
    expect(fire(w, 54)).toEqual([]);
    expect(fire(w, 55)).toEqual([other]);
  });

  test("cancelling itself in its callback returns false; cancelling and scheduling others is safe", () => {
    const w = new TimingWheel({ capacity: 100, tickMs: 1 });
    for (let id = 0; id < 100; id++) w.schedule(id, id % 10);
    const firedIds: number[] = [];
    w.advance(20, (id) => {
      firedIds.push(id);
      expect(w.cancel(id)).toBe(false);
      // Every odd id cancels the next id; even ids schedule id+50 (if free) far away.
      if (id % 2 === 1 && id + 1 < 100) w.cancel(id + 1);
      if (id % 2 === 0 && id + 50 < 100 && !w.isPending(id + 50)) w.schedule(id + 50, 1000);
      expect(w.nextDueMs()).toBeGreaterThanOrEqual(0);
    });
    expect(new Set(firedIds).size).toBe(firedIds.length);
    const after = w.size;
    const more = fire(w, 2000);
    expect(more.length).toBe(after);
    expect(w.size).toBe(0);
  });

  test("nextDueMs inside a callback is 0 while collected timers wait, and nowMs is the new time", () => {
    const w = new TimingWheel({ capacity: 3, tickMs: 1 });
    w.schedule(0, 3);
    w.schedule(1, 3);
    const seen: number[] = [];
    w.advance(7, () => {
      seen.push(w.nextDueMs());
      expect(w.nowMs).toBe(7);
    });
    expect(seen).toEqual([0, Infinity]);
  });

  test("a throwing callback propagates; unfired timers stay pending and fire on the next advance", () => {
    const w = new TimingWheel({ capacity: 8, tickMs: 1 });
    for (let id = 0; id < 5; id++) w.schedule(id, 2);
    w.schedule(7, 0);
    const firedIds: number[] = [];
    expect(() =>
      w.advance(2, (id) => {
        firedIds.push(id);
        if (firedIds.length === 2) throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(firedIds.length).toBe(2);
    for (const id of firedIds) expect(w.isPending(id)).toBe(false);
    expect(w.size).toBe(4);
    expect(w.nextDueMs()).toBe(0);
    // More work for the next call: one more due timer and one that the walk collects.
    w.schedule(6, 0);
    w.schedule(5, 1);
    const rest = fire(w, 3);
    expect(rest.length).toBe(6);
    expect(new Set([...firedIds, ...rest])).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7]));
    expect(w.size).toBe(0);
  });

  test("advance from inside a callback throws TimerReentrancyError and changes nothing", () => {
    const w = new TimingWheel({ capacity: 4, tickMs: 1 });
    w.schedule(0, 1);
    w.schedule(1, 100);
    let caught: unknown;
    w.advance(1, () => {
      try {
        w.advance(200, () => {});
      } catch (e) {
        caught = e;
      }
    });
    expect(caught).toBeInstanceOf(TimerReentrancyError);
    expect(caught).toBeInstanceOf(MyriadError);
    expect((caught as TimerReentrancyError).code).toBe("ERR_TIMER_REENTRANT");
    expect(w.nowMs).toBe(1);
    expect(w.isPending(1)).toBe(true);
    expect(fire(w, 99)).toEqual([]);
    expect(fire(w, 100)).toEqual([1]);
  });
});

describe("bad use: a clear error and the wheel unchanged", () => {
  type Snapshot = { size: number; nowMs: number; nextDueMs: number; pending: boolean[] };
  function snapshot(w: TimingWheel): Snapshot {
    const pending: boolean[] = [];
    for (let id = 0; id < w.capacity; id++) pending.push(w.isPending(id));
    return { size: w.size, nowMs: w.nowMs, nextDueMs: w.nextDueMs(), pending };
  }
  /** Two identical wheels: `w` gets the bad call, `twin` does not; afterwards they must behave alike. */
  function setup(): { w: TimingWheel; twin: TimingWheel } {
    const make = () => {
      const wheel = new TimingWheel({ capacity: 8, tickMs: 10, startMs: 100 });
      wheel.schedule(0, 0);
      wheel.schedule(1, 35);
      wheel.schedule(2, 64 * 10 + 5);
      wheel.schedule(5, 10 ** 7);
      wheel.advance(120, () => {});
      wheel.schedule(6, 1);
      return wheel;
    };
    return { w: make(), twin: make() };
  }
  function expectSameFuture(w: TimingWheel, twin: TimingWheel): void {
    for (const t of [120, 150, 1000, 10 ** 7 + 200]) expect(fire(w, t)).toEqual(fire(twin, t));
    w.schedule(7, 30);
    twin.schedule(7, 30);
    expect(fire(w, 10 ** 7 + 230)).toEqual(fire(twin, 10 ** 7 + 230));
    expect(snapshot(w)).toEqual(snapshot(twin));
  }
  function expectThrows(fn: () => unknown, cls: abstract new (...a: never[]) => Error, code: string, mentions: string[]): void {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(cls);
    expect((err as { code?: string }).code).toBe(code);
    for (const m of mentions) expect((err as Error).message).toContain(m);
  }

  const badIds: unknown[] = [-1, 8, 9, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -0.5, 2 ** 32, "3", null, undefined];
  for (const op of ["schedule", "cancel", "isPending"] as const) {
    test(`${op} with an id outside [0, capacity) or not an integer: TimerRangeError ERR_TIMER_ID`, () => {
      for (const bad of badIds) {
        const { w, twin } = setup();
        const before = snapshot(w);
        const call =
          op === "schedule"
            ? () => w.schedule(bad as number, 10)
            : op === "cancel"
              ? () => w.cancel(bad as number)
              : () => w.isPending(bad as number);
        expectThrows(call, RangeError, "ERR_TIMER_ID", ["id", "[0, 7]", op]);
        expectThrows(call, TimerRangeError, "ERR_TIMER_ID", []);
        expect(snapshot(w)).toEqual(before);
        expectSameFuture(w, twin);
      }
    });
  }

  test("schedule with a negative, NaN, infinite, too large or non-number delay: ERR_TIMER_DELAY, pending timer kept", () => {
    for (const bad of [-1, -0.001, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 52 + 2, "5", null, undefined]) {
      const { w, twin } = setup();
      const before = snapshot(w);
      // id 1 is pending: a failed re-arm must neither move nor drop it.
      expectThrows(() => w.schedule(1, bad as number), RangeError, "ERR_TIMER_DELAY", ["delayMs", "[0, 2^52]"]);
      expect(snapshot(w)).toEqual(before);
      // id 3 is not pending: it must not become pending.
      expectThrows(() => w.schedule(3, bad as number), TimerRangeError, "ERR_TIMER_DELAY", []);
      expect(w.isPending(3)).toBe(false);
      expect(snapshot(w)).toEqual(before);
      expectSameFuture(w, twin);
    }
  });

  test("advance backwards, to NaN, Infinity, past 2^52 or a non-number: ERR_TIMER_TIME, clock unchanged", () => {
    for (const bad of [119, 0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 52 + 1, "200", undefined]) {
      const { w, twin } = setup();
      const before = snapshot(w);
      let calls = 0;
      expectThrows(() => w.advance(bad as number, () => calls++), RangeError, "ERR_TIMER_TIME", ["nowMs", "120"]);
      expect(calls).toBe(0);
      expect(snapshot(w)).toEqual(before);
      expectSameFuture(w, twin);
    }
  });

  test("advance with an onExpire that is not a function: TimerTypeError ERR_TIMER_TYPE, clock unchanged", () => {
    for (const bad of [undefined, null, 5, "f", {}]) {
      const { w, twin } = setup();
      const before = snapshot(w);
      expectThrows(() => w.advance(5000, bad as unknown as (id: number) => void), TypeError, "ERR_TIMER_TYPE", ["onExpire"]);
      expect(snapshot(w)).toEqual(before);
      expectSameFuture(w, twin);
    }
  });

  test("constructor options out of range: TimerRangeError ERR_TIMER_OPTIONS naming the option and range", () => {
    const cases: Array<[unknown, string, string]> = [
      [{ capacity: 0 }, "capacity", "[1, 16777216]"],
      [{ capacity: -5 }, "capacity", "[1, 16777216]"],
      [{ capacity: 1.5 }, "capacity", "[1, 16777216]"],
      [{ capacity: 2 ** 24 + 1 }, "capacity", "[1, 16777216]"],
      [{ capacity: Number.NaN }, "capacity", "[1, 16777216]"],
      [{ capacity: "10" }, "capacity", "[1, 16777216]"],
      [{}, "capacity", "[1, 16777216]"],
      [{ capacity: 4, tickMs: 0 }, "tickMs", "[1, 2147483647]"],
      [{ capacity: 4, tickMs: 0.5 }, "tickMs", "[1, 2147483647]"],
      [{ capacity: 4, tickMs: -10 }, "tickMs", "[1, 2147483647]"],
      [{ capacity: 4, tickMs: Number.NaN }, "tickMs", "[1, 2147483647]"],
      [{ capacity: 4, tickMs: 2 ** 31 }, "tickMs", "[1, 2147483647]"],
      [{ capacity: 4, startMs: -1 }, "startMs", "[0, 2^52]"],
      [{ capacity: 4, startMs: Number.NaN }, "startMs", "[0, 2^52]"],
      [{ capacity: 4, startMs: Number.POSITIVE_INFINITY }, "startMs", "[0, 2^52]"],
      [{ capacity: 4, startMs: 2 ** 53 }, "startMs", "[0, 2^52]"],
    ];
    for (const [opts, name, range] of cases) {
      let err: unknown;
      try {
        new TimingWheel(opts as { capacity: number });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RangeError);
      expect(err).toBeInstanceOf(TimerRangeError);
      expect((err as TimerRangeError).code).toBe("ERR_TIMER_OPTIONS");
      expect((err as TimerRangeError).argument).toBe(name);
      expect((err as Error).message).toContain(name);
      expect((err as Error).message).toContain(range);
    }
    for (const bad of [undefined, null, 5]) {
      expect(() => new TimingWheel(bad as unknown as { capacity: number })).toThrow(TimerTypeError);
    }
  });
});
