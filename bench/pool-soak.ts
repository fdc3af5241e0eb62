/**
 * Soak of the pool's fault paths: each run is a fresh `bun` process running one scenario
 * against upstreams on loopback that this script starts, bounded in time; the parent counts
 * how each run ended. A crash of the runtime (killed by a signal, or Bun's crash report:
 * "panic(...)", "oh no: Bun has crashed", "Segmentation fault") is told apart from a failed
 * check or any other uncaught error (exit 1 with the error) and from a run that hangs (killed
 * past --child-timeout). Note that the line "Bun v1.4.5 (Linux x64)" alone is not a crash:
 * Bun prints it under every uncaught error and unhandled rejection too.
 *
 *   bun bench/pool-soak.ts                          # every scenario, 10 runs each, 15 min at most
 *   bun bench/pool-soak.ts --runs 50 --scenario kill-restart
 *   bun bench/pool-soak.ts --minutes 5 --child-timeout 60
 *   bun bench/pool-soak.ts --runs 1 --quick         # each scenario once, shortened (tests/pool-soak.test.ts)
 *   bun bench/pool-soak.ts --child kill-restart --seed 7   # one run in this process (what the parent spawns)
 *
 * Scenarios (every one ends with close() while work is still in flight, and checks that every
 * send settled, with its own reply or a MyriadError):
 *   kill-restart   2,000 tasks pipelining SET/GET through the RESP client (pool max 8); the
 *                  redis-server is SIGKILLed mid-load and restarted on the same port, twice;
 *   kill-narrow    kill-restart with redis on port 40000 inside a network namespace whose
 *                  ephemeral port range is 40000-40003 (made by this script, root only; the
 *                  pool has one connection, room left for redis's start-up PINGs): a
 *                  reconnect while redis is down often connects to itself unless the client
 *                  refuses such a socket, and a socket left connected to itself holds the
 *                  port redis must restart on;
 *   flap           the same load; redis killed and restarted 5 times, 0-100 ms apart (kills
 *                  land while the pool reconnects), with the garbage collector forced often;
 *   kill-big       200 tasks writing 256 KiB values (partial writes, waits for drain; binary
 *                  replies) while redis is killed and restarted;
 *   refuse         2,000 sends to a port where nothing listens (connects refused, the circuit opens);
 *   reset          2,000 sends to a listener that accepts and resets every connection at once;
 *   hang           2,000 sends to a listener that accepts and never answers (every send times out);
 *   garbage        2,000 sends to a listener that answers some requests and then sends bytes
 *                  that are not RESP (protocol errors close connections mid-pipeline);
 *   timeouts       2,000 tasks against redis with per-call timeouts of 0-3 ms (most time out,
 *                  late replies land on tombstones) while DEBUG SLEEP stalls the server;
 *   close-mid-load 2,000 tasks against redis, close({ timeoutMs: 0..50 }) at a random moment.
 * Crash logs (stderr of each crashed or hung run) go to bench/results/pool-soak/.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import type { TCPSocketListener } from "bun";
import { MyriadError } from "../src/errors.ts";
import { createRespClient, type RespClient } from "../src/pool/index.ts";
import { freePort } from "../tests/helpers/ports.ts";
import { RedisServer } from "../tests/helpers/redis-server.ts";

const SCENARIOS = ["kill-restart", "kill-narrow", "flap", "kill-big", "refuse", "reset", "hang", "garbage", "timeouts", "close-mid-load"] as const;
type Scenario = (typeof SCENARIOS)[number];

/** kill-narrow: redis's port, and the namespace's whole ephemeral range with it. */
const NARROW_PORT = 40_000;
/** Ports in its ephemeral range, from NARROW_PORT: room for the pool, redis-server and the start-up PINGs. */
const NARROW_RANGE = 4;
const NARROW_NS = `myriad-soak-${process.pid}`;
let narrowNsMade = false;

