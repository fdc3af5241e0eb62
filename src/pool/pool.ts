/**
 * Pool<T>: many async tasks share a bounded set of long-lived resources (connections).
 *
 * It is a channel of connections: acquire() pops one (waiting FIFO when none is free),
 * release() pushes it back. Unlike a plain Channel it creates connections on demand up to
 * `max`, hands out idle ones LIFO (the warm ones stay warm, the cold ones age out and get
 * reaped), and it knows the ways connections and upstreams fail.
 *
 * The structure follows tarn.js: one state machine, and one pump (`pump()`) that every state
 * change calls — a release, a create that settles, a waiter that leaves, a reap, a backoff
 * timer. The pump hands idle connections to waiters, then starts creates for the demand that
 * is left (or one probe at a time while the upstream is failing).
 *
 * Failure handling, by design:
 * - acquire never waits forever unless asked (acquireTimeoutMs, default 10 s); its timeout
 *   error says why: ERR_POOL_EXHAUSTED (with counts) or ERR_POOL_UPSTREAM_FAILING (cause =
 *   the last create error);
 * - a failed create is retried after an exponential backoff with full jitter, one probe at a
 *   time, so a dead upstream sees ~1 connection attempt per createBackoffMaxMs, not a storm;
 *   after failFastAfterCreateErrors failures in a row the circuit opens and acquires that
 *   could only be served by a new connection fail at once; the first success closes it;
 * - a connection that is broken (isBroken, invalidate(), failed validate) is destroyed and
 *   replaced, never handed out; release() of a broken one replaces it;
 * - release twice, or of a foreign object, throws and leaves the counts alone.
 *
 * One file, past 500 lines, on purpose: the entries' states, the idle stack, the creates
 * and the pump are one state machine, and every method changes several of them at once
 * (tarn.js keeps its Pool whole for the same reason). What stands apart lives beside it:
 * the waiting callers and their deadlines (waiter-queue.ts), the error messages
 * (errors.ts), the options (options.ts).
 */
import { fullJitterDelayMs } from "./backoff.ts";
import {
  acquireRejectedError,
  acquireTimeoutError,
  badCallOptions,
  badWaitMs,
  CreateTimeoutError,
  errorText,
  misuseError,
  PoolOptionError,
  type RefusalCode,
} from "./errors.ts";
import { MyriadTypeError } from "../errors.ts";
import { Histogram, type HistogramSnapshot } from "./histogram.ts";
import { type PoolOptions, type ResolvedPoolOptions, resolvePoolOptions } from "./options.ts";
import { MAX_TIMER_MS, waitMs } from "./time.ts";
import { type Waiter, WaiterQueue } from "./waiter-queue.ts";

type Timer = ReturnType<typeof setTimeout>;

/** Pool counters and gauges: what stats() returns, what the admin server shows per pool. */
export interface PoolStats {
  /** Resources alive: idle + borrowed + being validated. */
  size: number;
  idle: number;
  borrowed: number;
  /** Callers queued in acquire(). */
  waiting: number;
  /** create() calls in flight. */
  pending: number;
  /** Successful creates. */
  created: number;
  destroyed: number;
  /** Successful acquires. */
  acquired: number;
  released: number;
  /** Acquires that hit their timeout. */
  timeouts: number;
  createErrors: number;
  /** Acquires refused at once: circuit open, queue full, aborted, pool closed. */
  rejected: number;
  /** Time from acquire() to getting a resource, for successful acquires. */
  acquireWaitMs: HistogramSnapshot;
}

/** Per-call acquire options. */
export interface AcquireOptions {
  /** Abandons the wait when aborted: acquire() rejects with ERR_POOL_ABORTED (cause = reason). */
  signal?: AbortSignal;
  /** Overrides acquireTimeoutMs for this call (ms >= 0; Infinity waits forever; 0 never waits). */
  timeoutMs?: number;
}

const IDLE = 0;
const BORROWED = 1;
const VALIDATING = 2;
const DESTROYED = 3;

