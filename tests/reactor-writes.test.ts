/**
 * The write paths over real sockets: by the time write() returns its bytes were sent or
 * copied (gathered during a data event, sent directly, queued, broadcast), and the fast
 * path for the connection whose data event is running keeps order and refuses writes once
 * that connection pauses for a queue or starts closing.
 */
import { expect, test } from "bun:test";
import { createServer, type Conn, type Server } from "../src/reactor/index.ts";
import { pseudoRandomBytes, trackPeers } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";
import { expectSame } from "./helpers/assert.ts";

const { servers, client } = trackPeers();
const MiB = 1 << 20;
const enc = new TextEncoder();
const dec = new TextDecoder();
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

test("write has sent or copied its bytes when it returns, on every path: the caller may overwrite its buffer at once", async () => {
  const small = new Uint8Array(16); // gathered (corked) during the data event
  const big = new Uint8Array(200 * 1024); // over the cork buffer: sent directly in the event
  const huge = new Uint8Array(16 * MiB); // more than the kernel takes from a paused reader: queued
  const later = new Uint8Array(64); // from a timer, outside any data event
  const bc = new Uint8Array(32); // broadcast
  const fill = (b: Uint8Array, seed: number) => b.set(pseudoRandomBytes(b.length, seed));
  const expected: Uint8Array[] = [];
  let kept: Conn | null = null;
  let server!: Server;
  server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 32 * MiB,
    handler: {
      message(conn, line: Uint8Array) {
        const cmd = dec.decode(line);
        const write = (b: Uint8Array, seed: number) => {
          fill(b, seed);
          expected.push(b.slice());
          expect(conn.write(b)).toBe(true);
          b.fill(0xee); // overwritten at once: what went out must be the bytes at the call
        };
        if (cmd === "event") {
          write(small, 1);
          write(big, 2);
          write(small, 3);
          write(huge, 4);
          write(small, 5); // after a queue formed: appended to it, in order
        } else if (cmd === "later") {
          kept = conn.ref();
          setTimeout(() => {
            fill(later, 6);
            expected.push(later.slice());
            kept!.write(later);
            later.fill(0xee);
            fill(bc, 7);
            expected.push(bc.slice());
            expect(server.broadcast(bc)).toBe(1);
            bc.fill(0xee);
          }, 5);
        }
      },
    },
  });
  servers.push(server);
  const c = await client(server.port);
  c.pause(); // the 16 MiB cannot all go to the kernel: most of it is queued
  await c.send("event\n");
  await until("a write queue", () => server.stats().writeQueueBytes > 0, 5000);
  await c.send("later\n"); // read once the queue drains below half the mark: keep reading
  c.resume();
  const total = expected.reduce((n, b) => n + b.length, 0) + 64 + 32;
  await c.waitBytes(total, 20_000);
  const got = c.received();
  let o = 0;
  for (const [i, want] of expected.entries()) {
    if (!same(got.subarray(o, o + want.length), want)) throw new Error(`write ${i} (${want.length} bytes) differs on the wire`);
    o += want.length;
  }
  expect(o).toBe(got.length);
  expect(server.stats().writeQueueBytes).toBe(0);
});

test("small writes of one event stay in order around a write that forms a queue, and around strings", async () => {
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 64 * MiB,
    handler: {
      message(conn) {
        for (let i = 0; i < 100; i++) conn.write(enc.encode(`a${i};`));
        conn.write(new Uint8Array(8 * MiB).fill(46));
        for (let i = 0; i < 100; i++) conn.write(i % 2 === 0 ? `b${i};` : enc.encode(`b${i};`));
        conn.write("ünïcödé;"); // not ASCII: the UTF-8 path
      },
    },
  });
  servers.push(server);
  const c = await client(server.port);
  c.pause();
  await c.send("go\n");
  await until("a write queue", () => server.stats().writeQueueBytes > 0, 5000);
  c.resume();
  let head = "";
  let tail = "";
  for (let i = 0; i < 100; i++) head += `a${i};`;
  for (let i = 0; i < 100; i++) tail += `b${i};`;
  tail += "ünïcödé;";
  const total = enc.encode(head).length + 8 * MiB + enc.encode(tail).length;
  await c.waitBytes(total, 20_000);
  const got = c.received();
  expect(got.length).toBe(total);
  const h = enc.encode(head).length;
  expect(dec.decode(got.subarray(0, h))).toBe(head);
  expectSame(got.subarray(h, h + 8 * MiB), new Uint8Array(8 * MiB).fill(46), "the 8 MiB of dots");
  expect(dec.decode(got.subarray(h + 8 * MiB))).toBe(tail);
});

test("within one event, writes after conn.close() or to a paused connection follow the rules of the slow path", async () => {
  const results: boolean[] = [];
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 1 * MiB,
    writeBufferHardLimitBytes: 64 * MiB,
    handler: {
      message(conn, line: Uint8Array) {
        const cmd = dec.decode(line);
        if (cmd === "close") {
          results.push(conn.write("bye\n"));
          conn.close();
          results.push(conn.write("after close\n")); // refused: closing
        } else if (cmd === "flood") {
          results.push(conn.write(new Uint8Array(16 * MiB).fill(46))); // queue over the mark: false
          results.push(conn.write("x")); // still queued (in order), still over the mark: false
        }
      },
    },
  });
  servers.push(server);
  const a = await client(server.port);
  await a.send("close\n");
  await a.waitClosed(5000);
  expect(a.text()).toBe("bye\n");
  expect(results.splice(0)).toEqual([true, false]);
  const b = await client(server.port);
  b.pause();
  await b.send("flood\n");
  await until("the flood", () => results.length === 2, 5000);
  expect(results).toEqual([false, false]);
  b.resume();
  await b.waitBytes(16 * MiB + 1, 20_000);
  expect(b.received()[16 * MiB]).toBe("x".charCodeAt(0));
});

test("a write to another connection from inside a data event goes to that connection", async () => {
  let first = -1;
  const server = await createServer({
    protocol: "lines",
    handler: {
      open(conn) {
        if (first < 0) first = conn.id;
      },
      message(conn, line: Uint8Array) {
        expect(server.write(first, line)).toBe(true); // not the corked connection
        expect(server.write(first, "\n")).toBe(true);
        conn.write("sent\n");
      },
    },
  });
  servers.push(server);
  const a = await client(server.port);
  const b = await client(server.port);
  await until("two connections", () => server.connections === 2, 2000);
  await b.send("to a\n");
  await b.waitBytes(5);
  await a.waitBytes(5);
  expect(a.text()).toBe("to a\n");
  expect(b.text()).toBe("sent\n");
});
