/**
 * Hierarchical timing wheel: one timer per integer id, stored in typed arrays.
 *
 * Layout (after the Linux kernel's timer wheel and tokio's `time::wheel`):
 * - LEVELS levels of 64 slots; a slot of level l spans 64^l ticks, so level l covers 64^(l+1)
 *   ticks ahead and the wheel as a whole 64^LEVELS ticks (2^36: 2.2 years at 1 ms a tick,
 *   21.8 years at 10 ms). Later deadlines are filed in the farthest top-level slot and
 *   re-filed when that slot comes round, so they are never fired early.
 * - A timer lives in the slot of the highest base-64 digit where its deadline tick differs
 *   from the wheel's current tick. Advancing to a slot of level l > 0 re-files ("cascades")
 *   its timers into lower levels; a timer cascades at most LEVELS - 1 times.
 * - Each level keeps a 64-bit occupancy bitmap (two Int32 words), so the next non-empty
 *   slot is found with a count-leading-zeros, never by scanning slots. A long stall jumps
 *   from one occupied slot to the next: its cost is the number of timers fired or cascaded,
 *   not the number of ticks crossed.
 * - Timers are intrusive doubly linked lists in Int32Arrays (`next`, `prev` per id) with a
 *   head per slot; deadlines are a Float64Array. `prev` also says where a timer is: >= 0 is
 *   the previous id, -1 is "not pending", and -2 - list marks the head of `list`, so cancel()
 *   needs no slot array: 16 bytes per timer in all.
 *
 * Time: deadlines are kept in exact milliseconds (doubles); ticks are counted from startMs as
 * integer-valued doubles. Digits are taken with division by powers of two, which is exact
 * for integers below 2^53, so nothing breaks when the tick count passes 2^31 or 2^32;
 * 32-bit operations are used on ticks only when both operands are below 2^31.
 *
 * One class past 500 lines on purpose: schedule, cancel, advance and cascade all work on the
 * same intrusive lists and occupancy bitmaps, and schedule's fast path is sized for JSC's
 * inlining (see schedule): moving its steps behind module boundaries would cost the hot path.
 * About half the file is these comments.
 */
import { TimerRangeError, TimerReentrancyError, TimerTypeError } from "./errors.ts";

const SLOT_BITS = 6;
const SLOTS = 1 << SLOT_BITS; // 64
const LEVELS = 6;
const TOP = LEVELS - 1;
const WHEEL_LISTS = LEVELS * SLOTS;
/** List of timers due at or before the wheel's current time: fired by the next advance(). */
const DUE = WHEEL_LISTS;
/** List of timers collected by the advance() in progress, waiting for their callback. */
const FIRING = WHEEL_LISTS + 1;
const LIST_COUNT = WHEEL_LISTS + 2;
/** prev[id] of a timer that is not pending. */
const NOT_PENDING = -1;
const NIL = -1;
/** Below this, ticks fit an int32 and the level can be found with xor + clz32, as tokio does. */
const INT_TICK_LIMIT = 2 ** 31;

/** 64^l for l = 0..LEVELS: the span in ticks of one slot of level l (and of level l - 1). */
const SPAN: Float64Array = (() => {
  const a = new Float64Array(LEVELS + 1);
  for (let l = 0; l <= LEVELS; l++) a[l] = 2 ** (SLOT_BITS * l);
  return a;
})();
const TOP_SLOT_SPAN = 2 ** (SLOT_BITS * TOP);

const MAX_CAPACITY = 2 ** 24;
const MAX_TICK_MS = 2 ** 31 - 1;
/** Largest time accepted for startMs and advance(): far past any clock, and keeps sums exact. */
const MAX_TIME_MS = 2 ** 52;
/** Largest delay accepted by schedule(): with MAX_TIME_MS the deadline stays below 2^53. */
const MAX_DELAY_MS = 2 ** 52;

/** Options of a TimingWheel. */
export interface TimingWheelOptions {
  /** Number of timer ids: ids are integers in [0, capacity). 1 ..= 2^24. Memory is 16 bytes per id, allocated up front. */
  capacity: number;
  /** Resolution in ms: an integer in [1, 2^31 - 1]. Timers fire at most one tick late. Default 10. */
  tickMs?: number;
  /** The wheel's clock at construction, in ms (e.g. performance.now()): 0 ..= 2^52. Default 0. */
  startMs?: number;
}

