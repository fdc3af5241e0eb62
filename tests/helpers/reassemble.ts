/**
 * A reference reassembler for codec tests: feeds a byte stream, chunk by chunk, through a
 * codec the way the reactor does. A chunk is parsed in place while nothing is pending; the
 * incomplete tail is copied into a pending buffer (like a pooled segment) and later chunks
 * are appended to it. Every buffer handed to measure/decode carries garbage bytes before
 * start and after end ("\n", "\r", "*", "$", digits, NUL; sometimes kilobytes of them), so
 * a codec that reads outside [start, end) is caught. Decoded values are deep-copied at once (decode may return views).
 */
import fc from "fast-check";
import { FRAME_INCOMPLETE, FRAME_MALFORMED, FRAME_TOO_LARGE, type Codec } from "../../src/codec/index.ts";

export interface ReassembleResult<T> {
  /** Decoded frames, deep copies, in order. */
  frames: T[];
  /** Why feeding stopped: a frame over maxFrameBytes or bytes that cannot be a frame. */
  error: "too-large" | "malformed" | null;
  /** Bytes left pending at the end (an incomplete frame). */
  pendingBytes: number;
  /** Most bytes ever kept pending between chunks. */
  maxPendingBytes: number;
  /** Stream offset where the error was detected (bytes fed so far), -1 without error. */
  errorAtByte: number;
}

const GARBAGE = [10, 13, 42, 36, 10, 48, 49, 58, 43, 45, 0];

function withGarbage(bytes: Uint8Array, from: number, to: number, seed: number, spareBytes: number) {
  const lead = (seed % 7) + 1;
  const buf = new Uint8Array(lead + (to - from) + spareBytes);
  for (let i = 0; i < buf.length; i++) buf[i] = GARBAGE[(i + seed) % GARBAGE.length] as number;
  buf.set(bytes.subarray(from, to), lead);
  return { buf, start: lead, end: lead + (to - from) };
}

/** Garbage after end: usually a few bytes, sometimes a large, mostly unused buffer. */
const spare = (seed: number) => (seed % 3 === 0 ? 2048 : 9);

/** Deep copy of a decoded value: Uint8Array views become owned copies. */
export function deepCopy<T>(v: T): T {
  if (v instanceof Uint8Array) return v.slice() as T;
  if (Array.isArray(v)) return v.map(deepCopy) as T;
  return v;
}

/** Feeds chunks through codec like the reactor would; see ReassembleResult. */
export function reassemble<T>(codec: Codec<T, any>, chunks: readonly Uint8Array[], maxFrameBytes: number): ReassembleResult<T> {
  const frames: T[] = [];
  let pending = new Uint8Array(0); // the pending bytes live at pending[lead, lead + pendingLen)
  let pendingLen = 0;
  let maxPendingBytes = 0;
  let fed = 0;
  let seed = 0;
  for (const chunk of chunks) {
    seed++;
    let buf: Uint8Array;
    let start: number;
    let end: number;
    if (pendingLen === 0) {
      ({ buf, start, end } = withGarbage(chunk, 0, chunk.length, seed, spare(seed)));
    } else {
      const merged = new Uint8Array(pendingLen + chunk.length);
      merged.set(pending.subarray(0, pendingLen), 0);
      merged.set(chunk, pendingLen);
      ({ buf, start, end } = withGarbage(merged, 0, merged.length, seed, spare(seed)));
    }
    fed += chunk.length;
    for (;;) {
      const n = codec.measure(buf, start, end, maxFrameBytes);
      if (n === FRAME_INCOMPLETE) break;
      if (n === FRAME_TOO_LARGE || n === FRAME_MALFORMED) {
        return {
          frames,
          error: n === FRAME_TOO_LARGE ? "too-large" : "malformed",
          pendingBytes: end - start,
          maxPendingBytes,
          errorAtByte: fed,
        };
      }
      if (n < 0 || start + n > end) throw new Error(`${codec.name}.measure returned ${n} for ${end - start} bytes`);
      frames.push(deepCopy(codec.decode(buf, start, n)));
      start += n;
    }
    pendingLen = end - start;
    pending = buf.slice(start, end);
    if (pendingLen > maxPendingBytes) maxPendingBytes = pendingLen;
  }
  return { frames, error: null, pendingBytes: pendingLen, maxPendingBytes, errorAtByte: -1 };
}

export { concat } from "./net.ts";

/** Up to 24 cut points as fractions of a length, for splitting a stream at random (fast-check). */
export const cutFractions = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 24 });

/** The cut fractions as offsets into `len` bytes, for splitAt. */
export const cutsOf = (len: number, fractions: readonly number[]): number[] => fractions.map((f) => Math.floor(f * len));

/** Splits bytes at the given cut points (any order, duplicates and out-of-range ignored). */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of points) {
    out.push(bytes.slice(prev, c));
    prev = c;
  }
  out.push(bytes.slice(prev));
  return out;
}
