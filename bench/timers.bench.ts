/**
 * TimingWheel against Bun's setTimeout/clearTimeout and a binary min-heap (bench/lib/min-heap.ts):
 * schedule, cancel, re-arm and expire N timers (N = 1,000,000; BENCH_QUICK=1: 100,000), and
 * memory per pending timer at N timers.
 *
 *   bun run bench timers                 # full run (about a minute on an idle machine)
 *   BENCH_QUICK=1 bun run bench timers   # reduced size, a few seconds: checks it runs
 *
 * Speed: mitata `measure`, one sample = one pass over all N ids (untimed setup before each
 * sample, GC between samples); the figure is the median sample / N. setTimeout's expiry is
 * timed by hand: N timers of 1 ms, from the end of scheduling to the last callback (the event
 * loop fires them), minus nothing — it includes up to 1 ms of waiting.
 * Memory: each structure is built in a fresh child process (so earlier benchmarks' garbage
 * does not blur it): RSS and JS heap before and after arming N timers, after Bun.gc(true).
 * setTimeout's handle array is allocated before the baseline, so only the timers count.
 */
import { measure } from "mitata";
import { TimingWheel } from "../src/timers/index.ts";
import { MinHeapTimers } from "./lib/min-heap.ts";

const QUICK = process.env.BENCH_QUICK === "1";
const N = QUICK ? 100_000 : 1_000_000;
const SAMPLES = QUICK ? 3 : 10;
const TICK_MS = 10;
type Impl = "wheel" | "heap" | "setTimeout";

/** Deterministic delays: idle-timeout-like (60..120 s), a second set for re-arming, and 1 ms..60 s for expiry. */
function delays(seed: number, min: number, span: number): Float64Array {
  let a = seed >>> 0;
  const out = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = min + Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * span);
  }
  return out;
}
const armDelays = delays(1, 60_000, 60_000);
const rearmDelays = delays(2, 60_000, 60_000);
const expireDelays = delays(3, 1, 59_999);
const EXPIRE_SPAN_MS = 60_000;

// ---------------------------------------------------------------- memory (child process)

interface MemoryResult {
  impl: Impl;
  timers: number;
  rssBytesPerTimer: number;
  heapBytesPerTimer: number;
}

async function memoryChild(impl: Impl): Promise<void> {
  const handles: Array<ReturnType<typeof setTimeout> | null> = new Array(N).fill(null);
  let keep: unknown = null;
  Bun.gc(true);
  Bun.gc(true);
  const before = process.memoryUsage();
  if (impl === "wheel") {
    const w = new TimingWheel({ capacity: N, tickMs: TICK_MS });
    for (let i = 0; i < N; i++) w.schedule(i, armDelays[i]!);
    keep = w;
  } else if (impl === "heap") {
    const h = new MinHeapTimers({ capacity: N });
    for (let i = 0; i < N; i++) h.schedule(i, armDelays[i]!);
    keep = h;
  } else {
    const noop = () => {};
    for (let i = 0; i < N; i++) handles[i] = setTimeout(noop, 10_000_000 + armDelays[i]!);
  }
  Bun.gc(true);
  Bun.gc(true);
  const after = process.memoryUsage();
  const result: MemoryResult = {
    impl,
    timers: N,
    rssBytesPerTimer: (after.rss - before.rss) / N,
    heapBytesPerTimer: (after.heapUsed - before.heapUsed) / N,
  };
  console.log(JSON.stringify(result));
  if (keep === undefined || handles.length !== N) console.log("unreachable: keeps the structures alive");
  process.exit(0);
}

