import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { FALLBACK_REF_BASE, NO_REF, SegmentPool, SegmentRefError } from "../src/conn-table/index.ts";
import { MyriadError } from "../src/errors.ts";

function fill(pool: SegmentPool, ref: number, length: number, seed: number): void {
  const buf = pool.buffer(ref);
  const off = pool.offset(ref);
  for (let i = 0; i < length; i++) buf[off + i] = (seed * 31 + i * 7) & 0xff;
}

function expectPattern(pool: SegmentPool, ref: number, length: number, seed: number, skip = 0): void {
  const buf = pool.buffer(ref);
  const off = pool.offset(ref);
  for (let i = 0; i < length; i++) {
    const want = (seed * 31 + (i + skip) * 7) & 0xff;
    if (buf[off + i] !== want) throw new Error(`ref ${ref} byte ${i}: ${buf[off + i]} != ${want}`);
  }
}

function refError(fn: () => unknown): SegmentRefError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SegmentRefError);
    expect(e).toBeInstanceOf(MyriadError);
    expect((e as SegmentRefError).code).toBe("ERR_SEGMENT_REF");
    return e as SegmentRefError;
  }
  throw new Error("expected a SegmentRefError");
}

describe("SegmentPool options", () => {
  test("out-of-range options are RangeErrors naming the option and its range", () => {
    const cases: Array<[Record<string, number>, string]> = [
      [{ maxSegments: -1 }, "maxSegments"],
      [{ maxSegments: 1.5 }, "maxSegments"],
      [{ maxSegments: 2 ** 30 + 1 }, "maxSegments"],
      [{ maxSegments: 2 ** 30 }, "maxSegments"], // its last ref would be the first fallback ref
      [{ maxSegments: 4, segmentBytes: 0 }, "segmentBytes"],
      [{ maxSegments: 4, segmentBytes: 2 ** 24 + 1 }, "segmentBytes"],
      [{ maxSegments: 4, chunkSegments: 0 }, "chunkSegments"],
      [{ maxSegments: 4, segmentBytes: 4096, chunkSegments: 2 ** 18 + 1 }, "chunkSegments"],
    ];
    for (const [opts, name] of cases) {
      expect(() => new SegmentPool(opts as { maxSegments: number })).toThrow(RangeError);
      expect(() => new SegmentPool(opts as { maxSegments: number })).toThrow(new RegExp(`${name} must be an integer in \\d+\\.\\.\\d+`));
    }
  });

  test("a new pool reserves nothing; defaults are 4096-byte segments in 256-segment chunks", () => {
    const pool = new SegmentPool({ maxSegments: 1000 });
    expect(pool.segmentBytes).toBe(4096);
    expect(pool.chunkSegments).toBe(256);
    expect(pool.stats()).toEqual({
      segmentBytes: 4096,
      segmentsInUse: 0,
      segmentsReserved: 0,
      fallbackBuffers: 0,
      fallbackBytes: 0,
      bytesInUse: 0,
      maxSegments: 1000,
      reservedBytes: 0,
    });
    const ref = pool.acquire(10);
    expect(ref).toBeLessThan(FALLBACK_REF_BASE);
    expect(pool.buffer(ref).length).toBe(256 * 4096);
    expect(pool.stats().segmentsReserved).toBe(256);
  });
});

