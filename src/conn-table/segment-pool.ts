/**
 * SegmentPool: fixed-size byte segments carved out of big ArrayBuffers, handed out by
 * number ("ref"), so that a connection holds input or output bytes only while it has some
 * (a partial frame, output the kernel has not taken yet) and holds them without an object
 * of its own.
 *
 * Refs are positive SMIs, stored by the caller in Int32Arrays (ConnTable.inRef/outRef).
 * 0 (NO_REF) is never a ref, so a zero-filled Int32Array already means "no ref anywhere":
 * a table slot that never held bytes never has to be written (nor its page touched).
 * - a pooled segment's ref is its index + 1, 1 <= ref <= maxSegments. Its bytes are
 *   buffer(ref)[offset(ref) .. offset(ref) + segmentBytes): buffer(ref) is the whole chunk
 *   (chunkSegments segments), shared with other refs — never write outside your range.
 * - a fallback ref is FALLBACK_REF_BASE (2^30) + i, for a Uint8Array of its own, offset 0.
 *   acquire() gives one when minBytes > segmentBytes or when all maxSegments segments are
 *   in use; grow() past a segment gives one (capacity doubling). Released fallback indices
 *   are reused, so refs stay bounded by the peak number of live fallbacks.
 *
 * Chunks are allocated lazily, the first time a segment of them is needed: an idle server
 * reserves no segment memory. trim() gives chunks with no segment in use back to the GC.
 * Free segments are a LIFO stack (Int32Array): the most recently released, still cached,
 * segment is reused first. A per-segment in-use byte catches double releases before they
 * could put one segment on the free stack twice (and hand it to two connections).
 */
import { MyriadRangeError, MyriadTypeError } from "../errors.ts";
import { SegmentRefError } from "./errors.ts";

/** Never a ref: what a zero-filled Int32Array of refs holds (ConnTable.inRef/outRef when empty). */
export const NO_REF = 0;
/** Refs at or above this are fallback buffers; pooled segment refs are 1..maxSegments, below it. */
export const FALLBACK_REF_BASE = 1 << 30;
/** Largest capacity a ref may have: lengths and offsets must fit the Int32Arrays that hold them. */
export const MAX_BUFFER_BYTES = 0x7fffffff;
/** Largest segmentBytes accepted (16 MiB). */
export const MAX_SEGMENT_BYTES = 1 << 24;
/** Largest chunk (chunkSegments × segmentBytes) accepted (1 GiB). */
export const MAX_CHUNK_BYTES = 1 << 30;

/** Options of new SegmentPool(); each is range-checked (MyriadRangeError ERR_SEGMENT_POOL_OPTION naming it). */
export interface SegmentPoolOptions {
  /** Bytes per pooled segment; integer 1..2^24, default 4096. */
  segmentBytes?: number;
  /** Most pooled segments ever reserved (segmentBytes each); integer 0..2^30 - 1. Past it, acquire() falls back. */
  maxSegments: number;
  /** Segments per lazily allocated chunk; integer >= 1, default 256 (1 MiB chunks of 4 KiB segments). */
  chunkSegments?: number;
}

