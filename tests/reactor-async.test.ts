/**
 * Async handlers over real sockets: the conn an async callback received stays bound to its
 * connection across awaits (no cross-talk between connections), a rejection closes that
 * connection with "error", and a write after the connection closed returns false and
 * reaches nobody (not the next occupant of its slot).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type CloseReason, type Conn } from "../src/reactor/index.ts";
import { type TestClient, trackPeers } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";

const { servers, client } = trackPeers();
const dir = mkdtempSync(join(tmpdir(), "myriad-async-"));
// Registered after trackPeers' hook: the servers are stopped before their directory goes.
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

test("an async message handler writes with its conn after awaits (a timer, then file I/O): the reply arrives, conn.id unchanged", async () => {
  const file = join(dir, "payload.txt");
  writeFileSync(file, "from disk");
  const ids: Array<[number, number, number]> = [];
  const server = await createServer({
    protocol: "lines",
    handler: {
      async message(conn, line: Uint8Array) {
        const before = conn.id;
        const msg = text(line); // the frame is a view of the read buffer: read it before awaiting
        await sleep(20);
        const afterTimer = conn.id;
        const disk = await Bun.file(file).text();
        ids.push([before, afterTimer, conn.id]);
        expect(conn.isOpen).toBe(true);
        expect(conn.write(`${msg} ${disk}\n`)).toBe(true);
      },
    },
  });
  servers.push(server);
  const c = await client(server.port);
  await c.send("hello\n");
  await c.waitBytes("hello from disk\n".length, 5000);
  expect(c.text()).toBe("hello from disk\n");
  expect(ids.length).toBe(1);
  const [before, afterTimer, afterIo] = ids[0]!;
  expect(before).toBeGreaterThanOrEqual(0);
  expect(afterTimer).toBe(before);
  expect(afterIo).toBe(before);
});

test("many connections with interleaved awaits each get only their own replies", async () => {
  const n = 40;
  const perConn = 6;
  const server = await createServer({
    protocol: "lines",
    handler: {
      open(conn) {
        conn.write(`id ${conn.id}\n`); // sync: tells the client its id
      },
      async message(conn, line: Uint8Array) {
        const id = conn.id;
        const msg = text(line);
        // Delays chosen so that completions interleave across connections and overtake
        // each other within one connection.
        const k = Number(msg.split(" ")[1]);
        await sleep(((k * 7 + id * 13) % 23) + 1);
        if (conn.id !== id) throw new Error(`conn.id moved from ${id} to ${conn.id}`);
        await Promise.resolve();
        conn.write(`${conn.id} ${msg}\n`);
      },
    },
  });
  servers.push(server);
  const cs: TestClient[] = [];
  for (let i = 0; i < n; i++) cs.push(await client(server.port));
  await until("every greeting", () => cs.every((c) => c.text().includes("\n")), 5000);
  const idOf = cs.map((c) => Number(c.text().split("\n")[0]!.slice(3)));
  expect(new Set(idOf).size).toBe(n);
  // Every client sends its requests in two bursts, each coalesced into one write.
  for (let i = 0; i < n; i++) {
    let burst = "";
    for (let k = 0; k < perConn / 2; k++) burst += `c${i} ${k}\n`;
    await cs[i]!.send(burst);
  }
  for (let i = 0; i < n; i++) {
    let burst = "";
    for (let k = perConn / 2; k < perConn; k++) burst += `c${i} ${k}\n`;
    await cs[i]!.send(burst);
  }
  for (let i = 0; i < n; i++) {
    const c = cs[i]!;
    const greeting = `id ${idOf[i]}\n`;
    let want = greeting.length;
    for (let k = 0; k < perConn; k++) want += `${idOf[i]} c${i} ${k}\n`.length;
    await c.waitBytes(want, 10_000);
    const lines = c.text().split("\n").slice(1, -1);
    const expected = Array.from({ length: perConn }, (_, k) => `${idOf[i]} c${i} ${k}`);
    expect(lines.sort()).toEqual(expected.sort());
  }
  await Bun.sleep(30);
  for (let i = 0; i < n; i++) {
    // Nothing beyond the expected replies arrived later (no stray cross-talk).
    expect(cs[i]!.text().split("\n").length).toBe(perConn + 2);
  }
});

test("a rejecting async handler closes its connection with error; the others keep being served", async () => {
  const reasons: CloseReason[] = [];
  const errors: Array<[number, string]> = [];
  let badId = -1;
  const server = await createServer({
    protocol: "lines",
    handler: {
      async message(conn, line: Uint8Array) {
        const msg = text(line);
        await sleep(5);
        if (msg === "boom") {
          badId = conn.id;
          throw new Error("upstream failed");
        }
        if (msg === "early") throw new Error("before any await");
        conn.write(`ok ${msg}\n`);
      },
      error(conn, err) {
        errors.push([conn.id, err.message]);
      },
      close(_conn, reason) {
        reasons.push(reason);
      },
    },
  });
  servers.push(server);
  const good = await client(server.port);
  const bad = await client(server.port);
  const early = await client(server.port);
  await good.send("a\n");
  await good.waitBytes("ok a\n".length);
  await bad.send("boom\n");
  await early.send("early\n");
  await bad.waitClosed(5000);
  await early.waitClosed(5000);
  expect(bad.text()).toBe("");
  await good.send("b\n");
  await good.waitBytes("ok a\nok b\n".length);
  expect(good.text()).toBe("ok a\nok b\n");
  expect(good.closed).toBe(false);
  await until("two closes", () => reasons.length === 2, 2000);
  expect(reasons).toEqual(["error", "error"]);
  expect(errors.map((e) => e[1]).sort()).toEqual(["before any await", "upstream failed"]);
  expect(errors.find((e) => e[1] === "upstream failed")![0]).toBe(badId);
  expect(server.stats().closed.error).toBe(2);
  expect(server.connections).toBe(1);
});

test("without an error hook a rejection is logged and its connection closed", async () => {
  const logged: unknown[][] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => void logged.push(a);
  try {
    const server = await createServer({
      protocol: "lines",
      handler: {
        async message() {
          await sleep(1);
          throw new Error("no hook");
        },
      },
    });
    servers.push(server);
    const c = await client(server.port);
    await c.send("x\n");
    await c.waitClosed(5000);
    await until("the close", () => server.stats().closed.error === 1, 2000);
  } finally {
    console.error = original;
  }
  expect(logged.flat().flatMap((x) => (x instanceof Error ? [x.message] : []))).toContain("no hook");
});

test("after its connection closed, a late write with the async handler's conn returns false and reaches nobody", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const results: Array<{ id: number; write: boolean; open: boolean }> = [];
  const closes: number[] = [];
  const server = await createServer({
    protocol: "lines",
    maxConnections: 1, // the next connection takes the same slot
    handler: {
      async message(conn, line: Uint8Array) {
        if (text(line) !== "wait") {
          conn.write("next\n");
          return;
        }
        await gate;
        results.push({ id: conn.id, write: conn.write("late\n"), open: conn.isOpen });
        conn.close(); // a no-op on a stale handle: must not close the new occupant
      },
      close(conn) {
        closes.push(conn.id);
      },
    },
  });
  servers.push(server);
  const first = await client(server.port);
  await first.send("wait\n");
  await until("the handler to take 'wait'", () => server.stats().framesIn === 1);
  first.close();
  await until("the first connection's close", () => closes.length === 1, 2000);
  const second = await client(server.port);
  await until("the second connection", () => server.connections === 1, 2000);
  release();
  await until("the late write", () => results.length === 1, 2000);
  expect(results[0]!.id).toBe(closes[0]!);
  expect(results[0]!.write).toBe(false);
  expect(results[0]!.open).toBe(false);
  await second.send("hi\n");
  await second.waitBytes("next\n".length);
  await Bun.sleep(30);
  expect(second.text()).toBe("next\n"); // never "late"
  expect(second.closed).toBe(false);
  expect(server.connections).toBe(1);
});

test("async open and drain: their conns stay bound across awaits", async () => {
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 64 * 1024,
    writeBufferHardLimitBytes: 16 << 20,
    handler: {
      async open(conn) {
        const id = conn.id;
        await sleep(10);
        conn.write(`welcome ${id === conn.id}\n`);
      },
      message(conn, line: Uint8Array) {
        if (text(line) === "flood") conn.write(new Uint8Array(8 << 20).fill(46)); // over the mark
      },
      async drain(conn) {
        const id = conn.id;
        await sleep(5);
        conn.write(`drained ${id === conn.id}\n`);
      },
    },
  });
  servers.push(server);
  const c = await client(server.port);
  await c.waitBytes("welcome true\n".length, 5000);
  expect(c.text()).toBe("welcome true\n");
  // A second client connects meanwhile: its callbacks use the flyweight while c's drain awaits.
  const other = await client(server.port);
  await other.waitBytes("welcome true\n".length, 5000);
  const total = "welcome true\n".length + (8 << 20) + "drained true\n".length;
  c.pause(); // the kernel's buffers fill: the rest of the 8 MiB waits in the queue, over the mark
  await c.send("flood\n");
  await until("the server to pause c", () => server.stats().pausedConnections === 1, 5000);
  c.resume();
  await c.waitBytes(total, 10_000);
  expect(text(c.received().subarray(total - "drained true\n".length))).toBe("drained true\n");
});

test("sync callbacks share one flyweight (no object per event); each async call keeps its own", async () => {
  const syncConns = new Set<Conn>();
  const asyncConns = new Set<Conn>();
  const server = await createServer({
    protocol: "lines",
    handler: {
      message(conn, line: Uint8Array) {
        if (text(line) === "async") return replyLater(conn);
        syncConns.add(conn);
        conn.write("sync\n");
      },
    },
  });
  async function replyLater(conn: Conn): Promise<void> {
    asyncConns.add(conn);
    await sleep(5);
    conn.write("async\n");
  }
  servers.push(server);
  const a = await client(server.port);
  const b = await client(server.port);
  for (let i = 0; i < 5; i++) {
    await a.send("s\n");
    await b.send("s\n");
  }
  await a.waitBytes(5 * 5);
  await b.waitBytes(5 * 5);
  expect(syncConns.size).toBe(1);
  await a.send("async\nasync\n");
  await b.send("async\n");
  await a.waitBytes(5 * 5 + 2 * 6);
  await b.waitBytes(5 * 5 + 6);
  expect(asyncConns.size).toBe(3);
  // After the async calls took their conns, sync callbacks again share one (new) flyweight.
  syncConns.clear();
  await a.send("s\n");
  await b.send("s\n");
  await a.waitBytes(5 * 5 + 2 * 6 + 5);
  await b.waitBytes(5 * 5 + 6 + 5);
  expect(syncConns.size).toBe(1);
  for (const c of asyncConns) expect(syncConns.has(c)).toBe(false);
});

test("a handler that closes another connection whose async close handler keeps its conn: the outer conn is not re-pointed", async () => {
  const closeSeen: Array<{ before: number; after: number }> = [];
  let victimId = -1;
  let outerIds: number[] = [];
  const server = await createServer({
    protocol: "lines",
    handler: {
      message(conn, line: Uint8Array) {
        const msg = text(line);
        if (msg === "me") {
          victimId = conn.id;
          conn.write("noted\n");
          return;
        }
        const id = conn.id;
        server.close(victimId); // runs the victim's close handler inside this callback
        outerIds = [id, conn.id];
        conn.write("closed it\n");
      },
      async close(conn) {
        const before = conn.id;
        await sleep(10);
        closeSeen.push({ before, after: conn.id });
      },
    },
  });
  servers.push(server);
  const victim = await client(server.port);
  const killer = await client(server.port);
  await victim.send("me\n");
  await victim.waitBytes(6);
  await killer.send("kill\n");
  await killer.waitBytes("closed it\n".length);
  await victim.waitClosed(5000);
  await until("the async close handler", () => closeSeen.length === 1, 2000);
  expect(closeSeen[0]).toEqual({ before: victimId, after: victimId });
  expect(outerIds[0]).toBe(outerIds[1]!);
  expect(outerIds[0]).not.toBe(victimId);
  expect(killer.text()).toBe("closed it\n");
  // The killer's connection is still served after the nested async close.
  await killer.send("kill\n");
  await killer.waitBytes("closed it\n".length * 2);
});