describe("SegmentPool acquire/release", () => {
  test("pooled segments are distinct, segmentBytes long, inside one chunk each", () => {
    const pool = new SegmentPool({ segmentBytes: 64, maxSegments: 10, chunkSegments: 4 });
    const refs = Array.from({ length: 10 }, (_, i) => pool.acquire(i * 6));
    expect(new Set(refs).size).toBe(10);
    for (const r of refs) {
      expect(r).toBeGreaterThanOrEqual(1); // 0 is NO_REF: a zero-filled ref column means "none"
      expect(r).toBeLessThanOrEqual(10);
      expect(pool.capacity(r)).toBe(64);
      expect(pool.offset(r) % 64).toBe(0);
      expect(pool.offset(r) + 64).toBeLessThanOrEqual(pool.buffer(r).length);
    }
    const s = pool.stats();
    expect(s.segmentsInUse).toBe(10);
    expect(s.segmentsReserved).toBe(10); // chunks of 4, 4 and 2
    expect(s.bytesInUse).toBe(640);
  });

  test("past maxSegments acquire falls back; a released segment is pooled again", () => {
    const pool = new SegmentPool({ segmentBytes: 32, maxSegments: 3, chunkSegments: 2 });
    const pooled = [pool.acquire(32), pool.acquire(1), pool.acquire(0)];
    for (const r of pooled) expect(r).toBeLessThan(FALLBACK_REF_BASE);
    const fb = pool.acquire(5);
    expect(fb).toBeGreaterThanOrEqual(FALLBACK_REF_BASE);
    expect(pool.capacity(fb)).toBe(32);
    expect(pool.offset(fb)).toBe(0);
    expect(pool.buffer(fb).length).toBe(32);
    expect(pool.stats()).toMatchObject({ segmentsInUse: 3, fallbackBuffers: 1, fallbackBytes: 32, bytesInUse: 128 });
    pool.release(pooled[1]!);
    const again = pool.acquire(8);
    expect(again).toBe(pooled[1]!);
    pool.release(fb);
    expect(pool.stats()).toMatchObject({ segmentsInUse: 3, fallbackBuffers: 0, fallbackBytes: 0, bytesInUse: 96 });
  });

  test("needs larger than segmentBytes get a fallback of exactly that size; its index is reused", () => {
    const pool = new SegmentPool({ segmentBytes: 16, maxSegments: 8 });
    const big = pool.acquire(1000);
    expect(big).toBeGreaterThanOrEqual(FALLBACK_REF_BASE);
    expect(pool.capacity(big)).toBe(1000);
    expect(pool.stats()).toMatchObject({ segmentsInUse: 0, segmentsReserved: 0, fallbackBuffers: 1, fallbackBytes: 1000 });
    pool.release(big);
    const refs = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const r = pool.acquire(17 + i);
      refs.add(r);
      pool.release(r);
    }
    expect([...refs]).toEqual([big]);
  });

  test("maxSegments 0 means every ref is a fallback", () => {
    const pool = new SegmentPool({ segmentBytes: 16, maxSegments: 0 });
    const r = pool.acquire(3);
    expect(r).toBeGreaterThanOrEqual(FALLBACK_REF_BASE);
    expect(pool.capacity(r)).toBe(16);
    pool.release(r);
  });

  test("acquire rejects a negative, fractional or huge minBytes", () => {
    const pool = new SegmentPool({ maxSegments: 2 });
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 31]) expect(() => pool.acquire(bad)).toThrow(RangeError);
    expect(pool.stats().segmentsInUse).toBe(0);
  });
});

describe("SegmentPool bad refs", () => {
  test("double release throws ERR_SEGMENT_REF and leaves the free list intact", () => {
    const pool = new SegmentPool({ segmentBytes: 8, maxSegments: 4 });
    const a = pool.acquire(8);
    const b = pool.acquire(8);
    pool.release(a);
    const err = refError(() => pool.release(a));
    expect(err.ref).toBe(a);
    expect(err.message).toContain("release each ref exactly once");
    expect(pool.stats().segmentsInUse).toBe(1);
    // had the double release pushed `a` twice, two acquires would hand out the same segment
    const c = pool.acquire(8);
    const d = pool.acquire(8);
    const e = pool.acquire(8);
    expect(new Set([b, c, d, e]).size).toBe(4);
    for (const r of [b, c, d, e]) expect(r).toBeLessThan(FALLBACK_REF_BASE);
    expect(pool.acquire(8)).toBeGreaterThanOrEqual(FALLBACK_REF_BASE);
  });

  test("double release of a fallback throws and does not duplicate its index", () => {
    const pool = new SegmentPool({ segmentBytes: 8, maxSegments: 0 });
    const a = pool.acquire(100);
    pool.release(a);
    refError(() => pool.release(a));
    const x = pool.acquire(100);
    const y = pool.acquire(100);
    expect(x).not.toBe(y);
    expect(pool.stats().fallbackBuffers).toBe(2);
  });

  test("unknown refs are refused by release, buffer, offset, capacity and grow", () => {
    const pool = new SegmentPool({ segmentBytes: 8, maxSegments: 4 });
    expect(pool.acquire(1)).toBe(1); // the first segment; 0 is never a ref
    const never = [NO_REF, -1, 2, 4, 5, 1.5, Number.NaN, FALLBACK_REF_BASE, FALLBACK_REF_BASE + 7, 2 ** 31];
    for (const r of never) {
      refError(() => pool.release(r));
      refError(() => pool.buffer(r));
      refError(() => pool.offset(r));
      refError(() => pool.capacity(r));
      refError(() => pool.grow(r, 0, 100));
      expect(pool.isAcquired(r)).toBe(false);
    }
    expect(pool.stats()).toMatchObject({ segmentsInUse: 1, fallbackBuffers: 0 });
  });
});

