/**
 * Graceful stop, broadcast, handles kept beyond a callback, stats counters and listen
 * errors, over real sockets.
 */
import { expect, test } from "bun:test";
import { createEchoApp } from "../src/apps/index.ts";
import { createServer, ListenError, type CloseReason, type Conn, type Server } from "../src/reactor/index.ts";
import { concat, connect, pseudoRandomBytes, type TestClient, trackPeers } from "./helpers/net.ts";
import { ECHO_FRAMINGS } from "./helpers/echo-framings.ts";
import { until } from "./helpers/until.ts";
import { expectSame } from "./helpers/assert.ts";

const { servers, client } = trackPeers();
const MiB = 1 << 20;

test("graceful stop loses nothing: 8 MiB written before stop reach a slow reader, then it closes with shutdown", async () => {
  const payload = pseudoRandomBytes(8 * MiB, 3);
  const reasons: CloseReason[] = [];
  let server!: Server;
  let stopped: Promise<unknown> | null = null;
  server = await createServer({
    protocol: "lines",
    handler: {
      message(conn) {
        conn.write(payload);
        // stop() from inside a handler: the handler finishes first, its writes are kept.
        stopped = server.stop({ timeoutMs: 15_000 });
        conn.write("tail"); // still this callback: written before the stop took effect
      },
      close(_c, r) {
        reasons.push(r);
      },
    },
  });
  servers.push(server);
  const c = await client(server.port);
  c.pause();
  await c.send("go\n");
  await until("stop()", () => stopped !== null, 2000);
  expect(server.accepting).toBe(false);
  // Read slowly: 20 ms on, 20 ms off.
  for (let i = 0; i < 50 && c.receivedBytes < payload.length + 4; i++) {
    c.resume();
    await Bun.sleep(20);
    c.pause();
    await Bun.sleep(20);
  }
  c.resume();
  await c.waitBytes(payload.length + 4, 15_000);
  await c.waitClosed(5000);
  const got = c.received();
  expect(got.length).toBe(payload.length + 4);
  expectSame(got.subarray(0, payload.length), payload);
  expect(new TextDecoder().decode(got.subarray(payload.length))).toBe("tail");
  const final = (await stopped!) as Awaited<ReturnType<Server["stop"]>>;
  expect(reasons).toEqual(["shutdown"]);
  expect(final.closed.shutdown).toBe(1);
  expect(final.connections).toBe(0);
  expect(final.bytesOut).toBe(payload.length + 4);
  expect(final.writeQueueBytes).toBe(0);
  // Not accepting any more.
  await expect(connect({ port: server.port })).rejects.toThrow();
});

test("stop deadline: a peer that never reads is closed at timeoutMs, a reader gets everything", async () => {
  const payload = pseudoRandomBytes(6 * MiB, 4);
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 8 * MiB,
    handler: {
      message(conn) {
        conn.write(payload);
      },
    },
  });
  servers.push(server);
  const reader = await client(server.port);
  const sleeper = await client(server.port);
  sleeper.pause();
  await reader.send("go\n");
  await sleeper.send("go\n");
  await until("both requests", () => server.stats().framesIn === 2, 2000);
  const t0 = performance.now();
  const final = await server.stop({ timeoutMs: 400 });
  const took = performance.now() - t0;
  expect(took).toBeGreaterThanOrEqual(390);
  expect(took).toBeLessThan(3000);
  expect(final.closed.shutdown).toBe(2);
  expect(final.connections).toBe(0);
  await reader.waitClosed(2000);
  expect(reader.receivedBytes).toBe(payload.length);
  expect(sleeper.receivedBytes).toBeLessThan(payload.length);
});

test("stop({ graceful: false }) closes everything at once", async () => {
  const server = await createServer({ handler: { message() {} } });
  servers.push(server);
  const cs = [await client(server.port), await client(server.port)];
  await until("connections", () => server.connections === 2, 2000);
  const final = await server.stop({ graceful: false });
  expect(final.closed.shutdown).toBe(2);
  for (const c of cs) await c.waitClosed(2000);
  expect(await server.stop()).toBe(final); // same result again
});

