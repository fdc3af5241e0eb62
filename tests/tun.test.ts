/**
 * The userland TCP client (src/loadgen/tun): its segments (checksums, parsing) as
 * properties, then the engine against real kernel TCP servers inside a network namespace
 * this test makes and deletes: connects, confirm, a refused port, a server that dies (its
 * connections count lost), and the teardown's resets freeing the servers' sockets.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { join } from "node:path";
import { startLoad } from "../src/loadgen/coordinator.ts";
import { checksumsValid, onesSum, readU16, readU32, tcpOffset, TCP_ACK, TCP_RST, TCP_SYN, writeSegment } from "../src/loadgen/tun/packet.ts";
import { clientBlocks, Netns, SERVER_ADDRESS, tunSupport } from "../src/loadgen/tun/netns.ts";
import { until } from "./helpers/until.ts";

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const port = fc.integer({ min: 1, max: 65535 });

describe("tun packets", () => {
  test("every segment written carries valid IPv4 and TCP checksums and parses back (property)", () => {
    const b = new Uint8Array(2048);
    fc.assert(
      fc.property(u32, u32, port, port, u32, u32, fc.constantFrom(TCP_SYN, TCP_ACK, TCP_RST, TCP_RST | TCP_ACK, TCP_ACK | 0x08), fc.uint8Array({ maxLength: 64 }), (src, dst, sp, dp, seq, ack, flags, payload) => {
        const syn = (flags & TCP_SYN) !== 0;
        b.set(payload, syn ? 44 : 40);
        const len = writeSegment(b, src, dst, sp, dp, seq, ack, flags, payload.length);
        expect(len).toBe(40 + (syn ? 4 : 0) + payload.length);
        const t = tcpOffset(b, len);
        expect(t).toBe(20);
        expect(checksumsValid(b, t)).toBe(true);
        expect(readU32(b, 12)).toBe(src);
        expect(readU32(b, 16)).toBe(dst);
        expect(readU16(b, t)).toBe(sp);
        expect(readU16(b, t + 2)).toBe(dp);
        expect(readU32(b, t + 4)).toBe(seq);
        expect(readU32(b, t + 8)).toBe((flags & TCP_ACK) !== 0 ? ack : 0);
        expect(b[t + 13]).toBe(flags);
      }),
      { numRuns: 500 },
    );
  });

  test("one flipped bit anywhere in the packet breaks a checksum (property)", () => {
    const b = new Uint8Array(2048);
    fc.assert(
      fc.property(u32, u32, port, port, u32, fc.nat(), fc.integer({ min: 0, max: 7 }), (src, dst, sp, dp, seq, at, bit) => {
        const len = writeSegment(b, src, dst, sp, dp, seq, 1, TCP_ACK);
        const i = at % len;
        // The length fields are checked by tcpOffset; a flip there may turn a checksum field into another valid one.
        fc.pre(i !== 2 && i !== 3);
        b[i]! ^= 1 << bit;
        expect(checksumsValid(b, 20)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  test("a known SYN: the checksums match a hand-computed packet", () => {
    // 10.0.0.1:1234 -> 10.0.0.2:80, seq 1, SYN, MSS 1460, window 65535: verified against the RFC 1071 sum by hand below.
    const b = new Uint8Array(64);
    const len = writeSegment(b, 0x0a000001, 0x0a000002, 1234, 80, 1, 0, TCP_SYN);
    expect(len).toBe(44);
    expect(onesSum(b, 0, 20)).toBe(0xffff);
    // Pseudo-header + header sum, recomputed independently with 32-bit words.
    let sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 24;
    for (let i = 20; i < 44; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
  });

  test("tcpOffset drops what is not a whole IPv4/TCP packet", () => {
    const b = new Uint8Array(128);
    const len = writeSegment(b, 1, 2, 3, 4, 5, 6, TCP_ACK);
    expect(tcpOffset(b, len)).toBe(20);
    expect(tcpOffset(b, len - 1)).toBe(-1); // truncated
    const v6 = b.slice();
    v6[0] = 0x60;
    expect(tcpOffset(v6, len)).toBe(-1); // IPv6
    const udp = b.slice();
    udp[9] = 17;
    expect(tcpOffset(udp, len)).toBe(-1); // not TCP
    const frag = b.slice();
    frag[6] = 0x20; // more fragments
    expect(tcpOffset(frag, len)).toBe(-1);
    const doff = b.slice();
    doff[32] = 0x40; // data offset 16 bytes < 20
    expect(tcpOffset(doff, len)).toBe(-1);
  });

  test("clientBlocks: aligned, disjoint blocks that hold each share", () => {
    const blocks = clientBlocks(1_000_000, 2);
    expect(blocks.map((b) => b.cidr)).toEqual(["198.19.0.0/29", "198.19.0.8/29"]);
    expect(() => clientBlocks(1_000_000, 4096)).not.toThrow();
    expect(() => clientBlocks(2 ** 32, 2)).toThrow(/do not fit/);
  });
});

describe("tun engine against kernel TCP servers in a namespace", () => {
  let ns: Netns;
  let server: ReturnType<typeof Bun.spawn> | undefined;
  let serverOpen = -1;
  const PORTS = [7201, 7202];

  async function startServer(): Promise<void> {
    serverOpen = -1;
    const script = join(import.meta.dir, "fixtures", "tun-echo-server.ts");
    const proc = Bun.spawn([...ns.execPrefix, process.execPath, script, JSON.stringify(PORTS)], { stdout: "pipe", stderr: "inherit" });
    server = proc;
    void (async () => {
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
        buf += dec.decode(chunk);
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === "ready") serverOpen = 0;
          else if (line.startsWith("open ")) serverOpen = Number(line.slice(5));
        }
      }
    })();
    await until("the namespace's echo server to start", () => serverOpen === 0, 10_000);
  }

  async function stopServer(): Promise<void> {
    if (server === undefined) return;
    server.kill("SIGKILL");
    await server.exited;
    server = undefined;
  }

  beforeAll(() => {
    const support = tunSupport();
    if (!support.ok) throw new Error(`the TUN client cannot run here: ${support.why}`);
    ns = Netns.create("tuntest");
  });
  afterAll(async () => {
    await stopServer();
    ns?.delete();
  });

  test("opens and confirms every connection, holds them, and its resets free the server's sockets", async () => {
    await startServer();
    const N = 3000;
    const run = await startLoad({
      connections: N,
      processes: 2,
      targets: PORTS.map((port) => ({ host: SERVER_ADDRESS, port })),
      sources: [],
      tun: true,
      spawnPrefix: ns.execPrefix,
      connectWindow: 256,
      confirm: true,
      mode: "idle",
      maxLifetimeMs: 60_000,
    });
    try {
      const k = await run.ramped();
      expect(k.open).toBe(N);
      expect(k.connected).toBe(N);
      expect(k.failed).toBe(0);
      // Confirmed: every probe byte came back, so the server application holds all of them.
      expect(k.bytesIn).toBe(N);
      await until(`the server to hold ${N}`, () => serverOpen === N, 10_000);
      await Bun.sleep(300);
      const held = await run.refresh();
      expect(held.open).toBe(N);
      expect(held.lost).toBe(0);
      const report = await run.stop(10_000);
      expect(report.connections.held).toBe(N);
      expect(report.ramp.connectUs.count).toBe(N);
      expect(report.processes.died).toEqual([]);
      // One RST each: the server sees every connection close.
      await until("the server's sockets to close after the resets", () => serverOpen === 0, 10_000);
    } finally {
      await run.stop(5000);
      await stopServer();
    }
  }, 60_000);

  test("a port nobody listens on: every attempt refused (RST), nothing open", async () => {
    const N = 200;
    const run = await startLoad({
      connections: N,
      processes: 1,
      targets: [{ host: SERVER_ADDRESS, port: 7299 }],
      sources: [],
      tun: true,
      spawnPrefix: ns.execPrefix,
      connectWindow: 64,
      retries: 1,
      mode: "idle",
      maxLifetimeMs: 60_000,
    });
    try {
      const k = await run.ramped();
      expect(k.open).toBe(0);
      expect(k.failed).toBe(N);
      // One retry each: two refusals per connection.
      expect(k.errors.ECONNREFUSED).toBe(2 * N);
      expect(k.attempts).toBe(2 * N);
    } finally {
      await run.stop(5000);
    }
  }, 30_000);

  test("a server that dies: its kernel closes every connection and the client counts each one lost", async () => {
    await startServer();
    const N = 1000;
    const run = await startLoad({
      connections: N,
      processes: 1,
      targets: PORTS.map((port) => ({ host: SERVER_ADDRESS, port })),
      sources: [],
      tun: true,
      spawnPrefix: ns.execPrefix,
      confirm: true,
      connectWindow: 128,
      mode: "idle",
      maxLifetimeMs: 60_000,
    });
    try {
      const k = await run.ramped();
      expect(k.open).toBe(N);
      await stopServer();
      let now = await run.refresh();
      await until(() => `the client to count ${N} connections lost (${now.lost})`, async () => (now = await run.refresh()).lost >= N);
      expect(now.lost).toBe(N);
      expect(now.open).toBe(0);
    } finally {
      await run.stop(5000);
    }
  }, 30_000);

  test("options the TUN client cannot run are refused with a clear error", async () => {
    const base = { connections: 10, processes: 1, sources: [], tun: true, spawnPrefix: ns.execPrefix, maxLifetimeMs: 10_000 };
    await expect(startLoad({ ...base, targets: [{ host: SERVER_ADDRESS, port: 7201 }], mode: "ping" })).rejects.toThrow(/idle connections only/);
    await expect(
      startLoad({ ...base, targets: [{ host: SERVER_ADDRESS, port: 7201 }, { host: "198.18.0.2", port: 7201 }] }),
    ).rejects.toThrow(/one IPv4 address/);
  });
});
