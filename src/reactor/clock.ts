/**
 * The process-wide timer service of every server: ONE TimingWheel and ONE setTimeout that
 * sleeps until the wheel's next deadline. A server registers a range of wheel ids (one per
 * connection slot: id = base + slot) and gets onTimer(slot) calls when a slot's deadline
 * passes. Nothing here runs per read or per write: servers keep last-activity times in
 * their ConnTable and re-file a timer only when it fires early (see server.ts, onTimer).
 *
 * Why one wheel: a timer per socket (Node, uWS's 4 s sweep) costs memory per connection and
 * wake-ups per tick; the wheel costs a few typed-array entries per slot, and the driver
 * sleeps for as long as nothing is due.
 */
import { TimingWheel } from "../timers/index.ts";

/** What the clock needs from a server. */
export interface ClockClient {
  /** A slot's deadline passed (the wheel fires it at most one tick late, never early). */
  onTimer(slot: number): void;
  /** The wheel was replaced (more ids or a finer tick): schedule every pending deadline again. */
  refileAll(): void;
}

interface Range {
  base: number;
  size: number;
  tickMs: number;
  client: ClockClient;
}

/** Process-wide; see module comment. Servers use the one instance, `clock`. */
class ReactorClock {
  private wheel: TimingWheel | null = null;
  private ranges: Range[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** performance.now() at which the armed timer fires; Infinity when none is armed. */
  private armedAt = Infinity;
  private firing = false;
  private readonly fireBound = (): void => this.fire();
  private readonly expireBound = (id: number): void => this.expire(id);

  /** The tick of the current wheel (ms), 0 when no server is registered. */
  get tickMs(): number {
    return this.wheel === null ? 0 : this.currentTick;
  }
  private currentTick = 0;
  /** The current wheel's startMs: its tick boundaries are startMs + k * tickMs. */
  private startMs = 0;

  /** Wheel ids in use. */
  get capacity(): number {
    return this.wheelCapacity;
  }
  private wheelCapacity = 0;

  /**
   * Reserves `size` wheel ids for client at the given tick; returns the base id (the
   * client's slot s is id base + s). May rebuild the wheel (more ids, or a finer tick), in
   * which case every other client's refileAll() is called.
   */
  register(client: ClockClient, size: number, tickMs: number): number {
    // First fit among the gaps between ranges (kept sorted by base).
    let base = 0;
    let at = 0;
    for (; at < this.ranges.length; at++) {
      const r = this.ranges[at]!;
      if (r.base - base >= size) break;
      base = r.base + r.size;
    }
    this.ranges.splice(at, 0, { base, size, tickMs, client });
    const needed = base + size;
    const tick = Math.min(tickMs, this.wheel === null ? Infinity : this.currentTick);
    if (this.wheel === null || needed > this.wheelCapacity || tick < this.currentTick) {
      this.rebuild(Math.max(needed, this.wheelCapacity), tick, client);
    }
    return base;
  }

  /** Gives back client's ids (its pending timers must already be cancelled or stale). */
  unregister(client: ClockClient): void {
    const i = this.ranges.findIndex((r) => r.client === client);
    if (i < 0) return;
    const r = this.ranges[i]!;
    for (let id = r.base; id < r.base + r.size; id++) this.wheel!.cancel(id);
    this.ranges.splice(i, 1);
    if (this.ranges.length === 0) {
      // Nobody left: give the wheel's memory back and stop the driver.
      this.wheel = null;
      this.wheelCapacity = 0;
      this.currentTick = 0;
      this.disarm();
    }
  }

  /**
   * Arms id to fire delayMs after nowMs (performance.now() of the caller). The wheel's own
   * clock moves only when the driver wakes, so the delay is taken from the wheel's time.
   * Re-arms the driver only when this deadline is earlier than the one it sleeps until.
   */
  schedule(id: number, delayMs: number, nowMs: number): void {
    const wheel = this.wheel!;
    const d = delayMs + (nowMs - wheel.nowMs);
    wheel.schedule(id, d > 0 ? d : 0);
    if (this.firing) return; // fire() arms once after advance()
    // The wheel fires on the first tick boundary at or after a deadline: sleep until then.
    const tick = this.currentTick;
    const due = this.startMs + Math.ceil((nowMs + delayMs - this.startMs) / tick) * tick;
    if (due < this.armedAt) this.arm(due, nowMs);
  }

  /** Disarms id; true when it was pending. */
  cancel(id: number): boolean {
    return this.wheel !== null && this.wheel.cancel(id);
  }


  private rebuild(capacity: number, tickMs: number, newcomer: ClockClient): void {
    const now = performance.now();
    this.wheel = new TimingWheel({ capacity, tickMs, startMs: now });
    this.startMs = now;
    this.wheelCapacity = capacity;
    this.currentTick = tickMs;
    this.disarm();
    for (const r of this.ranges) if (r.client !== newcomer) r.client.refileAll();
  }

  private arm(due: number, nowMs: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.armedAt = due;
    // ceil: setTimeout may wake a fraction of a ms early, and the wheel would fire nothing.
    this.timer = setTimeout(this.fireBound, Math.max(0, Math.ceil(due - nowMs)));
    // Pending timeouts alone must not keep the process alive (the listeners do that).
    (this.timer as { unref?: () => void }).unref?.();
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = Infinity;
  }

  private fire(): void {
    this.timer = null;
    this.armedAt = Infinity;
    const wheel = this.wheel;
    if (wheel === null) return;
    const now = performance.now();
    this.firing = true;
    try {
      wheel.advance(now, this.expireBound);
    } finally {
      this.firing = false;
    }
    if (this.wheel !== wheel) return; // rebuilt or dropped by a callback; it armed itself
    const next = wheel.nextDueMs();
    if (next !== Infinity) this.arm(now + Math.max(next, 1), now);
  }

  private expire(id: number): void {
    const ranges = this.ranges;
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]!;
      if (id >= r.base && id < r.base + r.size) {
        r.client.onTimer(id - r.base);
        return;
      }
    }
  }
}

/** The one clock of this process. */
export const clock: ReactorClock = new ReactorClock();
