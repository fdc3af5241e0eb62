/**
 * Fan-out batching (issue 13): what a connection is sent during one event-loop turn (several
 * broadcasts, broadcasts and direct writes) leaves in one send, in order. "One send" is read
 * off the kernel: the server socket's data_segs_out (ss -ti) grows by one for a turn's
 * 3,200 bytes, where a send per message would make up to 100 segments.
 */
import { expect, test } from "bun:test";
import { createServer, type Server } from "../src/reactor/index.ts";
import { trackPeers, type TestClient } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";

const peers = trackPeers();
const dec = new TextDecoder();

/** TCP segments with data the server has sent on its connection to `client` (ss, iproute2). */
function dataSegsOut(server: Server, client: TestClient): number {
  const ss = Bun.spawnSync(["ss", "-tinH", "state", "established", `( sport = :${server.port} and dport = :${client.socket.localPort} )`]);
  if (ss.exitCode !== 0) throw new Error(`ss failed (install iproute2): ${ss.stderr.toString()}`);
  const m = /data_segs_out:(\d+)/.exec(ss.stdout.toString());
  return m === null ? 0 : Number(m[1]);
}

/** A 32-byte message: "msg <i>" padded with dots, ending in "\n". */
function msg(i: number): string {
  return `msg ${i}`.padEnd(31, ".") + "\n";
}

async function lineServer(message: (server: Server, id: number, line: string) => void): Promise<{ server: Server; ids: number[] }> {
  const ids: number[] = [];
  let self: Server | null = null;
  const server = await createServer({
    protocol: "lines",
    handler: {
      open: (conn) => void ids.push(conn.id),
      message: (conn, line: Uint8Array) => message(self!, conn.id, dec.decode(line)),
    },
  });
  self = server;
  peers.servers.push(server);
  return { server, ids };
}

/** n clients, connected in order (so the first holds slot 0), each seen by the server. */
const clients = (server: Server, ids: number[], n: number): Promise<TestClient[]> => peers.clientsInOrder(server.port, n, () => ids.length);

test("100 broadcasts in one turn reach each connection in one send, in order", async () => {
  const { server, ids } = await lineServer(() => {});
  const cs = await clients(server, ids, 3);
  const before = cs.map((c) => dataSegsOut(server, c));
  let want = "";
  for (let i = 0; i < 100; i++) {
    expect(server.broadcast(msg(i))).toBe(3);
    want += msg(i);
  }
  expect(want.length).toBe(3200);
  for (const c of cs) await c.waitBytes(3200);
  cs.forEach((c, i) => {
    expect(c.text()).toBe(want);
    expect(dataSegsOut(server, c) - before[i]!).toBe(1);
  });
  expect(server.stats().framesOut).toBe(300);
});

test("broadcasts and direct writes in one turn keep their order and leave in one send", async () => {
  const { server, ids } = await lineServer((srv, id, line) => {
    if (line !== "go") return;
    // Inside a data event: writes gathered before a broadcast, between broadcasts and after.
    srv.write(id, "a1\n");
    srv.broadcast("B1\n");
    srv.write(id, "a2\n");
    srv.broadcast("B2\n");
    srv.write(id, "a3\n");
  });
  const [a, c] = await clients(server, ids, 2);
  const segsA = dataSegsOut(server, a!);
  const segsC = dataSegsOut(server, c!);
  await a!.send("go\n");
  await a!.waitBytes(15);
  await c!.waitBytes(6);
  expect(a!.text()).toBe("a1\nB1\na2\nB2\na3\n");
  expect(c!.text()).toBe("B1\nB2\n");
  expect(dataSegsOut(server, a!) - segsA).toBe(1);
  expect(dataSegsOut(server, c!) - segsC).toBe(1);

  // Outside any event (a timer, another server's callback): the same order, one send.
  server.broadcast("x\n");
  expect(server.write(ids[1]!, "y\n")).toBe(true);
  server.broadcast("z\n");
  await c!.waitBytes(12);
  expect(c!.text()).toBe("B1\nB2\nx\ny\nz\n");
  expect(dataSegsOut(server, c!) - segsC).toBe(2);
});

test("a connection closed in the turn gets the broadcasts made before its close, then its FIN, and none after", async () => {
  const { server, ids } = await lineServer((srv, _id, line) => {
    if (line !== "go") return;
    expect(srv.broadcast("before\n")).toBe(3);
    srv.close(ids[2]!);
    expect(srv.broadcast("after\n")).toBe(2);
  });
  const [a, b, closing] = await clients(server, ids, 3);
  await a!.send("go\n");
  await closing!.waitClosed();
  expect(closing!.text()).toBe("before\n");
  for (const c of [a!, b!]) {
    await c.waitBytes(13);
    expect(c.text()).toBe("before\nafter\n");
  }
});
