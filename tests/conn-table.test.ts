import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { runFixture } from "./helpers/fixture.ts";
import { ConnTable, MAX_CAPACITY, NO_REF, STATE_ALLOCATED, STATE_FREE } from "../src/conn-table/index.ts";

function liveSet(table: ConnTable): number[] {
  const out: number[] = [];
  table.forEachLive((h) => out.push(h));
  return out;
}

describe("ConnTable construction", () => {
  test("capacity out of 1..2^20 or not an integer is a RangeError naming the range", () => {
    for (const bad of [0, -1, MAX_CAPACITY + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      let err: unknown;
      try {
        new ConnTable(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RangeError);
      expect((err as Error).message).toContain("1..1048576");
      expect((err as Error).message).toContain(String(bad));
    }
  });

  test("capacity 1 and 2^20 are accepted", () => {
    expect(new ConnTable(1).capacity).toBe(1);
    const big = new ConnTable(MAX_CAPACITY);
    expect(big.capacity).toBe(MAX_CAPACITY);
    expect(big.size).toBe(0);
  });

  test("BYTES_PER_SLOT is the sum of the element sizes of every typed array the table holds, <= 48", () => {
    const table = new ConnTable(16);
    let sum = 0;
    let arrays = 0;
    for (const value of Object.values(table)) {
      if (ArrayBuffer.isView(value)) {
        const view = value as unknown as { BYTES_PER_ELEMENT: number; length: number };
        expect(view.length).toBe(16);
        sum += view.BYTES_PER_ELEMENT;
        arrays++;
      }
    }
    expect(arrays).toBe(12); // 11 per-slot fields + the free-list ring
    expect(sum).toBe(ConnTable.BYTES_PER_SLOT);
    expect(ConnTable.BYTES_PER_SLOT).toBeLessThanOrEqual(48);
  });
});

describe("ConnTable alloc/free", () => {
  test("alloc hands out distinct live handles until full, then -1", () => {
    const table = new ConnTable(5);
    const handles = new Set<number>();
    const slots = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const h = table.alloc();
      expect(h).toBeGreaterThanOrEqual(0);
      expect(table.isLive(h)).toBe(true);
      handles.add(h);
      slots.add(table.slot(h));
    }
    expect(handles.size).toBe(5);
    expect([...slots].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(table.size).toBe(5);
    expect(table.alloc()).toBe(-1);
    expect(table.alloc()).toBe(-1);
    expect(table.size).toBe(5);
  });

  test("free of a live handle succeeds once; the handle is stale after, also once the slot is reused", () => {
    const table = new ConnTable(1);
    const h = table.alloc();
    expect(table.free(h)).toBe(true);
    expect(table.size).toBe(0);
    expect(table.isLive(h)).toBe(false);
    expect(table.free(h)).toBe(false);
    expect(table.size).toBe(0);
    const h2 = table.alloc();
    expect(table.slot(h2)).toBe(table.slot(h));
    expect(h2).not.toBe(h);
    expect(table.isLive(h)).toBe(false);
    expect(table.free(h)).toBe(false);
    expect(table.isLive(h2)).toBe(true);
    expect(table.size).toBe(1);
  });

  test("malformed or unknown handles are not live and free() refuses them", () => {
    const table = new ConnTable(4);
    const h = table.alloc();
    for (const bad of [-1, -h - 1, Number.NaN, h + 0.5, 2 ** 32, 2 ** 32 + h, 2 ** 31 + h, 7, 3, Number.POSITIVE_INFINITY]) {
      expect(table.isLive(bad)).toBe(false);
      expect(table.free(bad)).toBe(false);
    }
    expect(table.size).toBe(1);
    expect(table.isLive(h)).toBe(true);
  });

  test("one slot reused 2^12 - 1 times (at least the 2^11 the contract promises): the first handle stays stale every time", () => {
    const table = new ConnTable(1);
    const first = table.alloc();
    expect(table.free(first)).toBe(true);
    const seen = new Set<number>([first]);
    for (let reuse = 1; reuse < ConnTable.GENERATION_PERIOD; reuse++) {
      const h = table.alloc();
      expect(table.slot(h)).toBe(table.slot(first));
      expect(seen.has(h)).toBe(false);
      seen.add(h);
      expect(table.isLive(first)).toBe(false);
      expect(table.free(first)).toBe(false);
      expect(table.isLive(h)).toBe(true);
      expect(table.free(h)).toBe(true);
    }
    expect(seen.size).toBe(4096);
    expect(ConnTable.GENERATION_PERIOD).toBeGreaterThan(2 ** 11);
  });

  test("the 2^12-th reuse of one slot wraps the 12 handle bits: the first handle matches again (documented limit)", () => {
    const table = new ConnTable(1);
    const first = table.alloc();
    table.free(first);
    for (let reuse = 1; reuse < ConnTable.GENERATION_PERIOD; reuse++) table.free(table.alloc());
    const wrapped = table.alloc();
    expect(wrapped).toBe(first);
    expect(table.generation[0]).toBe(ConnTable.GENERATION_PERIOD);
  });

  test("FIFO free list: a freed slot is reused only after every slot that was free before it", () => {
    const capacity = 8;
    const table = new ConnTable(capacity);
    const a = table.alloc();
    table.free(a);
    // slots 1..7 were free before slot 0 came back: they go first
    const order: number[] = [];
    for (let i = 0; i < capacity; i++) order.push(table.slot(table.alloc()));
    expect(order).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
    // with the table full, slots come back in the order they were freed
    const live = liveSet(table);
    const freeOrder = [5, 2, 7];
    for (const s of freeOrder) table.free(live.find((h) => table.slot(h) === s)!);
    expect([table.alloc(), table.alloc(), table.alloc()].map((h) => table.slot(h))).toEqual(freeOrder);
  });

  test("under churn with k free slots, one slot is not reused before k allocations", () => {
    const capacity = 64;
    const liveTarget = 40;
    const table = new ConnTable(capacity);
    const live: number[] = [];
    for (let i = 0; i < liveTarget; i++) live.push(table.alloc());
    const lastAllocAt = new Map<number, number>();
    let minGap = Number.POSITIVE_INFINITY;
    for (let step = 0; step < 5000; step++) {
      const victim = (step * 7919) % live.length;
      expect(table.free(live[victim]!)).toBe(true);
      const h = table.alloc();
      const s = table.slot(h);
      const prev = lastAllocAt.get(s);
      if (prev !== undefined) minGap = Math.min(minGap, step - prev);
      lastAllocAt.set(s, step);
      live[victim] = h;
    }
    expect(minGap).toBeGreaterThanOrEqual(capacity - liveTarget);
  });

  test("handles stay unsigned 32-bit integers at the largest slot and generation", () => {
    const table = new ConnTable(MAX_CAPACITY);
    let last = -1;
    for (let i = 0; i < MAX_CAPACITY; i++) last = table.alloc();
    expect(table.slot(last)).toBe(MAX_CAPACITY - 1);
    expect(table.alloc()).toBe(-1);
    let h = last;
    let maxHandle = h;
    for (let reuse = 0; reuse < ConnTable.GENERATION_PERIOD; reuse++) {
      table.free(h);
      h = table.alloc();
      expect(table.slot(h)).toBe(MAX_CAPACITY - 1);
      expect(h >>> 0).toBe(h);
      expect(table.isLive(h)).toBe(true);
      maxHandle = Math.max(maxHandle, h);
    }
    expect(maxHandle).toBe(2 ** 32 - 1);
  });
});

describe("ConnTable fields", () => {
  test("free clears every field of the slot, so a reused slot starts all zeros (refs NO_REF)", () => {
    const table = new ConnTable(1);
    const h = table.alloc();
    const s = table.slot(h);
    const fields = () => [
      table.state[s],
      table.flags[s],
      table.lastActivity[s],
      table.bytesIn[s],
      table.bytesOut[s],
      table.inRef[s],
      table.inLen[s],
      table.outRef[s],
      table.outStart[s],
      table.outLen[s],
    ];
    expect(fields()).toEqual([STATE_ALLOCATED, 0, 0, 0, 0, NO_REF, 0, NO_REF, 0, 0]);
    table.state[s] = 7;
    table.flags[s] = 0xff;
    table.lastActivity[s] = 123456;
    table.bytesIn[s] = 2 ** 40;
    table.bytesOut[s] = 99;
    table.inRef[s] = 5;
    table.inLen[s] = 17;
    table.outRef[s] = 6;
    table.outStart[s] = 3;
    table.outLen[s] = 9;
    expect(table.isLive(h)).toBe(true); // any non-zero state is live
    expect(table.free(h)).toBe(true);
    expect(fields()).toEqual([STATE_FREE, 0, 0, 0, 0, NO_REF, 0, NO_REF, 0, 0]);
    const h2 = table.alloc();
    expect(table.slot(h2)).toBe(s);
    expect(fields()).toEqual([STATE_ALLOCATED, 0, 0, 0, 0, NO_REF, 0, NO_REF, 0, 0]);
    // Only some fields used: free clears those and leaves the rest as they were (0).
    table.bytesOut[s] = 1;
    expect(table.free(h2)).toBe(true);
    expect(fields()).toEqual([STATE_FREE, 0, 0, 0, 0, NO_REF, 0, NO_REF, 0, 0]);
  });

  test("slots that use no field cost no memory: 2^20 live slots write only the state column", async () => {
    // Measured in a fresh process, page by page (see the fixture for how and why).
    type Pages = { pages: number; constructed: number; allocated: number; written: number };
    const r = await runFixture<{
      capacity: number;
      pageBytes: number;
      edgePages: number;
      tables: number;
      columns: Record<string, Pages>;
      rssAnonMiB: { construct: number; alloc: number; everyField: number };
    }>(
      "conn-table-pages.ts",
    );
    expect(r.capacity).toBe(MAX_CAPACITY);
    const { state, generation, ring, ...fields } = r.columns;
    const MiB = (pages: number) => (pages * r.pageBytes) / 2 ** 20;
    const allPages = Object.values(r.columns).reduce((n, c) => n + c.pages, 0);
    console.log(
      `2^20 live slots, no field written: state ${state!.allocated}/${state!.pages} pages, generation ${generation!.allocated}/${generation!.pages} and free ring ${ring!.allocated}/${ring!.pages} (read by alloc), ` +
        `other columns ${Object.values(fields).reduce((n, c) => n + c.allocated, 0)}/${Object.values(fields).reduce((n, c) => n + c.pages, 0)}; ` +
        `RssAnon +${r.rssAnonMiB.alloc.toFixed(1)} MiB (then every field written: +${r.rssAnonMiB.everyField.toFixed(1)} MiB; the whole table is ${MiB(allPages)} MiB)`,
    );
    // Fresh memory (the fixture makes another table when the allocator recycled resident memory):
    // construction wrote at most an edge page of each column.
    for (const [name, c] of Object.entries(r.columns)) {
      expect(c.constructed, `pages of ${name} resident after construction (table ${r.tables} of at most 3)`).toBeLessThanOrEqual(r.edgePages);
      // The control: the page count sees every write.
      expect(c.written, `${name} fully written`).toBe(c.pages);
    }
    expect(state!.allocated, "pages of state alloc() wrote").toBe(state!.pages);
    // alloc() never writes a field column: not one page of theirs more than construction left.
    for (const [name, c] of Object.entries(fields)) expect(c.allocated, `pages of ${name} alloc() touched`).toBe(c.constructed);
    // alloc() reads generation and the free ring; whether a read page costs memory is the kernel's business.
    expect(generation!.allocated).toBeLessThanOrEqual(generation!.pages);
    expect(ring!.allocated).toBeLessThanOrEqual(ring!.pages);
    // The whole process agrees, with wide margins on both sides: what alloc() may touch
    // (state, generation, ring: 7 MiB) against the whole table (48 MiB), split in the middle.
    const touchedMiB = MiB(state!.pages + generation!.pages + ring!.pages);
    const split = (touchedMiB + MiB(allPages)) / 2;
    expect(r.rssAnonMiB.alloc).toBeLessThan(split);
    expect(r.rssAnonMiB.alloc + r.rssAnonMiB.everyField).toBeGreaterThan(split);
  });

  test("handleOf gives the live handle of a slot, -1 for a free or out-of-range slot", () => {
    const table = new ConnTable(3);
    const h = table.alloc();
    const s = table.slot(h);
    expect(table.handleOf(s)).toBe(h);
    expect(table.handleOf(1)).toBe(-1);
    expect(table.handleOf(-1)).toBe(-1);
    expect(table.handleOf(3)).toBe(-1);
    expect(table.handleOf(0.5)).toBe(-1);
    table.free(h);
    expect(table.handleOf(s)).toBe(-1);
    const h2 = table.alloc();
    const h3 = table.alloc();
    const h4 = table.alloc(); // slot 0 again, new generation
    expect(table.handleOf(table.slot(h4))).toBe(h4);
    expect(h4).not.toBe(h);
    expect(table.handleOf(table.slot(h2))).toBe(h2);
    expect(table.handleOf(table.slot(h3))).toBe(h3);
  });
});

describe("ConnTable forEachLive", () => {
  test("visits exactly the live handles, in slot order", () => {
    const table = new ConnTable(10);
    const hs = Array.from({ length: 10 }, () => table.alloc());
    table.free(hs[3]!);
    table.free(hs[8]!);
    table.free(hs[0]!);
    const expected = hs.filter((_, i) => i !== 3 && i !== 8 && i !== 0);
    expect(liveSet(table)).toEqual(expected);
    expect(liveSet(new ConnTable(4))).toEqual([]);
  });

  test("fn may free the handle it is given: every live handle is visited once, the table ends empty", () => {
    const table = new ConnTable(100);
    const hs = Array.from({ length: 60 }, () => table.alloc());
    for (let i = 0; i < 60; i += 3) table.free(hs[i]!);
    const before = liveSet(table);
    const visited: number[] = [];
    table.forEachLive((h) => {
      visited.push(h);
      expect(table.free(h)).toBe(true);
    });
    expect(visited).toEqual(before);
    expect(table.size).toBe(0);
    expect(liveSet(table)).toEqual([]);
  });

  test("fn freeing a handle not yet visited skips it", () => {
    const table = new ConnTable(4);
    const [a, b, c] = [table.alloc(), table.alloc(), table.alloc()];
    const visited: number[] = [];
    table.forEachLive((h) => {
      visited.push(h);
      if (h === a) table.free(c);
    });
    expect(visited).toEqual([a, b]);
  });
});

describe("ConnTable model test", () => {
  type Op = { kind: "alloc" } | { kind: "free"; pick: number } | { kind: "freeStale"; pick: number } | { kind: "freeJunk"; value: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ kind: "alloc" } as Op) },
    { weight: 3, arbitrary: fc.nat().map((pick) => ({ kind: "free", pick }) as Op) },
    { weight: 1, arbitrary: fc.nat().map((pick) => ({ kind: "freeStale", pick }) as Op) },
    { weight: 1, arbitrary: fc.integer({ min: -5, max: 2 ** 32 + 5 }).map((value) => ({ kind: "freeJunk", value }) as Op) },
  );

  test("random alloc/free sequences agree with a Map model", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(opArb, { minLength: 1, maxLength: 300, size: "max" }), (capacity, ops) => {
        const table = new ConnTable(capacity);
        const model = new Map<number, number>(); // handle -> slot
        const stale: number[] = [];
        for (const op of ops) {
          switch (op.kind) {
            case "alloc": {
              const h = table.alloc();
              if (model.size === capacity) {
                expect(h).toBe(-1);
              } else {
                expect(h).toBeGreaterThanOrEqual(0);
                expect(model.has(h)).toBe(false);
                for (const s of model.values()) expect(s).not.toBe(table.slot(h));
                model.set(h, table.slot(h));
              }
              break;
            }
            case "free": {
              if (model.size === 0) break;
              const h = [...model.keys()][op.pick % model.size]!;
              expect(table.free(h)).toBe(true);
              model.delete(h);
              stale.push(h);
              break;
            }
            case "freeStale": {
              if (stale.length === 0) break;
              expect(table.free(stale[op.pick % stale.length]!)).toBe(false);
              break;
            }
            case "freeJunk": {
              expect(table.free(op.value)).toBe(model.has(op.value));
              if (model.delete(op.value)) stale.push(op.value);
              break;
            }
          }
          expect(table.size).toBe(model.size);
          for (const h of stale) expect(table.isLive(h)).toBe(false);
        }
        const live = liveSet(table);
        expect(live.slice().sort((x, y) => x - y)).toEqual([...model.keys()].sort((x, y) => x - y));
        for (const [h, s] of model) {
          expect(table.isLive(h)).toBe(true);
          expect(table.handleOf(s)).toBe(h);
        }
      }),
      { numRuns: 300 },
    );
  });
});
