/**
 * Model-based property test: random schedule / cancel / re-arm / advance sequences (with
 * callbacks that schedule and cancel) run against the TimingWheel and a reference model that
 * keeps every timer's deadline in a Map and decides what is due by brute force.
 *
 * The model's rule, which the wheel must match exactly: advance(now) fires every pending
 * timer that was scheduled due (deadline at or before the clock when scheduled, i.e. delay
 * 0) and every timer whose deadline tick ceil((deadline - startMs) / tickMs) is at or before
 * floor((now - startMs) / tickMs). Independently of that rule each advance is checked
 * against the public contract: never early, at most one tick late.
 */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { TimingWheel } from "../src/timers/index.ts";

// Long tests pass their own timeout: Bun 1.4.5 ignores bunfig's [test] timeout, so the default
// is 5 s, which a loaded 2-core machine can exceed.

const CAPACITY = 12;
const LEVELS = TimingWheel.LEVELS;

interface ModelTimer {
  deadline: number;
  /** Due when scheduled (delay 0): fires on the next advance whatever its time. */
  immediate: boolean;
}

class Model {
  now: number;
  readonly timers = new Map<number, ModelTimer>();
  constructor(
    readonly startMs: number,
    readonly tickMs: number,
  ) {
    this.now = startMs;
  }
  tickOf(deadline: number): number {
    return Math.ceil((deadline - this.startMs) / this.tickMs);
  }
  curTick(): number {
    return Math.floor((this.now - this.startMs) / this.tickMs);
  }
  schedule(id: number, delayMs: number): void {
    const deadline = this.now + delayMs;
    this.timers.set(id, { deadline, immediate: deadline <= this.now });
  }
  /** Ids that advance(nowMs) must fire, computed before any callback runs. */
  dueAt(nowMs: number): Set<number> {
    const target = Math.floor((nowMs - this.startMs) / this.tickMs);
    const due = new Set<number>();
    for (const [id, t] of this.timers) if (t.immediate || this.tickOf(t.deadline) <= target) due.add(id);
    return due;
  }
}

interface Real {
  wheel: TimingWheel;
}

/** Compares everything observable after each command. */
function checkState(m: Model, r: Real): void {
  const w = r.wheel;
  expect(w.size).toBe(m.timers.size);
  expect(w.nowMs).toBe(m.now);
  for (let id = 0; id < CAPACITY; id++) expect(w.isPending(id)).toBe(m.timers.has(id));
  const next = w.nextDueMs();
  if (m.timers.size === 0) {
    expect(next).toBe(Infinity);
    return;
  }
  let anyImmediate = false;
  let minTick = Infinity;
  for (const t of m.timers.values()) {
    if (t.immediate) anyImmediate = true;
    else minTick = Math.min(minTick, m.tickOf(t.deadline));
  }
  if (anyImmediate) {
    expect(next).toBe(0);
    return;
  }
  const exact = m.startMs + minTick * m.tickMs - m.now;
  // Never overshoots the earliest firing time; exact when it lies in the lowest level.
  expect(next).toBeGreaterThan(0);
  expect(next).toBeLessThanOrEqual(exact);
  if (Math.floor(minTick / 64) === Math.floor(m.curTick() / 64)) expect(next).toBe(exact);
}

type Reaction =
  | { kind: "none" }
  | { kind: "rearmSelf"; delayMs: number }
  | { kind: "cancelSelf" }
  | { kind: "cancelOther"; other: number }
  | { kind: "scheduleOther"; other: number; delayMs: number };

class ScheduleCommand implements fc.Command<Model, Real> {
  constructor(
    readonly id: number,
    readonly delayMs: number,
  ) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    m.schedule(this.id, this.delayMs);
    r.wheel.schedule(this.id, this.delayMs);
    checkState(m, r);
  }
  toString(): string {
    return `schedule(${this.id}, ${this.delayMs})`;
  }
}

class CancelCommand implements fc.Command<Model, Real> {
  constructor(readonly id: number) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const expected = m.timers.delete(this.id);
    expect(r.wheel.cancel(this.id)).toBe(expected);
    checkState(m, r);
  }
  toString(): string {
    return `cancel(${this.id})`;
  }
}