class Entry<T> {
  state = IDLE;
  /** When it last became idle (performance.now()). */
  idleSinceMs = 0;
  /** Not yet lent: skips validation on its first borrow. */
  fresh = true;
  /** invalidate() was called: destroy instead of reuse. */
  invalid = false;
  /** Acquiring stack, kept only with leakDetectionMs. */
  stack: string | undefined = undefined;
  leakTimer: Timer | undefined = undefined;
  /** The waiter this entry is being validated for. */
  validatingFor: Waiter<T> | undefined = undefined;
  constructor(
    readonly resource: T,
    readonly expiresAtMs: number,
  ) {}
}

class CreateAttempt {
  done = false;
  timer: Timer | undefined = undefined;
  readonly controller = new AbortController();
  constructor(readonly n: number) {}
}

function unref(t: Timer): Timer {
  (t as { unref?: () => void }).unref?.();
  return t;
}

/** The PoolOptionError for bad acquire() options, or undefined. */
function checkAcquireOptions(options: AcquireOptions): PoolOptionError | undefined {
  const bad = badCallOptions(options, "acquire") ?? badWaitMs(options.timeoutMs, "acquire");
  if (bad !== undefined) return bad;
  const signal = options.signal as unknown;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    return new PoolOptionError("signal", `acquire signal must be an AbortSignal or omitted, got ${String(signal)}`);
  }
  return undefined;
}

/** A bounded pool of resources; see the file comment for the contract. */
export class Pool<T> {
  private readonly o: ResolvedPoolOptions<T>;
  private readonly entries = new Map<T, Entry<T>>();
  /** Idle entries; the top (end) is the most recently released: LIFO. */
  private readonly idle: Entry<T>[] = [];
  private readonly waiters: WaiterQueue<T>;
  private readonly attempts = new Set<CreateAttempt>();
  private readonly destroying = new Set<Promise<void>>();
  /** Destroyed resources, to tell a double release from a foreign one. */
  private readonly gone = new WeakSet<object>();
  /** Resources drain() destroyed while borrowed: their late release() is a no-op. */
  private readonly forced = new WeakSet<object>();
  private readonly hist = new Histogram();
  private borrowedCount = 0;
  private validatingCount = 0;
  private pendingCreates = 0;
  /** Consecutive create failures; 0 = healthy. */
  private createFailures = 0;
  private lastCreateError: unknown = undefined;
  private nextCreateAtMs = 0;
  private backoffTimer: Timer | undefined = undefined;
  private reapTimer: Timer | undefined = undefined;
  private pumping = false;
  private pumpAgain = false;
  private closing = false;
  private drainPromise: Promise<void> | undefined = undefined;
  private drainWake: (() => void) | undefined = undefined;
  private nCreated = 0;
  private nDestroyed = 0;
  private nAcquired = 0;
  private nReleased = 0;
  private nTimeouts = 0;
  private nCreateErrors = 0;
  private nRejected = 0;

  /**
   * Validates `options` (throws PoolOptionError naming a bad or unknown option) and starts
   * creating `min` resources on the next microtask.
   */
  constructor(options: PoolOptions<T>) {
    this.o = resolvePoolOptions(options);
    this.waiters = new WaiterQueue<T>(this.o.acquireTimeoutMs, {
      expired: (w) => {
        this.nTimeouts++;
        w.reject(this.timeoutError(performance.now() - w.startMs, w.timeoutMs));
      },
      aborted: (w) => {
        this.nRejected++;
        w.reject(this.rejectedError("ERR_POOL_ABORTED", w.signal?.reason));
      },
    });
    if (this.o.min > 0) queueMicrotask(() => this.pump());
  }

