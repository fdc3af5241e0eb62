import { describe, expect, test } from "bun:test";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { parsePorts, resolveWorkers } from "../src/cluster/index.ts";
import {
  connectionsPerProcess,
  DEFAULT_COST_MODEL,
  diagnose,
  parseMeminfo,
  parseNetstat,
  parseNofile,
  parseSlabinfo,
  parseSockstat,
  planWorkers,
  readSystemLimits,
  safeMeanPerWorker,
  type SystemLimits,
} from "../src/system/index.ts";
import { tunSupport } from "../src/loadgen/index.ts";

const ROOT = join(import.meta.dir, "..");

function run(args: string[]) {
  const p = Bun.spawnSync([process.execPath, "src/cli/doctor.ts", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

const procNum = (path: string) => Number(readFileSync(path, "utf8").trim());
const procTriple = (path: string) => readFileSync(path, "utf8").trim().split(/\s+/).map(Number);

describe("doctor CLI", () => {
  test("--json reports the real values from /proc", () => {
    const r = run(["--connections", "100000", "--client", "sockets", "--json"]);
    expect(r.err).toBe("");
    const j = JSON.parse(r.out);
    const limitsRow = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))!;
    expect(j.limits.nofileSoft).toBe(Number(limitsRow[1]));
    expect(j.limits.nofileHard).toBe(Number(limitsRow[2]));
    expect(j.limits.fileMax).toBe(procNum("/proc/sys/fs/file-max"));
    expect(j.limits.nrOpen).toBe(procNum("/proc/sys/fs/nr_open"));
    const [low, high] = procTriple("/proc/sys/net/ipv4/ip_local_port_range");
    expect(j.limits.portRange).toEqual({ low, high, count: high! - low! + 1 });
    expect(j.limits.somaxconn).toBe(procNum("/proc/sys/net/core/somaxconn"));
    expect(j.limits.tcpMaxSynBacklog).toBe(procNum("/proc/sys/net/ipv4/tcp_max_syn_backlog"));
    // tcp_mem is the whole machine's: a network namespace other than the first does not show
    // it, and the doctor then reads zeros.
    const mem = existsSync("/proc/sys/net/ipv4/tcp_mem") ? procTriple("/proc/sys/net/ipv4/tcp_mem") : [0, 0, 0];
    expect(j.limits.tcpMemPages).toEqual({ min: mem[0], mid: mem[1], max: mem[2] });
    const rmem = procTriple("/proc/sys/net/ipv4/tcp_rmem");
    expect(j.limits.tcpRmem).toEqual({ min: rmem[0], mid: rmem[1], max: rmem[2] });
    const wmem = procTriple("/proc/sys/net/ipv4/tcp_wmem");
    expect(j.limits.tcpWmem).toEqual({ min: wmem[0], mid: wmem[1], max: wmem[2] });
    if (existsSync("/proc/sys/net/netfilter/nf_conntrack_max")) {
      expect(j.limits.conntrack.max).toBe(procNum("/proc/sys/net/netfilter/nf_conntrack_max"));
    } else {
      expect(j.limits.conntrack).toBeNull();
    }
    const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
    expect(j.limits.memTotalBytes).toBe(memTotalKb * 1024);
    expect(j.target).toBe(100000);
    const ids = j.checks.map((c: { id: string }) => c.id).sort();
    expect(ids).toEqual(["conntrack", "file_max", "listen_queue", "memory", "nofile", "nr_open", "ports", "tcp_buffers", "tcp_mem"]);
    for (const c of j.checks) {
      expect(["ok", "warn", "fail"]).toContain(c.status);
      if (c.status !== "ok" && c.id !== "nr_open") expect(typeof c.fix).toBe("string");
    }
    // Exit code follows the verdict.
    expect(r.code).toBe(j.ready ? 0 : 1);
    // 100k is over one process's descriptors here (20,000 soft): the plan spreads over processes.
    if (j.limits.nofileSoft < 100000) {
      expect(j.plan.serverProcesses).toBeGreaterThanOrEqual(Math.ceil(100000 / j.limits.nofileSoft));
      expect(j.checks.find((c: { id: string }) => c.id === "nofile").symptom).toContain("Too many open files");
    }
  });

  test("text report names what fails first and the fix", () => {
    const r = run(["-c", "1m", "--client", "sockets"]);
    expect(r.code).toBeOneOf([0, 1]);
    expect(r.out).toContain("target 1,000,000");
    expect(r.out).toContain("kernel-socket client (both ends local: two sockets per connection)");
    expect(r.out).toContain("fails first:");
    expect(r.out).toMatch(/soft [\d,]+, hard [\d,]+/);
    expect(r.out).toContain(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().replace(/\s+/, "-"));
    expect(r.out).toContain("Cannot assign requested address");
  });

  test("plans for the load client c1m would pick here, and says so; --client sockets and --no-loopback stay available", () => {
    // c1m picks the TUN client exactly when tunSupport() says the machine allows it.
    const picked = tunSupport().ok ? "tun" : "sockets";
    const auto = run(["-c", "100k", "--json"]);
    expect(auto.err).toBe("");
    const a = JSON.parse(auto.out);
    expect(a.client).toBe(picked);
    expect(a.plan.sockets).toBe(picked === "tun" ? 100_000 : 200_000);
    const text = run(["-c", "100k"]).out.split("\n");
    expect(text[1]).toStartWith(`load client: ${picked}, the one bun run c1m picks on this machine`);
    const sockets = JSON.parse(run(["-c", "100k", "--client", "sockets", "--json"]).out);
    expect(sockets.client).toBe("sockets");
    expect(sockets.plan.sockets).toBe(200_000);
    expect(sockets.checks.map((c: { id: string }) => c.id)).toContain("ports");
    const server = JSON.parse(run(["-c", "100k", "--no-loopback", "--json"]).out);
    expect(server.client).toBeNull();
    expect(server.plan.loadProcesses).toBe(0);
    expect(server.plan.sockets).toBe(100_000);
  });

  test("bad flag: one line naming it, exit 2; --help exits 0", () => {
    const bad = run(["--conections", "5"]);
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split("\n")).toHaveLength(1);
    expect(bad.err).toContain("--conections");
    const badValue = run(["--connections", "lots"]);
    expect(badValue.code).toBe(2);
    expect(badValue.err).toContain("--connections must be an integer");
    const help = run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("--connections");
  });
});

