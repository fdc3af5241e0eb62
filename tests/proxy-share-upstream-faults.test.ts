/**
 * `bun run proxy --workers 2 --share-upstream` when things go wrong around the hub, against a
 * real redis-server: a stopped (SIGSTOP) hub makes requests fail with the front's timeout
 * error, never a hang or a crashed worker, and after SIGCONT service resumes; a SIGKILLed
 * supervisor leaves no process and no socket directory behind; a run removes the socket
 * directories that runs killed outright left, and only those.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { frontTimeoutMs } from "../src/proxy/index.ts";
import { freePort } from "./helpers/ports.ts";
import { alive } from "./helpers/process.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { respConnect } from "./helpers/resp-conn.ts";
import { until } from "./helpers/until.ts";

const ROOT = join(import.meta.dir, "..");
/** The run's TMPDIR: its hub directory and the stale ones planted for it, apart from every other run's. */
const tmp = mkdtempSync(join(tmpdir(), "myriad-proxy-faults-"));
const TIMEOUT_MS = 500;
let redis: RedisServer;
let proc: Subprocess<"ignore", "pipe", "pipe">;
let out = "";
let port = 0;
let hubPid = 0;
let workerPids: number[] = [];
let hubDir = "";
/** Planted: [removed by the run's start, kept]. */
let staleDirs: string[] = [];
let keptDirs: string[] = [];
let liveSocket: ReturnType<typeof Bun.listen> | undefined;

/** A pid that ran and has exited (not reused this soon: pids go up before they wrap). */
async function deadPid(): Promise<number> {
  const p = Bun.spawn(["true"], { stdout: "ignore", stderr: "ignore" });
  await p.exited;
  return p.pid;
}

beforeAll(async () => {
  redis = await RedisServer.start();
  // Left by runs killed outright: a dead supervisor's empty directory, one with a hub socket
  // nobody listens on any more (a regular file refuses connections the same way).
  const dead = await deadPid();
  staleDirs = [join(tmp, `myriad-proxy-hub-${dead}-aaaaaa`), join(tmp, `myriad-proxy-hub-${dead}-bbbbbb`)];
  for (const d of staleDirs) mkdirSync(d, { mode: 0o700 });
  writeFileSync(join(staleDirs[1]!, "pool-0.sock"), "");
  // Kept: a supervisor that runs (this test), and a dead-looking pid whose hub still accepts
  // connections (its supervisor in a pid namespace this one does not see).
  keptDirs = [join(tmp, `myriad-proxy-hub-${process.pid}-cccccc`), join(tmp, `myriad-proxy-hub-${dead}-dddddd`)];
  for (const d of keptDirs) mkdirSync(d, { mode: 0o700 });
  liveSocket = Bun.listen({ unix: join(keptDirs[1]!, "pool-0.sock"), socket: { data() {} } });

  port = freePort();
  proc = Bun.spawn(
    [process.execPath, join(ROOT, "src/cli/proxy.ts"), "--listen", `127.0.0.1:${port}`, "--servers", `127.0.0.1:${redis.port}`, "--timeout", String(TIMEOUT_MS), "--workers", "2", "--share-upstream", "--no-admin"],
    { cwd: ROOT, env: { ...process.env, TMPDIR: tmp }, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stdout) out += dec.decode(chunk);
  })();
  await until(() => `the startup block (stdout: ${out})`, () => out.includes("stop: Ctrl-C"), 60_000);
  const m = /\(pids ([0-9, ]+)\) sharing hub pid (\d+)/.exec(out)!;
  workerPids = m[1]!.split(", ").map(Number);
  hubPid = Number(m[2]);
  hubDir = /through the hub's socket in (\S+)/.exec(out)![1]!;
}, 90_000);

afterAll(async () => {
  for (const pid of [hubPid, ...workerPids]) {
    if (pid > 0 && alive(pid)) {
      process.kill(pid, "SIGCONT");
      process.kill(pid, "SIGKILL");
    }
  }
  if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  await proc?.exited;
  liveSocket?.stop(true);
  await redis?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("bun run proxy --workers 2 --share-upstream, faults", () => {
  test("at start, the socket directories of runs that are gone are removed, and only those", () => {
    expect(hubDir.startsWith(join(tmp, "myriad-proxy-hub-"))).toBe(true);
    for (const d of staleDirs) expect(existsSync(d)).toBe(false);
    for (const d of keptDirs) expect(existsSync(d)).toBe(true);
  });

  test("a stopped hub: requests fail with the front's timeout error, workers live on; after SIGCONT service resumes", async () => {
    const c = await respConnect(port);
    expect(await c.call(["SET", "faults:k", "v"], ["GET", "faults:k"])).toEqual(["OK", "v"]);
    process.kill(hubPid, "SIGSTOP");
    try {
      // The front waits frontTimeoutMs for the hub (or less, to connect again), then answers
      // an error naming the hub's socket; read() fails the test past 10 s.
      const hub = `server unix:${hubDir}/pool-0.sock`;
      await c.send(["GET", "faults:k"]);
      // A client that arrives meanwhile is accepted, and what the front answers itself is answered.
      const late = await respConnect(port);
      expect(await late.call(["PING"])).toEqual(["PONG"]);
      await late.send(["GET", "faults:k"]);
      const [[during], [lateGet]] = await Promise.all([c.read(1), late.read(1)]);
      for (const reply of [during, lateGet]) {
        expect(reply).toBeInstanceOf(Error);
        expect(String(reply)).toContain("ERR proxy: ");
        expect(String(reply)).toContain(hub);
      }
      // The first waited for the reply itself: the timeout error, with the front's bound.
      expect(String(during)).toContain(`no reply from ${hub} of pool proxy within timeout ${frontTimeoutMs(TIMEOUT_MS)} ms`);
      late.close();
      for (const pid of workerPids) expect(alive(pid)).toBe(true);
    } finally {
      process.kill(hubPid, "SIGCONT");
    }
    // The hub was stopped, not dead: it is the same process, and it serves again.
    await until("requests served again after SIGCONT", async () => (await c.call(["GET", "faults:k"]))[0] === "v", 30_000);
    const again = await respConnect(port);
    expect(await again.call(["SET", "faults:k2", "w"], ["GET", "faults:k2"])).toEqual(["OK", "w"]);
    again.close();
    c.close();
    expect(alive(hubPid)).toBe(true);
    for (const pid of workerPids) expect(alive(pid)).toBe(true);
    expect(out).not.toContain("died");
  }, 60_000);

  test("a SIGKILLed supervisor: the workers and the hub exit and the socket directory goes", async () => {
    expect(existsSync(hubDir)).toBe(true);
    process.kill(proc.pid, "SIGKILL");
    await proc.exited;
    await until(() => `no process of the run left (${[hubPid, ...workerPids].filter(alive).join(", ")} remain)`, () => [hubPid, ...workerPids].every((pid) => !alive(pid)), 30_000);
    await until(() => `${hubDir} removed (it holds: ${existsSync(hubDir) ? readdirSync(hubDir).join(", ") : "-"})`, () => !existsSync(hubDir), 10_000);
    await until("no connection to redis left", async () => (await redis.otherClients()) === 0);
  }, 60_000);
});
