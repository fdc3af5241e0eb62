/**
 * Before and after: myriad's KV server at two commits, side by side in one run.
 * `redis-benchmark -t <tests> -c 50 -n <n> -P <p> --csv` against each, rounds alternating
 * which goes first, and a table of requests/s and server CPU per request with the after/before
 * ratio of each round (median and min-max).
 *
 *   bun bench/resp-ab.ts --before 3c3b75b                 # that commit against this tree
 *   bun bench/resp-ab.ts --before HEAD~3 --after HEAD     # two commits
 *
 * A commit is exported with `git archive` into a temporary directory (this tree's
 * node_modules linked in) and served from there with `bun src/cli/serve.ts --no-admin`; both
 * servers are pinned to CPU 0 and redis-benchmark to CPU 1 (taskset), as bench/resp.ts does.
 * On a shared machine the load moves from second to second: compare the per-round ratios and
 * the CPU per request (server user + system time from /proc/<pid>/stat over the requests it
 * served), not the raw rps.
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineCommand, runCommand } from "../src/config/index.ts";

const cmd = defineCommand({
  name: "bench/resp-ab.ts",
  usage: "bun bench/resp-ab.ts --before <commit> [flags]",
  summary: "redis-benchmark against myriad's KV server at two commits in the same run; prints rps, CPU per request and after/before ratios.",
  flags: {
    before: { type: "string", required: true, minLength: 1, placeholder: "<commit>", help: "the commit measured as 'before'" },
    after: { type: "string", placeholder: "<commit>", help: "the commit measured as 'after' (default: this working tree as it is)" },
    requests: { type: "int", default: 200_000, min: 1000, short: "n", help: "requests per test (redis-benchmark -n)" },
    clients: { type: "int", default: 50, min: 1, max: 10_000, short: "c", help: "parallel connections (redis-benchmark -c)" },
    pipeline: { type: "int", default: 16, min: 1, max: 1000, short: "P", help: "pipeline depth (redis-benchmark -P)" },
    tests: { type: "list", default: ["set", "get"], help: "redis-benchmark -t tests" },
    rounds: { type: "int", default: 7, min: 1, max: 50, help: "rounds; ratios are taken per round, the median is reported" },
    warmup: { type: "int", default: 50_000, min: 0, help: "requests per test of an unmeasured first run against each server (JIT warm-up)" },
  },
});

const { values: opt } = runCommand(cmd);
const ROOT = join(import.meta.dir, "..");

function need(tool: string, pkg: string): string {
  const p = Bun.which(tool);
  if (!p) {
    console.error(`bench/resp-ab.ts: ${tool} not found: install it (apt-get install ${pkg})`);
    process.exit(1);
  }
  return p;
}
const benchBin = need("redis-benchmark", "redis-tools");
const tasksetBin = navigator.hardwareConcurrency >= 2 ? Bun.which("taskset") : null;
const onCpu = (cpu: number, argv: string[]): string[] => (tasksetBin === null ? argv : [tasksetBin, "-c", String(cpu), ...argv]);

/** A directory holding `rev`'s tree (git archive) with this tree's node_modules linked in. */
function exportCommit(rev: string): string {
  const dir = mkdtempSync(join(tmpdir(), "myriad-ab-"));
  const archive = Bun.spawnSync(["git", "-C", ROOT, "archive", "--format=tar", rev], { stdout: "pipe", stderr: "pipe" });
  if (archive.exitCode !== 0) throw new Error(`git archive ${rev}: ${archive.stderr.toString().trim()}`);
  const untar = Bun.spawnSync(["tar", "-x", "-C", dir], { stdin: archive.stdout, stdout: "ignore", stderr: "pipe" });
  if (untar.exitCode !== 0) throw new Error(`tar: ${untar.stderr.toString().trim()}`);
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

interface Target {
  name: "before" | "after";
  label: string;
  port: number;
  proc: Bun.Subprocess;
}

async function startServe(name: Target["name"], label: string, root: string): Promise<Target> {
  const port = freePort();
  const proc = Bun.spawn(onCpu(0, [process.execPath, join(root, "src", "cli", "serve.ts"), "--port", String(port), "--no-admin"]), {
    cwd: root,
    stdout: "ignore",
    stderr: "inherit",
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${label}: serve exited with ${proc.exitCode} before listening`);
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return { name, label, port, proc };
    } catch {
      if (Date.now() > deadline) throw new Error(`${label}: serve is not listening on ${port} after 15 s`);
      await Bun.sleep(25);
    }
  }
}

/** Runs redis-benchmark; returns test name -> rps. */
async function runBenchmark(port: number, n: number): Promise<Map<string, number>> {
  const args = onCpu(1, [benchBin, "-h", "127.0.0.1", "-p", String(port), "-t", opt.tests.join(","), "-c", String(opt.clients), "-n", String(n), "-P", String(opt.pipeline), "--csv"]);
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`redis-benchmark exited with ${code}: ${err.trim()}`);
  const rps = new Map<string, number>();
  for (const line of out.split("\n")) {
    const cells = line.trim().match(/"([^"]*)"/g)?.map((c) => c.slice(1, -1));
    if (!cells || cells.length < 2 || cells[0] === "test") continue;
    const v = Number(cells[1]);
    if (Number.isFinite(v)) rps.set(cells[0]!, v);
  }
  return rps;
}

/** CPU seconds (user + system) the process has used, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;

const dirs: string[] = [];
const targets: Target[] = [];
try {
  const beforeDir = exportCommit(opt.before);
  dirs.push(beforeDir);
  const afterDir = opt.after === undefined ? ROOT : exportCommit(opt.after);
  if (opt.after !== undefined) dirs.push(afterDir);
  targets.push(await startServe("before", opt.before, beforeDir));
  targets.push(await startServe("after", opt.after ?? "this tree", afterDir));
  console.log(
    `bench/resp-ab.ts: redis-benchmark -t ${opt.tests.join(",")} -c ${opt.clients} -n ${opt.requests} -P ${opt.pipeline}, ${opt.rounds} rounds; ` +
      `before = ${opt.before}, after = ${opt.after ?? "this tree"}; ${tasksetBin === null ? "unpinned" : "servers pinned to CPU 0, redis-benchmark to CPU 1"}`,
  );
  if (opt.warmup > 0) for (const t of targets) await runBenchmark(t.port, Math.max(1000, opt.warmup));

  const rps: Record<string, { before: number[]; after: number[] }> = {};
  const cpuPerRequestUs = { before: [] as number[], after: [] as number[] };
  for (let r = 0; r < opt.rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const cpu0 = cpuSeconds(t.proc.pid);
      const res = await runBenchmark(t.port, opt.requests);
      cpuPerRequestUs[t.name].push(((cpuSeconds(t.proc.pid) - cpu0) * 1e6) / (opt.requests * res.size));
      for (const [test, v] of res) (rps[test] ??= { before: [], after: [] })[t.name].push(v);
    }
  }

  const rows: string[][] = [["test", "before rps", "after rps", "after/before", "per-round spread"]];
  for (const [test, v] of Object.entries(rps)) {
    const ratios = v.after.map((a, i) => a / v.before[i]!);
    rows.push([test, Math.round(median(v.before)).toLocaleString("en-US"), Math.round(median(v.after)).toLocaleString("en-US"), `${median(ratios).toFixed(2)}x`, spread(ratios)]);
  }
  const cpuRatios = cpuPerRequestUs.after.map((a, i) => a / cpuPerRequestUs.before[i]!);
  rows.push([
    "CPU us/request",
    median(cpuPerRequestUs.before).toFixed(3),
    median(cpuPerRequestUs.after).toFixed(3),
    `${median(cpuRatios).toFixed(2)}x`,
    spread(cpuRatios),
  ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join("  "));
  console.log("rps and CPU per request: medians over the rounds; after/before: median of the per-round ratios (lower CPU is better)");
} finally {
  for (const t of targets) if (t.proc.exitCode === null) process.kill(t.proc.pid, "SIGTERM");
  await Promise.all(targets.map((t) => t.proc.exited));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
