import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createKvApp, ExpiryIndex, KvStore, SetCondition } from "../src/apps/index.ts";
import { int64Bytes, parseInt64, int64AsBig } from "../src/apps/int64.ts";
import { CommandTable } from "../src/apps/commands.ts";
import { respCodec } from "../src/codec/index.ts";
import { encodeCommand, FakeConn, latin1, text } from "./helpers/kv.ts";
import { concat } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";

const b = (s: string) => latin1(s);

describe("KvStore", () => {
  test("set / get / delete / has; values are kept as given", () => {
    const s = new KvStore();
    expect(s.get("k")).toBeUndefined();
    const v = b("value");
    expect(s.set("k", v)).toBe(true);
    expect(s.get("k")).toBe(v);
    expect(s.has("k")).toBe(true);
    expect(s.size).toBe(1);
    expect(s.delete("k")).toBe(true);
    expect(s.delete("k")).toBe(false);
    expect(s.size).toBe(0);
    s.close();
  });

  test("NX / XX conditions", () => {
    const s = new KvStore();
    expect(s.set("k", b("1"), SetCondition.IfPresent)).toBe(false);
    expect(s.has("k")).toBe(false);
    expect(s.set("k", b("1"), SetCondition.IfAbsent)).toBe(true);
    expect(s.set("k", b("2"), SetCondition.IfAbsent)).toBe(false);
    expect(text(s.get("k")!)).toBe("1");
    expect(s.set("k", b("3"), SetCondition.IfPresent)).toBe(true);
    expect(text(s.get("k")!)).toBe("3");
    s.close();
  });

  test("maxKeys refuses new keys but allows overwrites", () => {
    const s = new KvStore({ maxKeys: 2 });
    expect(s.set("a", b("1"))).toBe(true);
    expect(s.set("b", b("1"))).toBe(true);
    expect(s.set("c", b("1"))).toBe(false);
    expect(s.set("a", b("2"))).toBe(true);
    expect(s.size).toBe(2);
    s.delete("a");
    expect(s.set("c", b("1"))).toBe(true);
    s.close();
  });

  test("lazy expiry: a key is invisible once its deadline passes, even before the wheel runs", () => {
    let now = 1000;
    const s = new KvStore({ now: () => now, tickMs: 10 });
    s.set("k", b("v"), SetCondition.Always, 100);
    expect(s.ttlMs("k")).toBe(100);
    now = 1099;
    expect(s.get("k")).toBeDefined();
    expect(s.ttlMs("k")).toBe(1);
    now = 1100;
    // Deadline reached: gone for every reader, without the timer having fired.
    expect(s.get("k")).toBeUndefined();
    expect(s.has("k")).toBe(false);
    expect(s.ttlMs("k")).toBe(-2);
    expect(s.expiresCount).toBe(0);
    expect(s.expiredKeys).toBe(1);
    // An expired key does not count as deleted by DEL.
    s.set("j", b("v"), SetCondition.Always, 5);
    now = 1200;
    expect(s.delete("j")).toBe(false);
    s.close();
  });

  test("expire / persist / ttl / keepTtl", () => {
    let now = 0;
    const s = new KvStore({ now: () => now });
    expect(s.expire("nope", 10)).toBe(false);
    expect(s.ttlMs("nope")).toBe(-2);
    s.set("k", b("v"));
    expect(s.ttlMs("k")).toBe(-1);
    expect(s.persist("k")).toBe(false);
    expect(s.expire("k", 500)).toBe(true);
    expect(s.ttlMs("k")).toBe(500);
    expect(s.expiresCount).toBe(1);
    s.set("k", b("v2"), SetCondition.Always, 0, true);
    expect(s.ttlMs("k")).toBe(500);
    s.set("k", b("v3"));
    expect(s.ttlMs("k")).toBe(-1);
    expect(s.expiresCount).toBe(0);
    s.expire("k", 500);
    expect(s.persist("k")).toBe(true);
    expect(s.ttlMs("k")).toBe(-1);
    expect(s.expire("k", 0)).toBe(true);
    expect(s.has("k")).toBe(false);
    s.set("k", b("v"));
    expect(s.expire("k", -5)).toBe(true);
    expect(s.has("k")).toBe(false);
    s.close();
  });

  test("the wheel reaps expired keys nobody reads (fake clock, driven by reapExpired)", () => {
    let now = 0;
    const s = new KvStore({ now: () => now, tickMs: 10 });
    for (let i = 0; i < 100; i++) s.set(`k${i}`, b("v"), SetCondition.Always, 100 + i * 10);
    s.set("forever", b("v"));
    expect(s.size).toBe(101);
    now = 99;
    expect(s.reapExpired()).toBe(0);
    expect(s.size).toBe(101);
    now = 600; // deadlines 100..600 have passed: k0..k50
    const reaped = s.reapExpired();
    // never early: nothing due after `now`; at most one tick late: everything due by now - tick.
    expect(reaped).toBeGreaterThanOrEqual(50);
    expect(reaped).toBeLessThanOrEqual(51);
    now = 2000;
    s.reapExpired();
    expect(s.size).toBe(1);
    expect(s.expiresCount).toBe(0);
    expect(s.has("forever")).toBe(true);
    s.close();
  });

  test("the wheel reaps expired keys on its own timer (real clock)", async () => {
    const s = new KvStore({ tickMs: 10 });
    for (let i = 0; i < 50; i++) s.set(`k${i}`, b("v"), SetCondition.Always, 30);
    s.set("late", b("v"), SetCondition.Always, 10_000);
    await until(() => `the wheel to reap the 50 keys (${s.size} held)`, () => s.size <= 1);
    // Reaped without any read: size counts keys still held.
    expect(s.size).toBe(1);
    expect(s.expiredKeys).toBe(50);
    expect(s.has("late")).toBe(true);
    s.close();
  });

  test("ids are recycled and the wheel grows past its first capacity", () => {
    let now = 0;
    const s = new KvStore({ now: () => now, tickMs: 10 });
    const n = 5000; // > the initial 1024 ids
    for (let i = 0; i < n; i++) s.set(`k${i}`, b("v"), SetCondition.Always, 1000 + (i % 100));
    expect(s.expiresCount).toBe(n);
    for (let i = 0; i < n; i += 2) s.persist(`k${i}`);
    expect(s.expiresCount).toBe(n / 2);
    for (let i = 0; i < n; i += 2) s.expire(`k${i}`, 5000);
    expect(s.expiresCount).toBe(n);
    now = 1200;
    s.reapExpired();
    expect(s.size).toBe(n / 2);
    now = 5100;
    s.reapExpired();
    expect(s.size).toBe(0);
    s.close();
  });

  test("flush clears keys and deadlines", () => {
    let now = 0;
    const s = new KvStore({ now: () => now });
    s.set("a", b("1"), SetCondition.Always, 100);
    s.set("b", b("1"));
    s.flush();
    expect(s.size).toBe(0);
    expect(s.expiresCount).toBe(0);
    s.set("a", b("1"), SetCondition.Always, 100);
    now = 200;
    expect(s.reapExpired()).toBe(1);
    s.close();
  });

  test("property: the store agrees with a simple model under random operations and time", () => {
    type Op =
      | { op: "set"; k: number; ttl: number; keep: boolean; cond: 0 | 1 | 2 }
      | { op: "del"; k: number }
      | { op: "expire"; k: number; ttl: number }
      | { op: "persist"; k: number }
      | { op: "tick"; ms: number }
      | { op: "reap" };
    const key = fc.integer({ min: 0, max: 7 });
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant("set" as const), k: key, ttl: fc.integer({ min: 0, max: 300 }), keep: fc.boolean(), cond: fc.constantFrom(0 as const, 1 as const, 2 as const) }),
      fc.record({ op: fc.constant("del" as const), k: key }),
      fc.record({ op: fc.constant("expire" as const), k: key, ttl: fc.integer({ min: -10, max: 300 }) }),
      fc.record({ op: fc.constant("persist" as const), k: key }),
      fc.record({ op: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 200 }) }),
      fc.record({ op: fc.constant("reap" as const) }),
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        let now = 0;
        const s = new KvStore({ now: () => now, tickMs: 10 });
        const model = new Map<string, { v: number; deadline: number }>();
        const live = (k: string) => {
          const e = model.get(k);
          if (e && e.deadline <= now) model.delete(k);
          return model.get(k);
        };
        let stamp = 0;
        for (const o of ops) {
          if (o.op === "tick") now += o.ms;
          else if (o.op === "reap") s.reapExpired();
          else {
            const k = `k${o.k}`;
            const e = live(k);
            if (o.op === "set") {
              const v = ++stamp;
              const ok = s.set(k, b(String(v)), o.cond as SetCondition, o.ttl, o.keep);
              const should = o.cond === 0 || (o.cond === 1 ? !e : !!e);
              expect(ok).toBe(should);
              if (should) model.set(k, { v, deadline: o.ttl > 0 ? now + o.ttl : o.keep && e ? e.deadline : Infinity });
            } else if (o.op === "del") {
              expect(s.delete(k)).toBe(!!e);
              model.delete(k);
            } else if (o.op === "expire") {
              expect(s.expire(k, o.ttl)).toBe(!!e);
              if (e) {
                if (o.ttl <= 0) model.delete(k);
                else e.deadline = now + o.ttl;
              }
            } else if (o.op === "persist") {
              expect(s.persist(k)).toBe(!!e && e.deadline !== Infinity);
              if (e) e.deadline = Infinity;
            }
          }
          for (let i = 0; i < 8; i++) {
            const k = `k${i}`;
            const e = live(k);
            const got = s.get(k);
            expect(got === undefined ? undefined : Number(text(got))).toBe(e?.v);
            expect(s.ttlMs(k)).toBe(e === undefined ? -2 : e.deadline === Infinity ? -1 : e.deadline - now);
          }
        }
        s.close();
      }),
      { numRuns: 300 },
    );
  });
});

