/**
 * The TUN engine's TCP edges, driven packet by packet. A kernel peer never produces these
 * segments on demand (a reset at a chosen sequence number, a keepalive probe seconds into a
 * connection, an echo and a FIN in one segment), so a scripted device plays the server:
 * it hands the engine packets built here and records what the engine writes, through the
 * same buffer pointers a TUN device gets. tests/tun.test.ts runs the engine against real
 * kernel servers in a namespace.
 */
import { describe, expect, test } from "bun:test";
import { toArrayBuffer } from "bun:ffi";
import type { PacketDevice } from "../src/loadgen/tun/device.ts";
import { TunEngine } from "../src/loadgen/tun/engine.ts";
import { FIRST_CLIENT_PORT, wsProbe, type TunEngineOptions } from "../src/loadgen/tun/options.ts";
import { checksumsValid, readU16, readU32, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, writeSegment } from "../src/loadgen/tun/packet.ts";
import { until } from "./helpers/until.ts";

const CLIENT = 0xc6130000; // 198.19.0.0
const SERVER = 0xc6120001; // 198.18.0.1
const PORT = 7000;
const SERVER_ISN = 0xfffffff0; // near the wrap: sequence arithmetic must be mod 2^32

interface Out {
  seq: number;
  ack: number;
  flags: number;
  payload: number;
  clientPort: number;
}

/** Plays the server: packets queued with push() are read by the engine; what it writes is parsed into `out`. */
class ScriptedDevice implements PacketDevice {
  readonly name = "scripted";
  readonly out: Out[] = [];
  private readonly inbox: Uint8Array[] = [];

  push(p: Uint8Array): void {
    this.inbox.push(p);
  }
  read(bufPtr: number, capacity: number): number {
    const p = this.inbox.shift();
    if (p === undefined) return 0;
    new Uint8Array(toArrayBuffer(bufPtr as never, 0, capacity)).set(p);
    return p.length;
  }
  write(bufPtr: number, len: number): boolean {
    const b = new Uint8Array(toArrayBuffer(bufPtr as never, 0, len)).slice();
    expect(checksumsValid(b, 20)).toBe(true);
    const t = 20;
    const doff = (b[t + 12]! >>> 4) * 4;
    this.out.push({ seq: readU32(b, t + 4), ack: readU32(b, t + 8), flags: b[t + 13]!, payload: len - t - doff, clientPort: readU16(b, t) });
    return true;
  }
  waitReadable(): boolean {
    return this.inbox.length > 0;
  }
  close(): void {}
}

/** A segment from the server to client connection i. */
function fromServer(i: number, seq: number, ack: number, flags: number, payload: number[] = []): Uint8Array {
  const b = new Uint8Array(40 + Math.max(88, payload.length));
  b.set(payload, 40);
  const len = writeSegment(b, SERVER, CLIENT, PORT, FIRST_CLIENT_PORT + i, seq >>> 0, ack >>> 0, flags, payload.length);
  return b.slice(0, len);
}

const has = (o: Out, f: number) => (o.flags & f) === f;

async function startOne(opts: Partial<TunEngineOptions> = {}) {
  const dev = new ScriptedDevice();
  const engine = new TunEngine(dev, { connections: 1, clientFirstIp: CLIENT, serverIp: SERVER, ports: [PORT], connectWindow: 4, ...opts });
  void engine.start();
  await until("the SYN", () => dev.out.length === 1, 2000);
  const syn = dev.out[0]!;
  expect(syn.flags).toBe(TCP_SYN);
  const isn = syn.seq;
  /** Queues a packet and waits until the engine has read it (and answered, if it does). */
  const deliver = async (p: Uint8Array) => {
    dev.push(p);
    // The engine answers in the same turn it reads (drain -> handle -> write): nothing to wait for after.
    await until("the engine to read the packet", () => dev.waitReadable() === false, 2000);
  };
  return { dev, engine, isn, deliver };
}

