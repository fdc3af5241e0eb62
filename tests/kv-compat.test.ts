// The KV app's replies against the real redis-server on this machine, byte for byte: the
// same commands go to both over real sockets and every reply must be identical.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createKvApp, type KvApp } from "../src/apps/index.ts";
import { createServer, type Server } from "../src/reactor/index.ts";
import { AUTH_SCRIPT, COMPAT_PASSWORD, COMPAT_SCRIPTS } from "./fixtures/kv-cases.ts";
import { encodeCommand, text, Wire } from "./helpers/kv.ts";
import { concat } from "./helpers/net.ts";
import { RedisServer } from "./helpers/redis-server.ts";

let redis: RedisServer;
let app: KvApp;
let server: Server;
let toRedis: Wire;
let toMyriad: Wire;

beforeAll(async () => {
  redis = await RedisServer.start();
  app = createKvApp();
  server = await createServer({ port: 0, hostname: "127.0.0.1", protocol: app.protocol, handler: app.handler });
  toRedis = await Wire.connect(redis.port);
  toMyriad = await Wire.connect(server.port);
});

afterAll(async () => {
  toRedis?.close();
  toMyriad?.close();
  await server?.stop({ graceful: false });
  app?.close();
  await redis?.stop();
});

describe("replies match redis-server byte for byte", () => {
  for (const script of COMPAT_SCRIPTS) {
    test(script.name, async () => {
      expect(await toRedis.call("flushall")).toBe("+OK\r\n");
      expect(await toMyriad.call("flushall")).toBe("+OK\r\n");
      const mismatches: string[] = [];
      for (const cmd of script.commands) {
        const want = await toRedis.callAll(...cmd);
        const got = await toMyriad.callAll(...cmd);
        if (got !== want) mismatches.push(`${JSON.stringify(cmd)}: redis ${JSON.stringify(want)}, myriad ${JSON.stringify(got)}`);
      }
      expect(mismatches).toEqual([]);
    });
  }

  test("pipelined: many commands in one write get the same replies in order", async () => {
    const cmds = COMPAT_SCRIPTS.find((s) => s.name === "incr / decr")!.commands;
    const batch = (w: Wire) => w.send(concat(cmds.map((c) => encodeCommand(c))));
    for (const w of [toRedis, toMyriad]) expect(await w.call("flushall")).toBe("+OK\r\n");
    batch(toRedis);
    batch(toMyriad);
    for (const cmd of cmds) {
      const want = text(await toRedis.reply());
      const got = text(await toMyriad.reply());
      expect(`${JSON.stringify(cmd)} ${got}`).toBe(`${JSON.stringify(cmd)} ${want}`);
    }
  });

  test("inline commands (as typed into telnet) answer as redis does", async () => {
    for (const line of ["PING\r\n", "set inl 'a b'\r\n", "get inl\r\n", "nosuch x y\r\n", "get\r\n"]) {
      toRedis.send(line);
      toMyriad.send(line);
      expect(`${line} ${text(await toMyriad.reply())}`).toBe(`${line} ${text(await toRedis.reply())}`);
    }
  });
});

describe("with a password (requirepass): replies match redis-server byte for byte", () => {
  test("refusals before AUTH, their order, wrong passwords, AUTH and HELLO ... AUTH", async () => {
    const locked = await RedisServer.start({ args: ["--requirepass", COMPAT_PASSWORD] });
    const lockedApp = createKvApp({ requirePass: COMPAT_PASSWORD });
    const lockedServer = await createServer({ port: 0, hostname: "127.0.0.1", protocol: lockedApp.protocol, handler: lockedApp.handler });
    try {
      const toLockedRedis = await Wire.connect(locked.port);
      const toLockedMyriad = await Wire.connect(lockedServer.port);
      const mismatches: string[] = [];
      for (const cmd of AUTH_SCRIPT) {
        const want = await toLockedRedis.call(...cmd);
        const got = await toLockedMyriad.call(...cmd);
        if (got !== want) mismatches.push(`${JSON.stringify(cmd)}: redis ${JSON.stringify(want)}, myriad ${JSON.stringify(got)}`);
      }
      expect(mismatches).toEqual([]);
      // The script's wrong passwords, counted as redis 7.2 counts them (INFO acl_access_denied_auth).
      expect(lockedApp.authFailures).toBe(8);
      toLockedRedis.close();
      toLockedMyriad.close();
    } finally {
      await lockedServer.stop({ graceful: false });
      lockedApp.close();
      await locked.stop();
    }
  });
});

