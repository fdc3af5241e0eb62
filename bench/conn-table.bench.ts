/**
 * ConnTable against the obvious alternative, a Map<number, object> with one object per
 * connection holding the same fields.
 *
 *   bun run bench conn-table                 # full: 100k live entries churned, memory at 1M
 *   BENCH_QUICK=1 bun run bench conn-table   # reduced: 10k live, Map memory at 200k
 *
 * Time: "free + alloc" frees one live entry and creates another, keeping LIVE entries; the
 * victims follow one precomputed pseudo-random order for both. "lookup + update" is the per
 * data event work: check a handle is live and add to its bytesIn.
 * The tables get one full alloc/free lap before timing, so the figures are the steady state,
 * not the one-time page faults of a fresh table. ConnTable(2^20) shows the price of the FIFO
 * free ring: with few live entries in a big table, reuse walks the whole table (cache misses)
 * instead of staying on a few hot slots as a LIFO stack would; that is what buys a stale handle
 * 2^11 × (free slots) allocations of safety instead of 2^11.
 * Memory: each figure comes from a fresh child process (RSS never shrinks, so one process
 * would colour the next figure): RSS and heap deltas after Bun.gc(true), with every page of
 * the table written (the OS hands out zero pages lazily; an untouched table costs nothing).
 */
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { ConnTable, MAX_CAPACITY } from "../src/conn-table/index.ts";

const QUICK = process.env.BENCH_QUICK === "1" || process.argv.includes("--quick");
const LIVE = QUICK ? 10_000 : 100_000;
const MEM_TABLE_N = 1_000_000;
const MEM_MAP_N = QUICK ? 200_000 : 1_000_000;

interface ConnRecord {
  state: number;
  flags: number;
  generation: number;
  lastActivity: number;
  bytesIn: number;
  bytesOut: number;
  inRef: number;
  inLen: number;
  outRef: number;
  outStart: number;
  outLen: number;
}

function newRecord(): ConnRecord {
  return { state: 1, flags: 0, generation: 0, lastActivity: 0, bytesIn: 0, bytesOut: 0, inRef: -1, inLen: 0, outRef: -1, outStart: 0, outLen: 0 };
}

// ---------------------------------------------------------------- memory (child process)
const memArg = process.argv.indexOf("--mem");
if (memArg >= 0) {
  const kind = process.argv[memArg + 1];
  const n = Number(process.argv[memArg + 2]);
  const mu = () => {
    Bun.gc(true);
    return process.memoryUsage();
  };
  if ((kind !== "table" && kind !== "map") || !Number.isInteger(n) || n < 1) {
    console.error(`conn-table.bench: --mem takes table|map and a positive count, got ${kind} ${n}`);
    process.exit(2);
  }
  // Build small ones first so the JIT's own memory is not counted in the delta.
  const build = kind === "table" ? buildTable : buildMap;
  for (let k = 0; k < 20; k++) do_not_optimize(build(20_000));
  const before = mu();
  const keep = build(n);
  const after = mu();
  console.log(
    JSON.stringify({
      kind,
      n,
      rssBytes: after.rss - before.rss,
      heapBytes: after.heapUsed - before.heapUsed,
      externalBytes: after.external + after.arrayBuffers - before.external - before.arrayBuffers,
    }),
  );
  do_not_optimize(keep);
  process.exit(0);
}

/** A table of n slots, all live, with every page of every array written. */
function buildTable(n: number): ConnTable {
  const t = new ConnTable(n);
  // alloc all, free all (writes the free ring), alloc all again. The first lap of a fresh
  // table hands out slot i as handle i.
  for (let i = 0; i < n; i++) t.alloc();
  for (let i = 0; i < n; i++) t.free(t.handleOf(i));
  // Every field written: the cost of slots that are all in use (a slot whose connection
  // never used a field does not touch that field's pages; see ConnTable's file comment).
  for (let i = 0; i < n; i++) {
    const s = t.slot(t.alloc());
    t.flags[s] = 1;
    t.lastActivity[s] = 1;
    t.bytesIn[s] = 1;
    t.bytesOut[s] = 1;
    t.inRef[s] = 1;
    t.inLen[s] = 1;
    t.outRef[s] = 1;
    t.outStart[s] = 1;
    t.outLen[s] = 1;
  }
  return t;
}

function buildMap(n: number): Map<number, ConnRecord> {
  const m = new Map<number, ConnRecord>();
  for (let i = 0; i < n; i++) m.set(i, newRecord());
  return m;
}

// ---------------------------------------------------------------- time
const ORDER_LEN = 1 << 16;
const order = new Int32Array(ORDER_LEN);
{
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < ORDER_LEN; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    order[i] = (x >>> 0) % LIVE;
  }
}

const tableTight = Math.min(MAX_CAPACITY, Math.ceil(LIVE * 1.25));

