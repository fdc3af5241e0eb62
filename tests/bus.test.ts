import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BusError, createRedisBus, parseBusUrl, type NodeBus } from "../src/bus/index.ts";
import { MyriadError } from "../src/errors.ts";
import { until } from "./helpers/until.ts";
import { rawCommand, RedisServer } from "./helpers/redis-server.ts";

let redis: RedisServer;
const buses: NodeBus[] = [];
const dec = new TextDecoder();

function bus(nodeId: string): NodeBus {
  const b = createRedisBus({ port: redis.port, nodeId, reconnectInitialMs: 20, reconnectMaxMs: 200, publishTimeoutMs: 1_000 });
  buses.push(b);
  return b;
}

/** Redis's own count of subscribers of a channel (PUBSUB NUMSUB). */
async function numsub(channel: string): Promise<number> {
  const reply = await rawCommand(redis.port, `PUBSUB NUMSUB ${channel}`);
  return Number(reply.trim().split("\r\n").at(-1)!.replace(":", ""));
}

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const b of buses) await b.close();
  await redis.kill();
});

describe("node bus over Redis pub/sub", () => {
  test("a publish on one node reaches the other nodes once and is not echoed to its own", async () => {
    const a = bus("node-a");
    const b = bus("node-b");
    const c = bus("node-c");
    const got = { a: [] as string[], b: [] as string[], c: [] as string[] };
    a.subscribe("room", (p) => got.a.push(dec.decode(p)));
    b.subscribe("room", (p) => got.b.push(dec.decode(p)));
    c.subscribe("room", (p) => got.c.push(dec.decode(p)));
    await until("three buses up", () => a.up && b.up && c.up, 5_000);
    for (let i = 0; i < 50; i++) await a.publish("room", `m${i}`);
    await until("50 messages at b and c", () => got.b.length === 50 && got.c.length === 50, 5_000);
    expect(got.b).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect(got.c).toEqual(got.b);
    // Redis delivered a's own messages back to a (it is subscribed): dropped, counted.
    await until("a's 50 echoes dropped", () => a.stats().ownDropped === 50, 5_000);
    expect(got.a).toEqual([]);
    expect(a.stats().published).toBe(50);
    expect(b.stats().received).toBe(50);
  });

  test("channels are subscribed while a listener needs them, and only then", async () => {
    const n = bus("node-lazy");
    await until("bus up", () => n.up, 5_000);
    expect(await numsub("myriad:lazy")).toBe(0);
    const off1 = n.subscribe("lazy", () => {});
    const off2 = n.subscribe("lazy", () => {});
    await until("one channel", () => n.stats().channels === 1, 1_000);
    expect(await pollNumsub("myriad:lazy", 1)).toBe(1);
    off1();
    expect(await numsub("myriad:lazy")).toBe(1);
    off2();
    expect(await pollNumsub("myriad:lazy", 0)).toBe(0);
    expect(n.stats().channels).toBe(0);
  });

  test("the bus going down and coming back: publishes fail over the window, nodes resubscribe, delivery resumes", async () => {
    const a = bus("node-down-a");
    const b = bus("node-down-b");
    const got: string[] = [];
    b.subscribe("fail", (p) => got.push(dec.decode(p)));
    await until("buses up", () => a.up && b.up, 5_000);
    await a.publish("fail", "before");
    await until("first message", () => got.length === 1, 5_000);
    const port = redis.port;
    await redis.kill();
    await until("b sees the bus down", () => !b.up, 5_000);
    const err = await a.publish("fail", "lost").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe("ERR_BUS_DOWN");
    expect(a.stats().publishErrors).toBeGreaterThanOrEqual(1);
    redis = await RedisServer.start({ port });
    await until("b resubscribed after the restart", () => b.up, 10_000);
    expect(await numsub("myriad:fail")).toBe(1);
    // A failed publish took a down: it is up again only once its publisher answers too, so
    // the first publish after that goes through, no retry (what kv's -BUSDOWN gate relies on).
    await until("a up again (subscriber and publisher)", () => a.up, 10_000);
    expect(await a.publish("fail", "after")).toBe(1);
    await until("the message after the restart", () => got.includes("after"), 5_000);
    expect(got[0]).toBe("before");
    expect(got).not.toContain("lost");
    expect(b.stats().connects).toBeGreaterThanOrEqual(2);
  });

  test("bad options and a closed bus are MyriadErrors with codes", async () => {
    expect(() => parseBusUrl("http://x:1")).toThrow(BusError);
    expect(() => parseBusUrl("not a url")).toThrow(/redis:\/\/host:port/);
    expect(parseBusUrl("redis://:s3cret@10.0.0.5:6390")).toEqual({ host: "10.0.0.5", port: 6390, password: "s3cret" });
    expect(() => createRedisBus({ port: 70000 })).toThrow(MyriadError);
    const b = bus("node-closed");
    await b.close();
    const err = await b.publish("x", "y").catch((e: unknown) => e);
    expect((err as BusError).code).toBe("ERR_BUS_CLOSED");
  });
});

async function pollNumsub(channel: string, want: number): Promise<number> {
  let last = -1;
  await until(() => `PUBSUB NUMSUB ${channel} = ${want} (last: ${last})`, async () => (last = await numsub(channel)) === want, 5_000);
  return last;
}
