/**
 * Placement, differentially against nutcracker 0.5.0: one nutcracker runs a pool for every
 * hash with ketama and with modula (weights, named and unnamed servers, listed out of name
 * order, hash_tag "{}"), over three real redis-servers. Keys (ASCII, binary, hash-tagged) are
 * written through nutcracker and read back from each redis-server directly; myriad's
 * placement, from the same configuration file parsed by myriad, must put every key on the
 * server where nutcracker put it; and myriad's proxy, running the same file, must too.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createRespClient, type RespClient } from "../src/pool/index.ts";
import { createProxy, parseProxyConfig, Placement, HASH_NAMES } from "../src/proxy/index.ts";
import { Nutcracker } from "./helpers/nutcracker.ts";
import { freePorts } from "./helpers/ports.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { pseudoRandomBytes } from "./helpers/net.ts";

const redis: RedisServer[] = [];
let nutcracker: Nutcracker | undefined;
const clients: RespClient[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await nutcracker?.stop();
  await Promise.all(redis.map((r) => r.stop()));
});

/** Base keys: plain, tagged ({} rule corners), and binary (bytes >= 0x80 test signed-char hashing). */
function baseKeys(): Uint8Array[] {
  const keys: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < 60; i++) keys.push(enc.encode(`user:${i}:profile`));
  for (const k of ["{user1}:a", "{user1}:b", "x{}y", "{a", "a}b{c}", "{{a}}", "t{tag}", "{}", "{ab}{cd}"]) keys.push(enc.encode(k));
  for (let i = 0; i < 40; i++) keys.push(pseudoRandomBytes(1 + (i % 23), 1000 + i));
  return keys;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("placement matches nutcracker 0.5.0", () => {
  const pools: Array<{ name: string; port: number }> = [];
  let yaml = "";

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) redis.push(await RedisServer.start());
    const [a, b, c] = redis.map((r) => r.port);
    // Distinct: nutcracker binds every pool's port at once.
    const free = freePorts(HASH_NAMES.length * 2);
    for (const hash of HASH_NAMES) {
      for (const dist of ["ketama", "modula"]) {
        const name = `${hash}_${dist}`;
        const port = free.pop()!;
        pools.push({ name, port });
        // Listed out of name order, mixed named/unnamed, one weight 2: order, names and weights all count.
        yaml += `${name}:\n  listen: 127.0.0.1:${port}\n  hash: ${hash}\n  hash_tag: "{}"\n  distribution: ${dist}\n  redis: true\n  servers:\n   - 127.0.0.1:${c}:2 zulu\n   - 127.0.0.1:${a}:1\n   - 127.0.0.1:${b}:1 alpha\n\n`;
      }
    }
    nutcracker = await Nutcracker.start(yaml, pools.map((p) => p.port));
  }, 30_000);

  /** Writes every key through the pools at `ports` (prefixed with the pool's index, so pools never share a key). */
  async function writeThrough(ports: number[], keys: Uint8Array[]): Promise<Map<string, { pool: number; key: Uint8Array }>> {
    const written = new Map<string, { pool: number; key: Uint8Array }>();
    await Promise.all(
      ports.map(async (port, pi) => {
        const client = createRespClient({ port, binary: true, pool: { max: 1 } });
        clients.push(client);
        const sends: Promise<unknown>[] = [];
        for (const base of keys) {
          const key = Buffer.concat([Buffer.from(`${pi}|`), base]);
          written.set(hex(key), { pool: pi, key });
          sends.push(client.send(["SET", key, String(pi)]));
        }
        await Promise.all(sends);
      }),
    );
    return written;
  }

  /** Which redis-server holds each key (read from each server directly), then empties them. */
  async function holders(): Promise<Map<string, number>> {
    const holder = new Map<string, number>();
    for (const r of redis) {
      const direct = createRespClient({ port: r.port, binary: true, pool: { max: 1 } });
      clients.push(direct);
      const found = (await direct.send(["KEYS", "*"])) as Uint8Array[];
      for (const k of found) holder.set(hex(k), r.port);
      await direct.send(["FLUSHALL"]);
    }
    return holder;
  }

  test("every hash, ketama and modula: each key on the server nutcracker chose, by placement and through the proxy", async () => {
    const config = parseProxyConfig(yaml, "placement.yml");
    const keys = baseKeys();
    const written = await writeThrough(pools.map((p) => p.port), keys);
    const nutcrackerHolder = await holders();
    expect(nutcrackerHolder.size).toBe(written.size);

    const mismatches: string[] = [];
    for (const [id, { pool, key }] of written) {
      const cfg = config.pools[pool]!;
      const placement = new Placement(cfg);
      const ours = cfg.servers[placement.serverOf(key, 0, key.length)]!.port;
      const theirs = nutcrackerHolder.get(id);
      if (ours !== theirs) mismatches.push(`${cfg.name} key ${id}: nutcracker ${theirs}, myriad ${ours}`);
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    // Every pool spread its keys over all three servers (else the comparison proves little),
    // but crc32 with ketama: libmemcached's crc32 is 15 bits wide, so every hash falls below
    // the continuum's first points and nutcracker sends every key to one server.
    for (let pi = 0; pi < pools.length; pi++) {
      if (pools[pi]!.name === "crc32_ketama") continue;
      const used = new Set<number>();
      for (const [id, w] of written) if (w.pool === pi) used.add(nutcrackerHolder.get(id)!);
      expect(`${pools[pi]!.name}: ${used.size}`).toBe(`${pools[pi]!.name}: 3`);
    }

    // The same file run by myriad's proxy (on ports of its own): the same keys, the same servers.
    const proxy = await createProxy({ pools: config.pools.map((p) => ({ ...p, listen: { host: "127.0.0.1", port: 0 } })) });
    try {
      const throughMyriad = await writeThrough(proxy.pools.map((p) => p.port), keys);
      expect(throughMyriad.size).toBe(written.size);
      const myriadHolder = await holders();
      const differ: string[] = [];
      for (const [id, port] of nutcrackerHolder) if (myriadHolder.get(id) !== port) differ.push(`key ${id}: nutcracker ${port}, myriad ${myriadHolder.get(id)}`);
      expect(differ.slice(0, 10)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});