const base: SystemLimits = {
  nofileSoft: 20000,
  nofileHard: 20000,
  nrOpen: 1048576,
  fileMax: 2470938,
  filesAllocated: 500,
  portRange: { low: 32768, high: 60999, count: 28232 },
  somaxconn: 4096,
  tcpMaxSynBacklog: 2048,
  tcpMemPages: { min: 288459, mid: 384612, max: 576918 },
  tcpRmem: { min: 4096, mid: 131072, max: 33554432 },
  tcpWmem: { min: 4096, mid: 16384, max: 4194304 },
  tcpTwReuse: 2,
  conntrack: { max: 262144, count: 0, buckets: 262144 },
  memTotalBytes: 24 * 2 ** 30,
  memAvailableBytes: 23 * 2 ** 30,
  pageBytes: 4096,
  cpus: 2,
  sockstat: { socketsUsed: 40, tcpInuse: 20, tcpOrphan: 0, tcpTimeWait: 0, tcpAlloc: 21, tcpMemPages: 0 },
};

describe("diagnose", () => {
  test("a small target fits everything", () => {
    const r = diagnose(base, { connections: 1000 });
    expect(r.firstFailure).toBeNull();
    expect(r.ready).toBe(true);
    expect(r.checks.filter((c) => c.status !== "ok")).toEqual([]);
  });

  test("per-process descriptors fail first for a single process at ~19k", () => {
    const r = diagnose({ ...base, portRange: { low: 1024, high: 65535, count: 64512 } }, { connections: 30000 });
    expect(r.firstFailure).toBe("nofile");
    const c = r.checks.find((x) => x.id === "nofile")!;
    expect(c.limitConnections).toBe(19000);
    expect(c.symptom).toContain("Too many open files");
    expect(r.plan.serverProcesses).toBe(2);
  });

  test("file-max too small fails and gives the sysctl", () => {
    const r = diagnose({ ...base, fileMax: 100000 }, { connections: 200000 });
    const c = r.checks.find((x) => x.id === "file_max")!;
    expect(c.status).toBe("fail");
    expect(c.fix).toMatch(/^sysctl -w fs\.file-max=\d+$/);
    expect(r.ready).toBe(false);
  });

  test("conntrack: tracking with a small table fails; idle module only warns", () => {
    const tracking = diagnose({ ...base, conntrack: { max: 262144, count: 100, buckets: 65536 } }, { connections: 500000 });
    expect(tracking.checks.find((x) => x.id === "conntrack")!.status).toBe("fail");
    expect(tracking.checks.find((x) => x.id === "conntrack")!.fix).toContain("nf_conntrack_max=");
    const idle = diagnose(base, { connections: 500000 });
    expect(idle.checks.find((x) => x.id === "conntrack")!.status).toBe("warn");
    const none = diagnose({ ...base, conntrack: null }, { connections: 500000 });
    expect(none.checks.find((x) => x.id === "conntrack")!.status).toBe("ok");
  });

  test("memory: a million on 4 GiB fails", () => {
    const r = diagnose({ ...base, memTotalBytes: 4 * 2 ** 30, memAvailableBytes: 3 * 2 ** 30 }, { connections: 1_000_000 });
    expect(r.checks.find((x) => x.id === "memory")!.status).toBe("fail");
    expect(r.ready).toBe(false);
  });

  test("10M on a 16-core 128 GiB machine: NOT ready with two sockets per connection, ready with the TUN client (issue 10)", () => {
    // The machine of the report: file-max as the kernel sizes it for 128 GiB (pages / 10 in KiB).
    const big: SystemLimits = {
      ...base,
      cpus: 16,
      memTotalBytes: 128 * 2 ** 30,
      memAvailableBytes: 126 * 2 ** 30,
      fileMax: Math.floor((128 * 2 ** 30) / 1024 / 10),
      conntrack: null,
    };
    const two = diagnose(big, { connections: 10_000_000, client: "sockets" });
    expect(two.ready).toBe(false);
    expect(two.checks.filter((c) => c.status === "fail").map((c) => c.id)).toContain("file_max");
    // ≈124 GiB planned of 126 available: at best a warning.
    expect(two.checks.find((c) => c.id === "memory")!.status).not.toBe("ok");
    expect(two.plan.sockets).toBe(20_000_000);
    // The plan without a client named is still the two-socket one.
    expect(diagnose(big, { connections: 10_000_000 }).plan).toEqual(two.plan);

    const tun = diagnose(big, { connections: 10_000_000, client: "tun" });
    expect(tun.client).toBe("tun");
    expect(tun.ready).toBe(true);
    expect(tun.plan.sockets).toBe(10_000_000);
    expect(tun.plan.loadProcesses).toBe(16);
    expect(tun.plan.sourceAddresses).toBe(0);
    // The TUN client uses no port of the machine's ephemeral range and no descriptor per connection.
    expect(tun.checks.some((c) => c.id === "ports")).toBe(false);
    expect(tun.plan.descriptors).toBeLessThan(two.plan.descriptors / 1.9);
    expect(tun.checks.find((c) => c.id === "memory")!.status).toBe("ok");
    expect(tun.plan.memory.totalBytes).toBeLessThan(big.memAvailableBytes / 2);
    expect(tun.plan.memory.clientBytes).toBe(10_000_000 * DEFAULT_COST_MODEL.tunClientBytesPerConnection);

    const serverOnly = diagnose(big, { connections: 10_000_000, loopback: false, client: "tun" });
    expect(serverOnly.client).toBeNull();
    expect(serverOnly.plan.loadProcesses).toBe(0);
    expect(serverOnly.plan.memory.clientBytes).toBe(0);
  });

  test("firstFailure is the smallest limit below the target (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3_000_000 }),
        fc.integer({ min: 1024, max: 2_000_000 }),
        fc.integer({ min: 10_000, max: 5_000_000 }),
        (connections, nofile, fileMax) => {
          const r = diagnose({ ...base, nofileSoft: nofile, nofileHard: nofile, fileMax }, { connections });
          const below = r.checks.filter((c) => c.limitConnections < connections);
          if (below.length === 0) return r.firstFailure === null;
          const min = Math.min(...below.map((c) => c.limitConnections));
          return r.checks.find((c) => c.id === r.firstFailure)!.limitConnections === min && r.ready === !r.checks.some((c) => c.status === "fail");
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("proc parsers", () => {
  test("nofile soft/hard, unlimited", () => {
    expect(parseNofile("Max open files            20000                20000                files     \n")).toEqual({ soft: 20000, hard: 20000 });
    expect(parseNofile("Max open files            unlimited            unlimited            files\n")).toEqual({ soft: Infinity, hard: Infinity });
    expect(parseNofile("nothing here")).toBeUndefined();
  });

  test("sockstat", () => {
    const s = parseSockstat("sockets: used 35\nTCP: inuse 20 orphan 1 tw 61 alloc 21 mem 27\nUDP: inuse 0 mem 0\n");
    expect(s).toEqual({ socketsUsed: 35, tcpInuse: 20, tcpOrphan: 1, tcpTimeWait: 61, tcpAlloc: 21, tcpMemPages: 27 });
  });

  test("slabinfo counts whole slabs", () => {
    const text =
      "slabinfo - version: 2.1\n# name <active_objs> ...\nTCP                  119    130   2368   13    8 : tunables    0    0    0 : slabdata     10     10      0\n";
    const t = parseSlabinfo(text, 4096).get("TCP")!;
    expect(t.objectBytes).toBe(2368);
    expect(t.activeObjects).toBe(119);
    expect(t.bytes).toBe(10 * 8 * 4096);
  });

  test("netstat sections", () => {
    const n = parseNetstat("TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 0 7203\nIpExt: InNoRoutes\nIpExt: 4\n");
    expect(n).toEqual({ "TcpExt.SyncookiesSent": 0, "TcpExt.ListenOverflows": 7203, "IpExt.InNoRoutes": 4 });
    expect(typeof parseNetstat(readFileSync("/proc/net/netstat", "utf8"))["TcpExt.ListenOverflows"]).toBe("number");
  });

  test("meminfo in bytes", () => {
    expect(parseMeminfo("MemTotal:       24000000 kB\nMemAvailable:   1000 kB\nHugePages_Total:       0\n")).toEqual({
      MemTotal: 24000000 * 1024,
      MemAvailable: 1000 * 1024,
      HugePages_Total: 0,
    });
  });

  test("readSystemLimits with a fake /proc falls back without throwing", () => {
    const l = readSystemLimits(() => undefined);
    expect(l.nofileSoft).toBe(1024);
    expect(l.conntrack).toBeNull();
    expect(l.portRange.count).toBe(28232);
  });
});

describe("worker planning", () => {
  test("ports parse and reject", () => {
    expect(parsePorts("7000-7003")).toEqual([7000, 7001, 7002, 7003]);
    expect(parsePorts("7000,7002-7003")).toEqual([7000, 7002, 7003]);
    expect(() => parsePorts("7003-7000")).toThrow("ports must look like");
    expect(() => parsePorts("70000")).toThrow("ports must look like");
  });

  test("auto workers keep every worker under its descriptors with 4 sigma to spare (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5_000_000 }), fc.integer({ min: 256, max: 1_048_576 }), fc.integer({ min: 1, max: 64 }), (maxConnections, nofile, cpus) => {
        const p = planWorkers({ maxConnections, nofile, cpus });
        const cap = connectionsPerProcess(nofile);
        const mean = maxConnections / p.workers;
        return (
          p.workers >= cpus &&
          p.maxConnectionsPerWorker === cap &&
          cap < nofile &&
          mean + 4 * Math.sqrt(mean) <= cap &&
          // not wasteful: one worker fewer would not do (unless held up by the CPU floor)
          (p.workers === cpus || p.workers === 1 || (p.workers - 1) * safeMeanPerWorker(cap) < maxConnections)
        );
      }),
      { numRuns: 500 },
    );
  });

  test("--workers N|auto with a cluster-wide --max-connections", () => {
    expect(resolveWorkers("auto", 0, 20000, 2)).toMatchObject({ workers: 2, maxConnectionsPerWorker: 19000 });
    expect(resolveWorkers("auto", 1_000_000, 20000, 2)).toMatchObject({ workers: 55, maxConnectionsPerWorker: 19000 });
    expect(resolveWorkers(4, 1000, 20000, 2)).toMatchObject({ workers: 4, maxConnectionsPerWorker: 291 });
    expect(resolveWorkers(3, 0, 20000, 2)).toMatchObject({ workers: 3, maxConnectionsPerWorker: 19000 });
    expect(() => resolveWorkers(0, 0, 20000, 2)).toThrow("workers must be auto or an integer");
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3_000_000 }), fc.integer({ min: 1024, max: 1_048_576 }), fc.integer({ min: 1, max: 64 }), (m, nofile, cpus) => {
        const p = resolveWorkers("auto", m, nofile, cpus);
        return p.workers * p.maxConnectionsPerWorker >= m && p.maxConnectionsPerWorker <= connectionsPerProcess(nofile);
      }),
    );
  });

  test("a million at ulimit 20,000 on 2 cores", () => {
    const p = planWorkers({ maxConnections: 1_000_000, nofile: 20000, cpus: 2 });
    expect(p.maxConnectionsPerWorker).toBe(19000);
    expect(p.workers).toBe(55);
  });
});
