import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import fc from "fast-check";
import type { Socket, TCPSocketListener } from "bun";
import {
  addCounters,
  autoSources,
  emptyCounters,
  errorKind,
  LoadEngine,
  LogHistogram,
  maxPerTuple,
  parseAddresses,
  parseTargets,
  resolveSources,
  splitEvenly,
  tupleOf,
} from "../src/loadgen/index.ts";
import { isProcessAlive } from "../src/system/index.ts";
import { until } from "./helpers/until.ts";

const ROOT = join(import.meta.dir, "..");

describe("LogHistogram", () => {
  test("percentiles are never below the true nearest-rank value and at most 2^-bits above (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2 ** 36 }), { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.integer({ min: 3, max: 9 }),
        (values, q, bits) => {
          const h = new LogHistogram({ subBucketBits: bits });
          for (const v of values) h.record(v);
          const sorted = [...values].sort((a, b) => a - b);
          const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
          const exact = sorted[rank - 1]!;
          const got = h.percentile(q);
          return got >= exact && got <= exact + Math.floor(exact / 2 ** bits) && got <= h.max && got >= h.min;
        },
      ),
      { numRuns: 400 },
    );
  });

  test("merging equals recording everything in one (property), also through JSON", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10_000_000 })), fc.array(fc.integer({ min: 0, max: 10_000_000 })), (a, b) => {
        const ha = new LogHistogram();
        const hb = new LogHistogram();
        const all = new LogHistogram();
        for (const v of a) (ha.record(v), all.record(v));
        for (const v of b) (hb.record(v), all.record(v));
        const viaJson = LogHistogram.fromJSON(JSON.parse(JSON.stringify(ha.toJSON()))).merge(JSON.parse(JSON.stringify(hb.toJSON())));
        ha.merge(hb);
        for (const h of [ha, viaJson]) {
          if (h.count !== all.count || h.sum !== all.sum || h.min !== all.min || h.max !== all.max) return false;
          for (const q of [0, 10, 50, 90, 99, 99.9, 100]) if (h.percentile(q) !== all.percentile(q)) return false;
        }
        return true;
      }),
      { numRuns: 200 },
    );
  });

  test("bucket bounds tile the range without gaps", () => {
    const h = new LogHistogram({ subBucketBits: 4, maxExponent: 20 });
    let expected = 0;
    for (let i = 0; h.lowestOf(i) <= h.highestTrackable && i < 10_000; i++) {
      expect(h.lowestOf(i)).toBe(expected);
      expect(h.indexOf(h.lowestOf(i))).toBe(i);
      expect(h.indexOf(h.highestOf(i))).toBe(i);
      expected = h.highestOf(i) + 1;
      if (expected > h.highestTrackable) break;
    }
    expect(expected).toBe(h.highestTrackable + 1);
  });

  test("empty, clamping, shape mismatch", () => {
    const h = new LogHistogram();
    expect(h.summary()).toEqual({ count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
    h.record(-5);
    h.record(2 ** 60);
    expect(h.min).toBe(0);
    expect(h.max).toBe(h.highestTrackable);
    expect(() => h.merge(new LogHistogram({ subBucketBits: 5 }))).toThrow("different shapes");
  });
});