/** Index of the lowest set bit of a non-zero int32. */
function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/**
 * Index of the first set bit at or after `from` (0..64) in the 64-bit map lo|hi<<32, or -1.
 * Shifts stay below 32 because JS takes shift counts mod 32.
 */
function firstSetFrom(lo: number, hi: number, from: number): number {
  if (from < 32) {
    const m = lo & (-1 << from);
    if (m !== 0) return lowestBit(m);
    return hi !== 0 ? 32 + lowestBit(hi) : -1;
  }
  if (from < 64) {
    const m = hi & (-1 << (from - 32));
    if (m !== 0) return 32 + lowestBit(m);
  }
  return -1;
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" || value == null) {
    return String(value);
  }
  return typeof value;
}

/**
 * A hierarchical timing wheel for up to `capacity` timers, one per id.
 *
 * Contract:
 * - schedule() and cancel() are O(1); advance() costs O(timers fired + timers cascaded +
 *   LEVELS per occupied slot visited), however far the clock jumps.
 * - advance(now) never fires a timer whose deadline is after `now`, and fires every timer
 *   whose deadline is at or before `now - tickMs`. A timer fires on the first tick boundary
 *   (startMs + k * tickMs) at or after its deadline; one scheduled with delay 0 fires on the
 *   very next advance() call, whatever its time.
 * - No allocation after construction: no object, closure or array per timer or per call.
 * - A callback may schedule or cancel any id, itself included. A timer scheduled from a
 *   callback never fires in the same advance() call (even with delay 0): it fires on a later
 *   call, so advance() always terminates.
 * - Every bad argument throws (TimerRangeError, TimerTypeError) before anything changes.
 *
 * Times are exact for integer milliseconds (and any value a double holds exactly). With
 * fractional times such as performance.now() "never early" still holds exactly (a timer is
 * fired only if its stored deadline <= nowMs); "one tick late" may stretch by a rounding error.
 */
export class TimingWheel {
  /** Largest capacity accepted: 2^24 ids. */
  static readonly MAX_CAPACITY = MAX_CAPACITY;
  /** Largest tickMs accepted. */
  static readonly MAX_TICK_MS = MAX_TICK_MS;
  /** Largest startMs, and largest time advance() accepts. */
  static readonly MAX_TIME_MS = MAX_TIME_MS;
  /** Largest delayMs schedule() accepts (about 142,000 years). */
  static readonly MAX_DELAY_MS = MAX_DELAY_MS;
  /** Number of levels of 64 slots. */
  static readonly LEVELS = LEVELS;
  /** Slots per level. */
  static readonly SLOTS = SLOTS;
  /** Bytes of typed-array storage per timer id: next (4) + prev (4) + deadline (8). */
  static readonly BYTES_PER_TIMER = 16;

  /** Ids are integers in [0, capacity). */
  readonly capacity: number;
  /** Resolution in ms. */
  readonly tickMs: number;
  /** The clock reading at construction; ticks are counted from it. */
  readonly startMs: number;

  private readonly next: Int32Array;
  /** >= 0: previous id; NOT_PENDING; <= -2: head of list (-2 - prev). */
  private readonly prev: Int32Array;
  private readonly deadline: Float64Array;
  private readonly heads: Int32Array;
  /** Occupancy of the wheel's slots: words 2l and 2l + 1 are level l's slots 0-31 and 32-63. */
  private readonly bits: Int32Array;
  private now: number;
  /** floor((now - startMs) / tickMs), except while advance() walks: the tick being processed. */
  private cur = 0;
  private pending = 0;
  private advancing = false;