test("broadcast reaches every connection, in order behind each one's queue", async () => {
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 16 * MiB,
    handler: { message() {} },
  });
  servers.push(server);
  const cs: TestClient[] = [];
  for (let i = 0; i < 5; i++) cs.push(await client(server.port));
  await until("5 connections", () => server.connections === 5, 2000);
  const slow = cs[0]!;
  slow.pause();
  const msgs: Uint8Array[] = [];
  for (let i = 0; i < 60; i++) {
    const m = new Uint8Array(100 * 1024).fill(65 + (i % 26));
    m[m.length - 1] = 10;
    msgs.push(m);
    expect(server.broadcast(m)).toBe(5);
  }
  expect(server.broadcast("last\n")).toBe(5);
  const total = 60 * 100 * 1024 + 5;
  for (const c of cs.slice(1)) await c.waitBytes(total, 10_000);
  expect(server.stats().writeQueueBytes).toBeGreaterThan(0); // the paused one holds a queue
  slow.resume();
  await slow.waitBytes(total, 10_000);
  for (const c of cs) {
    const got = c.received();
    expect(got.length).toBe(total);
    for (let i = 0; i < 60; i++) expect(got[i * 100 * 1024]).toBe(65 + (i % 26));
    expect(new TextDecoder().decode(got.subarray(total - 5))).toBe("last\n");
  }
  expect(server.stats().framesOut).toBe(61 * 5);
});

test("a kept id or conn.ref() is generation-checked: it never reaches the next occupant of the slot", async () => {
  const refs: Conn[] = [];
  const ids: number[] = [];
  const server = await createServer({
    maxConnections: 1,
    handler: {
      open(conn) {
        ids.push(conn.id);
        refs.push(conn.ref());
      },
      message() {},
    },
  });
  servers.push(server);
  const a = await client(server.port);
  await until("open", () => ids.length === 1, 2000);
  expect(refs[0]!.isOpen).toBe(true);
  expect(refs[0]!.write("to a\n")).toBe(true);
  await a.waitBytes(5);
  a.close();
  await until("close", () => server.connections === 0, 2000);
  const b = await client(server.port);
  await until("second open", () => ids.length === 2, 2000);
  expect(ids[1]! & 0xfffff).toBe(ids[0]! & 0xfffff); // same slot, new handle
  expect(ids[1]).not.toBe(ids[0]);
  expect(refs[0]!.isOpen).toBe(false);
  expect(refs[0]!.write("to a again\n")).toBe(false);
  expect(server.write(ids[0]!, "stale\n")).toBe(false);
  refs[0]!.close(); // no-op on the stale handle
  expect(server.write(ids[1]!, "to b\n")).toBe(true);
  await b.waitBytes(5);
  await Bun.sleep(30);
  expect(b.text()).toBe("to b\n");
  expect(b.closed).toBe(false);
});

test('an application close with "limit" counts as rejected (closed has no "limit"), and the close hook hears "limit"', async () => {
  const heard: CloseReason[] = [];
  const server = await createServer({
    protocol: "lines",
    handler: {
      message(conn, line: Uint8Array) {
        if (new TextDecoder().decode(line) === "too many") conn.close("limit");
      },
      close(_c, r) {
        heard.push(r);
      },
    },
  });
  servers.push(server);
  const a = await client(server.port);
  await a.send("too many\n");
  await a.waitClosed(2000);
  await until("the close", () => server.connections === 0, 2000);
  const st = server.stats();
  expect(heard).toEqual(["limit"]);
  expect(st.rejected).toBe(1);
  expect(Object.values(st.closed).reduce((x, y) => x + y, 0)).toBe(0);
});