  /** The pool's name (option `name`). */
  get name(): string {
    return this.o.name;
  }
  /** True once drain() was called. */
  get closed(): boolean {
    return this.closing;
  }
  /** Callers queued in acquire() now (cheap; stats() has everything). */
  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * Resolves a resource, now borrowed by the caller, who must release() or destroy() it.
   * Order: an idle resource (most recently released first), else a new one if under `max`,
   * else wait FIFO. Rejects with AcquireTimeoutError after the timeout, AcquireRejectedError
   * when refused at once (circuit open, maxWaiting reached, aborted, pool closed), and
   * PoolOptionError for bad `options` (whatever the pool's state). Never throws.
   */
  acquire(options?: AcquireOptions): Promise<T> {
    let timeoutMs = this.o.acquireTimeoutMs;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      const bad = checkAcquireOptions(options);
      if (bad !== undefined) return Promise.reject(bad);
      if (options.timeoutMs !== undefined) timeoutMs = waitMs(options.timeoutMs);
      signal = options.signal;
    }
    if (this.closing) return this.refuse("ERR_POOL_CLOSED", undefined);
    if (signal?.aborted) return this.refuse("ERR_POOL_ABORTED", signal.reason);
    const stack = this.o.leakDetectionMs > 0 ? new Error("acquired here").stack : undefined;
    if (this.waiters.size === 0) {
      const e = this.takeIdle();
      if (e !== undefined) {
        if (!this.needsValidation(e)) {
          this.lend(e, stack);
          this.hist.recordZero();
          return Promise.resolve(e.resource);
        }
        const w = this.waiters.create(timeoutMs, signal, stack, false);
        this.startValidation(e, w);
        return w.promise;
      }
    }
    if (this.circuitOpen() && this.borrowedCount === 0 && this.validatingCount === 0) {
      return this.refuse("ERR_POOL_CIRCUIT_OPEN", this.lastCreateError);
    }
    if (this.waiters.size >= this.o.maxWaiting) return this.refuse("ERR_POOL_QUEUE_FULL", undefined);
    if (timeoutMs === 0) {
      this.nTimeouts++;
      return Promise.reject(this.timeoutError(0, 0));
    }
    const w = this.waiters.create(timeoutMs, signal, stack, true);
    this.waiters.push(w);
    this.pump();
    return w.promise;
  }

  /**
   * Borrows an idle resource without waiting: the resource, or undefined when none is idle
   * (or the next idle one needs async validation, or callers are queued). Never creates.
   */
  tryAcquire(): T | undefined {
    if (this.closing || this.waiters.size > 0) return undefined;
    const e = this.takeIdle();
    if (e === undefined) return undefined;
    if (this.needsValidation(e)) {
      this.idle.push(e);
      return undefined;
    }
    this.lend(e, this.o.leakDetectionMs > 0 ? new Error("acquired here").stack : undefined);
    this.hist.recordZero();
    return e.resource;
  }

  /**
   * Returns a borrowed resource. A broken (isBroken / invalidate()), expired or
   * drained-pool resource is destroyed and replaced; otherwise it goes idle or straight to
   * the oldest waiter. Throws PoolReleaseError on a double or foreign release (counts
   * untouched); a resource that drain() force-closed is ignored.
   */
  release(resource: T): void {
    const e = this.entries.get(resource);
    if (e === undefined || e.state !== BORROWED) {
      this.misuse(resource, e, "release");
      return;
    }
    this.nReleased++;
    this.borrowedCount--;
    if (e.leakTimer !== undefined) clearTimeout(e.leakTimer);
    const now = performance.now();
    if (this.closing || !this.isUsable(e) || now >= e.expiresAtMs) {
      this.destroyEntry(e);
    } else {
      e.state = IDLE;
      e.idleSinceMs = now;
      this.idle.push(e);
    }
    this.pump();
  }

  /**
   * Removes a borrowed or idle resource from the pool and closes it (destroy hook); the pool
   * creates a replacement if callers wait or it is below `min`. Resolves once the destroy
   * hook settled; rejects with PoolReleaseError on misuse (as release() throws it), counts
   * untouched.
   */
  destroy(resource: T): Promise<void> {
    const e = this.entries.get(resource);
    if (e === undefined || (e.state !== BORROWED && e.state !== IDLE)) {
      try {
        this.misuse(resource, e, "destroy");
      } catch (err) {
        return Promise.reject(err);
      }
      return Promise.resolve();
    }
    if (e.state === BORROWED) {
      this.borrowedCount--;
    } else {
      this.idle.splice(this.idle.indexOf(e), 1);
    }
    const p = this.destroyEntry(e);
    this.pump();
    return p;
  }