class AdvanceCommand implements fc.Command<Model, Real> {
  constructor(
    readonly stepMs: number,
    readonly reactions: Reaction[],
  ) {}
  check(m: Model): boolean {
    return m.now + this.stepMs <= TimingWheel.MAX_TIME_MS;
  }
  run(m: Model, r: Real): void {
    const w = r.wheel;
    const nowMs = m.now + this.stepMs;
    const before = new Map(m.timers);
    const due = m.dueAt(nowMs);
    // The model's rule itself must honour the contract: nothing due has a later deadline.
    for (const id of due) expect(before.get(id)!.deadline).toBeLessThanOrEqual(nowMs);
    m.now = nowMs;
    const fired: number[] = [];
    // Timers a callback cancelled or re-armed: the "must fire" check excludes them.
    const touched = new Set<number>();
    const count = w.advance(nowMs, (id) => {
      // Each callback is checked against the model in the order the wheel chose.
      expect(due.has(id)).toBe(true);
      expect(m.timers.has(id)).toBe(true);
      expect(w.isPending(id)).toBe(false);
      expect(w.nowMs).toBe(nowMs);
      due.delete(id);
      m.timers.delete(id);
      fired.push(id);
      const reaction = this.reactions[(fired.length - 1) % this.reactions.length]!;
      switch (reaction.kind) {
        case "none":
          break;
        case "rearmSelf":
          w.schedule(id, reaction.delayMs);
          m.schedule(id, reaction.delayMs);
          break;
        case "cancelSelf":
          expect(w.cancel(id)).toBe(false);
          break;
        case "cancelOther": {
          const expected = m.timers.delete(reaction.other);
          expect(w.cancel(reaction.other)).toBe(expected);
          due.delete(reaction.other);
          touched.add(reaction.other);
          break;
        }
        case "scheduleOther":
          w.schedule(reaction.other, reaction.delayMs);
          m.schedule(reaction.other, reaction.delayMs);
          due.delete(reaction.other);
          touched.add(reaction.other);
          break;
      }
      expect(w.size).toBe(m.timers.size);
    });
    expect(count).toBe(fired.length);
    // Every timer the model found due fired, unless a callback cancelled or moved it first.
    expect([...due]).toEqual([]);
    expect(new Set(fired).size).toBe(fired.length);
    for (const id of fired) {
      // Never early.
      expect(before.get(id)!.deadline).toBeLessThanOrEqual(nowMs);
    }
    for (const [id, t] of before) {
      // At most one tick late.
      if (t.deadline <= nowMs - m.tickMs && !touched.has(id)) expect(fired).toContain(id);
    }
    checkState(m, r);
  }
  toString(): string {
    return `advance(+${this.stepMs}, ${JSON.stringify(this.reactions)})`;
  }
}

function delayArb(tickMs: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 300 }) },
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 1000 }).map((x) => x + 0.5) },
    {
      // Level edges: (64^k + delta) ticks, plus a little.
      weight: 3,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: LEVELS }), fc.integer({ min: -2, max: 2 }), fc.integer({ min: 0, max: tickMs }))
        .map(([k, delta, extra]) => (64 ** k + delta) * tickMs - extra),
    },
    {
      // Anything up to 2^40 ms: crosses every level and, at tickMs 1, the horizon (2^36 ticks).
      weight: 2,
      arbitrary: fc.tuple(fc.nat({ max: 2 ** 20 }), fc.nat({ max: 2 ** 20 - 1 })).map(([hi, lo]) => hi * 2 ** 20 + lo),
    },
  );
}

function stepArb(tickMs: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 3 * tickMs }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 400 }) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: LEVELS }), fc.integer({ min: -2, max: 2 }))
        .map(([k, delta]) => Math.max(0, (64 ** k + delta) * tickMs)),
    },
    // Big jumps, up to 2^41 ms.
    { weight: 2, arbitrary: fc.tuple(fc.nat({ max: 2 ** 21 }), fc.nat({ max: 2 ** 20 - 1 })).map(([hi, lo]) => hi * 2 ** 20 + lo) },
  );
}

const reactionArb: fc.Arbitrary<Reaction> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "none" } as const) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, 7, 64, 4097).map((delayMs) => ({ kind: "rearmSelf", delayMs }) as const) },
  { weight: 1, arbitrary: fc.constant({ kind: "cancelSelf" } as const) },
  { weight: 2, arbitrary: fc.nat({ max: CAPACITY - 1 }).map((other) => ({ kind: "cancelOther", other }) as const) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.nat({ max: CAPACITY - 1 }), fc.constantFrom(0, 3, 50, 640, 70_000))
      .map(([other, delayMs]) => ({ kind: "scheduleOther", other, delayMs }) as const),
  },
);

interface Config {
  tickMs: number;
  startMs: number;
  /** Ticks the (empty) wheel is advanced before the commands: puts the clock near 2^31, 2^32, level and horizon edges. */
  preTicks: number;
}

