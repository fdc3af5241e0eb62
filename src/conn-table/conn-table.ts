/**
 * ConnTable: a fixed-capacity table of connection slots, kept as a struct of typed arrays
 * (gnet's connection matrix), with generation-checked handles.
 *
 * A connection costs BYTES_PER_SLOT bytes of typed arrays and nothing else: no object, no
 * Map entry, no closure. The reactor stores the handle (a number) in `socket.data` and
 * reads/writes the per-slot fields through `table.<field>[table.slot(handle)]`.
 *
 * Handles: `handle = (generation & 0xfff) * 2^20 + slot`, an unsigned 32-bit integer
 * (0 <= handle < 2^32). JSC keeps every number unboxed, so handles at or above 2^31 cost no
 * allocation; `handle & 0xfffff` still yields the slot and `handle >>> 20` the generation.
 * A slot's generation moves on every free(), so a handle kept after free() no longer
 * matches its slot: free() and isLive() answer false for it, also after the slot was
 * reused — for 2^12 - 1 = 4095 reuses of that slot (so at least 2^11). On the 2^12-th reuse
 * the 12 generation bits wrap and the old handle would match the new occupant again
 * (see ConnTable.GENERATION_PERIOD).
 *
 * Free list: a FIFO ring of free slots (not a LIFO stack). A freed slot goes to the back
 * and is handed out again only after every slot that was free before it, so one slot is
 * reused at most once per (capacity - size) allocations. The generation wrap therefore takes
 * at least 2^12 × (capacity - size) allocations — e.g. ~3.7·10^9 at capacity 10^6 with 10^5
 * live — instead of 2^12 allocations with a stack, which reuses the same hot slot at once.
 * The price is locality: under churn the live slots spread over the whole table instead of
 * staying packed at the front; the whole table is reserved for the process anyway.
 * (When the table is full but one slot, that one slot is reused by every alloc: the wrap is
 * then 2^12 alloc/free cycles away, the bound the tests pin down.)
 *
 * Memory is paid per page touched, not per slot reserved: the typed arrays come zero-filled
 * from the OS, and a page costs RSS only once written. So a free slot is kept all zeros
 * (free() clears what the connection wrote; no ref is "0", see NO_REF), and alloc() writes
 * only `state`. A connection then touches only the columns it uses: one that never moves a
 * byte (an idle device, a c1m connection) costs the state byte here, not 48 bytes. Clearing
 * in free() rather than in alloc() costs the same writes, moved, and free() writes a column
 * only when it is non-zero, so it does not touch pages of columns the connection never used.
 */

import { MyriadRangeError } from "../errors.ts";

/** The most slots one table can hold: 2^20, so a slot fits the handle's low 20 bits. */
export const MAX_CAPACITY = 1 << 20;

const SLOT_BITS = 20;
/** A handle's slot is its low 20 bits: `handle & SLOT_MASK` (the one statement of that layout). */
export const SLOT_MASK = MAX_CAPACITY - 1;
const GEN_MASK = 0xfff;

/** The handle of `slot` at `generation`: unsigned, so the 12th generation bit may set bit 31. */
function handleFor(generation: number, slot: number): number {
  return (((generation & GEN_MASK) << SLOT_BITS) | slot) >>> 0;
}

/** `state` value of a free slot. Only free() writes it; the reactor must never store 0 in a live slot. */
export const STATE_FREE = 0;
/** `state` value alloc() gives a new slot; the reactor may overwrite it with any non-zero value. */
export const STATE_ALLOCATED = 1;

/**
 * A fixed-capacity table of connection slots with generation-checked handles (see the file
 * comment). alloc()/free() are O(1) and allocate nothing; per-slot fields are the public typed
 * arrays, indexed by slot(handle).
 */
export class ConnTable {
  /**
   * Bytes of typed arrays per slot: state 1 + flags 1 + generation 2 + lastActivity 4 +
   * bytesIn 8 + bytesOut 8 + inRef 4 + inLen 4 + outRef 4 + outStart 4 + outLen 4 = 44,
   * plus 4 for the slot's entry in the free-list ring = 48.
   */
  static readonly BYTES_PER_SLOT: number = 48;
  /** Reuses of one slot after which an old handle of that slot matches again (2^12). */
  static readonly GENERATION_PERIOD: number = GEN_MASK + 1;

