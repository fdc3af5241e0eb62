/**
 * RESP client throughput: myriad's pooled pipelining client against ioredis 6 on the same
 * redis-server (started here on a free port, no persistence, killed by pid at the end).
 * 1,000 concurrent tasks each loop SET key value / GET key (checking the value) for N seconds.
 *
 *   bun bench/resp-client.ts                      # 10 s per client
 *   bun bench/resp-client.ts --quick              # 2 s per client (also BENCH_QUICK=1)
 *   bun bench/resp-client.ts --seconds 5 --tasks 1000
 *
 * Clients measured, one after the other, each after a short warm-up:
 *   myriad (pool max 8)  — createRespClient defaults: connections fill to a pipeline depth
 *                           of 256, then spill onto the next;
 *   myriad (pool max 1)  — one connection, like ioredis;
 *   ioredis              — defaults (one connection, no auto-pipelining);
 *   ioredis autopipeline — enableAutoPipelining: true.
 * Prints ops/s (SET and GET each count as one) and myriad's ratio over each ioredis variant
 * (goal: >= 1.0x the ioredis default).
 */
import Redis from "ioredis";
import { createRespClient } from "../src/pool/index.ts";
import { RedisServer } from "../tests/helpers/redis-server.ts";

function usage(code: number, msg?: string): never {
  if (msg) console.error(`resp-client bench: ${msg}`);
  console.log("usage: bun bench/resp-client.ts [--quick] [--seconds N] [--tasks N]\n  also BENCH_QUICK=1 for --quick");
  process.exit(code);
}

const argv = process.argv.slice(2);
let quick = process.env.BENCH_QUICK === "1";
let seconds = 10;
let tasks = 1_000;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--help" || a === "-h") usage(0);
  else if (a === "--quick") quick = true;
  else if (a === "--seconds" || a === "--tasks") {
    const v = Number(argv[++i]);
    if (!Number.isFinite(v) || v <= 0 || (a === "--tasks" && !Number.isInteger(v))) usage(2, `${a} needs a positive ${a === "--tasks" ? "integer" : "number"}, got ${argv[i]}`);
    if (a === "--seconds") seconds = v;
    else tasks = v;
  } else usage(2, `unknown flag ${a}; accepted: --quick, --seconds N, --tasks N, --help`);
}
if (quick && !argv.includes("--seconds")) seconds = 2;
const warmupSeconds = quick ? 0.3 : 1;

interface Subject {
  name: string;
  set(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<unknown>;
  close(): Promise<void>;
}

/** Runs `tasks` loops of SET/GET for `durationS`; returns ops per second. */
async function load(s: Subject, durationS: number, tag: string): Promise<number> {
  let stop = false;
  let ops = 0;
  const worker = async (i: number) => {
    const key = `bench:${tag}:${i}`;
    for (let j = 0; !stop; j++) {
      const value = `v${j}`;
      await s.set(key, value);
      const got = await s.get(key);
      if (got !== value) throw new Error(`${s.name}: GET ${key} returned ${String(got)}, expected ${value}`);
      ops += 2;
    }
  };
  const t0 = performance.now();
  const running = Array.from({ length: tasks }, (_, i) => worker(i));
  await Bun.sleep(durationS * 1_000);
  stop = true;
  const opsAtStop = ops;
  const elapsed = (performance.now() - t0) / 1_000;
  await Promise.all(running);
  return opsAtStop / elapsed;
}

function myriad(port: number, max: number): Subject {
  const c = createRespClient({ port, pool: { max } });
  return {
    name: `myriad (pool max ${max})`,
    set: (k, v) => c.send(["SET", k, v]),
    get: (k) => c.send(["GET", k]),
    close: () => c.close(),
  };
}

function ioredis(port: number, autoPipelining: boolean): Subject {
  const r = new Redis({ port, host: "127.0.0.1", enableAutoPipelining: autoPipelining, maxRetriesPerRequest: 1 });
  return {
    name: autoPipelining ? "ioredis autopipeline" : "ioredis",
    set: (k, v) => r.set(k, v),
    get: (k) => r.get(k),
    close: async () => {
      await r.quit();
    },
  };
}

const redis = await RedisServer.start();
console.log(
  `redis-server pid ${redis.pid} on 127.0.0.1:${redis.port}; ${tasks} tasks x SET/GET, ${seconds} s per client (warm-up ${warmupSeconds} s)`,
);
const results = new Map<string, number>();
try {
  const makers = [() => myriad(redis.port, 8), () => myriad(redis.port, 1), () => ioredis(redis.port, false), () => ioredis(redis.port, true)];
  for (const make of makers) {
    const s = make();
    await load(s, warmupSeconds, "warm");
    const opsPerSec = await load(s, seconds, "run");
    await s.close();
    results.set(s.name, opsPerSec);
    console.log(`  ${s.name.padEnd(22)} ${Math.round(opsPerSec).toLocaleString("en-US").padStart(12)} ops/s`);
  }
  const base = results.get("ioredis") as number;
  const auto = results.get("ioredis autopipeline") as number;
  for (const name of ["myriad (pool max 8)", "myriad (pool max 1)"]) {
    const v = results.get(name) as number;
    console.log(`  ${name}: ${(v / base).toFixed(2)}x ioredis, ${(v / auto).toFixed(2)}x ioredis autopipeline`);
  }
} finally {
  await redis.kill();
}
process.exit(0);
