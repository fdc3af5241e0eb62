/**
 * What one client that pipelines faster than the upstream answers costs the RESP proxy's
 * front process in memory (peak RSS, sampled every 50 ms from /proc), in two cases:
 *
 *   stopped  the upstream does not answer (the hub SIGSTOPped with --share-upstream, the
 *            redis-server without it): one Bun client writes 1 KB SETs as fast as its socket
 *            takes them for --seconds, then the upstream is SIGCONTed.
 *   pipe     `redis-cli --pipe` of --keys SETs (~134 bytes each) with a healthy upstream.
 *
 *   bun bench/proxy-flood.ts --case stopped --share-upstream
 *   bun bench/proxy-flood.ts --case pipe --root /tmp/myriad-before   # an older tree, for "before"
 *
 * --root runs the proxy of another checkout (its src/cli/proxy.ts), so before and after are
 * measured by the same script. Traffic stays on loopback; every loop is bounded in time.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: a } = parseArgs({
  options: {
    case: { type: "string", default: "stopped" },
    "share-upstream": { type: "boolean", default: false },
    root: { type: "string", default: join(import.meta.dir, "..") },
    seconds: { type: "string", default: "8" },
    keys: { type: "string", default: "500000" },
  },
});
if (a.case !== "stopped" && a.case !== "pipe") throw new Error("--case stopped|pipe");
const share = a["share-upstream"]!;
const seconds = Number(a.seconds);
const keys = Number(a.keys);

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

const MB = 1024 * 1024;
const redisPort = freePort();
const redis = Bun.spawn(["redis-server", "--port", String(redisPort), "--save", "", "--appendonly", "no"], { stdout: "ignore", stderr: "ignore" });
const port = freePort();
const proxyArgs = ["--listen", `127.0.0.1:${port}`, "--servers", `127.0.0.1:${redisPort}`, "--no-admin", "--timeout", "60000"];
// --share-upstream needs 2 workers at least: the client reaches one of them (reusePort); the larger peak is reported.
if (share) proxyArgs.push("--workers", "2", "--share-upstream");
const proxy = Bun.spawn([process.execPath, join(a.root!, "src/cli/proxy.ts"), ...proxyArgs], { cwd: a.root, stdout: "pipe", stderr: "inherit" });
let out = "";
void (async () => {
  const dec = new TextDecoder();
  for await (const c of proxy.stdout) out += dec.decode(c);
})();
const t0 = performance.now();
while (!out.includes("stop: Ctrl-C")) {
  if (performance.now() - t0 > 30_000 || proxy.exitCode !== null) {
    proxy.kill("SIGKILL");
    redis.kill("SIGKILL");
    throw new Error(`proxy did not start: ${out}`);
  }
  await Bun.sleep(20);
}
let fronts = [proxy.pid];
let hubPid = 0;
if (share) {
  const m = /\(pids ([0-9, ]+)\) sharing hub pid (\d+)/.exec(out)!;
  fronts = m[1]!.split(", ").map(Number);
  hubPid = Number(m[2]);
}
const frontRss = () => Math.max(...fronts.map(rssOf));
const baseline = frontRss();
let peak = baseline;
const sampler = setInterval(() => {
  peak = Math.max(peak, frontRss());
}, 50);

const stalled = share ? hubPid : redis.pid;
let detail = "";
if (a.case === "stopped") {
  process.kill(stalled, "SIGSTOP");
  const value = "x".repeat(1024);
  const one = `*3\r\n$3\r\nSET\r\n$4\r\nkey1\r\n$1024\r\n${value}\r\n`;
  const batch = new TextEncoder().encode(one.repeat(64));
  let sent = 0;
  let replies = 0;
  let wake: (() => void) | null = null;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d: Uint8Array) {
        for (const b of d) if (b === 10) replies++;
      },
      drain() {
        wake?.();
      },
    },
  });
  const end = performance.now() + seconds * 1000;
  let rest: Uint8Array | null = null;
  while (performance.now() < end) {
    const buf: Uint8Array = rest ?? batch;
    const n = socket.write(buf);
    if (n === buf.length) {
      rest = null;
      sent += 64;
      await Promise.resolve();
    } else {
      rest = buf.subarray(Math.max(0, n));
      // Backpressure: wait for drain, or the deadline.
      await Promise.race([new Promise<void>((r) => (wake = r)), Bun.sleep(Math.max(0, end - performance.now()))]);
    }
  }
  peak = Math.max(peak, frontRss());
  process.kill(stalled, "SIGCONT");
  detail = `${sent} SETs of 1 KB written in full in ${seconds} s while stopped; replies so far ${replies}`;
  socket.end();
} else {
  const parts: string[] = [];
  for (let i = 0; i < keys; i++) {
    const k = `key:${String(i).padStart(10, "0")}`;
    const v = `value:${String(i).padStart(10, "0")}`.padEnd(80, ".");
    parts.push(`*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${v.length}\r\n${v}\r\n`);
  }
  const input = new TextEncoder().encode(parts.join(""));
  const t = performance.now();
  const p = Bun.spawn(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "--pipe"], { stdin: input, stdout: "pipe", stderr: "pipe" });
  const text = await new Response(p.stdout).text();
  await p.exited;
  const ms = performance.now() - t;
  const dbsize = await new Response(Bun.spawn(["redis-cli", "-p", String(redisPort), "DBSIZE"], { stdout: "pipe" }).stdout).text();
  detail = `${(input.length / MB).toFixed(1)} MB, ${keys} SETs in ${(ms / 1000).toFixed(2)} s; redis-cli: ${text.trim().split("\n").pop()}; DBSIZE ${dbsize.trim()}`;
}
clearInterval(sampler);
console.log(
  `${a.case} ${share ? "--share-upstream front" : "plain proxy"} root=${a.root}: front RSS baseline ${(baseline / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB (+${((peak - baseline) / MB).toFixed(0)} MB); ${detail}`,
);
proxy.kill("SIGTERM");
await proxy.exited;
redis.kill("SIGKILL");
