/**
 * Key expiry on one TimingWheel: each key with a deadline holds a numeric id from a free
 * list; the id indexes the deadline and the key, and is the wheel's timer id. One driver
 * timer per store sleeps until the wheel's next due time.
 *
 * The wheel may fire up to one tick late, so readers also check the deadline on access
 * (lazy expiry): a key is never visible after its deadline. The wheel never fires early, and
 * a timer whose deadline lies beyond the wheel's longest delay is re-filed when it fires.
 */
import { MyriadTypeError } from "../errors.ts";
import { TimingWheel } from "../timers/index.ts";

/** Longest delay handed to the wheel in one go; longer deadlines are re-filed on firing. */
const MAX_WHEEL_DELAY_MS = 2 ** 31 - 1;

/** Options of ExpiryIndex. */
export interface ExpiryIndexOptions {
  /** Wheel resolution in ms; expiry fires at most one tick after the deadline. Default 10. */
  tickMs?: number;
  /** Ids (keys with a deadline) provisioned at first; the index doubles when it runs out. Default 1024. */
  initialCapacity?: number;
  /** Most ids ever; add() returns -1 past it. Default and ceiling: TimingWheel.MAX_CAPACITY (2^24). */
  maxCapacity?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
  /** A key's deadline passed (called from the driver timer). */
  onExpire: (key: string) => void;
}

/** Deadlines of keys on one timing wheel: onExpire(key) runs at most one tick after a key's deadline, never before. */
export class ExpiryIndex {
  private wheel: TimingWheel;
  private capacity: number;
  private readonly maxCapacity: number;
  private readonly tickMs: number;
  private readonly now: () => number;
  private readonly onExpire: (key: string) => void;
  /** deadline[id]: absolute ms on the `now` clock. */
  private deadline: Float64Array;
  /** keyOf[id]: the key holding id, undefined for a free id. */
  private keyOf: (string | undefined)[];
  /** Free ids, a stack. */
  private free: Int32Array;
  private freeTop = 0;
  private used = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDueMs = Infinity;
  private closed = false;
  /** Ids expired by the wheel since creation. */
  expiredCount = 0;
  private readonly fireBound: (id: number) => void;
  private readonly tickBound: () => void;

  /** Throws MyriadTypeError (ERR_APP_OPTION) without an onExpire function; a bad tickMs is the wheel's TimerRangeError. */
  constructor(opts: ExpiryIndexOptions) {
    if (typeof opts !== "object" || opts === null || typeof opts.onExpire !== "function") {
      throw new MyriadTypeError("ERR_APP_OPTION", "new ExpiryIndex(options): options must be an object with an onExpire(key) function");
    }
    this.tickMs = opts.tickMs ?? 10;
    this.now = opts.now ?? (() => performance.now());
    this.onExpire = opts.onExpire;
    this.maxCapacity = Math.min(opts.maxCapacity ?? TimingWheel.MAX_CAPACITY, TimingWheel.MAX_CAPACITY);
    this.capacity = Math.max(1, Math.min(opts.initialCapacity ?? 1024, this.maxCapacity));
    this.wheel = new TimingWheel({ capacity: this.capacity, tickMs: this.tickMs, startMs: this.now() });
    this.deadline = new Float64Array(this.capacity);
    this.keyOf = new Array(this.capacity);
    this.free = new Int32Array(this.capacity);
    this.resetFree(0);
    this.fireBound = (id) => this.fire(id);
    this.tickBound = () => this.tick();
  }

  /** Ids in use (keys with a deadline). */
  get size(): number {
    return this.used;
  }

  /** The deadline of id (absolute ms on the clock). */
  deadlineOf(id: number): number {
    return this.deadline[id]!;
  }

  /** The clock's current time. */
  clock(): number {
    return this.now();
  }

  /**
   * Gives `key` an id expiring at deadlineMs (absolute, on the clock). Returns the id, or -1
   * when maxCapacity ids are in use. O(1) amortized; grows the wheel by doubling.
   */
  add(key: string, deadlineMs: number): number {
    if (this.freeTop === 0 && !this.grow()) return -1;
    const id = this.free[--this.freeTop]!;
    this.used++;
    this.keyOf[id] = key;
    this.arm(id, deadlineMs);
    return id;
  }

