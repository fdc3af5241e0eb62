/**
 * A binary min-heap timer queue with the TimingWheel's API, used as the comparison in
 * bench/timers.bench.ts: the classic alternative (libuv, Go's runtime, Java's
 * DelayQueue). Typed arrays, no object per timer: `heap` holds ids ordered by deadline,
 * `pos` is each id's index in `heap` (-1 when not pending), `deadline` its time in ms —
 * 16 bytes per id, the same as the wheel. schedule, cancel and firing are O(log n).
 * Timers fire exactly at their deadline (no tick); no argument validation: bench code only.
 */
export class MinHeapTimers {
  /** Bytes of typed-array storage per id: heap (4) + pos (4) + deadline (8). */
  static readonly BYTES_PER_TIMER = 16;
  readonly capacity: number;
  private readonly heap: Int32Array;
  private readonly pos: Int32Array;
  private readonly deadline: Float64Array;
  private count = 0;
  private now: number;

  /** An empty queue for ids in [0, capacity) whose clock reads startMs. */
  constructor(options: { capacity: number; startMs?: number }) {
    this.capacity = options.capacity;
    this.heap = new Int32Array(options.capacity);
    this.pos = new Int32Array(options.capacity).fill(-1);
    this.deadline = new Float64Array(options.capacity);
    this.now = options.startMs ?? 0;
  }

  /** Pending timers. */
  get size(): number {
    return this.count;
  }

  /** The clock: the last advance() time. */
  get nowMs(): number {
    return this.now;
  }

  /** Arms (or moves) timer `id` to fire delayMs after nowMs. O(log n). */
  schedule(id: number, delayMs: number): void {
    const d = this.now + delayMs;
    const deadline = this.deadline;
    const i = this.pos[id]!;
    if (i < 0) {
      deadline[id] = d;
      this.siftUp(this.count++, id);
      return;
    }
    const old = deadline[id]!;
    deadline[id] = d;
    if (d < old) this.siftUp(i, id);
    else this.siftDown(i, id);
  }

  /** Disarms `id`; true when it was pending. O(log n). */
  cancel(id: number): boolean {
    const i = this.pos[id]!;
    if (i < 0) return false;
    this.pos[id] = -1;
    const last = this.heap[--this.count]!;
    if (i !== this.count) {
      // The last element takes the hole and moves whichever way its deadline needs.
      if (this.deadline[last]! < this.deadline[id]!) this.siftUp(i, last);
      else this.siftDown(i, last);
    }
    return true;
  }

  /** True when `id` is armed. */
  isPending(id: number): boolean {
    return this.pos[id]! >= 0;
  }

  /** Sets the clock to nowMs and fires, in deadline order, every timer due at or before it. Returns the count. */
  advance(nowMs: number, onExpire: (id: number) => void): number {
    this.now = nowMs;
    const heap = this.heap;
    const deadline = this.deadline;
    let fired = 0;
    // A callback that re-arms with delay 0 would be due again: stop at the count present at entry.
    let budget = this.count;
    while (this.count > 0 && budget-- > 0) {
      const id = heap[0]!;
      if (deadline[id]! > nowMs) break;
      this.pos[id] = -1;
      const last = heap[--this.count]!;
      if (this.count > 0) this.siftDown(0, last);
      fired++;
      onExpire(id);
    }
    return fired;
  }

  /** Ms until the earliest deadline, 0 if due, Infinity if none. */
  nextDueMs(): number {
    if (this.count === 0) return Infinity;
    const ms = this.deadline[this.heap[0]!]! - this.now;
    return ms > 0 ? ms : 0;
  }

  private siftUp(i: number, id: number): void {
    const heap = this.heap;
    const pos = this.pos;
    const deadline = this.deadline;
    const d = deadline[id]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (deadline[p]! <= d) break;
      heap[i] = p;
      pos[p] = i;
      i = parent;
    }
    heap[i] = id;
    pos[id] = i;
  }

  private siftDown(i: number, id: number): void {
    const heap = this.heap;
    const pos = this.pos;
    const deadline = this.deadline;
    const n = this.count;
    const d = deadline[id]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      let c = heap[child]!;
      const right = child + 1;
      if (right < n) {
        const r = heap[right]!;
        if (deadline[r]! < deadline[c]!) {
          child = right;
          c = r;
        }
      }
      if (deadline[c]! >= d) break;
      heap[i] = c;
      pos[c] = i;
      i = child;
    }
    heap[i] = id;
    pos[id] = i;
  }
}