async function memoryOf(impl: Impl): Promise<MemoryResult> {
  const proc = Bun.spawn([process.execPath, import.meta.path], {
    env: { ...process.env, TIMERS_BENCH_MEMORY: impl },
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = await new Response(proc.stdout).text();
  const code = await proc.exited;
  if (code !== 0) throw new Error(`memory child for ${impl} exited with ${code}`);
  return JSON.parse(out.trim().split("\n").at(-1)!) as MemoryResult;
}

// ---------------------------------------------------------------- speed

/** Median ns per operation of `body`, which does N operations on the value `setup` returns. */
async function perOp<T>(setup: () => T, body: (state: T) => void): Promise<number> {
  const stats = await measure(
    function* () {
      yield { [0]: setup, bench: body };
    },
    {
      min_samples: SAMPLES,
      max_samples: SAMPLES,
      min_cpu_time: 0,
      warmup_samples: 1,
      inner_gc: true,
      gc: () => Bun.gc(true),
    },
  );
  return stats.p50 / N;
}

// Each implementation gets its own loops (no shared call sites), so that none of them pays
// for a polymorphic inline cache the others created.

// benchWheel and benchHeap are deliberately two copies of one shape: a shared generic function
// would see both classes at its call sites, and JSC's polymorphic inline caches would then
// slow whichever runs there, making the comparison measure the benchmark instead.
async function benchWheel(): Promise<Record<string, number>> {
  const w = new TimingWheel({ capacity: N, tickMs: TICK_MS });
  let fired = 0;
  const onExpire = () => {
    fired++;
  };
  const empty = () => {
    for (let i = 0; i < N; i++) w.cancel(i);
    return w;
  };
  const full = () => {
    for (let i = 0; i < N; i++) w.schedule(i, armDelays[i]!);
    return w;
  };
  const r: Record<string, number> = {};
  r.schedule = await perOp(empty, (x) => {
    for (let i = 0; i < N; i++) x.schedule(i, armDelays[i]!);
  });
  r.cancel = await perOp(full, (x) => {
    for (let i = 0; i < N; i++) x.cancel(i);
  });
  r.rearm = await perOp(full, (x) => {
    for (let i = 0; i < N; i++) x.schedule(i, rearmDelays[i]!);
  });
  r.expire = await perOp(
    () => {
      empty();
      for (let i = 0; i < N; i++) w.schedule(i, expireDelays[i]!);
      fired = 0;
      return w;
    },
    (x) => {
      x.advance(x.nowMs + EXPIRE_SPAN_MS, onExpire);
      if (fired !== N) throw new Error(`wheel fired ${fired} of ${N}`);
    },
  );
  return r;
}

async function benchHeap(): Promise<Record<string, number>> {
  const h = new MinHeapTimers({ capacity: N });
  let fired = 0;
  const onExpire = () => {
    fired++;
  };
  const empty = () => {
    for (let i = 0; i < N; i++) h.cancel(i);
    return h;
  };
  const full = () => {
    for (let i = 0; i < N; i++) h.schedule(i, armDelays[i]!);
    return h;
  };
  const r: Record<string, number> = {};
  r.schedule = await perOp(empty, (x) => {
    for (let i = 0; i < N; i++) x.schedule(i, armDelays[i]!);
  });
  r.cancel = await perOp(full, (x) => {
    for (let i = 0; i < N; i++) x.cancel(i);
  });
  r.rearm = await perOp(full, (x) => {
    for (let i = 0; i < N; i++) x.schedule(i, rearmDelays[i]!);
  });
  r.expire = await perOp(
    () => {
      empty();
      for (let i = 0; i < N; i++) h.schedule(i, expireDelays[i]!);
      fired = 0;
      return h;
    },
    (x) => {
      x.advance(x.nowMs + EXPIRE_SPAN_MS, onExpire);
      if (fired !== N) throw new Error(`heap fired ${fired} of ${N}`);
    },
  );
  return r;
}

async function benchSetTimeout(): Promise<Record<string, number>> {
  const handles: Array<ReturnType<typeof setTimeout> | null> = new Array(N).fill(null);
  const noop = () => {};
  const empty = () => {
    for (let i = 0; i < N; i++) {
      const t = handles[i];
      if (t != null) clearTimeout(t);
      handles[i] = null;
    }
    return handles;
  };
  const full = () => {
    empty();
    for (let i = 0; i < N; i++) handles[i] = setTimeout(noop, armDelays[i]!);
    return handles;
  };
  const r: Record<string, number> = {};
  r.schedule = await perOp(empty, (x) => {
    for (let i = 0; i < N; i++) x[i] = setTimeout(noop, armDelays[i]!);
  });
  // Typical application code allocates a closure per timer: () => conn.close().
  let sink = 0;
  const onTimeout = (i: number) => {
    sink += i;
  };
  r.scheduleClosure = await perOp(empty, (x) => {
    for (let i = 0; i < N; i++) x[i] = setTimeout(() => onTimeout(i), armDelays[i]!);
  });
  r.cancel = await perOp(full, (x) => {
    for (let i = 0; i < N; i++) clearTimeout(x[i]!);
  });
  r.rearm = await perOp(full, (x) => {
    for (let i = 0; i < N; i++) {
      clearTimeout(x[i]!);
      x[i] = setTimeout(noop, rearmDelays[i]!);
    }
  });
  r.refresh = await perOp(full, (x) => {
    for (let i = 0; i < N; i++) x[i]!.refresh();
  });
  empty();
  if (sink !== 0) throw new Error("a cleared timer fired");
  // Expiry: the event loop fires N due timers; timed by hand from the end of scheduling.
  const runs: number[] = [];
  for (let run = 0; run < (QUICK ? 1 : 3); run++) {
    Bun.gc(true);
    let fired = 0;
    let t1 = 0;
    const { promise, resolve } = Promise.withResolvers<void>();
    const onFire = () => {
      if (++fired === N) {
        t1 = Bun.nanoseconds();
        resolve();
      }
    };
    for (let i = 0; i < N; i++) setTimeout(onFire, 1);
    const t0 = Bun.nanoseconds();
    await promise;
    runs.push((t1 - t0) / N);
  }
  runs.sort((a, b) => a - b);
  r.expire = runs[runs.length >> 1]!;
  return r;
}

// ---------------------------------------------------------------- report

function fmt(ns: number | undefined): string {
  return ns === undefined ? "-" : ns < 100 ? ns.toFixed(1) : ns.toFixed(0);
}

async function main(): Promise<void> {
  console.log(`timers: N = ${N.toLocaleString("en-US")} timers${QUICK ? " (BENCH_QUICK)" : ""}, tickMs ${TICK_MS}, ${SAMPLES} samples each, Bun ${Bun.version}`);
  const memory: MemoryResult[] = [];
  for (const impl of ["wheel", "heap", "setTimeout"] as const) memory.push(await memoryOf(impl));

  const wheel = await benchWheel();
  console.log("wheel done");
  const heap = await benchHeap();
  console.log("heap done");
  const st = await benchSetTimeout();
  console.log("setTimeout done");

  const rows: Array<[string, string]> = [
    ["schedule", "schedule"],
    ["schedule, setTimeout with a closure per timer (typical use)", "scheduleClosure"],
    ["cancel", "cancel"],
    ["re-arm (wheel/heap: schedule a pending id; setTimeout: clear+set)", "rearm"],
    ["re-arm, setTimeout's refresh() (same delay)", "refresh"],
    ["expire (fire one due timer)", "expire"],
  ];
  const pad = (s: string, n: number) => s.padEnd(n);
  const lpad = (s: string, n: number) => s.padStart(n);
  console.log(`\nns per timer (median of ${SAMPLES} passes over ${N.toLocaleString("en-US")} timers)`);
  console.log(`${pad("operation", 68)}${lpad("wheel", 9)}${lpad("heap", 9)}${lpad("setTimeout", 12)}${lpad("setTimeout/wheel", 18)}`);
  for (const [label, key] of rows) {
    const w = wheel[key];
    const s = st[key];
    // Rows setTimeout alone has are compared with the wheel's nearest operation.
    const nearest = key === "refresh" ? wheel.rearm : key === "scheduleClosure" ? wheel.schedule : w;
    const ratio = nearest !== undefined && s !== undefined ? `${(s / nearest).toFixed(1)}x` : "-";
    console.log(`${pad(label, 68)}${lpad(fmt(w), 9)}${lpad(fmt(heap[key]), 9)}${lpad(fmt(s), 12)}${lpad(ratio, 18)}`);
  }
  const wsc = wheel.schedule! + wheel.cancel!;
  const hsc = heap.schedule! + heap.cancel!;
  const ssc = st.schedule! + st.cancel!;
  console.log(
    `${pad("schedule + cancel", 68)}${lpad(fmt(wsc), 9)}${lpad(fmt(hsc), 9)}${lpad(fmt(ssc), 12)}${lpad(`${(ssc / wsc).toFixed(1)}x`, 18)}`,
  );
  console.log(`\nmemory per pending timer at ${N.toLocaleString("en-US")} timers (fresh process; delta after Bun.gc)`);
  console.log(`${pad("", 24)}${lpad("wheel", 9)}${lpad("heap", 9)}${lpad("setTimeout", 12)}`);
  const mem = (impl: Impl) => memory.find((m) => m.impl === impl)!;
  console.log(
    `${pad("RSS bytes / timer", 24)}${lpad(mem("wheel").rssBytesPerTimer.toFixed(1), 9)}${lpad(mem("heap").rssBytesPerTimer.toFixed(1), 9)}${lpad(mem("setTimeout").rssBytesPerTimer.toFixed(1), 12)}`,
  );
  console.log(
    `${pad("JS heap bytes / timer", 24)}${lpad(mem("wheel").heapBytesPerTimer.toFixed(1), 9)}${lpad(mem("heap").heapBytesPerTimer.toFixed(1), 9)}${lpad(mem("setTimeout").heapBytesPerTimer.toFixed(1), 12)}`,
  );
  console.log(`typed-array bytes / timer: wheel ${TimingWheel.BYTES_PER_TIMER}, heap ${MinHeapTimers.BYTES_PER_TIMER}`);
  if (QUICK) console.log("\n(BENCH_QUICK: at 100,000 timers fixed costs blur bytes per timer; judge the goals on the full run)");
  const goalSpeed = ssc / wsc >= 20;
  const goalMemory = mem("wheel").rssBytesPerTimer <= 24;
  console.log(
    `\ngoals: schedule+cancel >= 20x faster than setTimeout+clearTimeout: ${(ssc / wsc).toFixed(1)}x ${goalSpeed ? "MET" : "NOT MET"}; ` +
      `<= 24 bytes per timer: ${mem("wheel").rssBytesPerTimer.toFixed(1)} B RSS ${goalMemory ? "MET" : "NOT MET"}`,
  );
}

const memoryImpl = process.env.TIMERS_BENCH_MEMORY;
if (memoryImpl === "wheel" || memoryImpl === "heap" || memoryImpl === "setTimeout") await memoryChild(memoryImpl);
else await main();