describe("tun engine TCP edges (scripted server)", () => {
  test("plain connect: SYN-ACK → ACK, counted open; a resent SYN-ACK is acknowledged again, counted once", async () => {
    const { dev, engine, isn, deliver } = await startOne();
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK));
    expect(dev.out[1]).toMatchObject({ flags: TCP_ACK, seq: (isn + 1) >>> 0, ack: (SERVER_ISN + 1) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 1, connected: 1, connecting: 0, rampDone: true });
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK));
    expect(dev.out[2]).toMatchObject({ flags: TCP_ACK, seq: (isn + 1) >>> 0, ack: (SERVER_ISN + 1) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 1, connected: 1 });
    await engine.stop();
    // stop() resets the connection at our next sequence number.
    expect(dev.out[3]).toMatchObject({ flags: TCP_RST, seq: (isn + 1) >>> 0 });
  });

  test("a SYN-ACK acknowledging the wrong number gets a RST at that number, and the connect goes on", async () => {
    const { dev, engine, isn, deliver } = await startOne();
    await deliver(fromServer(0, SERVER_ISN, isn + 77, TCP_SYN | TCP_ACK));
    expect(dev.out[1]).toMatchObject({ flags: TCP_RST, seq: (isn + 77) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 0, connecting: 1 });
    await engine.stop();
  });

  test("confirm: the probe rides the handshake ACK; the echo opens the connection; a resent echo is acknowledged, not counted", async () => {
    const { dev, engine, isn, deliver } = await startOne({ confirm: true });
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK));
    expect(dev.out[1]).toMatchObject({ flags: TCP_ACK | TCP_PSH, seq: (isn + 1) >>> 0, ack: (SERVER_ISN + 1) >>> 0, payload: 1 });
    expect(engine.counters()).toMatchObject({ open: 0, connecting: 1, bytesOut: 1 });
    // The server acknowledges the probe: an in-order pure ACK gets no answer.
    await deliver(fromServer(0, SERVER_ISN + 1, isn + 2, TCP_ACK));
    expect(dev.out).toHaveLength(2);
    await deliver(fromServer(0, SERVER_ISN + 1, isn + 2, TCP_ACK | TCP_PSH, [0x2e]));
    expect(dev.out[2]).toMatchObject({ flags: TCP_ACK, seq: (isn + 2) >>> 0, ack: (SERVER_ISN + 2) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 1, connected: 1, bytesIn: 1, connecting: 0 });
    await deliver(fromServer(0, SERVER_ISN + 1, isn + 2, TCP_ACK | TCP_PSH, [0x2e]));
    expect(dev.out[3]).toMatchObject({ flags: TCP_ACK, seq: (isn + 2) >>> 0, ack: (SERVER_ISN + 2) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 1, bytesIn: 1 });
    await engine.stop();
    expect(dev.out[4]).toMatchObject({ flags: TCP_RST, seq: (isn + 2) >>> 0 });
  });

  test("confirm with a WebSocket probe: the upgrade and a message ride the handshake ACK; the 101 and the echo, in pieces, open it; another answer fails", async () => {
    const probe = wsProbe();
    const { dev, engine, isn, deliver } = await startOne({ confirm: true, probe });
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK));
    expect(dev.out[1]).toMatchObject({ flags: TCP_ACK | TCP_PSH, seq: (isn + 1) >>> 0, payload: probe.bytes.length });
    const answer = [...new TextEncoder().encode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: 0123456789012345678901234567\r\n\r\n"), 0x82, 0x01, 0x2e];
    expect(answer.length).toBe(probe.replyBytes);
    const after = isn + 1 + probe.bytes.length;
    await deliver(fromServer(0, SERVER_ISN + 1, after, TCP_ACK | TCP_PSH, answer.slice(0, 80)));
    expect(dev.out[2]).toMatchObject({ flags: TCP_ACK, ack: (SERVER_ISN + 81) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 0, connecting: 1 });
    await deliver(fromServer(0, SERVER_ISN + 81, after, TCP_ACK | TCP_PSH, answer.slice(80)));
    expect(dev.out[3]).toMatchObject({ flags: TCP_ACK, seq: after >>> 0, ack: (SERVER_ISN + 1 + answer.length) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 1, connected: 1, connecting: 0 });
    await engine.stop();
    // A server that answers with something else than a 101: the attempt fails, the server's side is reset.
    const other = await startOne({ confirm: true, probe });
    await other.deliver(fromServer(0, SERVER_ISN, other.isn + 1, TCP_SYN | TCP_ACK));
    await other.deliver(fromServer(0, SERVER_ISN + 1, other.isn + 1 + probe.bytes.length, TCP_ACK | TCP_PSH, [...new TextEncoder().encode("HTTP/1.1 426 Upgrade Required\r\n")]));
    expect(other.dev.out.at(-1)!.flags & TCP_RST).toBe(TCP_RST);
    expect(other.engine.counters()).toMatchObject({ open: 0, failed: 1, errors: { EHANDSHAKE: 1 } });
    await other.engine.stop();
  });

  test("confirm: an echo that carries FIN opens, then closes: one RST, counted lost", async () => {
    const { dev, engine, isn, deliver } = await startOne({ confirm: true });
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK));
    await deliver(fromServer(0, SERVER_ISN + 1, isn + 2, TCP_ACK | TCP_PSH | TCP_FIN, [0x2e]));
    const resets = dev.out.filter((o) => has(o, TCP_RST));
    expect(resets).toHaveLength(1);
    expect(resets[0]!.seq).toBe((isn + 2) >>> 0);
    expect(engine.counters()).toMatchObject({ open: 0, connected: 1, lost: 1, bytesIn: 1 });
    await engine.stop();
    // Nothing more to reset at stop.
    expect(dev.out.filter((o) => has(o, TCP_RST))).toHaveLength(1);
  });

  test("confirm: the server's RST before the echo fails the attempt without a RST in answer", async () => {
    const { dev, engine, isn, deliver } = await startOne({ confirm: true });
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK));
    const before = dev.out.length;
    await deliver(fromServer(0, SERVER_ISN + 1, 0, TCP_RST));
    expect(dev.out).toHaveLength(before);
    expect(engine.counters()).toMatchObject({ open: 0, failed: 1, errors: { ECONNRESET: 1 }, rampDone: true });
    await engine.stop();
  });

  test("open: a RST outside the window is ignored, one in the window but not exact gets a challenge ACK, the exact one closes", async () => {
    const { dev, engine, isn, deliver } = await startOne();
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK));
    const n = dev.out.length;
    await deliver(fromServer(0, SERVER_ISN + 1 + 200_000, 0, TCP_RST));
    expect(dev.out).toHaveLength(n);
    expect(engine.counters()).toMatchObject({ open: 1, lost: 0 });
    await deliver(fromServer(0, SERVER_ISN + 1 + 100, 0, TCP_RST));
    expect(dev.out[n]).toMatchObject({ flags: TCP_ACK, seq: (isn + 1) >>> 0, ack: (SERVER_ISN + 1) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 1, lost: 0 });
    await deliver(fromServer(0, SERVER_ISN + 1, 0, TCP_RST));
    expect(dev.out).toHaveLength(n + 1);
    expect(engine.counters()).toMatchObject({ open: 0, lost: 1 });
    await engine.stop();
  });

  test("open: a keepalive probe (one before the next sequence number, no data) is acknowledged", async () => {
    const { dev, engine, isn, deliver } = await startOne();
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK));
    const n = dev.out.length;
    await deliver(fromServer(0, SERVER_ISN, isn + 1, TCP_ACK));
    expect(dev.out[n]).toMatchObject({ flags: TCP_ACK, seq: (isn + 1) >>> 0, ack: (SERVER_ISN + 1) >>> 0 });
    expect(engine.counters()).toMatchObject({ open: 1, lost: 0 });
    await engine.stop();
  });

  test("a segment for a port that is no connection of ours gets a RST; a RST there gets nothing", async () => {
    const { dev, engine, deliver } = await startOne();
    const n = dev.out.length;
    await deliver(fromServer(5, 1234, 999, TCP_ACK));
    expect(dev.out[n]).toMatchObject({ flags: TCP_RST, seq: 999, clientPort: FIRST_CLIENT_PORT + 5 });
    await deliver(fromServer(5, 1234, 999, TCP_RST));
    expect(dev.out).toHaveLength(n + 1);
    expect(engine.packets.stray).toBe(2);
    await engine.stop();
  });

  test("stopConnecting ends the retries: attempts in flight time out once, and the ramp is done", async () => {
    const dev = new ScriptedDevice();
    const engine = new TunEngine(dev, { connections: 3, clientFirstIp: CLIENT, serverIp: SERVER, ports: [PORT], connectWindow: 3, connectTimeoutMs: 150, retries: 5 });
    const ramped = engine.start();
    await until("three SYNs", () => dev.out.length === 3, 2000);
    engine.stopConnecting();
    await ramped;
    const k = engine.counters();
    expect(k).toMatchObject({ attempts: 3, failed: 3, open: 0, connecting: 0, errors: { ETIMEDOUT: 3 }, rampDone: true });
    await engine.stop();
  });

  test("an unanswered SYN is sent again after 1 s, and an attempt that times out is retried", async () => {
    const dev = new ScriptedDevice();
    const engine = new TunEngine(dev, { connections: 1, clientFirstIp: CLIENT, serverIp: SERVER, ports: [PORT], connectWindow: 1, connectTimeoutMs: 1300, retries: 1 });
    void engine.start();
    await until("the SYN retransmit", () => dev.out.filter((o) => o.flags === TCP_SYN).length >= 2, 3000);
    const syns = dev.out.filter((o) => o.flags === TCP_SYN);
    expect(syns[1]!.seq).toBe(syns[0]!.seq);
    expect(engine.counters().attempts).toBe(1);
    await until("the retry after the timeout", () => engine.counters().attempts === 2, 3000);
    expect(engine.counters().errors.ETIMEDOUT).toBe(1);
    await engine.stop();
  }, 10_000);
});
