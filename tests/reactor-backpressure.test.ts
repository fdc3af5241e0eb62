/**
 * Write queues and backpressure over real sockets: a peer that never reads cannot grow the
 * server's memory past writeBufferHardLimitBytes, a paused connection is closed after
 * writeStallTimeoutMs, input that arrives while paused is handled after the queue drains,
 * and other connections keep working throughout.
 */
import { afterAll, expect, test } from "bun:test";
import { createServer, type Server } from "../src/reactor/index.ts";
import { connect } from "./helpers/net.ts";
import { timerLateness } from "./helpers/timing.ts";
import { until } from "./helpers/until.ts";
import { expectSame } from "./helpers/assert.ts";

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop({ graceful: false });
});

const KiB = 1024;
const MiB = 1024 * KiB;

function block(i: number, size: number): Uint8Array {
  // Each block starts with its index so that order and completeness can be checked.
  const b = new Uint8Array(size).fill(97 + (i % 26));
  const tag = new TextEncoder().encode(`#${i}:`);
  b.set(tag, 0);
  b[size - 1] = 10;
  return b;
}

test("a client that never reads: queue stays under the hard limit, connection closed writeStall, others unaffected", async () => {
  let writesRefused = 0;
  let maxQueueSeen = 0;
  let closedReason = "";
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 256 * KiB,
    writeBufferHardLimitBytes: 1 * MiB,
    writeStallTimeoutMs: 0,
    tickMs: 10,
    handler: {
      message(conn, line: Uint8Array) {
        const cmd = new TextDecoder().decode(line);
        if (cmd === "flood") {
          // Ignores write()'s answer on purpose: 64 MiB offered to a peer that reads nothing.
          for (let i = 0; i < 1024; i++) {
            if (!conn.write(block(i, 64 * KiB))) writesRefused++;
            maxQueueSeen = Math.max(maxQueueSeen, server.stats().writeQueueBytes);
            if (!conn.isOpen) break;
          }
        } else {
          conn.write(`echo ${cmd}\n`);
        }
      },
      close(_conn, reason) {
        if (reason !== "peer") closedReason = reason;
      },
    },
  });
  servers.push(server);
  const hog = await connect({ port: server.port });
  const normal = await connect({ port: server.port });
  hog.pause();
  await hog.send("flood\n");
  await until("the flooding connection to be closed", () => closedReason !== "", 10_000);
  expect(closedReason).toBe("writeStall");
  expect(writesRefused).toBeGreaterThan(0);
  expect(maxQueueSeen).toBeLessThanOrEqual(1 * MiB);
  expect(maxQueueSeen).toBeGreaterThan(256 * KiB); // it did queue, and was cut off at the cap
  const st = server.stats();
  expect(st.closed.writeStall).toBe(1);
  expect(st.writeQueueBytes).toBe(0); // the closed connection's queue was released
  expect(st.pausedConnections).toBe(0);
  // The other client never noticed.
  await normal.send("hello\n");
  await normal.waitBytes("echo hello\n".length);
  expect(normal.text()).toBe("echo hello\n");
  normal.close();
});

test("a paused connection that stays over the mark is closed after writeStallTimeoutMs", async () => {
  const stallMs = 300;
  let closedAt = 0;
  let pausedAt = 0;
  let reason = "";
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 128 * KiB,
    writeStallTimeoutMs: stallMs,
    tickMs: 10,
    handler: {
      message(conn) {
        // Well-behaved producer: writes until write() says stop.
        for (let i = 0; i < 4096 && conn.write(block(i, 32 * KiB)); i++);
        pausedAt = performance.now();
      },
      close(_c, r) {
        reason = r;
        closedAt = performance.now();
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port });
  c.pause();
  await c.send("go\n");
  await until("the producer to stop", () => pausedAt > 0, 5000);
  const lag = timerLateness(stallMs + 10); // a control: how late this loop runs a timer due with the stall timeout
  expect(server.stats().pausedConnections).toBe(1);
  const q = server.stats().writeQueueBytes;
  expect(q).toBeGreaterThan(128 * KiB);
  expect(q).toBeLessThanOrEqual(2 * 128 * KiB);
  await until("the stall timeout", () => closedAt > 0, 5000);
  expect(reason).toBe("writeStall");
  const waited = closedAt - pausedAt;
  expect(waited).toBeGreaterThanOrEqual(stallMs - 1);
  expect(waited).toBeLessThan(stallMs + 10 + (await lag) + 200); // one tick late at most, plus the loop's lag, plus slack
  expect(server.stats().pausedConnections).toBe(0);
});

