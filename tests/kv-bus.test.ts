/**
 * The KV app's PUBLISH / SUBSCRIBE across nodes through the node bus: two KV servers (two
 * "nodes") in this process, each with its own bus connection to one real redis-server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createKvApp } from "../src/apps/index.ts";
import { createRedisBus, type NodeBus } from "../src/bus/index.ts";
import { createServer, type Server } from "../src/reactor/index.ts";
import { until } from "./helpers/until.ts";
import { RedisServer } from "./helpers/redis-server.ts";

let redis: RedisServer;
const nodes: { server: Server; bus: NodeBus; close(): void }[] = [];

async function node(id: string) {
  const bus = createRedisBus({ port: redis.port, nodeId: id, reconnectInitialMs: 20, reconnectMaxMs: 200 });
  const app = createKvApp({ bus });
  const server = await createServer({ port: 0, hostname: "127.0.0.1", protocol: app.protocol, handler: app.handler });
  const n = { server, bus, close: () => app.close() };
  nodes.push(n);
  return n;
}

/** A RESP client over a raw socket: what it received as text, and a send. */
async function client(port: number) {
  let text = "";
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        text += new TextDecoder().decode(d);
      },
      error() {},
    },
  });
  return {
    send(...words: string[]) {
      socket.write(`*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join("")}`);
    },
    get text() {
      return text;
    },
    close() {
      socket.end();
    },
  };
}

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const n of nodes) {
    await n.server.stop({ graceful: false });
    await n.bus.close();
    n.close();
  }
  await redis.kill();
});

describe("KV pub/sub over the node bus", () => {
  test("a subscriber on node B receives what is published on node A, once; PUBLISH counts this node's receivers", async () => {
    const a = await node("kv-a");
    const b = await node("kv-b");
    const subA = await client(a.server.port);
    const subB = await client(b.server.port);
    subA.send("SUBSCRIBE", "chat");
    subB.send("SUBSCRIBE", "chat");
    await until("both subscribed", () => subA.text.includes("subscribe") && subB.text.includes("subscribe"), 5_000);
    await until("both buses up with the channel", () => a.bus.up && b.bus.up && b.bus.stats().channels === 1, 5_000);
    const pub = await client(a.server.port);
    pub.send("PUBLISH", "chat", "hello fleet");
    await until("PUBLISH's reply (one receiver on this node)", () => pub.text === ":1\r\n", 5_000);
    const message = "*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$11\r\nhello fleet\r\n";
    await until("the message on node B", () => subB.text.includes(message), 5_000);
    expect(subA.text.split(message).length - 1).toBe(1);
    // Redis echoes A's own publish back to A: dropped, so A's subscriber got it once.
    await until("A dropped its own echo", () => a.bus.stats().ownDropped === 1, 5_000);
    expect(subA.text.split(message).length - 1).toBe(1);
    expect(subB.text.split(message).length - 1).toBe(1);
    for (const c of [subA, subB, pub]) c.close();
  });

  test("a node subscribes on the bus only while one of its connections does", async () => {
    const c = await node("kv-c");
    await until("bus up", () => c.bus.up, 5_000);
    const sub = await client(c.server.port);
    sub.send("SUBSCRIBE", "lazy");
    await until("the bus channel subscribed", () => c.bus.stats().channels === 1, 5_000);
    sub.send("UNSUBSCRIBE", "lazy");
    await until("the bus channel dropped", () => c.bus.stats().channels === 0, 5_000);
    sub.close();
  });

  test("PUBLISH while the bus is down answers an error and delivers nothing", async () => {
    const d = await node("kv-d");
    await until("bus up", () => d.bus.up, 5_000);
    const sub = await client(d.server.port);
    sub.send("SUBSCRIBE", "down");
    await until("subscribed", () => sub.text.includes("subscribe"), 5_000);
    const port = redis.port;
    await redis.kill();
    await until("the bus down", () => !d.bus.up, 5_000);
    const pub = await client(d.server.port);
    pub.send("PUBLISH", "down", "x");
    await until("PUBLISH refused", () => pub.text.startsWith("-BUSDOWN"), 5_000);
    expect(sub.text).not.toContain("message");
    redis = await RedisServer.start({ port });
    await until("the bus back", () => d.bus.up, 10_000);
    pub.send("PUBLISH", "down", "y");
    await until("delivery resumed", () => sub.text.includes("$1\r\ny\r\n"), 5_000);
    sub.close();
    pub.close();
  });
});