test("stats count connections, bytes, frames and request latency (per frame)", async () => {
  const server = await createServer({
    protocol: "lines",
    handler: {
      message(conn, line: Uint8Array) {
        conn.send(line); // one message per frame: the codec appends "\n"
      },
    },
  });
  servers.push(server);
  const s0 = server.stats();
  expect(s0.connections).toBe(0);
  expect(s0.rssBytes).toBeGreaterThan(0);
  expect(s0.heapUsedBytes).toBeGreaterThan(0);
  const a = await client(server.port);
  const b = await client(server.port);
  await a.send("one\ntwo\n");
  await a.waitBytes(8);
  await b.send("three\n");
  await b.waitBytes(6);
  b.close();
  await until("b's close", () => server.connections === 1, 2000);
  const st = server.stats();
  expect(st.accepted).toBe(2);
  expect(st.peakConnections).toBe(2);
  expect(st.connections).toBe(1);
  expect(st.closed.peer).toBe(1);
  expect(st.bytesIn).toBe(8 + 6);
  expect(st.bytesOut).toBe(8 + 6);
  expect(st.framesIn).toBe(3);
  expect(st.framesOut).toBe(3);
  const h = st.requestLatency;
  expect(h.counts.length).toBe(h.boundsMs.length + 1);
  expect(h.count).toBe(3); // one per frame, whatever reads they came in
  expect(h.counts.reduce((x, y) => x + y, 0)).toBe(h.count);
  expect(h.sumMs).toBeGreaterThan(0);
  expect(st.uptimeMs).toBeGreaterThan(0);
});

test("request latency is timed per frame: one slow frame among fast ones of the same read is one slow observation; off, nothing is timed", async () => {
  const SLOW_MS = 30;
  const handler = {
    message(conn: Conn, line: Uint8Array) {
      if (line.length === 4 && line[0] === 115 /* "slow" */) {
        const until = performance.now() + SLOW_MS;
        while (performance.now() < until) {
          // a handler that computes for SLOW_MS
        }
      }
      conn.send(line);
    },
  };
  const timed = await createServer({ protocol: "lines", handler });
  const untimed = await createServer({ protocol: "lines", handler, measureLatency: false });
  servers.push(timed, untimed);
  for (const server of [timed, untimed]) {
    const c = await client(server.port);
    await c.send("fast\nslow\nfast\n"); // one write: usually one read of three frames
    await c.waitBytes(15);
  }
  const h = timed.stats().requestLatency;
  expect(h.count).toBe(3);
  // Observations above the 25 ms bound: the slow frame alone (per data event, the fast
  // frames of its read would have been timed with it as one observation).
  const from = h.boundsMs.findIndex((b) => b >= 25) + 1;
  expect(h.counts.slice(from).reduce((x, y) => x + y, 0)).toBe(1);
  expect(h.sumMs).toBeGreaterThanOrEqual(SLOW_MS);
  const off = untimed.stats();
  expect(off.framesIn).toBe(3);
  expect(off.requestLatency.count).toBe(0);
  expect(off.requestLatency.sumMs).toBe(0);
});

test("listen errors: a port in use says which and what to do", async () => {
  const a = await createServer({ handler: { message() {} } });
  servers.push(a);
  let err: unknown;
  try {
    await createServer({ port: a.port, handler: { message() {} } });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ListenError);
  expect((err as ListenError).code).toBe("ERR_ADDRESS_IN_USE");
  expect((err as Error).message).toContain(`127.0.0.1:${a.port}`);
  expect((err as Error).message).toContain("port: 0");
  let err2: unknown;
  try {
    await createServer({ unix: "/nonexistent-dir-myriad/x.sock", handler: { message() {} } });
  } catch (e) {
    err2 = e;
  }
  expect(err2).toBeInstanceOf(ListenError);
  expect((err2 as Error).message).toContain("/nonexistent-dir-myriad/x.sock");
});

test("framesOut counts messages: the echo app writes one per frame in, for every framed protocol", async () => {
  const enc = new TextEncoder();
  const payloads = ["a", "", "hello world", "x".repeat(300)].map((p) => enc.encode(p));
  for (const c of ECHO_FRAMINGS) {
    const app = createEchoApp({ protocol: c.protocol });
    const server = await createServer({ protocol: app.protocol, handler: app.handler });
    servers.push(server);
    const cl = await client(server.port);
    // All frames in one write (one data event), then each frame on its own.
    const all = concat(payloads.map(c.frame));
    const want = concat(payloads.map(c.reply));
    await cl.send(all);
    await cl.waitBytes(want.length);
    for (const p of payloads) await cl.send(c.frame(p));
    await cl.waitBytes(2 * want.length);
    expectSame(cl.received(), concat([want, want]));
    const st = server.stats();
    expect(st.framesIn).toBe(2 * payloads.length);
    expect(st.framesOut).toBe(st.framesIn);
    expect(st.bytesOut).toBe(2 * want.length);
    await server.stop({ graceful: false });
  }
});