/** What SegmentPool.stats() reports: segment counts and bytes held. */
export interface SegmentPoolStats {
  /** Bytes per pooled segment. */
  segmentBytes: number;
  /** Pooled segments currently acquired. */
  segmentsInUse: number;
  /** Pooled segments in allocated chunks (in use or free). */
  segmentsReserved: number;
  /** Fallback buffers currently acquired. */
  fallbackBuffers: number;
  /** Capacity of the fallback buffers currently acquired. */
  fallbackBytes: number;
  /** Capacity held by acquired refs: segmentsInUse × segmentBytes + fallbackBytes. */
  bytesInUse: number;
  /** The maxSegments option. */
  maxSegments: number;
  /** Memory the pool holds: segmentsReserved × segmentBytes + fallbackBytes. */
  reservedBytes: number;
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new MyriadRangeError("ERR_SEGMENT_POOL_OPTION", `SegmentPool: ${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
}

/**
 * Fixed-size byte segments from lazily allocated chunks, plus fallback buffers for larger
 * needs, handed out as integer refs (see the file comment). A ref is used through
 * buffer(ref)/offset(ref)/capacity(ref) and given back exactly once with release() or grow().
 */
export class SegmentPool {
  /** Bytes per pooled segment. */
  readonly segmentBytes: number;
  /** Most pooled segments; pooled refs are 1..maxSegments. */
  readonly maxSegments: number;
  /** Segments per chunk. */
  readonly chunkSegments: number;

  private readonly chunks: Array<Uint8Array | undefined>;
  /** Acquired segments per chunk: trim() drops a chunk only at 0. */
  private readonly chunkLive: Int32Array;
  /** Lowest chunk index that may be unallocated. */
  private chunkHint = 0;
  private readonly freeStack: Int32Array;
  private freeTop = 0;
  /** 1 while a pooled segment is acquired: the double-release guard. */
  private readonly segInUse: Uint8Array;
  private segmentsInUse = 0;
  private segmentsReserved = 0;

  private readonly fallbacks: Array<Uint8Array | null> = [];
  private readonly fallbackFree: number[] = [];
  private fallbackCount = 0;
  private fallbackBytes = 0;

  /**
   * Creates an empty pool; reserves no segment memory until the first acquire() (only the
   * bookkeeping arrays: 5 bytes per maxSegments). Throws MyriadRangeError
   * (ERR_SEGMENT_POOL_OPTION) for an option out of range, MyriadTypeError when opts is not an object.
   */
  constructor(opts: SegmentPoolOptions) {
    if (typeof opts !== "object" || opts === null) {
      throw new MyriadTypeError("ERR_SEGMENT_POOL_OPTION", `new SegmentPool(options): options must be an object like { maxSegments: 1024 }, got ${String(opts)}`);
    }
    const segmentBytes = opts.segmentBytes ?? 4096;
    const maxSegments = opts.maxSegments;
    const chunkSegments = opts.chunkSegments ?? 256;
    checkInt("segmentBytes", segmentBytes, 1, MAX_SEGMENT_BYTES);
    // Pooled refs run up to maxSegments and must stay below the first fallback ref.
    checkInt("maxSegments", maxSegments, 0, FALLBACK_REF_BASE - 1);
    checkInt("chunkSegments", chunkSegments, 1, Math.floor(MAX_CHUNK_BYTES / segmentBytes));
    this.segmentBytes = segmentBytes;
    this.maxSegments = maxSegments;
    this.chunkSegments = Math.max(1, Math.min(chunkSegments, maxSegments));
    const chunkCount = Math.ceil(maxSegments / this.chunkSegments);
    this.chunks = new Array<Uint8Array | undefined>(chunkCount).fill(undefined);
    this.chunkLive = new Int32Array(chunkCount);
    this.freeStack = new Int32Array(maxSegments);
    this.segInUse = new Uint8Array(maxSegments);
  }

  /**
   * Returns a ref whose capacity is at least minBytes (an integer in 0..MAX_BUFFER_BYTES):
   * a pooled segment when minBytes <= segmentBytes and one is left, else a fallback buffer
   * of max(minBytes, segmentBytes) bytes. The bytes' contents are unspecified.
   * Allocates only when it opens a new chunk or makes a fallback.
   */
  acquire(minBytes: number): number {
    checkInt("acquire minBytes", minBytes, 0, MAX_BUFFER_BYTES);
    if (minBytes <= this.segmentBytes) {
      const ref = this.takeSegment();
      if (ref > 0) return ref;
    }
    return this.newFallback(Math.max(minBytes, this.segmentBytes));
  }

  /**
   * The array holding ref's bytes, starting at offset(ref); for a pooled ref it is the
   * whole chunk, shared with other refs. Throws SegmentRefError for a ref not in use.
   * Allocates nothing.
   */
  buffer(ref: number): Uint8Array {
    if (this.isPooled(ref)) return this.chunks[((ref - 1) / this.chunkSegments) | 0]!;
    return this.fallbackOf("buffer", ref);
  }

  /** Where ref's bytes start in buffer(ref). Throws SegmentRefError for a ref not in use. Allocates nothing. */
  offset(ref: number): number {
    if (this.isPooled(ref)) return ((ref - 1) % this.chunkSegments) * this.segmentBytes;
    this.fallbackOf("offset", ref);
    return 0;
  }

  /** How many bytes ref holds. Throws SegmentRefError for a ref not in use. Allocates nothing. */
  capacity(ref: number): number {
    if (this.isPooled(ref)) return this.segmentBytes;
    return this.fallbackOf("capacity", ref).length;
  }

  /** True while ref is acquired (returned by acquire()/grow() and not released since). */
  isAcquired(ref: number): boolean {
    if (this.isPooled(ref)) return true;
    const i = ref - FALLBACK_REF_BASE;
    return (i | 0) === i && i >= 0 && i < this.fallbacks.length && this.fallbacks[i] != null;
  }

  /**
   * Makes room: returns a ref of capacity >= max(minBytes, usedBytes - startByte) whose
   * first usedBytes - startByte bytes are ref's bytes [startByte, usedBytes).
   * When ref already has the room it is returned itself (its kept bytes moved to its start
   * when startByte > 0); otherwise the bytes go to a new fallback of capacity
   * max(need, 2 × capacity(ref)) and ref is released — use only the returned ref after.
   * startByte (default 0) lets a write queue drop its sent prefix in the same copy.
   * Throws SegmentRefError for a ref not in use, MyriadRangeError (ERR_SEGMENT_POOL_OPTION) for a
   * bad count (ref untouched).
   */
  grow(ref: number, usedBytes: number, minBytes: number, startByte = 0): number {
    const cap = this.capacity(ref);
    checkInt("grow usedBytes", usedBytes, 0, cap);
    checkInt("grow startByte", startByte, 0, usedBytes);
    checkInt("grow minBytes", minBytes, 0, MAX_BUFFER_BYTES);
    const keep = usedBytes - startByte;
    const need = Math.max(minBytes, keep);
    const src = this.buffer(ref);
    const from = this.offset(ref);
    if (need <= cap) {
      if (startByte > 0 && keep > 0) src.copyWithin(from, from + startByte, from + usedBytes);
      return ref;
    }
    const next = this.newFallback(Math.max(need, Math.min(2 * cap, MAX_BUFFER_BYTES)));
    if (keep > 0) this.fallbacks[next - FALLBACK_REF_BASE]!.set(src.subarray(from + startByte, from + usedBytes), 0);
    this.release(ref);
    return next;
  }

  /**
   * Gives ref back. Throws SegmentRefError, changing nothing, when ref is not in use
   * (double release, never acquired, or not a ref). O(1); allocates nothing for pooled refs.
   */
  release(ref: number): void {
    if (this.isPooled(ref)) {
      const seg = ref - 1;
      this.segInUse[seg] = 0;
      this.freeStack[this.freeTop++] = seg;
      this.chunkLive[(seg / this.chunkSegments) | 0]!--;
      this.segmentsInUse--;
      return;
    }
    const buf = this.fallbackOf("release", ref);
    const i = ref - FALLBACK_REF_BASE;
    this.fallbacks[i] = null;
    this.fallbackFree.push(i);
    this.fallbackCount--;
    this.fallbackBytes -= buf.length;
  }

  /**
   * Drops every allocated chunk none of whose segments is in use, so the GC can return
   * the memory; they are allocated again when needed. Returns the bytes dropped.
   * O(chunks + free segments): call it now and then (after a load spike), not per event.
   */
  trim(): number {
    let dropped = 0;
    const chunks = this.chunks;
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c];
      if (chunk === undefined || this.chunkLive[c] !== 0) continue;
      chunks[c] = undefined;
      dropped += chunk.length;
      this.segmentsReserved -= chunk.length / this.segmentBytes;
      if (c < this.chunkHint) this.chunkHint = c;
    }
    if (dropped > 0) {
      // Keep the free stack's order for the segments that remain.
      let w = 0;
      for (let r = 0; r < this.freeTop; r++) {
        const seg = this.freeStack[r]!;
        if (chunks[(seg / this.chunkSegments) | 0] !== undefined) this.freeStack[w++] = seg;
      }
      this.freeTop = w;
    }
    return dropped;
  }

  /** Counters of the pool's memory; allocates the returned object only. */
  stats(): SegmentPoolStats {
    return {
      segmentBytes: this.segmentBytes,
      segmentsInUse: this.segmentsInUse,
      segmentsReserved: this.segmentsReserved,
      fallbackBuffers: this.fallbackCount,
      fallbackBytes: this.fallbackBytes,
      bytesInUse: this.segmentsInUse * this.segmentBytes + this.fallbackBytes,
      maxSegments: this.maxSegments,
      reservedBytes: this.segmentsReserved * this.segmentBytes + this.fallbackBytes,
    };
  }

  /** True for an acquired pooled ref; false for anything else (fallback refs included). */
  private isPooled(ref: number): boolean {
    return (ref | 0) === ref && ref >= 1 && ref <= this.maxSegments && this.segInUse[ref - 1] === 1;
  }

  /** The buffer of an acquired fallback ref; throws SegmentRefError otherwise. */
  private fallbackOf(op: string, ref: number): Uint8Array {
    const i = ref - FALLBACK_REF_BASE;
    if ((i | 0) === i && i >= 0 && i < this.fallbacks.length) {
      const buf = this.fallbacks[i];
      if (buf != null) return buf;
    }
    throw new SegmentRefError(op, ref);
  }

  /** Pops a free segment and returns its ref (index + 1), opening a chunk when none is free; -1 when maxSegments are all in use. */
  private takeSegment(): number {
    if (this.freeTop === 0 && !this.openChunk()) return -1;
    const seg = this.freeStack[--this.freeTop]!;
    this.segInUse[seg] = 1;
    this.chunkLive[(seg / this.chunkSegments) | 0]!++;
    this.segmentsInUse++;
    return seg + 1;
  }

  private openChunk(): boolean {
    const chunks = this.chunks;
    let c = this.chunkHint;
    while (c < chunks.length && chunks[c] !== undefined) c++;
    if (c === chunks.length) {
      this.chunkHint = c;
      return false;
    }
    this.chunkHint = c + 1;
    const first = c * this.chunkSegments;
    const count = Math.min(this.chunkSegments, this.maxSegments - first);
    chunks[c] = new Uint8Array(count * this.segmentBytes);
    // Pushed in reverse so the chunk is handed out front to back.
    for (let seg = first + count - 1; seg >= first; seg--) this.freeStack[this.freeTop++] = seg;
    this.segmentsReserved += count;
    return true;
  }

  private newFallback(bytes: number): number {
    let i = this.fallbackFree.pop();
    if (i === undefined) {
      i = this.fallbacks.length;
      if (i >= MAX_BUFFER_BYTES - FALLBACK_REF_BASE) {
        throw new MyriadRangeError("ERR_SEGMENT_POOL_FULL", `SegmentPool: more than ${MAX_BUFFER_BYTES - FALLBACK_REF_BASE} fallback buffers in use; release refs`);
      }
      this.fallbacks.push(null);
    }
    this.fallbacks[i] = new Uint8Array(bytes);
    this.fallbackCount++;
    this.fallbackBytes += bytes;
    return FALLBACK_REF_BASE + i;
  }
}