describe("targets and sources", () => {
  test("ranges of hosts and ports expand; bare port means 127.0.0.1", () => {
    expect(parseTargets("127.0.0.1-127.0.0.2:7000-7001")).toEqual([
      { host: "127.0.0.1", port: 7000 },
      { host: "127.0.0.1", port: 7001 },
      { host: "127.0.0.2", port: 7000 },
      { host: "127.0.0.2", port: 7001 },
    ]);
    expect(parseTargets(["6380", "[::1]:7000"])).toEqual([
      { host: "127.0.0.1", port: 6380 },
      { host: "::1", port: 7000 },
    ]);
    expect(parseAddresses("127.1.0.0/30", "x")).toEqual(["127.1.0.1", "127.1.0.2"]);
  });

  test("only loopback, with a message saying what is accepted", () => {
    expect(() => parseTargets("10.0.0.1:80")).toThrow("127.0.0.0/8");
    expect(() => parseTargets("127.0.0.1:0")).toThrow("targets must look like");
    expect(() => parseTargets("127.0.0.1:9-8")).toThrow("targets must look like");
    expect(() => resolveSources("192.168.1.1", 10)).toThrow("loopback");
    expect(() => parseAddresses("127.0.0.300", "sources")).toThrow("sources must be loopback");
  });

  test("auto sources: enough addresses, none ending in .0 or .255, distinct per base", () => {
    const s = resolveSources("auto", 600_000, 1000);
    expect(s.length).toBe(600);
    expect(new Set(s).size).toBe(600);
    expect(s.filter((a) => a.endsWith(".0") || a.endsWith(".255"))).toEqual([]);
    expect(s[0]).toBe("127.1.0.1");
    expect(autoSources(3, "127.2.0.254")).toEqual(["127.2.0.254", "127.2.1.1", "127.2.1.2"]);
    expect(resolveSources("none", 100)).toEqual([]);
  });

  test("tupleOf spreads evenly over sources, targets and their pairs (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 3000 }), (S, T, C) => {
        const sources = Array.from({ length: S }, (_, i) => `127.1.0.${i + 1}`);
        const targets = Array.from({ length: T }, (_, i) => ({ host: "127.0.0.1", port: 7000 + i }));
        const bySource = new Map<string, number>();
        const byTarget = new Map<number, number>();
        const byPair = new Map<string, number>();
        for (let i = 0; i < C; i++) {
          const { source, target } = tupleOf(i, sources, targets);
          bySource.set(source!, (bySource.get(source!) ?? 0) + 1);
          byTarget.set(target.port, (byTarget.get(target.port) ?? 0) + 1);
          const k = `${source}|${target.port}`;
          byPair.set(k, (byPair.get(k) ?? 0) + 1);
        }
        const spread = (m: Map<unknown, number>, n: number) => {
          const v = [...m.values()];
          while (v.length < n) v.push(0);
          return Math.max(...v) - Math.min(...v);
        };
        return spread(bySource, Math.min(S, C)) <= 1 && spread(byTarget, Math.min(T, C)) <= S && Math.max(0, ...byPair.values()) <= maxPerTuple(C, S, T) + 1;
      }),
    );
  });

  test("splitEvenly", () => {
    expect(splitEvenly(10, 3)).toEqual([4, 3, 3]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e7 }), fc.integer({ min: 1, max: 200 }), (t, p) => {
        const s = splitEvenly(t, p);
        return s.reduce((a, b) => a + b, 0) === t && Math.max(...s) - Math.min(...s) <= 1;
      }),
    );
  });

  test("errorKind names errnos", () => {
    expect(errorKind({ code: "ECONNREFUSED" })).toBe("ECONNREFUSED");
    expect(errorKind({ errno: -99 })).toBe("EADDRNOTAVAIL");
    expect(errorKind({ errno: 24 })).toBe("EMFILE");
    expect(errorKind(new Error("x"))).toBe("other");
  });

  test("counters add up", () => {
    const a = { ...emptyCounters(10), open: 3, errors: { ECONNREFUSED: 1 }, rampDone: true, rampMs: 5 };
    const b = { ...emptyCounters(5), open: 2, errors: { ECONNREFUSED: 2, EMFILE: 1 }, rampDone: false, rampMs: 9 };
    const s = addCounters(emptyCounters(0), a);
    addCounters(s, b);
    expect(s.target).toBe(15);
    expect(s.open).toBe(5);
    expect(s.errors).toEqual({ ECONNREFUSED: 3, EMFILE: 1 });
    expect(s.rampDone).toBe(false);
    expect(s.rampMs).toBe(9);
  });
});

// A raw echo server (and a RESP one) on Bun.listen, standing in for the reactor.
let echo: TCPSocketListener<undefined>;
let resp: TCPSocketListener<undefined>;
let silent: TCPSocketListener<undefined>;
let closer: TCPSocketListener<undefined>;
const echoPeers = new Set<Socket<undefined>>();
beforeAll(() => {
  echo = Bun.listen<undefined>({
    hostname: "0.0.0.0",
    port: 0,
    socket: {
      open: (s) => void echoPeers.add(s),
      data: (s, d) => void s.write(d),
      close: (s) => void echoPeers.delete(s),
    },
  });
  // Replies +OK to every complete command it can count by CRLF-terminated "*" headers: the
  // load sends one command at a time, so one reply per data event that ends a command.
  resp = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data: (s, d) => {
        const text = d.toString();
        s.write(text.startsWith("*2\r\n$3\r\nGET") ? "$-1\r\n" : text.includes("PING") ? "+PONG\r\n" : "+OK\r\n");
      },
    },
  });
  silent = Bun.listen<undefined>({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  closer = Bun.listen<undefined>({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void s.end(), data() {} } });
});
afterAll(() => {
  for (const l of [echo, resp, silent, closer]) l?.stop(true);
});

/** Resolves once every request sent has its response (after stopTraffic), naming the gap if not. */
async function untilAnswered(e: LoadEngine): Promise<void> {
  await until(
    () => `a response to every request (${e.counters().responses} of ${e.counters().requests})`,
    () => e.counters().responses === e.counters().requests,
  );
}