  /**
   * Creates an empty wheel whose clock reads `startMs`; the clock moves only through
   * advance(). Allocates 16 * capacity bytes. Throws TimerRangeError (ERR_TIMER_OPTIONS)
   * naming the option and its range, TimerTypeError if options is not an object.
   */
  constructor(options: TimingWheelOptions) {
    if (typeof options !== "object" || options === null) {
      throw new TimerTypeError(
        "options",
        `new TimingWheel(options): options must be an object like { capacity: 1024, tickMs: 10, startMs: 0 }, got ${describe(options)}`,
      );
    }
    const { capacity, tickMs = 10, startMs = 0 } = options;
    if (typeof capacity !== "number" || !Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw new TimerRangeError(
        "ERR_TIMER_OPTIONS",
        "capacity",
        `new TimingWheel: capacity must be an integer in [1, ${MAX_CAPACITY}] (the number of timer ids), got ${describe(capacity)}`,
      );
    }
    if (typeof tickMs !== "number" || !Number.isInteger(tickMs) || tickMs < 1 || tickMs > MAX_TICK_MS) {
      throw new TimerRangeError(
        "ERR_TIMER_OPTIONS",
        "tickMs",
        `new TimingWheel: tickMs must be an integer number of milliseconds in [1, ${MAX_TICK_MS}], got ${describe(tickMs)}`,
      );
    }
    if (typeof startMs !== "number" || !(startMs >= 0 && startMs <= MAX_TIME_MS)) {
      throw new TimerRangeError(
        "ERR_TIMER_OPTIONS",
        "startMs",
        `new TimingWheel: startMs must be a finite number of milliseconds in [0, 2^52], got ${describe(startMs)}`,
      );
    }
    this.capacity = capacity;
    this.tickMs = tickMs;
    this.startMs = startMs;
    this.now = startMs;
    this.next = new Int32Array(capacity).fill(NIL);
    this.prev = new Int32Array(capacity).fill(NOT_PENDING);
    this.deadline = new Float64Array(capacity);
    this.heads = new Int32Array(LIST_COUNT).fill(NIL);
    this.bits = new Int32Array((LIST_COUNT + 31) >> 5);
  }

  /** The wheel's current time in ms: startMs, then the nowMs of the last advance(). */
  get nowMs(): number {
    return this.now;
  }

  /** Number of pending timers (including those due but not yet fired). */
  get size(): number {
    return this.pending;
  }

  /**
   * Arms timer `id` to fire `delayMs` after the wheel's current time (nowMs). If `id` is
   * pending it is moved: one timer per id. Delay 0 makes the timer due: the next advance()
   * fires it, even from inside a callback of the advance() in progress (it is not fired by
   * that one). O(1), allocates nothing. Throws TimerRangeError for an id outside
   * [0, capacity) or a delay outside [0, 2^52], before changing anything.
   */
  schedule(id: number, delayMs: number): void {
    // JSC's FTL inlines a callee only under a bytecode budget (about 30 instructions) and
    // only a few calls deep, so the fast path is cut into schedule -> arm -> place -> push,
    // each under the budget, with the rare cases in armSlow(). Then a caller's loop inlines
    // it whole: schedule and re-arm cost ~6 ns in bench/timers.bench.ts instead of ~14 when
    // one call was left standing (a fifth level, or one function over the budget, does it).
    if (!((id >>> 0) === id && id < this.capacity && typeof delayMs === "number" && delayMs >= 0 && delayMs <= MAX_DELAY_MS)) {
      this.rejectSchedule(id, delayMs);
    }
    this.arm(id, delayMs);
  }

  /**
   * Disarms timer `id`. Returns true when it was pending (it will not fire), false when it
   * was not. O(1), allocates nothing. Throws TimerRangeError for an id outside [0, capacity).
   */
  cancel(id: number): boolean {
    if ((id >>> 0) !== id || id >= this.capacity) throw this.badId("cancel", id);
    if (this.prev[id] === NOT_PENDING) return false;
    this.unlink(id);
    this.pending--;
    return true;
  }

  /**
   * Returns true when timer `id` is armed and has not fired yet. Inside its own callback a
   * timer is no longer pending (unless the callback re-armed it). Throws TimerRangeError for
   * an id outside [0, capacity).
   */
  isPending(id: number): boolean {
    if ((id >>> 0) !== id || id >= this.capacity) throw this.badId("isPending", id);
    return this.prev[id] !== NOT_PENDING;
  }

