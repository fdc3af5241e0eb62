/**
 * The callers waiting in Pool.acquire(): a FIFO with a deadline per waiter and the timers
 * that enforce them.
 *
 * Most waiters wait with the pool's own acquireTimeoutMs ("uniform" waiters): queued in
 * arrival order, their deadlines are in queue order too, so one timer armed for the oldest
 * expires them all, instead of a timer per waiter. Waiters with a per-call timeout, and those
 * taken out of the queue to validate a resource for them, get a timer of their own.
 */
import { type ListNode, WaiterList } from "./list.ts";

type Timer = ReturnType<typeof setTimeout>;

// new Promise(waiterExecutor) stores the resolvers on the waiter without a closure per call.
let execWaiter: Waiter<any>;
function waiterExecutor(resolve: (r: any) => void, reject: (e: Error) => void): void {
  execWaiter.resolve = resolve;
  execWaiter.reject = reject;
}

/** One acquire() call waiting for a resource: its promise, resolvers and deadline. */
export class Waiter<T> implements ListNode<Waiter<T>> {
  prev: Waiter<T> | null = null;
  next: Waiter<T> | null = null;
  queued = false;
  /** Answered (served, expired, aborted, refused): its timer and abort listener are gone. */
  settled = false;
  /** Expired by the queue's shared deadline timer (see the file comment). */
  uniform = false;
  timer: Timer | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  resolve!: (resource: T) => void;
  reject!: (err: Error) => void;
  /** What acquire() returns. */
  readonly promise: Promise<T>;
  /** startMs + timeoutMs (performance.now() clock). */
  readonly deadlineMs: number;
  constructor(
    readonly startMs: number,
    readonly timeoutMs: number,
    /** The acquiring stack, kept only with leakDetectionMs. */
    readonly stack: string | undefined,
  ) {
    this.deadlineMs = startMs + timeoutMs;
    execWaiter = this;
    this.promise = new Promise<T>(waiterExecutor);
  }

  /** Marks it answered: its timer and abort listener go. The caller resolves or rejects it. */
  settle(): void {
    this.settled = true;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.onAbort !== undefined) {
      this.signal?.removeEventListener("abort", this.onAbort);
      this.onAbort = undefined;
    }
  }
}

/** What the queue tells the pool: a waiter that expired or was aborted, already out of the queue and settled. */
interface WaiterEvents<T> {
  /** Its deadline passed: reject it with a timeout error. */
  expired(w: Waiter<T>): void;
  /** Its AbortSignal fired: reject it with the abort error. */
  aborted(w: Waiter<T>): void;
}

/** The FIFO of waiting acquire() calls with their deadline timers; see the file comment. */
export class WaiterQueue<T> {
  private readonly list = new WaiterList<Waiter<T>>();
  /** The one timer of the uniform waiters; may be armed for a deadline already served. */
  private deadlineTimer: Timer | undefined = undefined;
  /** Uniform waiters in the queue; the deadline timer keeps the process alive only while > 0. */
  private uniformQueued = 0;

  /** `uniformTimeoutMs`: the pool's acquireTimeoutMs, shared by the uniform waiters. */
  constructor(
    private readonly uniformTimeoutMs: number,
    private readonly events: WaiterEvents<T>,
  ) {}

  /** Waiters queued now. */
  get size(): number {
    return this.list.size;
  }

  /**
   * A new waiter with its deadline armed: a waiter that will be queued (`queued`) with the
   * pool's own timeout shares the deadline timer, any other gets its own. Infinity: none.
   */
  create(timeoutMs: number, signal: AbortSignal | undefined, stack: string | undefined, queued: boolean): Waiter<T> {
    const w = new Waiter<T>(performance.now(), timeoutMs, stack);
    if (timeoutMs !== Infinity) {
      if (queued && timeoutMs === this.uniformTimeoutMs) w.uniform = true;
      else w.timer = setTimeout(WaiterQueue.onWaiterTimeout, timeoutMs, this, w);
    }
    if (signal !== undefined) {
      w.signal = signal;
      w.onAbort = () => this.abort(w);
      signal.addEventListener("abort", w.onAbort, { once: true });
    }
    return w;
  }

  /** Appends `w` (from create(..., queued = true)) at the tail. */
  push(w: Waiter<T>): void {
    this.list.push(w);
    if (!w.uniform) return;
    if (this.deadlineTimer === undefined) {
      this.deadlineTimer = setTimeout(WaiterQueue.onDeadline, w.timeoutMs, this);
      this.uniformQueued++;
      return;
    }
    if (this.uniformQueued++ === 0) this.deadlineTimer.ref();
  }

  /** Puts back at the head a waiter that was taken out and has its own timer: served next. */
  unshift(w: Waiter<T>): void {
    this.list.unshift(w);
  }

  /** Takes the head waiter out of the queue (null when empty). */
  shift(): Waiter<T> | null {
    const w = this.list.shift();
    if (w !== null && w.uniform) this.uniformLeft();
    return w;
  }

  /**
   * Gives a waiter taken out of the queue a timer of its own for the rest of its wait: out
   * of the queue, the shared deadline timer cannot see it.
   */
  detach(w: Waiter<T>): void {
    if (!w.uniform) return;
    w.uniform = false;
    w.timer = setTimeout(WaiterQueue.onWaiterTimeout, Math.max(0, w.deadlineMs - performance.now()), this, w);
  }

  /** Stops the shared deadline timer (the pool is draining; it settles every waiter itself). */
  stop(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }

  /** Takes `w` out of the queue wherever it is; false when it was not queued. */
  private remove(w: Waiter<T>): boolean {
    if (!this.list.remove(w)) return false;
    if (w.uniform) this.uniformLeft();
    return true;
  }

  private uniformLeft(): void {
    // The armed timer stays (clearing and re-arming per waiter costs more than one late
    // wake-up); it just stops holding the process open.
    if (--this.uniformQueued === 0 && this.deadlineTimer !== undefined) this.deadlineTimer.unref();
  }

  private expire(w: Waiter<T>): void {
    w.timer = undefined;
    if (w.settled) return;
    this.remove(w);
    w.settle();
    this.events.expired(w);
  }

  private abort(w: Waiter<T>): void {
    if (w.settled) return;
    this.remove(w);
    w.settle();
    this.events.aborted(w);
  }

  /** The deadline timer fired: expire the due uniform waiters, re-arm for the next one. */
  private expireDue(): void {
    this.deadlineTimer = undefined;
    const now = performance.now();
    let w = this.list.peek();
    while (w !== null) {
      const next = w.next;
      if (w.uniform) {
        if (w.deadlineMs > now) break;
        this.expire(w);
      }
      w = next;
    }
    while (w !== null && !w.uniform) w = w.next;
    if (w !== null) {
      this.deadlineTimer = setTimeout(WaiterQueue.onDeadline, Math.max(0, w.deadlineMs - now), this);
    }
  }

  // Timer callbacks get the queue and the waiter as arguments: no closure per waiter.
  private static onWaiterTimeout<T>(queue: WaiterQueue<T>, w: Waiter<T>): void {
    queue.expire(w);
  }
  private static onDeadline<T>(queue: WaiterQueue<T>): void {
    queue.expireDue();
  }
}
