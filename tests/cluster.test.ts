import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "bun";
import { runCluster, type Cluster, type ClusterEvent } from "../src/cluster/index.ts";
import { emptyServerStats, sumServerStats } from "../src/reactor/index.ts";
import { isProcessAlive } from "../src/system/index.ts";
import { until } from "./helpers/until.ts";

const ROOT = join(import.meta.dir, "..");
const tmp = mkdtempSync(join(tmpdir(), "myriad-cluster-"));
const started: Cluster[] = [];
afterAll(async () => {
  for (const c of started) {
    c.kill();
    await c.stop({ graceful: false, timeoutMs: 500 });
  }
  rmSync(tmp, { recursive: true, force: true });
});

async function start(opts: Parameters<typeof runCluster>[0]): Promise<Cluster> {
  const c = await runCluster({ stdio: "ignore", ...opts });
  started.push(c);
  return c;
}

/** Opens a client, sends `text`, resolves with the first reply. */
async function roundTrip(port: number, text: string, host = "127.0.0.1"): Promise<string> {
  let resolveReply: (s: string) => void = () => {};
  const reply = new Promise<string>((r) => (resolveReply = r));
  const s = await Bun.connect({ hostname: host, port, socket: { data: (_s, d) => resolveReply(d.toString()) } });
  s.write(text);
  const got = await Promise.race([reply, Bun.sleep(3000).then(() => "(no reply)")]);
  s.end();
  return got;
}

/** Resolves once none of pids runs; rejects naming those still alive after timeoutMs. */
function allGone(pids: number[], timeoutMs = 5000): Promise<true> {
  return until(() => `pids ${pids.filter((p) => isProcessAlive(p)).join(", ")} to exit`, () => pids.every((p) => !isProcessAlive(p)), timeoutMs);
}