describe("ExpiryIndex", () => {
  test("returns -1 when maxCapacity ids are in use and reuses freed ids", () => {
    const fired: string[] = [];
    let now = 0;
    const x = new ExpiryIndex({ now: () => now, initialCapacity: 2, maxCapacity: 4, onExpire: (k) => fired.push(k) });
    const ids = ["a", "b", "c", "d"].map((k) => x.add(k, 100));
    expect(new Set(ids).size).toBe(4);
    expect(x.add("e", 100)).toBe(-1);
    x.remove(ids[1]!);
    expect(x.add("e", 50)).toBe(ids[1]!);
    now = 60;
    x.runDue();
    expect(fired).toEqual(["e"]);
    now = 100;
    x.runDue();
    expect(fired.sort()).toEqual(["a", "c", "d", "e"]);
    expect(x.size).toBe(0);
    x.close();
  });

  test("deadlines past the wheel's longest single delay are re-filed, not fired early", () => {
    const fired: string[] = [];
    let now = 0;
    const x = new ExpiryIndex({ now: () => now, tickMs: 1000, onExpire: (k) => fired.push(k) });
    const far = 2 ** 31 * 3;
    x.add("far", far);
    now = 2 ** 31 + 5000;
    x.runDue();
    now = 2 ** 32 + 5000;
    x.runDue();
    expect(fired).toEqual([]);
    now = far + 2000;
    x.runDue();
    expect(fired).toEqual(["far"]);
    x.close();
  });
});