describe("LoadEngine against Bun.listen", () => {
  test("idle: opens every connection across bound source addresses, then stop closes them", async () => {
    const e = new LoadEngine({
      connections: 600,
      sources: ["127.1.0.1", "127.1.0.2", "127.1.0.3"],
      targets: [
        { host: "127.0.0.1", port: echo.port },
        { host: "127.0.0.2", port: echo.port },
      ],
      connectWindow: 64,
    });
    await e.start();
    const c = e.counters();
    expect(c).toMatchObject({ target: 600, connected: 600, open: 600, peakOpen: 600, failed: 0, rampDone: true, connecting: 0 });
    await until(() => `the server to see 600 connections (${echoPeers.size})`, () => echoPeers.size === 600);
    const remotes = new Set([...echoPeers].map((s) => s.remoteAddress));
    expect(remotes).toEqual(new Set(["127.1.0.1", "127.1.0.2", "127.1.0.3"]));
    await e.stop();
    expect(e.counters().open).toBe(0);
    await until(() => `the server to see every connection close (${echoPeers.size} open)`, () => echoPeers.size === 0);
    expect(e.counters().lost).toBe(0);
  });

  test("rr closed loop over echo: every request answered, latencies recorded", async () => {
    const e = await LoadEngine.create({ connections: 50, sources: [], targets: [{ host: "127.0.0.1", port: echo.port }], mode: "rr", payloadBytes: 100 });
    await e.start();
    e.startTraffic();
    await until(() => `more than 50 requests (${e.counters().requests})`, () => e.counters().requests > 50);
    e.stopTraffic();
    await untilAnswered(e);
    const r = e.report();
    await e.stop();
    expect(r.bytesIn).toBe(r.bytesOut);
    expect(LogHistogram.fromJSON(r.latencyUs).count).toBe(r.responses);
  });

  test("rr at a target rate over RESP GET/SET stays near the rate", async () => {
    const e = await LoadEngine.create({
      connections: 20,
      sources: [],
      targets: [{ host: "127.0.0.1", port: resp.port }],
      mode: "rr",
      protocol: "resp",
      requestRatePerSec: 500,
    });
    await e.start();
    const t0 = performance.now();
    e.startTraffic();
    // Half a second's worth at the rate; the wait bounds only how slow a busy machine may be.
    await until(() => `250 requests (${e.counters().requests})`, () => e.counters().requests >= 250);
    const sent = e.counters().requests;
    const elapsedS = (performance.now() - t0) / 1000;
    e.stopTraffic();
    await untilAnswered(e);
    const r = e.counters();
    await e.stop();
    // Never above the rate: the token bucket holds at most a tenth of a second's requests.
    expect(sent).toBeLessThanOrEqual(500 * elapsedS + 500 / 10);
    expect(r.badReplies).toBe(0);
  });

  test("ping mode over lines: about one ping per connection per interval", async () => {
    const e = await LoadEngine.create({
      connections: 40,
      sources: [],
      targets: [{ host: "127.0.0.1", port: echo.port }],
      mode: "ping",
      protocol: "lines",
      pingIntervalMs: 200,
    });
    await e.start();
    const t0 = performance.now();
    e.startTraffic();
    // 40 connections × 5 intervals = 200 pings (sent, or skipped while a ping is unanswered).
    const turns = () => e.counters().requests + e.counters().skipped;
    await until(() => `200 pings (${turns()})`, () => turns() >= 200);
    const elapsedMs = performance.now() - t0;
    e.stopTraffic();
    await untilAnswered(e);
    const r = e.counters();
    await e.stop();
    // Not faster than one ping per connection per interval: 200 take 1000 ms; twice the rate
    // would take 500. The bound sits between, a tick late before startTraffic aside.
    expect(elapsedMs).toBeGreaterThan(700);
    expect(r.requests).toBeGreaterThan(0);
  });

  test("refused connects are counted by kind and retried", async () => {
    const port = silent.port;
    silent.stop(true);
    await until(`port ${port} to refuse connects`, () =>
      Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
        (s) => (s.end(), false),
        () => true,
      ),
    );
    const e = new LoadEngine({ connections: 5, sources: [], targets: [{ host: "127.0.0.1", port }], retries: 2 });
    await e.start();
    const c = e.counters();
    await e.stop();
    expect(c.failed).toBe(5);
    expect(c.attempts).toBe(15);
    expect(c.errors.ECONNREFUSED).toBe(15);
    silent = Bun.listen<undefined>({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  });

  test("confirm: a server that never answers times out; one that closes resets", async () => {
    const e = new LoadEngine({ connections: 3, sources: [], targets: [{ host: "127.0.0.1", port: silent.port }], confirm: true, connectTimeoutMs: 300 });
    await e.start();
    const c = e.counters();
    await e.stop();
    expect(c.errors.ETIMEDOUT).toBe(3);
    expect(c.open).toBe(0);
    expect(c.failed).toBe(3);

    const r = new LoadEngine({ connections: 3, sources: [], targets: [{ host: "127.0.0.1", port: closer.port }], confirm: true, connectTimeoutMs: 2000 });
    await r.start();
    const rc = r.counters();
    await r.stop();
    expect(rc.failed).toBe(3);
    expect(rc.errors.ECONNRESET).toBe(3);
  });

  test("confirm against echo: the window holds until the reply; connections then count open", async () => {
    const e = new LoadEngine({ connections: 200, sources: ["127.1.1.1"], targets: [{ host: "127.0.0.1", port: echo.port }], confirm: true, connectWindow: 8 });
    await e.start();
    const c = e.counters();
    expect(c.open).toBe(200);
    expect(c.requests).toBe(0);
    expect(c.bytesIn).toBe(200 * 16);
    await e.stop();
  });

  test("connections closed by the server after the ramp count as lost", async () => {
    const e = new LoadEngine({ connections: 30, sources: [], targets: [{ host: "127.0.0.1", port: echo.port }] });
    await e.start();
    // Only this engine's 30: earlier tests' connections must be gone, or ending 10 peers
    // might end some of theirs.
    await until(() => `the server to hold this engine's 30 connections (${echoPeers.size})`, () => echoPeers.size === 30);
    let n = 0;
    for (const s of echoPeers) if (n++ < 10) s.end();
    await until(() => `10 connections lost (${e.counters().lost})`, () => e.counters().lost >= 10);
    const c = e.counters();
    await e.stop();
    expect(c.lost).toBe(10);
    expect(c.open).toBe(20);
  });
});

describe("bun run load", () => {
  test("opens the connections over child processes, reports JSON, and leaves no process behind", async () => {
    const p = Bun.spawn(
      [process.execPath, "src/cli/load.ts", "-c", "3000", "-p", "2", "-t", `127.0.0.1-127.0.0.2:${echo.port}`, "--duration", "300ms", "--mode", "ping", "--ping-interval", "100ms", "--connect-window", "128", "--json"],
      { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
    );
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect(err).not.toMatch(/error:|Error/);
    expect(code).toBe(0);
    const r = JSON.parse(out);
    expect(r.connections).toMatchObject({ target: 3000, reached: 3000, held: 3000, lost: 0, failed: 0 });
    expect(r.processes.count).toBe(2);
    expect(r.processes.died).toEqual([]);
    expect(r.config.sources).toBe(3);
    expect(r.traffic.responses).toBeGreaterThan(0);
    expect(r.traffic.latencyUs.count).toBe(r.traffic.responses);
    expect(r.memory.rssBytes).toBeGreaterThan(0);
    expect(r.ramp.connectUs.count).toBe(3000);
    for (const pid of r.processes.pids) expect(isProcessAlive(pid)).toBe(false);
    await until(() => `the server to see every connection close (${echoPeers.size} open)`, () => echoPeers.size === 0);
  });

  test("progress line on a non-TTY, text report", async () => {
    const p = Bun.spawn([process.execPath, "src/cli/load.ts", "-c", "200", "-t", String(echo.port), "--duration", "1100ms"], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect(code).toBe(0);
    expect(err).toMatch(/(ramp|hold) [\d,]+\/200 open/);
    expect(out).toContain("connections: reached 200 of 200");
    expect(out).toContain("errors: none");
  });

  test("refused target: errors by kind, exit 1", async () => {
    const gone = Bun.listen<undefined>({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = gone.port;
    gone.stop(true);
    const p = Bun.spawn([process.execPath, "src/cli/load.ts", "-c", "20", "-t", `127.0.0.1:${port}`, "--duration", "0", "--json", "--no-progress"], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    expect(code).toBe(1);
    const r = JSON.parse(out);
    expect(r.connections.reached).toBe(0);
    expect(r.connections.errors.ECONNREFUSED).toBe(40);
  });

  test("bad flags: one line naming the flag, exit 2", () => {
    for (const [args, want] of [
      [["--mode", "fast"], "--mode must be one of idle, ping, rr"],
      [["-t", "10.1.1.1:80"], "127.0.0.0/8"],
      [["--processes", "many"], "--processes must be auto or an integer"],
      [["-c", "100000", "-p", "1"], "exceed what ulimit -n"],
    ] as const) {
      const r = Bun.spawnSync([process.execPath, "src/cli/load.ts", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode).toBe(2);
      const err = r.stderr.toString().trim();
      expect(err.split("\n")).toHaveLength(1);
      expect(err).toContain(want);
    }
  });
});