  /** Number of slots, fixed at construction. */
  readonly capacity: number;

  /** 0 (STATE_FREE) = free; alloc() sets STATE_ALLOCATED (1); the reactor defines other non-zero values. */
  readonly state: Uint8Array;
  /** The reactor's bits (paused, closing, greeted...). 0 after alloc(). */
  readonly flags: Uint8Array;
  /** Bumped by every free(); handles carry its low 12 bits. Owned by the table: read only. */
  readonly generation: Uint16Array;
  /**
   * When the connection last read or wrote: the reactor's performance.now() in whole ms,
   * wrapped to 32 bits (compare with `(now - t) >>> 0`), written only when an idle timeout is
   * on. 0 after alloc().
   */
  readonly lastActivity: Uint32Array;
  /** Bytes read from the connection. 0 after alloc(); a double counts exactly to 2^53. */
  readonly bytesIn: Float64Array;
  /** Bytes written to the connection. 0 after alloc(). */
  readonly bytesOut: Float64Array;
  // Every field below reads 0 in a free slot, and in a slot alloc() has just handed out.

  /** SegmentPool ref holding the partial input frame, NO_REF (0) when none. */
  readonly inRef: Int32Array;
  /** Bytes of partial input held at the start of inRef (0 when inRef is NO_REF). */
  readonly inLen: Int32Array;
  /** SegmentPool ref holding output the kernel has not taken yet, NO_REF (0) when none. */
  readonly outRef: Int32Array;
  /** Offset, within outRef's bytes, of the first byte not yet sent. */
  readonly outStart: Int32Array;
  /**
   * Offset, within outRef's bytes, one past the last queued byte: bytes [outStart, outLen)
   * are pending, so `outLen - outStart` is the write-queue size and new output is appended
   * at outLen. Both are relative to `pool.offset(outRef)`.
   */
  readonly outLen: Int32Array;

  /**
   * FIFO ring of free slots. Entry value v > 0 means slot v - 1; 0 means "never written",
   * which stands for the identity (position p holds slot p): the zero-filled array is then
   * already the initial ring 0, 1, 2, ... and construction touches no page of it.
   */
  private readonly ring: Int32Array;
  private head = 0;
  private freeCount: number;
  private liveCount = 0;
  /** One past the highest slot ever handed out: forEachLive scans no further. */
  private highWater = 0;