function tableChurn(capacity: number) {
  return function* () {
    // A full lap first: the steady state is measured, not the page faults of a fresh table.
    const t = buildTable(capacity);
    for (let s = 0; s < capacity; s++) t.free(t.handleOf(s));
    const live = new Int32Array(LIVE);
    for (let i = 0; i < LIVE; i++) live[i] = t.alloc();
    let k = 0;
    yield () => {
      const v = order[k]!;
      k = (k + 1) & (ORDER_LEN - 1);
      t.free(live[v]!);
      const h = t.alloc();
      live[v] = h;
      // What a connection that read and wrote something leaves for free() to clear.
      const slot = t.slot(h);
      t.lastActivity[slot] = k;
      t.bytesIn[slot] = 100;
      t.bytesOut[slot] = 100;
    };
  };
}

group(`free + alloc, ${LIVE} live`, () => {
  summary(() => {
    bench(`ConnTable(${tableTight})`, tableChurn(tableTight));
    bench(`ConnTable(${MAX_CAPACITY})`, tableChurn(MAX_CAPACITY));
    bench("Map<number, object>", function* () {
      const m = new Map<number, ConnRecord>();
      const live = new Int32Array(LIVE);
      let nextId = 0;
      for (let i = 0; i < LIVE; i++) {
        live[i] = nextId;
        m.set(nextId++, newRecord());
      }
      let k = 0;
      yield () => {
        const v = order[k]!;
        k = (k + 1) & (ORDER_LEN - 1);
        m.delete(live[v]!);
        // ids wrap below 2^31 so keys stay SMIs, as handles are
        const id = nextId;
        nextId = (nextId + 1) & 0x7fffffff;
        live[v] = id;
        m.set(id, newRecord());
      };
    });
  });
});

group(`lookup + update, ${LIVE} live`, () => {
  summary(() => {
    bench(`ConnTable(${tableTight}) isLive + bytesIn`, function* () {
      const t = new ConnTable(tableTight);
      const live = new Int32Array(LIVE);
      for (let i = 0; i < LIVE; i++) live[i] = t.alloc();
      let k = 0;
      yield () => {
        const h = live[order[k]!]!;
        k = (k + 1) & (ORDER_LEN - 1);
        if (t.isLive(h)) t.bytesIn[t.slot(h)]! += 100;
      };
    });
    bench("Map.get + bytesIn", function* () {
      const m = new Map<number, ConnRecord>();
      for (let i = 0; i < LIVE; i++) m.set(i, newRecord());
      let k = 0;
      yield () => {
        const r = m.get(order[k]!);
        k = (k + 1) & (ORDER_LEN - 1);
        if (r !== undefined) r.bytesIn += 100;
      };
    });
  });
});

const results = await run();

function avgNs(prefix: string): number {
  for (const b of results.benchmarks) {
    for (const r of b.runs) if (r.name.startsWith(prefix) && r.stats) return r.stats.avg;
  }
  return Number.NaN;
}

async function measure(kind: "table" | "map", n: number): Promise<{ rssBytes: number; heapBytes: number; externalBytes: number }> {
  const proc = Bun.spawn([process.execPath, "--expose-gc", import.meta.path, "--mem", kind, String(n)], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`memory child for ${kind} failed`);
  return JSON.parse(out.trim().split("\n").pop()!);
}

const tableMem = await measure("table", MEM_TABLE_N);
const mapMem = await measure("map", MEM_MAP_N);

const tTight = avgNs(`ConnTable(${tableTight})`);
const tBig = avgNs(`ConnTable(${MAX_CAPACITY})`);
const tMap = avgNs("Map<number, object>");
const lTable = avgNs(`ConnTable(${tableTight}) isLive`);
const lMap = avgNs("Map.get");
const f = (x: number, d = 1) => x.toFixed(d);
console.log(`
summary (${QUICK ? "BENCH_QUICK" : "full"}; ${LIVE} live entries churned)
  free + alloc      ConnTable(${tableTight}) ${f(tTight)} ns/op   ConnTable(2^20) ${f(tBig)} ns/op   Map ${f(tMap)} ns/op   Map/ConnTable ${f(tMap / tTight, 2)}x (${f(tMap / tBig, 2)}x at 2^20)
  lookup + update   ConnTable ${f(lTable)} ns/op   Map ${f(lMap)} ns/op   Map/ConnTable ${f(lMap / lTable, 2)}x
  memory per entry  ConnTable computed ${ConnTable.BYTES_PER_SLOT} B/slot; measured at ${MEM_TABLE_N}: RSS ${f(tableMem.rssBytes / MEM_TABLE_N)} B, heap ${f(tableMem.heapBytes / MEM_TABLE_N)} B, external+arrayBuffers ${f(tableMem.externalBytes / MEM_TABLE_N)} B
                    Map of objects at ${MEM_MAP_N}: heap ${f(mapMem.heapBytes / MEM_MAP_N)} B, RSS ${f(mapMem.rssBytes / MEM_MAP_N)} B   Map/ConnTable (RSS) ${f(mapMem.rssBytes / MEM_MAP_N / (tableMem.rssBytes / MEM_TABLE_N), 2)}x`);
