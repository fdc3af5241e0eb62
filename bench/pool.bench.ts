/**
 * Pool acquire+release throughput: myriad's Pool against tarn 3 and generic-pool 3, same
 * trivial resource ({}), same limits, same 10 s acquire timeout (a timer per waiting acquire
 * in all three).
 *
 *   bun run bench pool                   # full
 *   BENCH_QUICK=1 bun run bench pool     # reduced (shorter sampling), for a check
 *
 * - "uncontended": one task, acquire then release, 1,000 times per iteration (divide the
 *   iteration time by 1,000 for one acquire+release); the pool holds one idle resource.
 * - "1,000 waiters": 1,000 tasks share a pool of max 10, each doing 10 acquire+release pairs
 *   per iteration (10,000 pairs; ~990 callers queued at any moment).
 * A table of acquire+release pairs per second and myriad's ratio over each follows the mitata
 * output (goal: >= 3x).
 */
import { createPool } from "generic-pool";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { Pool as TarnPool } from "tarn";
import { Pool } from "../src/pool/index.ts";

const QUICK = process.env.BENCH_QUICK === "1" || process.argv.includes("--quick");
const UNCONTENDED_OPS = 1_000;
const TASKS = 1_000;
const OPS_PER_TASK = 10;
const MAX = 10;
const TIMEOUT_MS = 10_000;

interface Subject {
  name: string;
  acquire(): Promise<object>;
  release(r: object): void;
}

function myriad(max: number): Subject {
  const pool = new Pool<object>({ create: () => ({}), max, acquireTimeoutMs: TIMEOUT_MS, idleTimeoutMs: Infinity });
  return { name: "myriad Pool", acquire: () => pool.acquire(), release: (r) => pool.release(r) };
}

function tarn(max: number): Subject {
  const pool = new TarnPool<object>({
    create: () => ({}),
    destroy: () => {},
    min: 0,
    max,
    acquireTimeoutMillis: TIMEOUT_MS,
    idleTimeoutMillis: 3_600_000,
  });
  return { name: "tarn", acquire: () => pool.acquire().promise, release: (r) => void pool.release(r) };
}

function genericPool(max: number): Subject {
  const pool = createPool<object>(
    { create: async () => ({}), destroy: async () => {} },
    { min: 0, max, acquireTimeoutMillis: TIMEOUT_MS },
  );
  return { name: "generic-pool", acquire: () => pool.acquire(), release: (r) => void pool.release(r) };
}

const makers = [myriad, tarn, genericPool];

async function uncontended(s: Subject): Promise<void> {
  for (let i = 0; i < UNCONTENDED_OPS; i++) {
    const r = await s.acquire();
    do_not_optimize(r);
    s.release(r);
  }
}

async function contended(s: Subject): Promise<void> {
  const tasks: Promise<void>[] = new Array(TASKS);
  for (let t = 0; t < TASKS; t++) {
    tasks[t] = (async () => {
      for (let i = 0; i < OPS_PER_TASK; i++) {
        const r = await s.acquire();
        s.release(r);
      }
    })();
  }
  await Promise.all(tasks);
}

// Each subject is warmed once so that its resources exist before timing.
const one = makers.map((m) => m(1));
const ten = makers.map((m) => m(MAX));
for (const s of one) await uncontended(s);
for (const s of ten) await contended(s);

group("acquire+release, uncontended (x1,000 per iteration)", () => {
  summary(() => {
    for (const s of one) bench(s.name, () => uncontended(s));
  });
});
group(`acquire+release, ${TASKS} tasks on max ${MAX} (x${TASKS * OPS_PER_TASK} per iteration)`, () => {
  summary(() => {
    for (const s of ten) bench(s.name, () => contended(s));
  });
});

const result = await run(QUICK ? { throw: true, format: "mitata" } : { throw: true });

// Pairs per second from the mean iteration time (ns); trials come in declaration order:
// the uncontended group first, then the contended one, each in `makers` order.
const pairsPerSec = (index: number, perIteration: number): number => {
  const avg = result.benchmarks[index]?.runs[0]?.stats?.avg;
  return avg === undefined ? Number.NaN : perIteration / (avg / 1e9);
};
console.log("\nacquire+release pairs per second (mean), and myriad's ratio:");
for (const [g, label, per] of [
  [0, "uncontended", UNCONTENDED_OPS],
  [1, `${TASKS} tasks/max ${MAX}`, TASKS * OPS_PER_TASK],
] as const) {
  const [m, t, gp] = [0, 1, 2].map((k) => pairsPerSec(g * makers.length + k, per)) as [number, number, number];
  console.log(
    `  ${label.padEnd(20)} myriad ${m.toFixed(0).padStart(9)}   tarn ${t.toFixed(0).padStart(9)} (x${(m / t).toFixed(1)})   generic-pool ${gp.toFixed(0).padStart(9)} (x${(m / gp).toFixed(1)})`,
  );
}
process.exit(0);