  /**
   * Marks a resource as dead (its socket closed): an idle one is destroyed now, a borrowed
   * one at release. Returns false when the pool does not hold it (already gone). Never throws:
   * meant for close/error callbacks that may race with the pool.
   */
  invalidate(resource: T): boolean {
    const e = this.entries.get(resource);
    if (e === undefined) return false;
    e.invalid = true;
    if (e.state === IDLE) {
      this.idle.splice(this.idle.indexOf(e), 1);
      this.destroyEntry(e);
      this.pump();
    }
    return true;
  }

  /**
   * Runs `fn` with a borrowed resource and releases it afterwards, also when `fn` throws or
   * rejects (a resource that turned broken is replaced). Resolves/rejects with fn's outcome
   * (fn's own errors pass through as they are); rejects like acquire() when no resource is
   * had, with MyriadTypeError (ERR_POOL_OPTION) when fn is not a function. fn must not
   * release or destroy the resource itself (that rejects with PoolReleaseError).
   */
  async use<R>(fn: (resource: T) => R | Promise<R>, options?: AcquireOptions): Promise<R> {
    if (typeof fn !== "function") {
      throw new MyriadTypeError("ERR_POOL_OPTION", `pool "${this.o.name}": use(fn) needs a function (resource) => result, got ${typeof fn}`);
    }
    const resource = await this.acquire(options);
    try {
      return await fn(resource);
    } finally {
      this.release(resource);
    }
  }

  /**
   * Shuts the pool: new acquires reject (ERR_POOL_CLOSED), queued callers reject now, creates
   * in flight are aborted, idle resources are destroyed; borrowed ones are destroyed as they
   * come back, and those still out after `timeoutMs` (default 10_000) are destroyed anyway.
   * Resolves when every destroy hook settled (or the deadline passed). Idempotent. Rejects
   * with PoolOptionError for bad `options` (also once draining), and does not start then.
   */
  drain(options?: { timeoutMs?: number }): Promise<void> {
    const bad = badCallOptions(options, `pool "${this.o.name}": drain`) ?? badWaitMs(options?.timeoutMs, `pool "${this.o.name}": drain`);
    if (bad !== undefined) return Promise.reject(bad);
    if (this.drainPromise !== undefined) return this.drainPromise;
    const timeoutMs = Math.min(options?.timeoutMs ?? 10_000, MAX_TIMER_MS);
    this.closing = true;
    if (this.backoffTimer !== undefined) clearTimeout(this.backoffTimer);
    if (this.reapTimer !== undefined) clearTimeout(this.reapTimer);
    this.backoffTimer = this.reapTimer = undefined;
    this.waiters.stop();
    for (let w = this.waiters.shift(); w !== null; w = this.waiters.shift()) {
      w.settle();
      this.nRejected++;
      w.reject(this.closedError());
    }
    for (const a of this.attempts) {
      a.done = true;
      if (a.timer !== undefined) clearTimeout(a.timer);
      this.pendingCreates--;
      a.controller.abort(this.closedError());
    }
    this.attempts.clear();
    for (const e of this.idle) this.destroyEntry(e);
    this.idle.length = 0;
    this.drainPromise = this.finishDrain(timeoutMs);
    return this.drainPromise;
  }

  /** A snapshot of the counters and gauges. */
  stats(): PoolStats {
    return {
      size: this.entries.size,
      idle: this.idle.length,
      borrowed: this.borrowedCount,
      waiting: this.waiters.size,
      pending: this.pendingCreates,
      created: this.nCreated,
      destroyed: this.nDestroyed,
      acquired: this.nAcquired,
      released: this.nReleased,
      timeouts: this.nTimeouts,
      createErrors: this.nCreateErrors,
      rejected: this.nRejected,
      acquireWaitMs: this.hist.snapshot(),
    };
  }

  // ---------------------------------------------------------------- the state machine