describe("SegmentPool grow", () => {
  test("grow of a pooled segment keeps its bytes in a fallback and releases the segment", () => {
    const pool = new SegmentPool({ segmentBytes: 64, maxSegments: 4 });
    const r = pool.acquire(64);
    fill(pool, r, 50, 9);
    const g = pool.grow(r, 50, 150);
    expect(g).toBeGreaterThanOrEqual(FALLBACK_REF_BASE);
    expect(pool.capacity(g)).toBe(150);
    expectPattern(pool, g, 50, 9);
    expect(pool.isAcquired(r)).toBe(false);
    refError(() => pool.release(r));
    expect(pool.stats()).toMatchObject({ segmentsInUse: 0, fallbackBuffers: 1, fallbackBytes: 150 });
  });

  test("fallbacks grow by doubling when the need is smaller than twice the capacity", () => {
    const pool = new SegmentPool({ segmentBytes: 64, maxSegments: 1 });
    let r = pool.acquire(64);
    fill(pool, r, 64, 3);
    r = pool.grow(r, 64, 65);
    expect(pool.capacity(r)).toBe(128);
    fill(pool, r, 128, 4);
    r = pool.grow(r, 128, 129);
    expect(pool.capacity(r)).toBe(256);
    expectPattern(pool, r, 128, 4);
    r = pool.grow(r, 100, 5000);
    expect(pool.capacity(r)).toBe(5000);
    expectPattern(pool, r, 100, 4);
    expect(pool.stats()).toMatchObject({ segmentsInUse: 0, fallbackBuffers: 1, fallbackBytes: 5000 });
  });

  test("grow within capacity returns the same ref; startByte moves the kept bytes to the front", () => {
    const pool = new SegmentPool({ segmentBytes: 64, maxSegments: 2 });
    const other = pool.acquire(64);
    fill(pool, other, 64, 77);
    const r = pool.acquire(64);
    fill(pool, r, 64, 5);
    expect(pool.grow(r, 40, 64)).toBe(r);
    expectPattern(pool, r, 64, 5);
    expect(pool.grow(r, 40, 10, 30)).toBe(r);
    expectPattern(pool, r, 10, 5, 30);
    // dropping a prefix while growing: the new ref starts with bytes [startByte, usedBytes)
    fill(pool, r, 64, 6);
    const g = pool.grow(r, 64, 100, 20);
    expect(pool.capacity(g)).toBe(128);
    expectPattern(pool, g, 44, 6, 20);
    expectPattern(pool, other, 64, 77);
  });

  test("bad counts are RangeErrors and leave the ref acquired", () => {
    const pool = new SegmentPool({ segmentBytes: 64, maxSegments: 2 });
    const r = pool.acquire(1);
    expect(() => pool.grow(r, 65, 100)).toThrow(RangeError);
    expect(() => pool.grow(r, 10, 100, 11)).toThrow(RangeError);
    expect(() => pool.grow(r, -1, 100)).toThrow(RangeError);
    expect(() => pool.grow(r, 10, 2 ** 31)).toThrow(RangeError);
    expect(pool.isAcquired(r)).toBe(true);
    expect(pool.capacity(r)).toBe(64);
  });

  test("a need below the kept bytes still keeps them all", () => {
    const pool = new SegmentPool({ segmentBytes: 8, maxSegments: 0 });
    let r = pool.acquire(100);
    fill(pool, r, 100, 2);
    r = pool.grow(r, 100, 10);
    expect(pool.capacity(r)).toBe(100);
    expectPattern(pool, r, 100, 2);
  });
});

describe("SegmentPool trim", () => {
  test("trim drops only chunks with no segment in use; they come back on demand", () => {
    const pool = new SegmentPool({ segmentBytes: 16, maxSegments: 12, chunkSegments: 4 });
    const refs = Array.from({ length: 12 }, () => pool.acquire(16));
    const keep = refs[5]!; // chunk 1
    fill(pool, keep, 16, 42);
    for (const r of refs) if (r !== keep) pool.release(r);
    expect(pool.trim()).toBe(2 * 4 * 16);
    expect(pool.stats()).toMatchObject({ segmentsInUse: 1, segmentsReserved: 4, reservedBytes: 64 });
    expect(pool.trim()).toBe(0);
    expectPattern(pool, keep, 16, 42);
    const again = Array.from({ length: 11 }, () => pool.acquire(16));
    expect(new Set([...again, keep]).size).toBe(12);
    for (const r of again) expect(r).toBeLessThan(FALLBACK_REF_BASE);
    expect(pool.stats().segmentsReserved).toBe(12);
    expectPattern(pool, keep, 16, 42);
  });
});

