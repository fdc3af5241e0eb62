/**
 * Re-entrant calls from hooks (issue 10): a close or drain hook that broadcasts, writes,
 * closes or stops while the server is in the middle of a broadcast, a drain or a stop must
 * leave that outer operation whole. The close hooks here run inside a broadcast's flush (at
 * the end of the turn, src/reactor/fanout.ts) because the broadcast pushed a slow reader
 * (slot 0) past writeBufferHardLimitBytes, which closes it there, the way a chat server's
 * "X left" message runs in practice.
 */
import { expect, test } from "bun:test";
import { createServer, type Conn, type Handler, type Server } from "../src/reactor/index.ts";
import { trackPeers, type TestClient } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";

const peers = trackPeers();
const KiB = 1024;
const BIG = 100 * KiB;
const payload = new Uint8Array(BIG).fill(0x61);

type Hooks = Pick<Handler, "close" | "drain">;

/** A server whose connections' ids are kept in open order, with the given hooks. */
async function serverWith(hooks: Hooks): Promise<{ server: Server; ids: number[] }> {
  const ids: number[] = [];
  const server = await createServer({
    protocol: "lines",
    maxWriteBufferBytes: 16 * KiB,
    writeBufferHardLimitBytes: 64 * KiB,
    handler: {
      open(conn) {
        ids.push(conn.id);
      },
      message(conn, line: Uint8Array) {
        conn.write(`echo ${new TextDecoder().decode(line)}\n`);
      },
      ...hooks,
    },
  });
  peers.servers.push(server);
  return { server, ids };
}

/** n clients, connected in order (so the first holds slot 0), each seen by the server. */
const clients = (server: Server, ids: number[], n: number): Promise<TestClient[]> => peers.clientsInOrder(server.port, n, () => ids.length);

/** Stops `client` reading and writes to its connection until the kernel is full and some bytes queue. */
async function stall(server: Server, client: TestClient, id: number): Promise<void> {
  client.pause();
  const chunk = new Uint8Array(8 * KiB).fill(0x7a);
  // Loopback buffers take a few MiB; 64 MiB bounds the loop.
  for (let i = 0; i < 8192 && server.stats().writeQueueBytes === 0; i++) {
    expect(server.write(id, chunk)).toBe(true);
    if (i % 64 === 63) await Bun.sleep(0); // let the kernel move bytes between the two sockets
  }
  expect(server.stats().writeQueueBytes).toBeGreaterThan(0);
  expect(server.stats().writeQueueBytes).toBeLessThan(16 * KiB);
}

/** Waits until client has exactly n bytes: n arrive, then a marker broadcast arrives right after them. */
async function exactly(server: Server, client: TestClient, n: number): Promise<string> {
  await client.waitBytes(n);
  server.broadcast("end\n");
  await client.waitBytes(n + 4);
  const text = client.text();
  expect(text.length).toBe(n + 4);
  expect(text.endsWith("end\n")).toBe(true);
  return text.slice(0, n);
}

test("broadcast: a close hook that broadcasts (slot 0 cut off by the broadcast) leaves the outer broadcast whole", async () => {
  let hooked: Server | null = null;
  const { server, ids } = await serverWith({
    close(_conn, reason) {
      if (reason === "writeStall") hooked!.broadcast("bye\n");
    },
  });
  hooked = server;
  const [slow, other] = await clients(server, ids, 2);
  await stall(server, slow!, ids[0]!);
  expect(server.broadcast(payload)).toBe(2);
  // The hook's broadcast came after the outer one: it arrives after it.
  const got = await exactly(server, other!, BIG + 4);
  expect(got.length).toBe(102_404);
  expect(got).toBe("a".repeat(BIG) + "bye\n");
  expect(server.stats().closed.writeStall).toBe(1);
});

test("broadcast: a close hook that writes to another connection or closes one leaves the outer broadcast whole", async () => {
  let hooked: { server: Server; ids: number[] } | null = null;
  const { server, ids } = await serverWith({
    close(_conn, reason) {
      if (reason !== "writeStall") return;
      expect(hooked!.server.write(hooked!.ids[1]!, "bye\n")).toBe(true);
      hooked!.server.close(hooked!.ids[2]!);
    },
  });
  hooked = { server, ids };
  const [slow, written, closed, last] = await clients(server, ids, 4);
  await stall(server, slow!, ids[0]!);
  expect(server.broadcast(payload)).toBe(4);
  // The broadcast was made before the hook's write and close: both connections get it first.
  expect(await exactly(server, written!, BIG + 4)).toBe("a".repeat(BIG) + "bye\n");
  expect(await exactly(server, last!, BIG)).toBe("a".repeat(BIG));
  await closed!.waitClosed();
  expect(closed!.text()).toBe("a".repeat(BIG));
  expect(server.stats().closed.server).toBe(1);
  expect(server.stats().closed.writeStall).toBe(1);
});