  /**
   * Moves the wheel's clock to `nowMs` and calls `onExpire(id)` once for every timer that
   * expires: each timer due at an earlier tick boundary up to nowMs, plus every timer that
   * was already due (delay 0) before this call. Returns the number of callbacks made.
   *
   * Due timers are fired in tick order, one slot's batch at a time; each stops being pending
   * just before its callback. While callbacks run, nowMs reads the new time, and a callback
   * may schedule or cancel any id: cancelling (or re-arming) a due timer that has not fired
   * yet keeps it from firing; a timer scheduled by a callback fires in a later call. If a
   * callback throws, the error propagates and the due timers not yet fired stay pending and
   * fire on the next advance().
   *
   * Throws TimerRangeError (ERR_TIMER_TIME) if nowMs is before the current time, not finite
   * or past 2^52, TimerTypeError if onExpire is not a function, TimerReentrancyError if
   * called from one of this wheel's callbacks — each before changing anything.
   */
  advance(nowMs: number, onExpire: (id: number) => void): number {
    if (typeof nowMs !== "number" || !(nowMs >= this.now && nowMs <= MAX_TIME_MS)) throw this.badNow(nowMs);
    if (typeof onExpire !== "function") {
      throw new TimerTypeError(
        "onExpire",
        `TimingWheel.advance: onExpire must be a function (id: number) => void, got ${describe(onExpire)}`,
      );
    }
    if (this.advancing) throw new TimerReentrancyError();
    let target = Math.floor((nowMs - this.startMs) / this.tickMs);
    if (target < this.cur) target = this.cur;
    this.now = nowMs;
    this.advancing = true;
    const heads = this.heads;
    const next = this.next;
    const prev = this.prev;
    let fired = 0;
    try {
      this.takeDue();
      // Fired one slot's batch at a time rather than all collected first: a batch is still
      // in cache when it is fired (collecting 1M timers first, then walking them again, cost
      // a second cache miss per timer). Callbacks see cur at the start of the slot being
      // fired, a real position of the wheel, so what they schedule is filed correctly, and
      // it is after nowMs, so this call never fires it.
      let more = target > this.cur;
      for (;;) {
        let id: number;
        while ((id = heads[FIRING]!) !== NIL) {
          const n = next[id]!;
          heads[FIRING] = n;
          if (n !== NIL) prev[n] = -2 - FIRING;
          prev[id] = NOT_PENDING;
          this.pending--;
          fired++;
          onExpire(id);
        }
        if (!more) break;
        more = this.collect(target, nowMs);
      }
      this.cur = target;
      return fired;
    } finally {
      if (heads[FIRING] !== NIL) this.requeueFiring();
      this.advancing = false;
    }
  }

  /**
   * Returns the ms from nowMs until advance() would next fire a timer: Infinity when none is
   * pending; 0 when a timer is already due (scheduled with delay 0, or left by a callback
   * that threw), so advance(nowMs) fires it. Otherwise a value > 0 that never overshoots:
   * advancing to less than nowMs + nextDueMs() fires nothing. It is exact (advancing to
   * nowMs + nextDueMs() fires the earliest timer, at its deadline rounded up to a tick) when
   * that timer is in the lowest level, within 64 ticks; otherwise it is the start of the
   * higher-level slot that holds it, which advance() cascades, so a driver that sleeps until
   * nextDueMs() and asks again wakes at most LEVELS - 1 times early per timer. O(LEVELS).
   */
  nextDueMs(): number {
    if (this.pending === 0) return Infinity;
    if (this.heads[DUE] !== NIL || this.heads[FIRING] !== NIL) return 0;
    const list = this.earliestList();
    if (list < 0) return Infinity; // unreachable while the counts are consistent
    const ms = this.startMs + this.earliestStart * this.tickMs - this.now;
    return ms > 0 ? ms : 0;
  }

  // ---------------------------------------------------------------------------------------

  /** Tick at which the slot returned by the last earliestList() starts. */
  private earliestStart = 0;

  /**
   * The list index of the earliest occupied wheel slot, or -1 if the wheel (not counting
   * DUE and FIRING) is empty; sets earliestStart. Levels are searched from the bottom: every
   * timer of level l is due before every occupied slot of level l + 1 starts.
   */
  private earliestList(): number {
    const bits = this.bits;
    const cur = this.cur;
    for (let level = 0; level < LEVELS; level++) {
      const lo = bits[2 * level]!;
      const hi = bits[2 * level + 1]!;
      if ((lo | hi) === 0) continue;
      const span = SPAN[level]!;
      const block = Math.floor(cur / span);
      const pos = block % SLOTS;
      // Search after the current slot, cyclically: only the top level really wraps.
      let slot = firstSetFrom(lo, hi, pos + 1);
      if (slot < 0) slot = firstSetFrom(lo, hi, 0);
      // 1..64 slots ahead; 64 would mean a timer filed in the current slot, a full turn away.
      const ahead = ((slot - pos - 1) & (SLOTS - 1)) + 1;
      this.earliestStart = (block + ahead) * span;
      return level * SLOTS + slot;
    }
    return -1;
  }