  /** Every state change ends here: serve waiters from idle, then create for what is left. */
  private pump(): void {
    // A user hook (create, isBroken, validate) may call back into the pool synchronously.
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.pumpOnce();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    const waiters = this.waiters;
    const idle = this.idle;
    while (waiters.size > 0 && idle.length > 0) {
      const e = idle.pop() as Entry<T>;
      if (!this.isUsable(e)) {
        this.destroyEntry(e);
        continue;
      }
      const w = this.waiters.shift() as Waiter<T>;
      if (this.needsValidation(e)) this.startValidation(e, w);
      else this.serve(e, w);
    }
    if (this.closing) return;
    const size = this.entries.size;
    const room = this.o.max - size - this.pendingCreates;
    if (room > 0) {
      const demand = Math.max(waiters.size - this.pendingCreates, this.o.min - size - this.pendingCreates);
      if (this.createFailures === 0) {
        for (let n = Math.min(room, demand); n > 0; n--) this.startCreate();
      } else if (this.pendingCreates === 0 && (demand > 0 || this.circuitOpen())) {
        // The upstream is failing: one probe at a time, after a full-jitter backoff. With the
        // circuit open nobody waits (acquires fail fast), so probe anyway to notice recovery.
        const waitMs = this.nextCreateAtMs - performance.now();
        if (waitMs <= 0) this.startCreate();
        else if (this.backoffTimer === undefined) {
          this.backoffTimer = unref(setTimeout(Pool.onBackoff, waitMs, this));
        }
      }
    }
    if (idle.length > 0 && this.reapTimer === undefined && this.reapNeeded()) {
      this.reapTimer = unref(setTimeout(Pool.onReap, this.o.reapIntervalMs, this));
    }
  }

  /** Pops idle entries (LIFO) until a usable one; broken ones are destroyed on the way. */
  private takeIdle(): Entry<T> | undefined {
    const idle = this.idle;
    let dropped = false;
    let found: Entry<T> | undefined;
    while (idle.length > 0) {
      const e = idle.pop() as Entry<T>;
      if (this.isUsable(e)) {
        found = e;
        break;
      }
      this.destroyEntry(e);
      dropped = true;
    }
    if (dropped) this.pump();
    return found;
  }

  private isUsable(e: Entry<T>): boolean {
    if (e.invalid) return false;
    const isBroken = this.o.isBroken;
    if (isBroken === undefined) return true;
    try {
      return !isBroken(e.resource);
    } catch {
      return false;
    }
  }

  private needsValidation(e: Entry<T>): boolean {
    return (
      this.o.validate !== undefined && !e.fresh && performance.now() - e.idleSinceMs >= this.o.validateAfterIdleMs
    );
  }

  private lend(e: Entry<T>, stack: string | undefined): void {
    e.state = BORROWED;
    e.fresh = false;
    this.borrowedCount++;
    this.nAcquired++;
    if (this.o.leakDetectionMs > 0) {
      e.stack = stack;
      e.leakTimer = unref(setTimeout(Pool.onLeak, this.o.leakDetectionMs, this, e));
    }
  }

  private serve(e: Entry<T>, w: Waiter<T>): void {
    w.settle();
    this.hist.record(performance.now() - w.startMs);
    this.lend(e, w.stack);
    w.resolve(e.resource);
  }

  private startValidation(e: Entry<T>, w: Waiter<T>): void {
    this.waiters.detach(w);
    e.state = VALIDATING;
    e.validatingFor = w;
    this.validatingCount++;
    let p: Promise<boolean>;
    try {
      p = Promise.resolve((this.o.validate as (r: T) => boolean | Promise<boolean>)(e.resource));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (ok) => this.onValidated(e, w, ok === true),
      () => this.onValidated(e, w, false),
    );
  }

  private onValidated(e: Entry<T>, w: Waiter<T>, ok: boolean): void {
    if (e.state !== VALIDATING) return; // drain() force-closed it meanwhile
    this.validatingCount--;
    e.validatingFor = undefined;
    if (!ok || this.closing) {
      this.destroyEntry(e);
      if (!w.settled) {
        if (this.closing) {
          w.settle();
          this.nRejected++;
          w.reject(this.closedError());
        } else {
          // It keeps its place: first in line for the next resource.
          this.waiters.unshift(w);
        }
      }
      this.pump();
      return;
    }
    e.idleSinceMs = performance.now();
    if (w.settled) {
      e.state = IDLE;
      this.idle.push(e);
      this.pump();
      return;
    }
    this.serve(e, w);
  }