describe("SegmentPool property test", () => {
  type Op =
    | { kind: "acquire"; bytes: number }
    | { kind: "release"; pick: number }
    | { kind: "grow"; pick: number; extra: number; drop: number }
    | { kind: "trim" };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 100 }).map((bytes) => ({ kind: "acquire", bytes }) as Op) },
    { weight: 4, arbitrary: fc.nat().map((pick) => ({ kind: "release", pick }) as Op) },
    {
      weight: 3,
      arbitrary: fc
        .record({ pick: fc.nat(), extra: fc.integer({ min: 0, max: 80 }), drop: fc.nat() })
        .map((r) => ({ kind: "grow", ...r }) as Op),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "trim" } as Op) },
  );

  test("random acquire/grow/release/trim: live refs never overlap, bytes survive, stats add up", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 48 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 1, max: 5 }),
        fc.array(opArb, { minLength: 1, maxLength: 120, size: "max" }),
        (segmentBytes, maxSegments, chunkSegments, ops) => {
          const pool = new SegmentPool({ segmentBytes, maxSegments, chunkSegments });
          // ref -> seed of the pattern written over its whole capacity; `skip` records a dropped prefix
          const live = new Map<number, { seed: number; length: number; skip: number }>();
          let nextSeed = 1;
          for (const op of ops) {
            if (op.kind === "acquire") {
              const pooledBefore = [...live.keys()].filter((x) => x < FALLBACK_REF_BASE).length;
              const r = pool.acquire(op.bytes);
              expect(live.has(r)).toBe(false);
              // a small need falls back only when every pooled segment is taken
              if (op.bytes <= segmentBytes) expect(r >= FALLBACK_REF_BASE).toBe(pooledBefore === maxSegments);
              else expect(r).toBeGreaterThanOrEqual(FALLBACK_REF_BASE);
              expect(pool.capacity(r)).toBeGreaterThanOrEqual(op.bytes);
              const seed = nextSeed++;
              fill(pool, r, pool.capacity(r), seed);
              live.set(r, { seed, length: pool.capacity(r), skip: 0 });
            } else if (op.kind === "release") {
              if (live.size === 0) continue;
              const r = [...live.keys()][op.pick % live.size]!;
              pool.release(r);
              live.delete(r);
              refError(() => pool.release(r));
            } else if (op.kind === "grow") {
              if (live.size === 0) continue;
              const r = [...live.keys()][op.pick % live.size]!;
              const info = live.get(r)!;
              const used = info.length;
              const start = op.drop % (used + 1);
              const need = used - start + op.extra;
              const g = pool.grow(r, used, need, start);
              expect(pool.capacity(g)).toBeGreaterThanOrEqual(need);
              expectPattern(pool, g, used - start, info.seed, info.skip + start);
              live.delete(r);
              if (g !== r) expect(pool.isAcquired(r)).toBe(false);
              // rewrite the whole new capacity with a fresh pattern
              const seed = nextSeed++;
              fill(pool, g, pool.capacity(g), seed);
              live.set(g, { seed, length: pool.capacity(g), skip: 0 });
            } else {
              pool.trim();
            }
            // every live ref still holds exactly its pattern: any overlap would have overwritten one
            for (const [r, info] of live) expectPattern(pool, r, info.length, info.seed, info.skip);
            // pooled ranges within one chunk are disjoint
            const spans = [...live.keys()]
              .filter((r) => r < FALLBACK_REF_BASE)
              .map((r) => ({ buf: pool.buffer(r), start: pool.offset(r), end: pool.offset(r) + pool.capacity(r) }));
            for (let i = 0; i < spans.length; i++) {
              for (let j = i + 1; j < spans.length; j++) {
                const a = spans[i]!;
                const b = spans[j]!;
                if (a.buf === b.buf) expect(a.end <= b.start || b.end <= a.start).toBe(true);
              }
            }
            let pooled = 0;
            let fallbacks = 0;
            let fallbackBytes = 0;
            for (const r of live.keys()) {
              expect(pool.isAcquired(r)).toBe(true);
              if (r < FALLBACK_REF_BASE) pooled++;
              else {
                fallbacks++;
                fallbackBytes += pool.capacity(r);
              }
            }
            const s = pool.stats();
            expect(s.segmentsInUse).toBe(pooled);
            expect(s.fallbackBuffers).toBe(fallbacks);
            expect(s.fallbackBytes).toBe(fallbackBytes);
            expect(s.bytesInUse).toBe(pooled * segmentBytes + fallbackBytes);
            expect(s.segmentsReserved).toBeGreaterThanOrEqual(pooled);
            expect(s.segmentsReserved).toBeLessThanOrEqual(maxSegments);
            expect(s.reservedBytes).toBe(s.segmentsReserved * segmentBytes + fallbackBytes);
          }
          for (const r of live.keys()) pool.release(r);
          expect(pool.stats()).toMatchObject({ segmentsInUse: 0, fallbackBuffers: 0, fallbackBytes: 0, bytesInUse: 0 });
        },
      ),
      { numRuns: 250 },
    );
  });
});