test("a slow reader gets every byte in order; input sent while paused is handled after the drain", async () => {
  const n = 120;
  const size = 100 * KiB;
  let maxPaused = 0;
  let drains = 0;
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 256 * KiB,
    writeStallTimeoutMs: 10_000,
    handler: {
      message(conn, line: Uint8Array) {
        const i = Number(new TextDecoder().decode(line));
        conn.write(block(i, size));
        maxPaused = Math.max(maxPaused, server.stats().pausedConnections);
      },
      drain() {
        drains++;
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port });
  c.pause();
  // Every request in one write: the server pauses reading mid-read and must keep the rest.
  await c.send(Array.from({ length: n }, (_, i) => `${i}\n`).join(""));
  await until("the server to pause reading", () => server.stats().pausedConnections === 1);
  const held = server.stats();
  expect(held.framesIn).toBeLessThan(n); // stopped handling requests while over the mark
  // The requests not handled yet are exactly what the server holds as input.
  let unhandled = 0;
  for (let i = held.framesIn; i < n; i++) unhandled += `${i}\n`.length;
  expect(held.inputBufferBytes).toBe(unhandled);
  c.resume();
  await c.waitBytes(n * size, 20_000);
  const got = c.received();
  expect(got.length).toBe(n * size);
  for (let i = 0; i < n; i++) {
    const expected = block(i, size);
    const part = got.subarray(i * size, (i + 1) * size);
    if (!Buffer.from(part).equals(Buffer.from(expected))) throw new Error(`block ${i} differs`);
  }
  expect(maxPaused).toBe(1);
  expect(drains).toBeGreaterThan(0);
  const st = server.stats();
  expect(st.framesIn).toBe(n);
  expect(st.writeQueueBytes).toBe(0);
  expect(st.inputBufferBytes).toBe(0);
  expect(st.pausedConnections).toBe(0);
  c.close();
});

test("a peer that half-closes (FIN after its request) still gets the whole queued reply, then the connection closes peer", async () => {
  // 6 MiB stays under the 8 MiB hard limit; more than the kernel takes at once, so part of
  // it waits in the write queue when the FIN arrives. 12 MiB with the mark at 16 MiB: the
  // same, without pausing.
  for (const [size, mark] of [
    [6 * MiB, 4 * MiB],
    [12 * MiB, 16 * MiB],
  ] as const) {
    const reasons: string[] = [];
    let queuedAtWrite = 0;
    const server = await createServer({
      protocol: "lines",
      maxWriteBufferBytes: mark,
      handler: {
        message(conn) {
          conn.write(block(0, size));
          queuedAtWrite = server.stats().writeQueueBytes;
        },
        close(_c, r) {
          reasons.push(r);
        },
      },
    });
    servers.push(server);
    const c = await connect({ port: server.port });
    await c.send("go\n");
    c.socket.shutdown(); // our side is done sending; we keep reading
    await c.waitBytes(size, 15_000);
    await c.waitClosed(5000);
    expect(queuedAtWrite).toBeGreaterThan(0); // the FIN did find a queue to flush
    expect(c.receivedBytes).toBe(size);
    expectSame(c.received(), block(0, size));
    expect(reasons).toEqual(["peer"]);
    const st = server.stats();
    expect(st.closed.peer).toBe(1);
    expect(st.bytesOut).toBe(size);
    expect(st.writeQueueBytes).toBe(0);
  }
});

test("a peer that half-closes and never reads is closed writeStall after writeStallTimeoutMs", async () => {
  const reasons: string[] = [];
  let queuedAtWrite = 0;
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 16 * MiB,
    writeStallTimeoutMs: 200,
    tickMs: 10,
    handler: {
      message(conn) {
        conn.write(block(1, 12 * MiB)); // under the mark: not paused, only queued
        queuedAtWrite = server.stats().writeQueueBytes;
      },
      close(_c, r) {
        reasons.push(r);
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port });
  c.pause();
  await c.send("go\n");
  c.socket.shutdown();
  await until("the stalled half-closed connection to be closed", () => reasons.length === 1, 5000);
  expect(queuedAtWrite).toBeGreaterThan(0);
  expect(reasons).toEqual(["writeStall"]);
  expect(server.stats().writeQueueBytes).toBe(0);
  expect(server.connections).toBe(0);
});

test("pipelined requests then FIN: every request is answered, including those held while the server was paused", async () => {
  const n = 120;
  const size = 100 * KiB;
  const reasons: string[] = [];
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 256 * KiB,
    writeStallTimeoutMs: 10_000,
    handler: {
      message(conn, line: Uint8Array) {
        conn.write(block(Number(new TextDecoder().decode(line)), size));
      },
      close(_c, r) {
        reasons.push(r);
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port });
  c.pause();
  await c.send(Array.from({ length: n }, (_, i) => `${i}\n`).join(""));
  c.socket.shutdown(); // as `nc -N` or a script piping a file does
  // Requests are held behind the write queue (a paused connection does not read the FIN either).
  await until("the server to pause reading", () => server.stats().pausedConnections === 1);
  c.resume();
  await c.waitBytes(n * size, 20_000);
  await c.waitClosed(5000);
  const got = c.received();
  expect(got.length).toBe(n * size);
  for (let i = 0; i < n; i++) {
    if (!Buffer.from(got.subarray(i * size, (i + 1) * size)).equals(Buffer.from(block(i, size)))) throw new Error(`block ${i} differs`);
  }
  expect(reasons).toEqual(["peer"]);
  expect(server.stats().framesIn).toBe(n);
});