describe("runCluster", () => {
  test("workers share every listen address with reusePort; the kernel spreads connections; one stats view", async () => {
    const c = await start({
      workers: 2,
      listen: [
        { hostname: "127.0.0.1", port: 0 },
        { hostname: "127.0.0.1", port: 0 },
      ],
      app: { kind: "echo", protocol: "lines" },
      statsIntervalMs: 100,
    });
    const [a, b] = c.addresses;
    expect(a!.port).toBeGreaterThan(0);
    expect(b!.port).toBeGreaterThan(0);
    expect(a!.port).not.toBe(b!.port);
    expect(c.pids()).toHaveLength(2);
    expect(await roundTrip(a!.port, "hello\n")).toBe("hello\n");
    expect(await roundTrip(b!.port, "again\n")).toBe("again\n");

    // 60 connections over 2 workers: each gets some (all on one: probability 2^-59).
    const socks: Socket[] = [];
    for (let i = 0; i < 60; i++) socks.push(await Bun.connect({ hostname: "127.0.0.1", port: c.addresses[i % 2]!.port, socket: { data() {} } }));
    // The server accepts a moment after the client's connect resolves.
    await until(() => `the workers to count 60 connections (${c.totals().connections})`, async () => (await c.refreshStats(), c.totals().connections >= 60));
    const snap = await c.refreshStats();
    expect(c.lastRefreshComplete).toBe(true);
    expect(snap.workers.map((w) => w.worker)).toEqual(["worker-0", "worker-1"]);
    expect(snap.workers.map((w) => w.pid)).toEqual(c.pids());
    const perWorker = snap.workers.map((w) => w.stats.connections);
    expect(perWorker[0]! + perWorker[1]!).toBe(60);
    expect(Math.min(...perWorker)).toBeGreaterThan(0);
    expect(c.totals().connections).toBe(60);
    expect(c.totals().accepted).toBe(62);
    expect(c.totals().rssBytes).toBe(snap.workers[0]!.stats.rssBytes + snap.workers[1]!.stats.rssBytes);
    expect(c.isAccepting()).toBe(true);

    // Graceful stop: every open connection closes, every worker exits.
    const pids = c.pids();
    await c.stop();
    expect(c.isAccepting()).toBe(false);
    await allGone(pids);
    expect(c.pids()).toEqual([]);
    for (const s of socks) s.end();
  });

  test("a crashed worker is restarted with a new pid and serves again; backoff grows", async () => {
    const events: ClusterEvent[] = [];
    const c = await start({
      workers: 2,
      listen: [{ hostname: "127.0.0.1", port: 0 }],
      app: { kind: "echo" },
      restart: { initialDelayMs: 50, maxDelayMs: 1000, resetAfterMs: 60_000 },
      onEvent: (e) => events.push(e),
    });
    const port = c.addresses[0]!.port;
    const victim = c.pids()[1]!;
    process.kill(victim, "SIGKILL");
    await until("worker 1 ready under a new pid", () => c.workers[1]!.state === "ready" && c.workers[1]!.pid !== victim, 5000);
    expect(c.workers[1]!.restarts).toBe(1);
    const exit = events.find((e) => e.type === "exit") as Extract<ClusterEvent, { type: "exit" }>;
    expect(exit).toMatchObject({ worker: 1, pid: victim, signal: "SIGKILL", expected: false });
    expect(events.find((e) => e.type === "restart")).toMatchObject({ worker: 1, delayMs: 50, restarts: 1 });
    // A second crash soon after: the delay doubles.
    process.kill(c.pids()[1]!, "SIGKILL");
    await until("worker 1 ready after its second restart", () => c.workers[1]!.restarts === 2 && c.workers[1]!.state === "ready", 5000);
    expect(events.filter((e) => e.type === "restart").map((e) => (e as { delayMs: number }).delayMs)).toEqual([50, 100]);
    for (let i = 0; i < 6; i++) expect(await roundTrip(port, `x${i}`)).toBe(`x${i}`);
    const pids = c.pids();
    await c.stop();
    await allGone(pids);
  });

  test("a worker that cannot listen fails the start, and nothing is left running", async () => {
    // Held without reusePort: the workers' reusePort bind on it must fail.
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const events: ClusterEvent[] = [];
    let err: unknown;
    try {
      await runCluster({ workers: 2, listen: [{ hostname: "127.0.0.1", port: holder.port }], stdio: "ignore", onEvent: (e) => events.push(e) });
    } catch (e) {
      err = e;
    }
    holder.stop(true);
    expect((err as { code?: string }).code).toBe("ERR_CLUSTER_START");
    expect(String((err as Error).message)).toMatch(/in use|EADDRINUSE/i);
    const pids = [...new Set(events.filter((e) => "pid" in e).map((e) => (e as { pid: number }).pid))];
    expect(pids.length).toBeGreaterThan(0);
    await allGone(pids);
  });

  test("the per-process cap holds over several listeners", async () => {
    const c = await start({
      workers: 1,
      listen: [
        { hostname: "127.0.0.1", port: 0 },
        { hostname: "127.0.0.1", port: 0 },
      ],
      maxConnectionsPerWorker: 5,
      statsIntervalMs: 50,
    });
    let closedByServer = 0;
    const socks: Socket[] = [];
    for (let i = 0; i < 8; i++) {
      socks.push(await Bun.connect({ hostname: "127.0.0.1", port: c.addresses[i % 2]!.port, socket: { data() {}, close: () => void closedByServer++ } }));
    }
    await until(() => `the server to close the 3 connections over the cap (closed ${closedByServer})`, () => closedByServer === 3, 5000);
    await c.refreshStats();
    const t = c.totals();
    expect(t.connections).toBe(5);
    expect(t.rejected).toBe(3);
    expect(t.accepted).toBe(5);
    expect(t.closed.server).toBe(0);
    for (const s of socks) s.end();
    await c.stop();
  });

  test("an app from a module, with options and the worker index", async () => {
    const mod = join(tmp, "app.ts");
    writeFileSync(
      mod,
      `export function make(options, ctx) {
         return { protocol: "lines", handler: { message(conn, frame) { conn.write(options.prefix + ctx.workerIndex + "/" + ctx.workers + ":" + new TextDecoder().decode(frame) + "\\n"); } } };
       }`,
    );
    const c = await start({ workers: 1, listen: [{ hostname: "127.0.0.1", port: 0 }], app: { kind: "module", module: mod, export: "make", options: { prefix: "w" } } });
    expect(await roundTrip(c.addresses[0]!.port, "hi\n")).toBe("w0/1:hi\n");
    await c.stop();
  });

  test("raw Bun.listen workers (the c1m baseline) speak the same protocol", async () => {
    const c = await start({ workers: 2, listen: [{ hostname: "127.0.0.1", port: 0 }], workerEntry: join(ROOT, "bench", "c1m-raw-worker.ts"), statsIntervalMs: 100 });
    expect(await roundTrip(c.addresses[0]!.port, "raw")).toBe("raw");
    await c.refreshStats();
    expect(c.totals().accepted).toBe(1);
    const pids = c.pids();
    await c.stop();
    await allGone(pids);
  });

  test("SIGTERM to the supervisor stops the workers gracefully; SIGKILL to it makes them exit on their own", async () => {
    const script = join(tmp, "sup.ts");
    writeFileSync(
      script,
      `import { runCluster } from ${JSON.stringify(join(ROOT, "src/cluster/index.ts"))};
       const c = await runCluster({ workers: 2, listen: [{ hostname: "127.0.0.1", port: 0 }], handleSignals: true, stdio: "ignore",
         onEvent: (e) => { if (e.type === "stopped") { console.log("STOPPED"); process.exit(0); } } });
       console.log(JSON.stringify({ pids: c.pids(), port: c.addresses[0].port }));`,
    );
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      const p = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "inherit" });
      const reader = p.stdout.getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      const info = JSON.parse(text.split("\n")[0]!) as { pids: number[]; port: number };
      expect(info.pids).toHaveLength(2);
      expect(await roundTrip(info.port, "ok")).toBe("ok");
      p.kill(signal);
      expect(await p.exited).toBe(signal === "SIGTERM" ? 0 : 137);
      await allGone(info.pids);
      reader.releaseLock();
    }
  });

  test("bad options are refused with a code", async () => {
    await expect(runCluster({ workers: 0, listen: [{ hostname: "127.0.0.1", port: 0 }] })).rejects.toMatchObject({ code: "ERR_CLUSTER_WORKERS" });
    await expect(runCluster({ workers: 1, listen: [] })).rejects.toMatchObject({ code: "ERR_CLUSTER_LISTEN" });
    await expect(runCluster({ workers: 1, listen: [{ hostname: "127.0.0.1", port: 0 }], ftl: "no" as never })).rejects.toMatchObject({ code: "ERR_CLUSTER_WORKERS" });
  });

  test("ftl: false runs the workers without JSC's FTL tier, unless the caller's env says otherwise; one worker per CPU keeps it", async () => {
    const ftlEnvOf = (pid: number) =>
      readFileSync(`/proc/${pid}/environ`, "utf8")
        .split("\0")
        .find((kv) => kv.startsWith("BUN_JSC_useFTLJIT="));
    const listen = [{ hostname: "127.0.0.1", port: 0 }];
    const off = await start({ workers: 1, listen, ftl: false });
    const byDefault = await start({ workers: 1, listen });
    const theirs = await start({ workers: 1, listen, ftl: false, env: { BUN_JSC_useFTLJIT: "1" } });
    expect(ftlEnvOf(off.pids()[0]!)).toBe("BUN_JSC_useFTLJIT=0");
    expect(ftlEnvOf(byDefault.pids()[0]!)).toBe(process.env.BUN_JSC_useFTLJIT === undefined ? undefined : `BUN_JSC_useFTLJIT=${process.env.BUN_JSC_useFTLJIT}`);
    expect(ftlEnvOf(theirs.pids()[0]!)).toBe("BUN_JSC_useFTLJIT=1");
    // It still serves.
    expect(await roundTrip(off.addresses[0]!.port, "hi")).toBe("hi");
    for (const c of [off, byDefault, theirs]) await c.stop();
  });

  test("echo and kv workers run one bundled entry from a private folder, with a source map that points into the sources; module apps run the sources", async () => {
    const c = await start({ workers: 2, listen: [{ hostname: "127.0.0.1", port: 0 }], app: { kind: "echo" } });
    const scriptOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).at(-1)!;
    const [first, second] = c.pids().map(scriptOf);
    const dir = join(tmpdir(), `myriad-${process.getuid!()}`);
    expect(first).toMatch(new RegExp(`^${dir}/myriad-worker-[0-9a-z]+\\.js$`));
    expect(second).toBe(first!);
    // Only this user may write there: another user could otherwise plant code for our workers.
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(first!).uid).toBe(process.getuid!());
    expect(await roundTrip(c.addresses[0]!.port, "still echoes")).toBe("still echoes");

    // An error thrown in the bundle reports the TypeScript file and line, through the map.
    const broken = Bun.spawn([process.execPath, first!], {
      env: { ...process.env, MYRIAD_CLUSTER_WORKER: "{" }, // not JSON: worker-main throws at its top level
      stdio: ["ignore", "ignore", "pipe"],
      ipc() {},
    });
    const [stderr, code] = await Promise.all([new Response(broken.stderr).text(), broken.exited]);
    expect(code).not.toBe(0);
    expect(stderr).toContain(`at ${join(ROOT, "src", "cluster", "worker-main.ts")}:`);

    // A module app imports myriad itself: it must share one copy with the worker, so no bundle.
    const mod = join(tmp, "bundle-check-app.ts");
    writeFileSync(mod, `import { linesCodec } from "${join(ROOT, "src", "codec", "index.ts")}";\nexport default () => ({ codec: linesCodec, handler: { message(conn, line) { conn.write(line); } } });\n`);
    const m = await start({ workers: 1, listen: [{ hostname: "127.0.0.1", port: 0 }], app: { kind: "module", module: mod } });
    expect(scriptOf(m.pids()[0]!)).toBe(join(ROOT, "src", "cluster", "worker-main.ts"));
    expect(await roundTrip(m.addresses[0]!.port, "line\n")).toBe("line"); // the frame without its "\n": linesCodec framed it
  });
});

describe("sumServerStats", () => {
  test("servers of one process share rss; workers add it up", () => {
    const a = { ...emptyServerStats([1, 10]), connections: 3, accepted: 4, rssBytes: 100, requestLatency: { boundsMs: [1, 10], counts: [1, 2, 3], sumMs: 5, count: 6 } };
    const b = { ...emptyServerStats([1, 10]), connections: 2, accepted: 2, rssBytes: 100, requestLatency: { boundsMs: [1, 10], counts: [1, 0, 0], sumMs: 1, count: 1 } };
    a.closed.peer = 1;
    b.closed.peer = 2;
    const same = sumServerStats([a, b], true);
    expect(same).toMatchObject({ connections: 5, accepted: 6, rssBytes: 100 });
    expect(same.closed.peer).toBe(3);
    expect(same.requestLatency).toEqual({ boundsMs: [1, 10], counts: [2, 2, 3], sumMs: 6, count: 7 });
    expect(sumServerStats([a, b], false).rssBytes).toBe(200);
  });
});
