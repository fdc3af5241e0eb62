/**
 * A bounded async channel (Go's buffered channel, Swoole's coroutine Channel): producers
 * push, consumers pop, each side waits when the buffer is full or empty.
 *
 * Contract:
 * - Waiters on each side are served strictly FIFO.
 * - A value handed to a waiting popper never touches the buffer; a waiting pusher's value
 *   enters the buffer as soon as a pop makes room.
 * - A waiter that times out is unlinked in O(1) (intrusive list) and its timer is gone:
 *   nothing is left pending after a timeout or after close().
 * - close(): no more pushes; every waiting pusher rejects with ChannelClosedError, every
 *   waiting popper resolves undefined; values already buffered stay and pop() drains them,
 *   then resolves undefined at once.
 * - `undefined` is the "no value" answer of pop()/tryPop(), so T should not include it.
 */
import { badWaitMs, ChannelClosedError, PoolOptionError } from "./errors.ts";
import { type ListNode, WaiterList } from "./list.ts";
import { Ring } from "./ring.ts";
import { MAX_TIMER_MS } from "./time.ts";

type Timer = ReturnType<typeof setTimeout>;

class PopWaiter<T> implements ListNode<PopWaiter<T>> {
  prev: PopWaiter<T> | null = null;
  next: PopWaiter<T> | null = null;
  queued = false;
  timer: Timer | undefined = undefined;
  constructor(readonly resolve: (v: T | undefined) => void) {}
}

class PushWaiter<T> implements ListNode<PushWaiter<T>> {
  prev: PushWaiter<T> | null = null;
  next: PushWaiter<T> | null = null;
  queued = false;
  timer: Timer | undefined = undefined;
  constructor(
    readonly value: T,
    readonly resolve: (accepted: boolean) => void,
    readonly reject: (err: Error) => void,
  ) {}
}

const RESOLVED_TRUE = Promise.resolve(true);
const RESOLVED_FALSE = Promise.resolve(false);
const RESOLVED_UNDEFINED = Promise.resolve(undefined);

/** A bounded async channel of values T; see the file comment for the contract. */
export class Channel<T> {
  /** Most values the buffer holds; pushers wait beyond it. */
  readonly capacity: number;
  private readonly buffer: Ring<T>;
  private readonly poppers = new WaiterList<PopWaiter<T>>();
  private readonly pushers = new WaiterList<PushWaiter<T>>();
  private _closed = false;

  /** `capacity`: an integer in 1..2^30 (the buffer grows lazily up to it). Throws PoolOptionError otherwise. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 2 ** 30) {
      throw new PoolOptionError("capacity", `Channel capacity=${String(capacity)} is invalid: expected an integer in 1..2^30`);
    }
    this.capacity = capacity;
    this.buffer = new Ring<T>(Math.min(capacity, 16));
  }

  /** Values buffered now. */
  get length(): number {
    return this.buffer.length;
  }
  /** True once close() was called. */
  get closed(): boolean {
    return this._closed;
  }
  /** Poppers waiting for a value. */
  get waitingPoppers(): number {
    return this.poppers.size;
  }
  /** Pushers waiting for room. */
  get waitingPushers(): number {
    return this.pushers.size;
  }

  /**
   * Puts `value` in the channel without waiting. Returns true when it was taken (by a waiting
   * popper or into the buffer), false when the buffer is full. Throws ChannelClosedError
   * after close().
   */
  tryPush(value: T): boolean {
    if (this._closed) throw new ChannelClosedError();
    const popper = this.poppers.shift();
    if (popper !== null) {
      if (popper.timer !== undefined) clearTimeout(popper.timer);
      popper.resolve(value);
      return true;
    }
    if (this.buffer.length < this.capacity) {
      this.buffer.push(value);
      return true;
    }
    return false;
  }

  /**
   * Puts `value` in the channel, waiting while it is full. Resolves true once the value was
   * taken, false when `timeoutMs` passed first (the value was not delivered). Rejects with
   * ChannelClosedError when the channel is closed before the value got in, with
   * PoolOptionError for a bad `timeoutMs` (whatever the channel's state).
   * `timeoutMs`: omitted or Infinity waits forever (as does anything above ~24.8 days); 0 does not wait.
   */
  push(value: T, timeoutMs?: number): Promise<boolean> {
    const bad = badWaitMs(timeoutMs, "Channel.push");
    if (bad !== undefined) return Promise.reject(bad);
    if (this._closed) return Promise.reject(new ChannelClosedError());
    if (this.tryPush(value)) return RESOLVED_TRUE;
    if (timeoutMs === 0) return RESOLVED_FALSE;
    return new Promise<boolean>((resolve, reject) => {
      const node = new PushWaiter(value, resolve, reject);
      this.pushers.push(node);
      if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
        node.timer = setTimeout(onPushTimeout, timeoutMs, this.pushers, node);
      }
    });
  }

  /**
   * Takes the oldest value without waiting: the value, or undefined when the buffer is empty
   * (after close(), once drained).
   */
  tryPop(): T | undefined {
    if (this.buffer.length === 0) return undefined;
    const value = this.buffer.shift() as T;
    // The pop made room: the oldest waiting pusher's value moves in behind the others.
    const pusher = this.pushers.shift();
    if (pusher !== null) {
      if (pusher.timer !== undefined) clearTimeout(pusher.timer);
      this.buffer.push(pusher.value);
      pusher.resolve(true);
    }
    return value;
  }

  /**
   * Takes the oldest value, waiting while the channel is empty. Resolves the value; resolves
   * undefined when `timeoutMs` passed first or when the channel is closed and drained
   * (tell them apart with `closed`). Rejects only with PoolOptionError, for a bad `timeoutMs`
   * (whatever the channel's state).
   * `timeoutMs`: omitted or Infinity waits forever (as does anything above ~24.8 days); 0 does not wait.
   */
  pop(timeoutMs?: number): Promise<T | undefined> {
    const bad = badWaitMs(timeoutMs, "Channel.pop");
    if (bad !== undefined) return Promise.reject(bad);
    if (this.buffer.length > 0) return Promise.resolve(this.tryPop());
    if (this._closed || timeoutMs === 0) return RESOLVED_UNDEFINED;
    return new Promise<T | undefined>((resolve) => {
      const node = new PopWaiter<T>(resolve);
      this.poppers.push(node);
      if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
        node.timer = setTimeout(onPopTimeout, timeoutMs, this.poppers, node);
      }
    });
  }

  /**
   * Closes the channel: later pushes throw/reject ChannelClosedError; waiting pushers reject
   * with it; waiting poppers resolve undefined; buffered values remain for pop(). Idempotent.
   */
  close(): void {
    if (this._closed) return;
    this._closed = true;
    for (let p = this.pushers.shift(); p !== null; p = this.pushers.shift()) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(new ChannelClosedError());
    }
    for (let p = this.poppers.shift(); p !== null; p = this.poppers.shift()) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.resolve(undefined);
    }
  }

  /** Pops until the channel is closed and drained: `for await (const v of ch)`. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      const v = await this.pop();
      if (v === undefined) return;
      yield v;
    }
  }
}

// Timer callbacks get their list and node as arguments: no closure per waiter.
function onPopTimeout<T>(list: WaiterList<PopWaiter<T>>, node: PopWaiter<T>): void {
  node.timer = undefined;
  if (list.remove(node)) node.resolve(undefined);
}

function onPushTimeout<T>(list: WaiterList<PushWaiter<T>>, node: PushWaiter<T>): void {
  node.timer = undefined;
  if (list.remove(node)) node.resolve(false);
}