describe("int64 (redis string2ll rules)", () => {
  test("accepts and rejects as redis does", () => {
    const ok = (s: string) => parseInt64(latin1(s));
    for (const s of ["0", "1", "-1", "123", "9223372036854775807", "-9223372036854775808", "9007199254740993"]) {
      expect(ok(s)).toBe(true);
      expect(int64AsBig()).toBe(BigInt(s));
    }
    for (const s of ["", "-", "+1", "01", "-0", " 1", "1 ", "1.5", "1e3", "9223372036854775808", "-9223372036854775809", "abc", "99999999999999999999"])
      expect(ok(s)).toBe(false);
  });

  test("property: any int64 round-trips through its decimal bytes", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => {
        expect(parseInt64(int64Bytes(v))).toBe(true);
        expect(int64AsBig()).toBe(v);
      }),
      { numRuns: 500 },
    );
  });
});

describe("CommandTable", () => {
  test("case-insensitive lookup without false positives", () => {
    const t = new CommandTable<number>().add("get", 2, 1).add("getdel", 2, 2).add("set", -3, 3);
    expect(t.lookup(latin1("GET"))?.run).toBe(1);
    expect(t.lookup(latin1("gEt"))?.run).toBe(1);
    expect(t.lookup(latin1("GETDEL"))?.run).toBe(2);
    expect(t.lookup(latin1("ge"))).toBeUndefined();
    expect(t.lookup(latin1("gett"))).toBeUndefined();
    expect(t.lookup(latin1("G\u00c5T"))).toBeUndefined();
    // "[" | 0x20 is "{": folding must be ASCII-letter only.
    expect(new CommandTable<number>().add("a{", 1, 1).lookup(latin1("A["))).toBeUndefined();
    expect(t.lookup(new Uint8Array(0))).toBeUndefined();
  });
});

