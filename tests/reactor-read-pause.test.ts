/**
 * conn.pauseReading / resumeReading over real loopback sockets: an application-paused
 * connection gets no messages while its peer's writes back up, keeps what arrived in the
 * same read, gets everything in order after resume; the pause composes with the write
 * backpressure pause (neither resume lifts the other's), and the idle timeout does not run
 * while the application holds a connection.
 */
import { afterAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { createServer, type Server } from "../src/reactor/index.ts";
import { connect } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop({ graceful: false });
});

const enc = new TextEncoder();
const dec = new TextDecoder();
const LINE_BYTES = 1024;

/** Line i of a flood: "n<i>" padded with dots to LINE_BYTES, newline-terminated. */
function floodLine(i: number): string {
  const head = `n${i}`;
  return head + ".".repeat(LINE_BYTES - head.length - 1) + "\n";
}

/**
 * A raw client that writes flood lines until the kernel takes less than offered (the server
 * stopped reading and both sides' buffers are full), at most maxLines; the rest of the last
 * batch is written on drain. `sent` counts the lines of every batch begun.
 */
async function floodUntilBackpressure(port: number, maxLines: number): Promise<{ socket: Socket<undefined>; sent: number; pushedBack: boolean }> {
  let rest: Uint8Array | null = null;
  const pump = (s: Socket<undefined>) => {
    while (rest !== null && rest.length > 0) {
      const n = s.write(rest);
      if (n <= 0) return;
      rest = rest.subarray(n);
    }
  };
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, drain: pump } });
  let sent = 0;
  while (sent < maxLines) {
    const batch: string[] = [];
    for (let k = 0; k < 64 && sent + batch.length < maxLines; k++) batch.push(floodLine(sent + batch.length));
    const bytes = enc.encode(batch.join(""));
    const n = socket.write(bytes);
    sent += batch.length;
    if (n < bytes.length) {
      rest = bytes.subarray(Math.max(0, n));
      return { socket, sent, pushedBack: true };
    }
    await Promise.resolve();
  }
  return { socket, sent, pushedBack: false };
}