  /**
   * Walks the wheel from cur towards `target` ticks, one occupied slot at a time, cascading
   * timers not yet due, until a slot yields expired timers: those go to the (empty) FIRING
   * list and it returns true. Returns false when no occupied slot is left up to target.
   */
  private collect(target: number, nowMs: number): boolean {
    let tail = NIL;
    const heads = this.heads;
    const next = this.next;
    const prev = this.prev;
    const deadline = this.deadline;
    const bits = this.bits;
    const startMs = this.startMs;
    const tickMs = this.tickMs;
    for (;;) {
      const list = this.earliestList();
      if (list < 0) break;
      const start = this.earliestStart;
      if (start > target) break;
      this.cur = start;
      let id = heads[list]!;
      heads[list] = NIL;
      bits[list >> 5]! &= ~(1 << (list & 31));
      while (id !== NIL) {
        const n = next[id]!;
        const d = deadline[id]!;
        let tick = Math.ceil((d - startMs) / tickMs);
        if (tick <= start) {
          if (d <= nowMs) {
            if (tail === NIL) {
              heads[FIRING] = id;
              prev[id] = -2 - FIRING;
            } else {
              next[tail] = id;
              prev[id] = tail;
            }
            next[id] = NIL;
            tail = id;
            id = n;
            continue;
          }
          // Only reachable through rounding of fractional times: the deadline is after
          // nowMs, so its true tick is after target.
          tick = target + 1;
        }
        this.file(id, tick);
        id = n;
      }
      if (tail !== NIL) return true;
    }
    return false;
  }

  /** Moves the DUE list to the (empty) FIRING list; returns its last id, or NIL. */
  private takeDue(): number {
    const heads = this.heads;
    const first = heads[DUE]!;
    if (first === NIL) return NIL;
    heads[DUE] = NIL;
    heads[FIRING] = first;
    this.prev[first] = -2 - FIRING;
    const next = this.next;
    let tail = first;
    let n: number;
    while ((n = next[tail]!) !== NIL) tail = n;
    return tail;
  }

  /** After a callback threw: puts the unfired FIRING timers in front of the DUE list. */
  private requeueFiring(): void {
    const heads = this.heads;
    const next = this.next;
    const prev = this.prev;
    const first = heads[FIRING]!;
    heads[FIRING] = NIL;
    let tail = first;
    let n: number;
    while ((n = next[tail]!) !== NIL) tail = n;
    const due = heads[DUE]!;
    next[tail] = due;
    if (due !== NIL) prev[due] = tail;
    heads[DUE] = first;
    prev[first] = -2 - DUE;
  }

  /** schedule() after its checks: (re)arms `id` to fire `delayMs` after now. */
  private arm(id: number, delayMs: number): void {
    if (this.prev[id] !== NOT_PENDING) this.unlink(id);
    else this.pending++;
    const deadline = this.now + delayMs;
    this.deadline[id] = deadline;
    this.place(id, deadline);
  }

  /** Files pending timer `id` (not in any list) whose deadline was just set to `deadline`. */
  private place(id: number, deadline: number): void {
    const cur = this.cur;
    const tick = Math.ceil((deadline - this.startMs) / this.tickMs);
    // The common case: due at a later tick below 2^31 (everything else goes to armSlow).
    if (!(deadline > this.now && tick > cur && tick < INT_TICK_LIMIT)) return this.armSlow(id, deadline, tick);
    // Below 2^31 the level is the highest differing bit of tick ^ cur, / 6, as tokio does;
    // (b * 43) >> 8 is floor(b / 6) for every b in 0..31, without a division.
    const level = ((31 - Math.clz32((tick ^ cur) | (SLOTS - 1))) * 43) >> 8;
    this.push((level << SLOT_BITS) + ((tick >>> (level * SLOT_BITS)) & (SLOTS - 1)), id);
  }