  /**
   * Creates a table of `capacity` free slots. Throws MyriadRangeError (ERR_CONN_TABLE_OPTION)
   * unless capacity is an integer in 1..2^20. Allocates all typed arrays now (pages are zero-filled lazily by
   * the OS); alloc() and free() allocate nothing.
   */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw new MyriadRangeError(
        "ERR_CONN_TABLE_OPTION",
        `ConnTable capacity must be an integer in 1..${MAX_CAPACITY} (2^20), got ${String(capacity)}; ` +
          `run more processes for more connections`,
      );
    }
    this.capacity = capacity;
    this.freeCount = capacity;
    this.state = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.generation = new Uint16Array(capacity);
    this.lastActivity = new Uint32Array(capacity);
    this.bytesIn = new Float64Array(capacity);
    this.bytesOut = new Float64Array(capacity);
    this.inRef = new Int32Array(capacity);
    this.inLen = new Int32Array(capacity);
    this.outRef = new Int32Array(capacity);
    this.outStart = new Int32Array(capacity);
    this.outLen = new Int32Array(capacity);
    this.ring = new Int32Array(capacity);
  }

  /** One past the highest slot ever handed out: every live slot is below it (a bound for a scan over the columns). */
  get scanEnd(): number {
    return this.highWater;
  }

  /** Live slots. */
  get size(): number {
    return this.liveCount;
  }

  /**
   * Takes a free slot and returns its handle (>= 0), or -1 when the table is full. The slot
   * reads state STATE_ALLOCATED and every other field 0 (inRef/outRef NO_REF): free() left
   * it so, and alloc() writes only `state`. O(1), allocates nothing.
   */
  alloc(): number {
    if (this.freeCount === 0) return -1;
    const pos = this.head;
    const v = this.ring[pos]!;
    const slot = v === 0 ? pos : v - 1;
    this.head = pos + 1 === this.capacity ? 0 : pos + 1;
    this.freeCount--;
    this.liveCount++;
    if (slot >= this.highWater) this.highWater = slot + 1;
    this.state[slot] = STATE_ALLOCATED;
    return handleFor(this.generation[slot]!, slot);
  }

  /**
   * Frees the slot of a live handle: bumps its generation (so the handle goes stale), sets
   * state to STATE_FREE and every other field to 0 (inRef/outRef NO_REF), and queues the
   * slot at the back of the free ring. Read what you need (bytesIn, bytesOut...) before.
   * Returns true when it freed; false, changing nothing, for a stale, unknown or malformed handle.
   * Does not release the slot's SegmentPool refs: release inRef/outRef first (their values
   * are dropped here). O(1), allocates nothing.
   */
  free(handle: number): boolean {
    if (!this.isLive(handle)) return false;
    const slot = handle & SLOT_MASK;
    this.generation[slot] = (this.generation[slot]! + 1) & 0xffff;
    this.state[slot] = STATE_FREE;
    this.clear(slot);
    let tail = this.head + this.freeCount;
    if (tail >= this.capacity) tail -= this.capacity;
    this.ring[tail] = slot + 1;
    this.freeCount++;
    this.liveCount--;
    return true;
  }

  /** True when `handle` is the current handle of a live slot; false for stale, unknown or malformed ones. */
  isLive(handle: number): boolean {
    // (handle >>> 0) !== handle rejects NaN, fractions, negatives and values >= 2^32.
    if (handle >>> 0 !== handle) return false;
    const slot = handle & SLOT_MASK;
    if (slot >= this.capacity) return false;
    return this.state[slot] !== STATE_FREE && (this.generation[slot]! & GEN_MASK) === handle >>> SLOT_BITS;
  }

  /** The slot index of a handle (its low 20 bits), without any liveness check. */
  slot(handle: number): number {
    return handle & SLOT_MASK;
  }

  /** The current handle of `slot` when it is live; -1 when it is free or out of range. */
  handleOf(slot: number): number {
    if ((slot | 0) !== slot || slot < 0 || slot >= this.capacity) return -1;
    if (this.state[slot] === STATE_FREE) return -1;
    return handleFor(this.generation[slot]!, slot);
  }

  /**
   * Calls fn(handle) for every live slot, in slot order. fn may free the handle it is
   * given or any other handle (a freed slot not yet visited is skipped); a slot allocated
   * during the walk may or may not be visited. Allocates nothing.
   */
  forEachLive(fn: (handle: number) => void): void {
    const state = this.state;
    const generation = this.generation;
    // highWater can only grow during the walk; reading it each round visits new slots past the old end too.
    for (let slot = 0; slot < this.highWater; slot++) {
      if (state[slot] !== STATE_FREE) fn(handleFor(generation[slot]!, slot));
    }
  }

  /** Zeros the slot's fields, writing only those that are not 0 already (see the file comment: untouched pages stay free). */
  private clear(slot: number): void {
    if (this.flags[slot] !== 0) this.flags[slot] = 0;
    if (this.lastActivity[slot] !== 0) this.lastActivity[slot] = 0;
    if (this.bytesIn[slot] !== 0) this.bytesIn[slot] = 0;
    if (this.bytesOut[slot] !== 0) this.bytesOut[slot] = 0;
    if (this.inRef[slot] !== 0) this.inRef[slot] = 0;
    if (this.inLen[slot] !== 0) this.inLen[slot] = 0;
    if (this.outRef[slot] !== 0) this.outRef[slot] = 0;
    if (this.outStart[slot] !== 0) this.outStart[slot] = 0;
    if (this.outLen[slot] !== 0) this.outLen[slot] = 0;
  }
}