  private startCreate(): void {
    this.pendingCreates++;
    const a = new CreateAttempt(this.createFailures + 1);
    this.attempts.add(a);
    if (this.o.createTimeoutMs !== Infinity) a.timer = setTimeout(Pool.onCreateTimeout, this.o.createTimeoutMs, this, a);
    let p: Promise<T>;
    try {
      p = Promise.resolve(this.o.create({ signal: a.controller.signal, attempt: a.n }));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (r) => this.onCreated(a, r),
      (err) => this.onCreateFailed(a, err),
    );
  }

  private finishAttempt(a: CreateAttempt): void {
    a.done = true;
    if (a.timer !== undefined) clearTimeout(a.timer);
    this.attempts.delete(a);
    this.pendingCreates--;
  }

  private onCreated(a: CreateAttempt, resource: T): void {
    if (a.done) {
      // It timed out or the pool drained meanwhile: close the latecomer.
      this.callDestroyHook(resource);
      return;
    }
    this.finishAttempt(a);
    if (this.closing) {
      this.callDestroyHook(resource);
      return;
    }
    if (this.entries.has(resource)) {
      this.o.onWarning(`pool "${this.o.name}": create() returned a resource the pool already holds; ignored`);
      this.pump();
      return;
    }
    this.nCreated++;
    this.createFailures = 0;
    const now = performance.now();
    const lifetime = this.o.maxLifetimeMs;
    // Up to 10% less lifetime, at random: resources made together do not retire together.
    const e = new Entry(resource, lifetime === Infinity ? Infinity : now + lifetime * (1 - 0.1 * Math.random()));
    e.idleSinceMs = now;
    this.entries.set(resource, e);
    this.idle.push(e);
    this.pump();
  }

  private onCreateFailed(a: CreateAttempt, err: unknown): void {
    if (a.done) return;
    this.finishAttempt(a);
    if (this.closing) return;
    this.nCreateErrors++;
    this.createFailures++;
    this.lastCreateError = err;
    this.nextCreateAtMs =
      performance.now() + fullJitterDelayMs(this.createFailures, this.o.createBackoffInitialMs, this.o.createBackoffMaxMs);
    this.pump();
  }

  private circuitOpen(): boolean {
    return this.createFailures >= this.o.failFastAfterCreateErrors;
  }

  /** Removes `e` from the map (the caller has taken it out of `idle`) and closes it. */
  private destroyEntry(e: Entry<T>): Promise<void> {
    this.entries.delete(e.resource);
    if (e.state === VALIDATING) this.validatingCount--;
    e.state = DESTROYED;
    if (e.leakTimer !== undefined) clearTimeout(e.leakTimer);
    this.nDestroyed++;
    const r = e.resource as unknown;
    if ((typeof r === "object" && r !== null) || typeof r === "function") this.gone.add(r as object);
    const p = this.callDestroyHook(e.resource);
    if (this.drainWake !== undefined && this.entries.size === 0) {
      const wake = this.drainWake;
      this.drainWake = undefined;
      wake();
    }
    return p;
  }

  private callDestroyHook(resource: T): Promise<void> {
    const hook = this.o.destroy;
    if (hook === undefined) return Promise.resolve();
    // Deferred: the hook never runs in the middle of a state change.
    const p = Promise.resolve()
      .then(() => hook(resource))
      .then(
        () => {},
        (err) => this.o.onWarning(`pool "${this.o.name}": destroy() failed: ${errorText(err)}`),
      )
      .finally(() => this.destroying.delete(p));
    this.destroying.add(p);
    return p;
  }

  private reapNeeded(): boolean {
    return this.o.idleTimeoutMs !== Infinity || this.o.maxLifetimeMs !== Infinity || this.o.isBroken !== undefined;
  }