  /** Moves id's deadline. */
  update(id: number, deadlineMs: number): void {
    this.arm(id, deadlineMs);
  }

  /** Releases id (the key lost its deadline or was deleted). */
  remove(id: number): void {
    if (this.keyOf[id] === undefined) return;
    this.wheel.cancel(id);
    this.keyOf[id] = undefined;
    this.free[this.freeTop++] = id;
    this.used--;
    if (this.used === 0) this.disarm();
  }

  /** Releases every id. */
  clear(): void {
    this.wheel = new TimingWheel({ capacity: this.capacity, tickMs: this.tickMs, startMs: this.now() });
    this.keyOf = new Array(this.capacity);
    this.used = 0;
    this.resetFree(0);
    this.disarm();
  }

  /** Stops the driver timer for good. */
  close(): void {
    this.closed = true;
    this.disarm();
  }

  private resetFree(from: number): void {
    // Lowest ids on top so that a small store keeps to the start of the arrays.
    this.freeTop = 0;
    for (let id = this.capacity - 1; id >= from; id--) this.free[this.freeTop++] = id;
  }

  private grow(): boolean {
    if (this.capacity >= this.maxCapacity) return false;
    const old = this.capacity;
    const cap = Math.min(old * 2, this.maxCapacity);
    const oldWheel = this.wheel;
    const wheel = new TimingWheel({ capacity: cap, tickMs: this.tickMs, startMs: oldWheel.nowMs });
    for (let id = 0; id < old; id++) {
      if (this.keyOf[id] !== undefined && oldWheel.isPending(id)) {
        wheel.schedule(id, Math.min(Math.max(0, this.deadline[id]! - wheel.nowMs), MAX_WHEEL_DELAY_MS));
      }
    }
    const deadline = new Float64Array(cap);
    deadline.set(this.deadline);
    this.deadline = deadline;
    this.keyOf.length = cap;
    this.free = new Int32Array(cap);
    this.wheel = wheel;
    this.capacity = cap;
    // Every old id is in use (the free list was empty), so the free ids are exactly the new ones.
    this.resetFree(old);
    return true;
  }

  private arm(id: number, deadlineMs: number): void {
    this.deadline[id] = deadlineMs;
    const wheel = this.wheel;
    // Relative to the wheel's own clock (its last advance), so that it never fires early.
    const delay = Math.min(Math.max(0, deadlineMs - wheel.nowMs), MAX_WHEEL_DELAY_MS);
    wheel.schedule(id, delay);
    const due = wheel.nowMs + delay;
    if (due < this.timerDueMs - this.tickMs) this.armTimer(due);
  }

  private armTimer(dueMs: number): void {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDueMs = dueMs;
    const wait = Math.max(0, Math.min(dueMs - this.now(), MAX_WHEEL_DELAY_MS));
    this.timer = setTimeout(this.tickBound, Math.ceil(wait));
    // The server's socket keeps the process alive; a store alone should not.
    this.timer.unref?.();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDueMs = Infinity;
  }

  /**
   * Fires every deadline due by the clock's current time (the driver timer calls this;
   * tests with a fake clock may too) and re-arms the driver. Returns the ids expired.
   */
  runDue(): number {
    const before = this.expiredCount;
    this.wheel.advance(this.now(), this.fireBound);
    if (this.wheel.size > 0) {
      const next = this.wheel.nextDueMs();
      this.armTimer(this.wheel.nowMs + Math.max(next, this.tickMs));
    }
    return this.expiredCount - before;
  }

  private tick(): void {
    this.timer = undefined;
    this.timerDueMs = Infinity;
    if (this.closed) return;
    this.runDue();
  }

  private fire(id: number): void {
    const key = this.keyOf[id];
    if (key === undefined) return;
    const d = this.deadline[id]!;
    const now = this.wheel.nowMs;
    if (d > now) {
      // A deadline past the wheel's longest delay: file it again for the rest.
      this.wheel.schedule(id, Math.min(d - now, MAX_WHEEL_DELAY_MS));
      return;
    }
    this.remove(id);
    this.expiredCount++;
    this.onExpire(key);
  }
}