/** Makes the kill-narrow namespace (lo up, ip_local_port_range = 40000 40001) once; deleted at exit. */
function narrowNamespace(): string {
  if (narrowNsMade) return NARROW_NS;
  if (Bun.which("ip") === null) throw new Error("kill-narrow needs iproute2's `ip` (apt-get install -y iproute2)");
  if (process.getuid?.() !== 0) throw new Error("kill-narrow needs root to make a network namespace");
  for (const args of [
    ["netns", "add", NARROW_NS],
    ["-n", NARROW_NS, "link", "set", "lo", "up"],
    ["netns", "exec", NARROW_NS, "sysctl", "-qw", `net.ipv4.ip_local_port_range=${NARROW_PORT} ${NARROW_PORT + NARROW_RANGE - 1}`],
  ]) {
    const r = Bun.spawnSync(["ip", ...args], { stdout: "ignore", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString().trim()}`);
  }
  narrowNsMade = true;
  process.on("exit", () => {
    Bun.spawnSync(["ip", "netns", "del", NARROW_NS], { stdout: "ignore", stderr: "ignore" });
  });
  return NARROW_NS;
}

function usage(code: number, msg?: string): never {
  if (msg) console.error(`pool-soak: ${msg}`);
  console.log(
    "usage: bun bench/pool-soak.ts [--runs N] [--scenario NAME|all] [--minutes M] [--child-timeout S]\n" +
      `  scenarios: ${SCENARIOS.join(", ")}\n` +
      "  --runs N            runs per scenario (default 10)\n" +
      "  --minutes M         stop starting runs after M minutes (default 15)\n" +
      "  --child-timeout S   a run still going after S seconds is killed and counted as hung (default 60)\n" +
      "  --quick             shorter runs: fewer kills, less load before each fault\n" +
      "  --child NAME --seed N   run one scenario in this process",
  );
  process.exit(code);
}

// ---------------------------------------------------------------- one run (child)

/** A deterministic PRNG (mulberry32) so a failing seed can be run again. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Tally {
  sends: number;
  settled: number;
  ok: number;
  errors: Record<string, number>;
  /** Errors that are not MyriadErrors, or replies that are not the value written: the checks. */
  bad: string[];
  /** redis-server starts that failed and were tried again (the port was held: see restartRedis). */
  startRetries: number;
}

function newTally(): Tally {
  return { sends: 0, settled: 0, ok: 0, errors: {}, bad: [], startRetries: 0 };
}

function countError(t: Tally, e: unknown): void {
  if (!(e instanceof MyriadError)) {
    if (t.bad.length < 5) t.bad.push(`not a MyriadError: ${String(e)}`);
  }
  const code = (e as { code?: string })?.code ?? "none";
  t.errors[code] = (t.errors[code] ?? 0) + 1;
}

/** `n` tasks each looping SET k v / GET k (checking v) until stop(); resolves when all have settled. */
function loadTasks(client: RespClient, n: number, t: Tally, opts: { timeoutMs?: () => number; pauseOnErrorMs?: number; valueBytes?: number }) {
  const pad = opts.valueBytes === undefined ? "" : "v".repeat(opts.valueBytes);
  let stopped = false;
  const task = async (i: number) => {
    for (let j = 0; !stopped; j++) {
      const key = `soak:${i}`;
      const value = `${i}:${j}${pad}`;
      for (const cmd of [["SET", key, value], ["GET", key]] as const) {
        t.sends++;
        try {
          const timeoutMs = opts.timeoutMs?.();
          const reply = await client.send([...cmd], timeoutMs === undefined ? undefined : { timeoutMs });
          t.ok++;
          // A GET may see the value of this task's SET, or nothing when redis restarted in between.
          const got = reply instanceof Uint8Array ? new TextDecoder().decode(reply) : reply;
          if (cmd[0] === "GET" && got !== value && got !== null) {
            if (t.bad.length < 5) t.bad.push(`GET ${key} got ${JSON.stringify(got).slice(0, 80)}, expected ${value.slice(0, 40)} or null`);
          }
        } catch (e) {
          countError(t, e);
          if (opts.pauseOnErrorMs) await Bun.sleep(opts.pauseOnErrorMs);
          break;
        } finally {
          t.settled++;
        }
      }
    }
  };
  const all = Promise.all(Array.from({ length: n }, (_, i) => task(i)));
  return {
    stop() {
      stopped = true;
    },
    done: all,
  };
}

/** Fires `n` sends of GET at once (no loop); resolves when all settled. */
async function burst(client: RespClient, n: number, t: Tally, timeoutMs?: number): Promise<void> {
  const all: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    t.sends++;
    all.push(
      client.send(["GET", `b:${i}`], timeoutMs === undefined ? undefined : { timeoutMs }).then(
        () => {
          t.ok++;
          t.settled++;
        },
        (e) => {
          countError(t, e);
          t.settled++;
        },
      ),
    );
  }
  await Promise.all(all);
}

/**
 * Restarts redis on its port, trying up to 5 times 100 ms apart: a connect to the port while
 * nothing listens there can hold it for a moment (a socket connected to itself, until the
 * client closes it), and redis then fails to bind. A client that keeps such a socket open
 * holds the port for good: then all 5 fail and so does the run.
 */
async function restartRedis(redis: RedisServer, t: Tally): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await redis.restart();
      return;
    } catch (err) {
      phase(`restart attempt ${attempt} failed: ${String(err).slice(0, 200)}`, t);
      if (attempt === 5) throw err;
      t.startRetries++;
      await Bun.sleep(100);
    }
  }
}

/** With SOAK_DEBUG=1, a child says on stderr where it is (to find where a run hangs). */
const debug = process.env.SOAK_DEBUG === "1";
const started = performance.now();
function phase(what: string, t: Tally): void {
  if (debug) console.error(`${Math.round(performance.now() - started)} ms: ${what} (${t.ok} ok, ${t.settled}/${t.sends} settled, ${JSON.stringify(t.errors)})`);
}

/** Waits for `p`, failing the run when it takes longer than `ms`. */
async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([p, new Promise<"late">((resolve) => (timer = setTimeout(resolve, ms, "late")))]);
  clearTimeout(timer);
  if (r === "late") throw new Error(`${what} did not finish within ${ms} ms`);
  return r as T;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(5);
  }
  return true;
}

/**
 * A listener that accepts and resets every connection (`reset`), never answers (`hang`), or
 * answers a few requests with "$-1" and then sends bytes that are not RESP (`garbage`).
 */
function misbehavingListener(kind: "reset" | "hang" | "garbage"): TCPSocketListener<{ answered: number }> {
  return Bun.listen<{ answered: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { answered: 0 };
        if (kind === "reset") s.terminate();
      },
      data(s, chunk) {
        if (kind !== "garbage") return;
        // One reply per "*" (a command's start), then garbage after a few.
        let n = 0;
        for (const b of chunk) if (b === 42) n++;
        let out = "";
        for (let k = 0; k < n; k++) out += ++s.data.answered % 50 === 0 ? "?garbage\r\n" : "$-1\r\n";
        if (out) s.write(out);
      },
    },
  });
}

async function runChild(scenario: Scenario, seed: number, quick: boolean): Promise<Tally & { scenario: Scenario; seed: number; ms: number }> {
  const rnd = prng(seed);
  // --quick: the same faults, fewer of them, after less load.
  const scale = quick ? 0.2 : 1;
  const t = newTally();
  const t0 = performance.now();
  const TASKS = 2_000;
  switch (scenario) {
    case "kill-restart":
    case "kill-narrow": {
      const narrow = scenario === "kill-narrow";
      const redis = await RedisServer.start(narrow ? { port: NARROW_PORT } : {});
      // In the narrow namespace one connection to redis is all the ports allow (source 40001).
      const client = createRespClient({ port: redis.port, pool: { max: narrow ? 1 : 8 }, requestTimeoutMs: 2_000 });
      try {
        const load = loadTasks(client, TASKS, t, { pauseOnErrorMs: 20 });
        for (let round = 0; round < (quick ? 1 : 2); round++) {
          const okBefore = t.ok;
          await until(() => t.ok >= okBefore + scale * (5_000 + Math.floor(rnd() * 10_000)), 10_000);
          phase(`round ${round}: kill`, t);
          await redis.kill();
          await Bun.sleep(50 + rnd() * 400);
          phase(`round ${round}: restart`, t);
          await restartRedis(redis, t);
          phase(`round ${round}: restarted`, t);
          const okAfter = t.ok;
          await until(() => t.ok > okAfter + 1_000, 5_000);
        }
        // close() while all 2,000 tasks are still sending.
        phase("close", t);
        const closing = client.close({ timeoutMs: Math.floor(rnd() * 200) });
        load.stop();
        await within("close()", closing, 5_000);
        await within("the tasks", load.done, 5_000);
      } finally {
        await client.close();
        await redis.kill();
      }
      break;
    }
    case "flap": {
      const redis = await RedisServer.start();
      const client = createRespClient({ port: redis.port, pool: { max: 8, createBackoffMaxMs: 50 }, requestTimeoutMs: 1_000 });
      const gc = setInterval(() => Bun.gc(false), 20);
      try {
        const load = loadTasks(client, TASKS, t, { pauseOnErrorMs: 5 });
        await until(() => t.ok >= 2_000, 10_000);
        for (let k = 0; k < (quick ? 2 : 5); k++) {
          await redis.kill();
          await Bun.sleep(rnd() * 100);
          await restartRedis(redis, t);
          await Bun.sleep(rnd() * 100);
        }
        const closing = client.close({ timeoutMs: Math.floor(rnd() * 200) });
        load.stop();
        await within("close()", closing, 5_000);
        await within("the tasks", load.done, 5_000);
      } finally {
        clearInterval(gc);
        await client.close();
        await redis.kill();
      }
      break;
    }
    case "kill-big": {
      const redis = await RedisServer.start();
      const client = createRespClient({ port: redis.port, pool: { max: 4 }, requestTimeoutMs: 3_000, maxWriteBufferBytes: 1 << 20, binary: true });
      try {
        const load = loadTasks(client, 200, t, { pauseOnErrorMs: 20, valueBytes: (quick ? 64 : 256) << 10 });
        await until(() => t.ok >= scale * (200 + Math.floor(rnd() * 400)), 10_000);
        await redis.kill();
        await Bun.sleep(50 + rnd() * 300);
        await restartRedis(redis, t);
        const okAfter = t.ok;
        await until(() => t.ok > okAfter + 100, 5_000);
        const closing = client.close({ timeoutMs: Math.floor(rnd() * 200) });
        load.stop();
        await within("close()", closing, 5_000);
        await within("the tasks", load.done, 10_000);
      } finally {
        await client.close();
        await redis.kill();
      }
      break;
    }
    case "refuse": {
      const port = freePort();
      const client = createRespClient({ port, requestTimeoutMs: 300, pool: { max: 8, createBackoffMaxMs: 20 } });
      const first = burst(client, TASKS, t);
      await Bun.sleep(rnd() * 400);
      const second = burst(client, TASKS, t);
      await Bun.sleep(rnd() * 50);
      await within("close()", client.close({ timeoutMs: 100 }), 5_000);
      await within("the sends", Promise.all([first, second]), 5_000);
      break;
    }
    case "reset":
    case "hang":
    case "garbage": {
      const listener = misbehavingListener(scenario);
      const client = createRespClient({ port: listener.port, requestTimeoutMs: 200 + Math.floor(rnd() * 200), pool: { max: 8, createBackoffMaxMs: 20 } });
      try {
        const first = burst(client, TASKS, t);
        await Bun.sleep(rnd() * 500);
        const second = burst(client, TASKS, t, Math.floor(rnd() * 100));
        await Bun.sleep(rnd() * 100);
        await within("close()", client.close({ timeoutMs: Math.floor(rnd() * 100) }), 5_000);
        await within("the sends", Promise.all([first, second]), 5_000);
      } finally {
        listener.stop(true);
      }
      break;
    }
    case "timeouts": {
      const redis = await RedisServer.start();
      const client = createRespClient({ port: redis.port, pool: { max: 8 }, requestTimeoutMs: 2_000 });
      const side = createRespClient({ port: redis.port, pool: { max: 1 }, requestTimeoutMs: 5_000 });
      try {
        const load = loadTasks(client, TASKS, t, { timeoutMs: () => Math.floor(rnd() * 4) });
        for (let i = 0; i < (quick ? 1 : 3); i++) {
          await Bun.sleep(scale * (100 + rnd() * 200));
          await side.send(["DEBUG", "SLEEP", "0.05"]).catch(() => {});
        }
        const closing = client.close({ timeoutMs: Math.floor(rnd() * 100) });
        load.stop();
        await within("close()", closing, 5_000);
        await within("the tasks", load.done, 5_000);
      } finally {
        await Promise.all([client.close(), side.close()]);
        await redis.kill();
      }
      break;
    }
    case "close-mid-load": {
      const redis = await RedisServer.start();
      const client = createRespClient({ port: redis.port, pool: { max: 8 }, requestTimeoutMs: 2_000 });
      try {
        const load = loadTasks(client, TASKS, t, {});
        await until(() => t.ok >= scale * (2_000 + Math.floor(rnd() * 20_000)), 10_000);
        const closing = client.close({ timeoutMs: Math.floor(rnd() * 50) });
        load.stop();
        await within("close()", closing, 5_000);
        await within("the tasks", load.done, 5_000);
      } finally {
        await client.close();
        await redis.kill();
      }
      break;
    }
  }
  return { scenario, seed, ms: Math.round(performance.now() - t0), ...t };
}

// ---------------------------------------------------------------- the soak (parent)

type Outcome = "ok" | "failed" | "crashed" | "hung";

// Bun's crash report; not "Bun v1.4.5 (Linux x64)" alone, which follows every uncaught error.
const CRASH_MARKERS = [/panic\(/, /oh no: Bun has crashed/, /Segmentation fault/, /Illegal instruction/, /Bus error/];

/** Runs one child; classifies how it ended. */
async function runOne(scenario: Scenario, seed: number, childTimeoutMs: number, quick: boolean): Promise<{ outcome: Outcome; detail: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const cmd = [process.execPath, import.meta.path, "--child", scenario, "--seed", String(seed), ...(quick ? ["--quick"] : [])];
  const proc = Bun.spawn(scenario === "kill-narrow" ? ["ip", "netns", "exec", narrowNamespace(), ...cmd] : cmd, {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BUN_DEBUG_QUIET_LOGS: "1" },
  });
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    proc.kill("SIGKILL");
  }, childTimeoutMs);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  const ms = Math.round(performance.now() - t0);
  if (hung) return { outcome: "hung", detail: `killed after ${childTimeoutMs} ms`, stderr: err, ms };
  const crashed = proc.signalCode !== null || CRASH_MARKERS.some((re) => re.test(err));
  if (crashed) {
    const line = err.split("\n").find((l) => CRASH_MARKERS.some((re) => re.test(l))) ?? `signal ${proc.signalCode}`;
    return { outcome: "crashed", detail: `exit ${code} ${proc.signalCode ?? ""}: ${line.trim()}`, stderr: err, ms };
  }
  if (code !== 0) {
    const line = err.split("\n").find((l) => /^error: /.test(l.trim())) ?? err.trim().split("\n").at(-1) ?? `exit ${code}`;
    return { outcome: "failed", detail: line.trim().slice(0, 300), stderr: err, ms };
  }
  const report = JSON.parse(out.trim().split("\n").at(-1) as string) as Tally;
  const retries = report.startRetries > 0 ? `, redis restarts retried ${report.startRetries}x` : "";
  return { outcome: "ok", detail: `${report.sends} sends, ${report.ok} ok, errors ${JSON.stringify(report.errors)}${retries}`, stderr: "", ms };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let runs = 10;
  let minutes = 15;
  let childTimeoutS = 60;
  let only: Scenario | "all" = "all";
  let child: Scenario | undefined;
  let seed = 1;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) usage(2, `${a} needs a value`);
      return v;
    };
    const positive = (v: string, integer: boolean) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) usage(2, `${a} needs a positive ${integer ? "integer" : "number"}, got ${v}`);
      return n;
    };
    if (a === "--help" || a === "-h") usage(0);
    else if (a === "--quick") quick = true;
    else if (a === "--runs") runs = positive(next(), true);
    else if (a === "--minutes") minutes = positive(next(), false);
    else if (a === "--child-timeout") childTimeoutS = positive(next(), false);
    else if (a === "--seed") seed = positive(next(), true);
    else if (a === "--scenario" || a === "--child") {
      const v = next();
      if (v !== "all" && !(SCENARIOS as readonly string[]).includes(v)) usage(2, `${a}: unknown scenario ${v}; one of ${SCENARIOS.join(", ")}${a === "--scenario" ? ", all" : ""}`);
      if (a === "--child") {
        if (v === "all") usage(2, "--child needs one scenario");
        child = v as Scenario;
      } else only = v as Scenario | "all";
    } else usage(2, `unknown argument ${a}`);
  }

  if (child !== undefined) {
    const report = await runChild(child, seed, quick);
    console.log(JSON.stringify(report));
    if (report.settled !== report.sends) throw new Error(`${report.sends - report.settled} of ${report.sends} sends never settled`);
    if (report.bad.length > 0) throw new Error(`bad outcomes: ${report.bad.join("; ")}`);
    process.exit(0);
  }

  const scenarios = only === "all" ? [...SCENARIOS] : [only];
  const deadline = performance.now() + minutes * 60_000;
  const table = new Map<Scenario, Record<Outcome, number>>();
  for (const s of scenarios) table.set(s, { ok: 0, failed: 0, crashed: 0, hung: 0 });
  const logDir = `${import.meta.dir}/results/pool-soak`;
  let n = 0;
  console.log(
    `pool-soak: ${runs} runs of each of ${scenarios.join(", ")}${quick ? " (quick)" : ""}; at most ${minutes} min; a run is killed after ${childTimeoutS} s`,
  );
  // Interleaved (one of each scenario per round) so a time budget that runs out still covers all.
  outer: for (let r = 0; r < runs; r++) {
    for (const s of scenarios) {
      if (performance.now() > deadline) break outer;
      const runSeed = 1_000 * r + scenarios.indexOf(s) + 1;
      const res = await runOne(s, runSeed, childTimeoutS * 1_000, quick);
      n++;
      const row = table.get(s) as Record<Outcome, number>;
      row[res.outcome]++;
      console.log(`${String(n).padStart(4)} ${s.padEnd(15)} seed ${String(runSeed).padEnd(6)} ${res.outcome.padEnd(8)} ${String(res.ms).padStart(6)} ms  ${res.detail}`);
      if (res.outcome !== "ok") {
        mkdirSync(logDir, { recursive: true });
        const file = `${logDir}/${new Date().toISOString().replace(/[:.]/g, "-")}-${s}-seed${runSeed}-${res.outcome}.log`;
        writeFileSync(file, res.stderr);
        console.log(`       stderr kept in ${file}; its last lines:`);
        // Also here, for a run whose files are gone with its machine (a CI clone).
        for (const line of res.stderr.trimEnd().split("\n").slice(-20)) console.log(`       | ${line}`);
      }
    }
  }
  console.log("\nscenario         runs   ok  failed  crashed  hung");
  let bad = 0;
  for (const [s, row] of table) {
    const total = row.ok + row.failed + row.crashed + row.hung;
    bad += row.failed + row.crashed + row.hung;
    console.log(`${s.padEnd(15)} ${String(total).padStart(5)} ${String(row.ok).padStart(4)} ${String(row.failed).padStart(7)} ${String(row.crashed).padStart(8)} ${String(row.hung).padStart(5)}`);
  }
  process.exit(bad === 0 ? 0 : 1);
}

await main();