  /** place() for a timer already due, one past 2^31 ticks, or a tick rounded down to cur. */
  private armSlow(id: number, deadline: number, tick: number): void {
    if (deadline <= this.now) {
      this.push(DUE, id);
      return;
    }
    // deadline > now means tick > cur; this guards only against rounding of fractional times.
    if (tick <= this.cur) tick = this.cur + 1;
    this.file(id, tick);
  }

  /** Throws the error for a bad schedule() argument (kept out of schedule() so it stays small). */
  private rejectSchedule(id: unknown, delayMs: unknown): never {
    if (typeof id !== "number" || (id >>> 0) !== id || id >= this.capacity) throw this.badId("schedule", id);
    throw badDelay(delayMs);
  }

  /** Files pending timer `id` (not in any list) under deadline tick `tick` > cur. */
  private file(id: number, tick: number): void {
    const cur = this.cur;
    let list: number;
    if (tick < INT_TICK_LIMIT) {
      // Both below 2^31 (cur < tick): the highest differing bit b gives the level, b / 6;
      // (b * 43) >> 8 is floor(b / 6) for every b in 0..31, without a division.
      const level = ((31 - Math.clz32((tick ^ cur) | (SLOTS - 1))) * 43) >> 8;
      list = level * SLOTS + ((tick >>> (level * SLOT_BITS)) & (SLOTS - 1));
    } else {
      list = this.listFor(tick, cur);
    }
    this.push(list, id);
  }

  /** The slot for `tick` > `cur` in double arithmetic, exact for integers below 2^53. */
  private listFor(tick: number, cur: number): number {
    for (let level = 0; level < TOP; level++) {
      const above = SPAN[level + 1]!;
      if (Math.floor(tick / above) === Math.floor(cur / above)) {
        return level * SLOTS + (Math.floor(tick / SPAN[level]!) % SLOTS);
      }
    }
    const curBlock = Math.floor(cur / TOP_SLOT_SPAN);
    let block = Math.floor(tick / TOP_SLOT_SPAN);
    // Past the horizon: park in the farthest top slot; it is re-filed when that slot comes round.
    if (block - curBlock >= SLOTS) block = curBlock + SLOTS - 1;
    return TOP * SLOTS + (block % SLOTS);
  }

  /** Pushes `id` at the front of `list`, marking the slot occupied. */
  private push(list: number, id: number): void {
    const heads = this.heads;
    const h = heads[list]!;
    this.next[id] = h;
    this.prev[id] = -2 - list;
    if (h !== NIL) this.prev[h] = id;
    else this.bits[list >> 5]! |= 1 << (list & 31);
    heads[list] = id;
  }

  /** Removes pending `id` from its list, clearing the slot's bit if it empties; marks it not pending. */
  private unlink(id: number): void {
    const next = this.next;
    const prev = this.prev;
    const p = prev[id]!;
    const n = next[id]!;
    if (p >= 0) {
      next[p] = n;
      if (n !== NIL) prev[n] = p;
    } else {
      const list = -2 - p;
      this.heads[list] = n;
      if (n !== NIL) prev[n] = p;
      else this.bits[list >> 5]! &= ~(1 << (list & 31));
    }
    prev[id] = NOT_PENDING;
  }

  private badId(op: string, id: unknown): TimerRangeError {
    return new TimerRangeError(
      "ERR_TIMER_ID",
      "id",
      `TimingWheel.${op}: id must be an integer in [0, ${this.capacity - 1}] (capacity ${this.capacity}), got ${describe(id)}`,
    );
  }

  private badNow(nowMs: unknown): TimerRangeError {
    return new TimerRangeError(
      "ERR_TIMER_TIME",
      "nowMs",
      `TimingWheel.advance: nowMs must be a number in [${this.now}, 2^52] (the wheel's current time or later; ` +
        `the clock never goes back), got ${describe(nowMs)}`,
    );
  }
}

function badDelay(delayMs: unknown): TimerRangeError {
  return new TimerRangeError(
    "ERR_TIMER_DELAY",
    "delayMs",
    `TimingWheel.schedule: delayMs must be a number of milliseconds in [0, 2^52], got ${describe(delayMs)}`,
  );
}