test("pauseReading in a message: the rest of the read is kept, delivered in order after resume, not inside the resume call", async () => {
  const got: string[] = [];
  let pausedId = -1;
  const server = await createServer({
    protocol: "lines",
    maxFrameBytes: 4096,
    handler: {
      message(conn, line: Uint8Array) {
        const text = dec.decode(line);
        got.push(text);
        if (text === "pause") {
          conn.pauseReading();
          pausedId = conn.id;
        }
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port });
  // One write: the lines after "pause" arrive in the same read as it.
  await c.send("a\npause\nb\nc\n");
  await until("the pause", () => pausedId >= 0);
  expect(got).toEqual(["a", "pause"]);
  expect(server.stats().readPausedConnections).toBe(1);
  expect(server.stats().inputBufferBytes).toBe(4); // "b\nc\n", kept for resume
  server.resumeReading(pausedId);
  expect(got).toEqual(["a", "pause"]); // delivered from a task of its own, not inside the call
  await until("b and c after resume", () => got.length === 4);
  expect(got).toEqual(["a", "pause", "b", "c"]);
  expect(server.stats().readPausedConnections).toBe(0);
  expect(server.stats().inputBufferBytes).toBe(0);
  // Reading goes on as before.
  await c.send("d\n");
  await until("d", () => got.length === 5);
  expect(got[4]).toBe("d");
  c.close();
});

test("pauseReading holds a flooding peer: its writes back up, nothing is delivered, and after resume every line comes in order", async () => {
  const got: number[] = [];
  let floodId = -1;
  const server = await createServer({
    protocol: "lines",
    maxFrameBytes: 4096,
    handler: {
      message(conn, line: Uint8Array) {
        const text = dec.decode(line);
        const n = Number(text.slice(1, text.indexOf(".")));
        got.push(n);
        if (n === 0) {
          floodId = conn.id;
          conn.pauseReading();
        }
      },
    },
  });
  servers.push(server);
  const flood = await floodUntilBackpressure(server.port, 64 * 1024);
  expect(flood.pushedBack).toBe(true);
  await until("the first line", () => floodId >= 0);
  // The rest of line 0's read was kept, not delivered; the socket stopped being read.
  expect(got).toEqual([0]);
  const held = server.stats().inputBufferBytes!;
  expect(held).toBeLessThan(flood.sent * LINE_BYTES);
  expect(server.stats().bytesIn).toBeLessThan(flood.sent * LINE_BYTES);
  server.resumeReading(floodId);
  await until(() => `all ${flood.sent} lines (have ${got.length})`, () => got.length >= flood.sent, 30_000);
  for (let i = 0; i < got.length; i++) if (got[i] !== i) throw new Error(`line ${i} arrived as ${got[i]}`);
  flood.socket.end();
});

test("the application's pause and write backpressure compose: neither resume lifts the other's pause", async () => {
  const got: string[] = [];
  let id = -1;
  let drains = 0;
  let written = 0;
  const chunk = "x".repeat(64 * 1024);
  // Writes until over the mark (the kernel's buffers take some MiB first); bounded.
  const fill = (write: (s: string) => boolean) => {
    for (let i = 0; i < 1024; i++) {
      written += chunk.length;
      if (!write(chunk)) return true;
    }
    return false;
  };
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 64 * 1024,
    writeBufferHardLimitBytes: 256 * 1024 * 1024,
    writeStallTimeoutMs: 0,
    handler: {
      message(conn, line: Uint8Array) {
        const text = dec.decode(line);
        got.push(text);
        if (text === "both") {
          id = conn.id;
          conn.pauseReading();
          fill((s) => conn.write(s)); // over the mark: write backpressure too (the client does not read)
        }
      },
      drain() {
        drains++;
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port });
  c.pause();
  await c.send("both\nafter1\n");
  await until("both pauses", () => id >= 0 && server.stats().pausedConnections === 1);
  expect(server.stats().readPausedConnections).toBe(1);
  // 1. The queue drains (the client reads): drain runs, but the application's pause holds.
  c.resume();
  await until("the drain", () => drains === 1, 10_000);
  await c.waitBytes(written, 20_000);
  expect(server.stats().pausedConnections).toBe(0);
  expect(server.stats().readPausedConnections).toBe(1);
  expect(got).toEqual(["both"]);
  // 2. Over the mark again, then the application resumes: still paused by the writes.
  c.pause();
  expect(fill((s) => server.write(id, s))).toBe(true);
  expect(server.stats().pausedConnections).toBe(1);
  server.resumeReading(id);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  expect(server.stats().readPausedConnections).toBe(0);
  expect(got).toEqual(["both"]);
  // 3. The queue drains: now the held line comes.
  c.resume();
  await until("the held line", () => got.length === 2, 10_000);
  expect(got).toEqual(["both", "after1"]);
  await c.send("after2\n");
  await until("a new line", () => got.length === 3);
  expect(got[2]).toBe("after2");
  c.close();
});

test("the idle timeout does not close a connection the application paused; it runs again from resume", async () => {
  const closed = new Map<number, string>();
  const ids: number[] = [];
  const server = await createServer({
    protocol: "lines",
    idleTimeoutMs: 150,
    tickMs: 10,
    handler: {
      message(conn, line: Uint8Array) {
        ids.push(conn.id);
        if (dec.decode(line) === "hold") conn.pauseReading();
      },
      close(conn, reason) {
        closed.set(conn.id, reason);
      },
    },
  });
  servers.push(server);
  const held = await connect({ port: server.port });
  await held.send("hold\n");
  await until("the hold", () => ids.length === 1);
  const plain = await connect({ port: server.port });
  await plain.send("hi\n");
  await until("the second line", () => ids.length === 2);
  // The plain one, idle since after the held one paused, is closed first.
  await until("the plain connection's idle close", () => closed.get(ids[1]!) !== undefined);
  expect(closed.get(ids[1]!)).toBe("idle");
  expect(closed.has(ids[0]!)).toBe(false);
  server.resumeReading(ids[0]!);
  await until("the resumed connection's idle close", () => closed.get(ids[0]!) !== undefined);
  expect(closed.get(ids[0]!)).toBe("idle");
  held.close();
  plain.close();
});