const configArb: fc.Arbitrary<Config> = fc.record({
  tickMs: fc.constantFrom(1, 1, 10, 7),
  startMs: fc.constantFrom(0, 0, 1234.5, 2 ** 31 + 12_345, 2 ** 40 + 3),
  preTicks: fc.constantFrom(0, 0, 0, 61, 64 ** 3 - 5, 2 ** 31 - 150, 2 ** 32 - 20, 2 ** 36 - 300, 3 * 2 ** 36 - 7, 123_456_789_012),
});

function commandsArb(tickMs: number): fc.Arbitrary<Iterable<fc.Command<Model, Real>>> {
  const id = fc.nat({ max: CAPACITY - 1 });
  return fc.commands(
    [
      fc.tuple(id, delayArb(tickMs)).map(([i, d]) => new ScheduleCommand(i, d)),
      fc.tuple(id, delayArb(tickMs)).map(([i, d]) => new ScheduleCommand(i, d)),
      id.map((i) => new CancelCommand(i)),
      fc.tuple(stepArb(tickMs), fc.array(reactionArb, { minLength: 1, maxLength: 4 })).map(([s, rs]) => new AdvanceCommand(s, rs)),
      fc.tuple(stepArb(tickMs), fc.array(reactionArb, { minLength: 1, maxLength: 4 })).map(([s, rs]) => new AdvanceCommand(s, rs)),
    ],
    { maxCommands: 80, size: "max" },
  );
}

test("TimingWheel matches the reference model (schedule, cancel, re-arm, advance with reacting callbacks)", () => {
  fc.assert(
    fc.property(
      configArb.chain((config) => fc.tuple(fc.constant(config), commandsArb(config.tickMs))),
      ([config, commands]) => {
        const setup = () => {
          const wheel = new TimingWheel({ capacity: CAPACITY, tickMs: config.tickMs, startMs: config.startMs });
          const model = new Model(config.startMs, config.tickMs);
          const pre = config.startMs + config.preTicks * config.tickMs;
          expect(wheel.advance(pre, () => {})).toBe(0);
          model.now = pre;
          return { model, real: { wheel } };
        };
        fc.modelRun(setup, commands);
      },
    ),
    { numRuns: 10_000 },
  );
}, 120_000); // CPU only, so it cannot hang; in the loaded suite it took 16-32 s (5 s alone), past 30 s once

test("a driver sleeping nextDueMs() fires every timer exactly at its tick, whatever the schedule", () => {
  fc.assert(
    fc.property(
      configArb,
      fc.array(fc.tuple(fc.nat({ max: CAPACITY - 1 }), delayArb(10)), { minLength: 1, maxLength: 30, size: "max" }),
      (config, schedules) => {
        const wheel = new TimingWheel({ capacity: CAPACITY, tickMs: config.tickMs, startMs: config.startMs });
        wheel.advance(config.startMs + config.preTicks * config.tickMs, () => {});
        const deadlines = new Map<number, number>();
        for (const [id, delay] of schedules) {
          wheel.schedule(id, delay);
          deadlines.set(id, wheel.nowMs + delay);
        }
        const scheduledAt = wheel.nowMs;
        // Wake-ups: one per level a timer cascades through, plus one per re-filing of a timer
        // beyond the horizon (every 63 top-level slots).
        let maxWakeups = 0;
        for (const deadline of deadlines.values()) {
          maxWakeups += LEVELS + Math.ceil((deadline - scheduledAt) / config.tickMs / (63 * 64 ** (LEVELS - 1)));
        }
        const firedAt = new Map<number, number>();
        let wakeups = 0;
        for (;;) {
          const d = wheel.nextDueMs();
          if (d === Infinity) break;
          const now = wheel.nowMs + d;
          wheel.advance(now, (id) => firedAt.set(id, now));
          expect(++wakeups).toBeLessThanOrEqual(maxWakeups);
        }
        expect(firedAt.size).toBe(deadlines.size);
        for (const [id, deadline] of deadlines) {
          const fire = config.startMs + Math.ceil((deadline - config.startMs) / config.tickMs) * config.tickMs;
          // Delay 0 is due at once: the first advance (at the same time) fires it.
          expect(firedAt.get(id)).toBe(deadline <= scheduledAt ? scheduledAt : fire);
          expect(firedAt.get(id)!).toBeGreaterThanOrEqual(deadline);
          expect(firedAt.get(id)!).toBeLessThan(deadline + config.tickMs);
        }
      },
    ),
    { numRuns: 4000 },
  );
}, 30_000);