test("broadcast: a close hook that stops the server (graceful or not) leaves the outer broadcast and the stop whole", async () => {
  for (const graceful of [true, false]) {
    let hooked: Server | null = null;
    let stopping: Promise<unknown> | null = null;
    const { server, ids } = await serverWith({
      close(_conn, reason) {
        if (reason === "writeStall") stopping = hooked!.stop({ graceful });
      },
    });
    hooked = server;
    const [slow, a, b] = await clients(server, ids, 3);
    await stall(server, slow!, ids[0]!);
    expect(server.broadcast(payload)).toBe(3);
    await until("the stop began", () => stopping !== null);
    const stats = (await stopping!) as Awaited<ReturnType<Server["stop"]>>;
    await a!.waitClosed();
    await b!.waitClosed();
    expect(stats.connections).toBe(0);
    expect(stats.closed.writeStall).toBe(1);
    expect(stats.closed.shutdown).toBe(2);
    if (graceful) {
      // The stop began inside the broadcast's flush: both still got the whole message, then a FIN.
      expect(a!.text()).toBe("a".repeat(BIG));
      expect(b!.text()).toBe("a".repeat(BIG));
    }
  }
});

test("drain: a drain hook that broadcasts, writes, closes and stops leaves the drain whole", async () => {
  let hooked: { server: Server; ids: number[] } | null = null;
  let stopping: Promise<unknown> | null = null;
  const drained: number[] = [];
  const { server, ids } = await serverWith({
    drain(conn: Conn) {
      drained.push(conn.id);
      const { server, ids } = hooked!;
      expect(server.broadcast("drained\n")).toBe(3);
      expect(conn.write("after\n")).toBe(true);
      server.close(ids[2]!);
      stopping = server.stop();
    },
  });
  hooked = { server, ids };
  const [reader, a, b] = await clients(server, ids, 3);
  // Pause reader's connection over its mark (16 KiB queued), then let it read again.
  reader!.pause();
  const chunk = new Uint8Array(8 * KiB).fill(0x7a);
  let wrote = 0;
  for (let i = 0; i < 8192 && server.write(ids[0]!, chunk); i++) {
    wrote += chunk.length;
    if (i % 64 === 63) await Bun.sleep(0);
  }
  wrote += chunk.length; // the write that answered false was queued too
  expect(server.stats().pausedConnections).toBe(1);
  reader!.resume();
  await until("the drain hook ran", () => drained.length === 1);
  const stats = (await stopping!) as Awaited<ReturnType<Server["stop"]>>;
  await reader!.waitClosed();
  // Everything queued before the drain, then the hook's broadcast and write, in order, then FIN.
  expect(reader!.receivedBytes).toBe(wrote + "drained\n".length + "after\n".length);
  expect(reader!.text().endsWith("z".repeat(100) + "drained\nafter\n")).toBe(true);
  await a!.waitClosed();
  await b!.waitClosed();
  expect(a!.text()).toBe("drained\n");
  expect(b!.text()).toBe("drained\n");
  expect(stats.closed.server).toBe(1);
  expect(stats.closed.shutdown).toBe(2);
});

test("stop: close hooks that broadcast, write, close and stop again leave the stop whole", async () => {
  for (const graceful of [true, false]) {
    let hooked: { server: Server; ids: number[] } | null = null;
    const again: Promise<unknown>[] = [];
    const reasons: string[] = [];
    const { server, ids } = await serverWith({
      close(conn, reason) {
        reasons.push(reason);
        const { server, ids } = hooked!;
        server.broadcast(`bye ${ids.indexOf(conn.id)}\n`);
        // The next connection in slot order is still open during the first close: write, then close it.
        const next = ids[ids.indexOf(conn.id) + 1];
        if (next !== undefined) {
          server.write(next, `to ${ids.indexOf(next)}\n`);
          server.close(next);
        }
        again.push(server.stop({ graceful }));
      },
    });
    hooked = { server, ids };
    const cs = await clients(server, ids, 4);
    const first = server.stop({ graceful });
    const stats = await first;
    for (const p of again) expect(p).toBe(first);
    for (const c of cs) await c.waitClosed();
    expect(stats.connections).toBe(0);
    expect(reasons.length).toBe(4);
    expect(stats.closed.shutdown + stats.closed.server).toBe(4);
    if (graceful) {
      // Each connection is closed after flushing what the hooks of those before it sent.
      for (let i = 1; i < 4; i++) {
        let want = "";
        for (let j = 0; j < i; j++) want += `bye ${j}\n`;
        expect(cs[i]!.text()).toBe(`${want}to ${i}\n`);
      }
    }
  }
});