describe("KV handler in-process", () => {
  test("every reply is written before message returns, in order (the reactor batches one read's writes)", () => {
    // The reactor sends what was written during a data event with one write at its end: a
    // reply written later (a microtask, a timer) would miss that batch and cost a send of its own.
    const app = createKvApp();
    const conn = new FakeConn(7);
    app.handler.open?.(conn);
    let want = "";
    for (let i = 0; i < 16; i++) {
      app.handler.message(conn, [b("SET"), b(`k${i}`), b(`v${i}`)]);
      want += "+OK\r\n";
      expect(conn.writeCalls).toBe(i + 1);
    }
    for (let i = 0; i < 16; i++) {
      app.handler.message(conn, [b("get"), b(`k${i}`)]);
      want += `$${`v${i}`.length}\r\nv${i}\r\n`;
      expect(conn.writeCalls).toBe(16 + i + 1);
    }
    app.handler.message(conn, [b("GET"), b("missing")]);
    want += "$-1\r\n";
    expect(conn.take()).toBe(want);
    app.close();
  });

  test("replies go to the connection that asked, at once", () => {
    const app = createKvApp();
    const a = new FakeConn(1);
    const c = new FakeConn(2);
    app.handler.message(a, [b("PING")]);
    app.handler.message(c, [b("PING"), b("x")]);
    expect(a.take()).toBe("+PONG\r\n");
    expect(c.take()).toBe("$1\r\nx\r\n");
    app.close();
  });

  test("values outlive the read buffer: short arguments are the codec's own copies, long ones are copied", () => {
    const app = createKvApp();
    const conn = new FakeConn(1);
    const long = "L".repeat(33) + "0123456789".repeat(10);
    const values = ["value", "x".repeat(32), long, ""];
    // One read holding every request, decoded as the reactor does; then the read buffer is reused.
    const parts = values.map((v, i) => encodeCommand(["SET", `k${i}`, v]));
    parts.push(encodeCommand(["MSET", "m1", "short", "m2", long]));
    const read = concat(parts);
    for (let pos = 0; pos < read.length; ) {
      const len = respCodec.measure(read, pos, read.length, 1 << 20);
      expect(len).toBeGreaterThan(0);
      app.handler.message(conn, respCodec.decode(read, pos, len));
      pos += len;
    }
    read.fill(0);
    values.forEach((v, i) => expect(text(app.store.get(`k${i}`)!)).toBe(v));
    expect(text(app.store.get("m1")!)).toBe("short");
    expect(text(app.store.get("m2")!)).toBe(long);
    expect(conn.take()).toBe("+OK\r\n".repeat(values.length + 1));
    app.close();
  });

  test("QUIT answers +OK, closes, and ignores the rest of the batch", async () => {
    const app = createKvApp();
    const conn = new FakeConn(3);
    app.handler.message(conn, [b("set"), b("a"), b("1")]);
    app.handler.message(conn, [b("QUIT")]);
    app.handler.message(conn, [b("set"), b("b"), b("1")]);
    await null;
    expect(conn.take()).toBe("+OK\r\n+OK\r\n");
    expect(conn.closedWith).toBe("server");
    expect(app.store.has("b")).toBe(false);
    app.close();
  });

  test("an empty request gets no reply; INFO reports clients and keyspace", async () => {
    const app = createKvApp();
    const conn = new FakeConn(4);
    app.handler.open?.(conn);
    app.handler.message(conn, []);
    await null;
    expect(conn.writeCalls).toBe(0);
    app.handler.message(conn, [b("set"), b("a"), b("1"), b("EX"), b("100")]);
    app.handler.message(conn, [b("set"), b("b"), b("1")]);
    app.handler.message(conn, [b("info")]);
    await null;
    const info = conn.take();
    expect(info).toContain("connected_clients:1\r\n");
    expect(info).toContain("db0:keys=2,expires=1,avg_ttl=0\r\n");
    expect(info).toMatch(/myriad_version:\d+\.\d+\.\d+\r\n/);
    expect(info).toMatch(/used_memory:\d+\r\n/);
    app.handler.message(conn, [b("info"), b("keyspace")]);
    await null;
    const ks = conn.take();
    expect(ks).toContain("# Keyspace");
    expect(ks).not.toContain("# Server");
    app.close();
  });

  test("connection commands clients send at start: COMMAND DOCS, HELLO, CLIENT, CONFIG GET", async () => {
    const app = createKvApp();
    const conn = new FakeConn(42);
    const call = async (...args: string[]) => {
      app.handler.message(conn, args.map(b));
      await null;
      return conn.take();
    };
    expect(await call("COMMAND", "DOCS")).toBe("*0\r\n");
    expect(await call("command")).toBe("*0\r\n");
    expect(await call("COMMAND", "COUNT")).toMatch(/^:\d+\r\n$/);
    expect(await call("HELLO", "3")).toBe("-NOPROTO unsupported protocol version: this server speaks RESP2 only (HELLO 2 [AUTH <user> <password>])\r\n");
    expect(await call("HELLO", "4")).toBe("-NOPROTO unsupported protocol version\r\n");
    expect(await call("HELLO", "x")).toBe("-ERR Protocol version is not an integer or out of range\r\n");
    const hello = await call("HELLO", "2");
    expect(hello).toStartWith("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n");
    expect(hello).toContain("$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:42\r\n");
    expect(await call("CLIENT", "ID")).toBe(":42\r\n");
    expect(await call("CLIENT", "SETINFO", "lib-name", "x")).toBe("+OK\r\n");
    expect(await call("CONFIG", "GET", "save")).toBe("*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    expect(await call("CONFIG", "GET", "appendonly")).toBe("*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    expect(await call("CONFIG", "RESETSTAT")).toBe("+OK\r\n");
    app.close();
  });

  test("maxKeys: writes that would add a key answer -OOM, overwrites succeed", async () => {
    const app = createKvApp({ maxKeys: 1 });
    const conn = new FakeConn(1);
    const call = async (...args: string[]) => {
      app.handler.message(conn, args.map(b));
      await null;
      return conn.take();
    };
    expect(await call("SET", "a", "1")).toBe("+OK\r\n");
    expect(await call("SET", "b", "1")).toBe("-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    expect(await call("INCR", "c")).toBe("-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    expect(await call("SET", "a", "2")).toBe("+OK\r\n");
    expect(await call("INCR", "a")).toBe(":3\r\n");
    expect(await call("DBSIZE")).toBe(":1\r\n");
    app.close();
  });
});

describe("packaging", () => {
  test("the example apps ship as myriad/apps, not from the library root", async () => {
    const apps = await import("myriad/apps");
    const root = await import("myriad");
    expect(typeof apps.createKvApp).toBe("function");
    expect(typeof apps.createEchoApp).toBe("function");
    expect(Object.keys(root).filter((k) => k in apps)).toEqual([]);
    expect(root.VERSION).toBe((await Bun.file(new URL("../package.json", import.meta.url)).json()).version);
  });
});
