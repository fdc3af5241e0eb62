/**
 * createServer({ bus }): server.broadcast and WebSocket publishes reach every node's
 * connections once. Two "nodes" in this process, each a server with its own bus connection
 * to one real redis-server; Bun's own WebSocket client as the browser.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createRedisBus, type NodeBus } from "../src/bus/index.ts";
import { createServer, type Server, type WebSocketServer } from "../src/reactor/index.ts";
import { until } from "./helpers/until.ts";
import { RedisServer } from "./helpers/redis-server.ts";

let redis: RedisServer;
const buses: NodeBus[] = [];
const servers: Server[] = [];
const sockets: { close(): void }[] = [];

function bus(id: string): NodeBus {
  const b = createRedisBus({ port: redis.port, nodeId: id, reconnectInitialMs: 20, reconnectMaxMs: 200 });
  buses.push(b);
  return b;
}

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const s of sockets) s.close();
  for (const s of servers) await s.stop({ graceful: false });
  for (const b of buses) await b.close();
  await redis.kill();
});

/** A line-echo TCP client: everything received as text. */
async function tcpClient(port: number) {
  let text = "";
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data(_s, d) { text += new TextDecoder().decode(d); }, error() {} } });
  sockets.push({ close: () => socket.end() });
  return { get text() { return text; } };
}

describe("createServer({ bus })", () => {
  test("server.broadcast on one node reaches the connections of every node, once", async () => {
    const [busA, busB] = [bus("tcp-a"), bus("tcp-b")];
    const handler = { message() {} };
    const a = await createServer({ port: 0, protocol: "lines", bus: busA, handler });
    const b = await createServer({ port: 0, protocol: "lines", bus: busB, handler });
    servers.push(a, b);
    const ca = await tcpClient(a.port);
    const cb = await tcpClient(b.port);
    await until("both buses up and both connections in", () => busA.up && busB.up && a.stats().connections === 1 && b.stats().connections === 1, 5_000);
    expect(a.broadcast("hello fleet\n")).toBe(1); // this node's count
    await until("the broadcast on node B", () => cb.text === "hello fleet\n", 5_000);
    await until("A dropped its own echo", () => busA.stats().ownDropped === 1, 5_000);
    expect(ca.text).toBe("hello fleet\n");
    expect(cb.text).toBe("hello fleet\n");
  });

  test("WebSocket publishes reach subscribers on every node; a node subscribes on the bus only to topics it has members of", async () => {
    const [busA, busB] = [bus("ws-a"), bus("ws-b")];
    const mk = (nodeBus: NodeBus) =>
      createServer({
        port: 0,
        protocol: "websocket",
        bus: nodeBus,
        handler: {
          open(conn) {
            conn.subscribe("news");
          },
          message(conn, data) {
            conn.publish("news", data); // to the others on every node
          },
        },
      }) as Promise<WebSocketServer>;
    const a = await mk(busA);
    const b = await mk(busB);
    servers.push(a, b);
    await until("buses up", () => busA.up && busB.up, 5_000);
    expect(busB.stats().channels).toBe(1); // "broadcast" only: no topic member yet
    const got: (string | number)[] = [];
    const wsB = new WebSocket(`ws://127.0.0.1:${b.port}/`);
    wsB.binaryType = "arraybuffer";
    wsB.onmessage = (e) => got.push(typeof e.data === "string" ? e.data : (e.data as ArrayBuffer).byteLength);
    sockets.push(wsB);
    await until("B's client open and subscribed on the bus", () => wsB.readyState === WebSocket.OPEN && busB.stats().channels === 2, 5_000);
    expect(a.publish("news", "from A")).toBe(0); // nobody on A
    await until("the text publish on B", () => got.includes("from A"), 5_000);
    a.publish("news", new Uint8Array(1000));
    await until("the binary publish on B", () => got.includes(1000), 5_000);
    // A client on A publishes through conn.publish: B's subscriber gets it, the sender does not.
    const sentByA: string[] = [];
    const wsA = new WebSocket(`ws://127.0.0.1:${a.port}/`);
    wsA.onmessage = (e) => sentByA.push(String(e.data));
    sockets.push(wsA);
    await until("A's client open", () => wsA.readyState === WebSocket.OPEN, 5_000);
    wsA.send("chat line");
    await until("the chat line on B", () => got.includes("chat line"), 5_000);
    expect(got.filter((x) => x === "chat line").length).toBe(1);
    expect(sentByA).toEqual([]);
    wsB.close();
    await until("B drops the topic channel once its last member left", () => busB.stats().channels === 1, 5_000);
  });

  test("the bus option is checked", async () => {
    await expect(createServer({ port: 0, handler: { message() {} }, bus: {} as never })).rejects.toMatchObject({ code: "ERR_SERVER_OPTION" });
  });
});