  private reap(): void {
    this.reapTimer = undefined;
    if (this.closing) return;
    const now = performance.now();
    // Idle resources beyond `min` may go for idleness; broken or expired ones always go (and
    // the pump replaces them up to `min`).
    let removable = this.entries.size - this.o.min;
    const idle = this.idle;
    let kept = 0;
    for (let i = 0; i < idle.length; i++) {
      const e = idle[i] as Entry<T>;
      if (!this.isUsable(e) || now >= e.expiresAtMs || (removable > 0 && now - e.idleSinceMs >= this.o.idleTimeoutMs)) {
        this.destroyEntry(e);
        removable--;
      } else {
        idle[kept++] = e;
      }
    }
    idle.length = kept;
    this.pump();
  }

  private async finishDrain(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    if (this.entries.size > 0) {
      let timer: Timer | undefined;
      await new Promise<void>((resolve) => {
        this.drainWake = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.drainWake = undefined;
    }
    // Past the deadline: close what is still borrowed or being validated.
    for (const e of [...this.entries.values()]) {
      const r = e.resource as unknown;
      if ((typeof r === "object" && r !== null) || typeof r === "function") this.forced.add(r as object);
      if (e.state === BORROWED) this.borrowedCount--;
      const w = e.validatingFor;
      if (w !== undefined && !w.settled) {
        w.settle();
        this.nRejected++;
        w.reject(this.closedError());
      }
      this.destroyEntry(e);
    }
    if (this.destroying.size > 0) {
      const left = Math.max(0, deadline - performance.now());
      let timer: Timer | undefined;
      await Promise.race([
        Promise.all(this.destroying),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------- errors (messages in errors.ts)

  private misuse(resource: T, e: Entry<T> | undefined, what: "release" | "destroy"): void {
    const r = resource as unknown;
    const isObj = (typeof r === "object" && r !== null) || typeof r === "function";
    if (e === undefined && isObj && this.forced.has(r as object)) return;
    const double = (e === undefined && isObj && this.gone.has(r as object)) || e?.state === IDLE;
    throw misuseError(this.o.name, what, double);
  }

  private refuse(code: RefusalCode, cause: unknown): Promise<T> {
    this.nRejected++;
    return Promise.reject(this.rejectedError(code, cause));
  }

  private rejectedError(code: RefusalCode, cause: unknown): Error {
    return acquireRejectedError(this.o.name, code, cause, {
      createFailures: this.createFailures,
      waiting: this.waiters.size,
      maxWaiting: this.o.maxWaiting,
    });
  }

  private closedError(): Error {
    return this.rejectedError("ERR_POOL_CLOSED", undefined);
  }

  private timeoutError(waitedMs: number, timeoutMs: number): Error {
    return acquireTimeoutError(this.o.name, waitedMs, timeoutMs, {
      createFailures: this.createFailures,
      lastCreateError: this.lastCreateError,
      max: this.o.max,
      borrowed: this.borrowedCount,
      idle: this.idle.length,
      pending: this.pendingCreates,
      waiting: this.waiters.size,
    });
  }

  // ---------------------------------------------------------------- timer callbacks
  // They get the pool and the entry or attempt as arguments: no closure per timer.

  private static onBackoff<T>(pool: Pool<T>): void {
    pool.backoffTimer = undefined;
    pool.pump();
  }
  private static onReap<T>(pool: Pool<T>): void {
    pool.reap();
  }
  private static onCreateTimeout<T>(pool: Pool<T>, a: CreateAttempt): void {
    a.timer = undefined;
    if (a.done) return;
    const err = new CreateTimeoutError(pool.o.name, pool.o.createTimeoutMs);
    pool.onCreateFailed(a, err);
    a.controller.abort(err);
  }
  private static onLeak<T>(pool: Pool<T>, e: Entry<T>): void {
    e.leakTimer = undefined;
    if (e.state !== BORROWED) return;
    pool.o.onWarning(
      `pool "${pool.o.name}": a resource has been borrowed for more than leakDetectionMs=${pool.o.leakDetectionMs} ms without release (possible leak); acquired at:\n${e.stack ?? "(no stack)"}`,
    );
  }
}
