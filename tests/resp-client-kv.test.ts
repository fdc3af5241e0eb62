/**
 * createRespClient against myriad's own KV server (createServer + createKvApp) over real
 * loopback sockets: the pooled, pipelined client and the reactor/RESP server prove each other.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createKvApp, type KvApp } from "../src/apps/index.ts";
import { RespError } from "../src/codec/index.ts";
import { createRespClient } from "../src/pool/index.ts";
import { createServer, type Server } from "../src/reactor/index.ts";

let app: KvApp;
let server: Server;

beforeAll(async () => {
  app = createKvApp();
  server = await createServer({ port: 0, hostname: "127.0.0.1", protocol: app.protocol, handler: app.handler });
});

afterAll(async () => {
  await server?.stop({ graceful: false });
  app?.close();
});

describe("RESP client against myriad's KV server", () => {
  test("replies of every type, and an error reply rejects without poisoning the pipeline", async () => {
    const client = createRespClient({ host: "127.0.0.1", port: server.port, pool: { max: 2 } });
    try {
      expect(await client.send(["PING"])).toBe("PONG");
      expect(await client.send(["SET", "kv:k", "héllo"])).toBe("OK");
      expect(await client.send(["GET", "kv:k"])).toBe("héllo");
      expect(await client.send(["GET", "kv:missing"])).toBeNull();
      expect(await client.send(["INCRBY", "kv:n", 41])).toBe(41);
      expect(await client.send(["INCR", "kv:n"])).toBe(42);
      expect(await client.send(["MSET", "kv:a", "1", "kv:b", "2"])).toBe("OK");
      expect(await client.send(["MGET", "kv:a", "kv:b", "kv:none"])).toEqual(["1", "2", null]);
      const expiredAt = performance.now();
      expect(await client.send(["EXPIRE", "kv:a", 100])).toBe(1);
      const ttl = (await client.send(["TTL", "kv:a"])) as number;
      // TTL rounds the ms left to seconds: 100 unless the machine held the two round trips up,
      // and then no less than the time they took allows.
      expect(ttl).toBeLessThanOrEqual(100);
      expect(ttl).toBeGreaterThanOrEqual(Math.floor((100_000 - (performance.now() - expiredAt) + 500) / 1000));
      const err = await client.send(["INCR", "kv:k"]).catch((e) => e);
      expect(err).toBeInstanceOf(RespError);
      expect(err.message).toMatch(/not an integer/);
      const unknown = await client.send(["NOSUCHCOMMAND", "x"]).catch((e) => e);
      expect(unknown).toBeInstanceOf(RespError);
      expect(unknown.message).toMatch(/unknown command 'NOSUCHCOMMAND'/);
      expect(await client.send(["GET", "kv:n"])).toBe("42");
    } finally {
      await client.close();
    }
  });

  test("5,000 concurrent tasks over max 4 connections all get their own values back", async () => {
    const client = createRespClient({ port: server.port, pool: { max: 4 } });
    const acceptedBefore = server.stats().accepted;
    try {
      const tasks = 5_000;
      const results = await Promise.all(
        Array.from({ length: tasks }, async (_, i) => {
          const key = `kv:task:${i}`;
          const value = `v${i}-${"x".repeat(i % 97)}`;
          expect(await client.send(["SET", key, value])).toBe("OK");
          return (await client.send(["GET", key])) === value;
        }),
      );
      expect(results.filter(Boolean).length).toBe(tasks);
      expect(await client.send(["DBSIZE"])).toBeGreaterThanOrEqual(tasks);
      // The pool held the load on at most 4 upstream connections.
      expect(server.stats().accepted - acceptedBefore).toBeLessThanOrEqual(4);
    } finally {
      await client.close();
    }
  });

  test("binary values round-trip byte for byte", async () => {
    const client = createRespClient({ port: server.port, binary: true, pool: { max: 1 } });
    try {
      const bytes = new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff);
      expect(await client.send(["SET", "kv:bin", bytes])).toBe("OK");
      const got = (await client.send(["GET", "kv:bin"])) as Uint8Array;
      expect(got).toBeInstanceOf(Uint8Array);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(bytes))).toBe(0);
    } finally {
      await client.close();
    }
  });
});
