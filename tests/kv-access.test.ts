// Who may use the KV app, and who it says is connected: the password (AUTH, HELLO ... AUTH,
// wrong ones counted), protected mode (clients from other than loopback refused while there
// is no password), CLIENT INFO / LIST with each client's real address, and listeners whose
// connection ids overlap. In-process through the handler, then end to end over a veth pair
// between two network namespaces this file makes: `bun run serve` in one, redis-cli and a
// bun client in the other, so the clients really come from another address than loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createKvApp } from "../src/apps/index.ts";
import { FlagError, serveCommand } from "../src/config/index.ts";
import type { Handler } from "../src/reactor/index.ts";
import { FakeConn, latin1 } from "./helpers/kv.ts";
import { CLIENT_ADDRESS, SERVER_ADDRESS, makeNamespacePair, type NamespacePair } from "./helpers/netns-pair.ts";
import { killAllServes, startServe, stopServe } from "./helpers/serve-process.ts";
import { until } from "./helpers/until.ts";

const PASSWORD = "correct horse";
const NOAUTH = "-NOAUTH Authentication required.\r\n";
const WRONGPASS = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

/** Sends one request through `handler` as `conn` and returns what was written back. */
function call(handler: Handler<Uint8Array[]>, conn: FakeConn, ...args: string[]): string {
  handler.message(conn, args.map(latin1));
  return conn.take();
}

/** CLIENT LIST's lines as records of their fields, in the order printed. */
function clientLines(bulk: string): Map<string, string>[] {
  const body = bulk.slice(bulk.indexOf("\r\n") + 2, -2);
  return body
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => new Map(l.split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as [string, string])));
}

describe("KV access in-process", () => {
  test("with a password: only AUTH, HELLO and QUIT before AUTH; wrong passwords answer WRONGPASS and are counted", () => {
    const app = createKvApp({ requirePass: PASSWORD });
    const c = new FakeConn(1);
    app.handler.open!(c);
    expect(call(app.handler, c, "GET", "k")).toBe(NOAUTH);
    expect(call(app.handler, c, "SUBSCRIBE", "ch")).toBe(NOAUTH);
    // Unknown commands and wrong arity are answered first, as redis does.
    expect(call(app.handler, c, "NOSUCH")).toStartWith("-ERR unknown command 'NOSUCH'");
    expect(call(app.handler, c, "GET")).toBe("-ERR wrong number of arguments for 'get' command\r\n");
    expect(call(app.handler, c, "AUTH", "nope")).toBe(WRONGPASS);
    expect(call(app.handler, c, "AUTH", "default", "nope")).toBe(WRONGPASS);
    expect(call(app.handler, c, "AUTH", "admin", PASSWORD)).toBe(WRONGPASS);
    expect(call(app.handler, c, "HELLO", "2", "AUTH", "default", "nope")).toBe(WRONGPASS);
    expect(call(app.handler, c, "GET", "k")).toBe(NOAUTH);
    expect(app.authFailures).toBe(4);
    expect(call(app.handler, c, "AUTH", PASSWORD)).toBe("+OK\r\n");
    expect(call(app.handler, c, "GET", "k")).toBe("$-1\r\n");
    // A wrong password later does not undo the authentication (as in redis), but is counted.
    expect(call(app.handler, c, "AUTH", "nope")).toBe(WRONGPASS);
    expect(call(app.handler, c, "SET", "k", "v")).toBe("+OK\r\n");
    expect(call(app.handler, c, "INFO", "stats")).toContain("acl_access_denied_auth:5\r\n");

    const d = new FakeConn(2);
    app.handler.open!(d);
    expect(call(app.handler, d, "AUTH", "default", PASSWORD)).toBe("+OK\r\n");
    expect(call(app.handler, d, "GET", "k")).toBe("$1\r\nv\r\n");
    const e = new FakeConn(3);
    app.handler.open!(e);
    expect(call(app.handler, e, "QUIT")).toBe("+OK\r\n");
    expect(e.closedWith).toBe("server");
    app.close();
  });

  test("HELLO: 2 with AUTH and SETNAME authenticates and names; 3 is refused, with or without AUTH; a name is set only once authenticated", () => {
    const app = createKvApp({ requirePass: PASSWORD });
    const c = new FakeConn(7);
    app.handler.open!(c);
    expect(call(app.handler, c, "HELLO")).toStartWith("-NOAUTH HELLO must be called with the client already authenticated");
    expect(call(app.handler, c, "HELLO", "2", "SETNAME", "early")).toStartWith("-NOAUTH HELLO must be called");
    const refused = "-NOPROTO unsupported protocol version: this server speaks RESP2 only (HELLO 2 [AUTH <user> <password>])\r\n";
    expect(call(app.handler, c, "HELLO", "3", "AUTH", "default", PASSWORD)).toBe(refused);
    expect(call(app.handler, c, "GET", "k")).toBe(NOAUTH);
    expect(app.authFailures).toBe(0);
    const hello = call(app.handler, c, "HELLO", "2", "AUTH", "default", PASSWORD, "SETNAME", "worker-1");
    expect(hello).toStartWith("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n");
    expect(hello).toContain("$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:7\r\n");
    expect(call(app.handler, c, "CLIENT", "GETNAME")).toBe("$8\r\nworker-1\r\n");
    expect(call(app.handler, c, "GET", "k")).toBe("$-1\r\n");
    expect(call(app.handler, c, "HELLO", "3")).toBe(refused);
    app.close();
  });

  test("without a password: AUTH <password> says none is set; the default user takes any password; others are wrong", () => {
    const app = createKvApp();
    const c = new FakeConn(1);
    expect(call(app.handler, c, "AUTH", "x")).toBe(
      "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
    );
    expect(call(app.handler, c, "AUTH", "default", "x")).toBe("+OK\r\n");
    expect(call(app.handler, c, "AUTH", "nobody", "x")).toBe(WRONGPASS);
    expect(app.authFailures).toBe(1);
    expect(() => createKvApp({ requirePass: "" })).toThrow("requirePass must be a non-empty string");
    app.close();
  });

  test("protected mode: with no password, a client from other than loopback gets -DENIED saying how to fix it, is closed and counted", () => {
    const app = createKvApp();
    const remote = new FakeConn(1, "198.51.100.7");
    app.handler.open!(remote);
    const denied = remote.take();
    expect(denied).toStartWith("-DENIED ");
    expect(denied).toContain("--requirepass <password>");
    expect(denied).toContain("--protected-mode no");
    expect(denied).toEndWith("\r\n");
    expect(remote.closedWith).toBe("server");
    // What it sent before the close is not run.
    app.handler.message(remote, [latin1("SET"), latin1("k"), latin1("v")]);
    expect(remote.take()).toBe("");
    expect(app.store.has("k")).toBe(false);
    expect(app.deniedConnections).toBe(1);
    for (const [id, local] of [
      [2, "127.0.0.1"],
      [3, "127.8.9.10"],
      [4, "::1"],
      [5, "::ffff:127.0.0.1"],
      [6, ""],
    ] as const) {
      const c = new FakeConn(id, local);
      app.handler.open!(c);
      expect(`${local}: ${call(app.handler, c, "PING")}`).toBe(`${local}: +PONG\r\n`);
    }
    expect(call(app.handler, new FakeConn(2), "INFO", "stats")).toContain("rejected_connections:1\r\n");
    app.close();

    // Off, or with a password: remote clients are served (and must AUTH when there is one).
    const open = createKvApp({ protectedMode: false });
    const r1 = new FakeConn(1, "198.51.100.7");
    open.handler.open!(r1);
    expect(call(open.handler, r1, "PING")).toBe("+PONG\r\n");
    open.close();
    const locked = createKvApp({ requirePass: PASSWORD });
    const r2 = new FakeConn(1, "198.51.100.7");
    locked.handler.open!(r2);
    expect(call(locked.handler, r2, "PING")).toBe(NOAUTH);
    expect(locked.deniedConnections).toBe(0);
    locked.close();
  });

  test("CLIENT INFO / LIST / ID / SETNAME / GETNAME: redis's fields in redis's order, with each client's addresses", () => {
    const app = createKvApp();
    const a = new FakeConn(1, "127.0.0.1", 40001);
    const b = new FakeConn(2, "::1", 40002);
    app.handler.open!(a);
    app.handler.open!(b);
    expect(call(app.handler, a, "CLIENT", "SETNAME", "has space")).toBe("-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    expect(call(app.handler, a, "CLIENT", "SETNAME", "alpha")).toBe("+OK\r\n");
    expect(call(app.handler, a, "CLIENT", "GETNAME")).toBe("$5\r\nalpha\r\n");
    expect(call(app.handler, b, "CLIENT", "ID")).toBe(":2\r\n");
    call(app.handler, b, "SUBSCRIBE", "news");
    const info = call(app.handler, a, "CLIENT", "INFO");
    expect(info).toMatch(/^\$\d+\r\nid=1 addr=127\.0\.0\.1:40001 laddr=127\.0\.0\.1:6380 name=alpha age=\d+ idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=client\|info user=default redir=-1 resp=2\n\r\n$/);
    const lines = clientLines(call(app.handler, a, "CLIENT", "LIST"));
    expect(lines.map((l) => [...l.keys()])).toEqual(
      Array(2).fill(["id", "addr", "laddr", "name", "age", "idle", "flags", "db", "sub", "psub", "ssub", "multi", "cmd", "user", "redir", "resp"]),
    );
    expect(lines.map((l) => [l.get("id"), l.get("addr"), l.get("name"), l.get("flags"), l.get("sub"), l.get("cmd")])).toEqual([
      ["1", "127.0.0.1:40001", "alpha", "N", "0", "client|list"],
      ["2", "[::1]:40002", "", "P", "1", "subscribe"],
    ]);
    expect(clientLines(call(app.handler, a, "CLIENT", "LIST", "TYPE", "pubsub")).map((l) => l.get("id"))).toEqual(["2"]);
    expect(clientLines(call(app.handler, a, "CLIENT", "LIST", "ID", "1", "99")).map((l) => l.get("id"))).toEqual(["1"]);
    expect(call(app.handler, a, "CLIENT", "LIST", "TYPE", "bogus")).toBe("-ERR Unknown client type 'bogus'\r\n");
    expect(call(app.handler, a, "CLIENT", "LIST", "ID", "x")).toBe("-ERR Invalid client ID\r\n");
    expect(call(app.handler, a, "CLIENT", "LIST", "junk")).toBe("-ERR syntax error\r\n");
    app.handler.close!(b, "peer");
    expect(clientLines(call(app.handler, a, "CLIENT", "LIST")).map((l) => l.get("id"))).toEqual(["1"]);
    app.close();
  });

  test("age and idle count whole seconds: a client that stays silent gets idle while another is served", async () => {
    const app = createKvApp();
    const quiet = new FakeConn(1);
    const busy = new FakeConn(2);
    app.handler.open!(quiet);
    app.handler.open!(busy);
    call(app.handler, quiet, "PING");
    const line = await until(
      "the quiet client's idle to reach 1 s",
      () => {
        const l = clientLines(call(app.handler, busy, "CLIENT", "LIST")).find((x) => x.get("id") === "1")!;
        return Number(l.get("idle")) >= 1 ? l : undefined;
      },
      10_000,
    );
    expect(Number(line.get("age"))).toBeGreaterThanOrEqual(1);
    const self = clientLines(call(app.handler, busy, "CLIENT", "INFO"))[0]!;
    expect(self.get("idle")).toBe("0");
    app.close();
  });

  test("listeners: connections of two servers with the same id stay apart (auth, names, channels, CLIENT ID)", () => {
    const app = createKvApp({ requirePass: PASSWORD });
    const second = app.handlerForListener();
    // The first connection of each server: the same id from two connection tables.
    const one = new FakeConn(0, "127.0.0.1", 1111);
    const two = new FakeConn(0, "127.0.0.1", 2222);
    app.handler.open!(one);
    second.open!(two);
    expect(call(app.handler, one, "AUTH", PASSWORD)).toBe("+OK\r\n");
    expect(call(second, two, "GET", "k")).toBe(NOAUTH);
    expect(call(second, two, "AUTH", PASSWORD)).toBe("+OK\r\n");
    expect(call(app.handler, one, "CLIENT", "SETNAME", "first")).toBe("+OK\r\n");
    expect(call(second, two, "CLIENT", "GETNAME")).toBe("$-1\r\n");
    const idOne = call(app.handler, one, "CLIENT", "ID");
    const idTwo = call(second, two, "CLIENT", "ID");
    expect(idOne).not.toBe(idTwo);
    expect(call(second, two, "SUBSCRIBE", "ch")).toBe("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    // `one` is not in subscribed mode, and a publish reaches `two` only.
    expect(call(app.handler, one, "PUBLISH", "ch", "hi")).toBe(":1\r\n");
    expect(two.take()).toBe("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    const lines = clientLines(call(app.handler, one, "CLIENT", "LIST"));
    expect(lines.map((l) => [`:${l.get("id")}\r\n`, l.get("addr")])).toEqual([
      [idOne, "127.0.0.1:1111"],
      [idTwo, "127.0.0.1:2222"],
    ]);
    app.handler.close!(one, "peer");
    expect(call(second, two, "PING")).toBe("*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    app.close();
  });
});

describe("serve's access flags", () => {
  /** The one line a bad command line gets. */
  function refusal(argv: string[]): string {
    try {
      serveCommand.parse(argv, { env: {} });
    } catch (e) {
      if (e instanceof FlagError) return e.format();
      throw e;
    }
    throw new Error(`expected ${argv.join(" ")} to be refused`);
  }

  test("--requirepass / MYRIAD_REQUIREPASS and --protected-mode yes|no, for --app kv only", () => {
    expect(serveCommand.parse([], { env: {} }).values).toMatchObject({ requirepass: undefined, protectedMode: "yes" });
    expect(serveCommand.parse(["--requirepass", PASSWORD], { env: {} }).values.requirepass).toBe(PASSWORD);
    expect(serveCommand.parse([], { env: { MYRIAD_REQUIREPASS: PASSWORD } }).values.requirepass).toBe(PASSWORD);
    expect(serveCommand.parse(["--protected-mode", "no"], { env: {} }).values.protectedMode).toBe("no");
    expect(refusal(["--protected-mode", "off"])).toContain("--protected-mode");
    expect(refusal(["--requirepass", ""])).toContain("--requirepass");
    expect(refusal(["--app", "echo", "--requirepass", "x"])).toContain("--requirepass applies to --app kv");
    expect(refusal(["--app", "echo", "--protected-mode", "no"])).toContain("--protected-mode applies to --app kv");
  });
});

// ---- end to end, across two network namespaces -------------------------------------------

const ROOT = join(import.meta.dir, "..");
const PROBE = join(import.meta.dir, "fixtures", "resp-probe.ts");
let ns: NamespacePair;

beforeAll(() => {
  if (Bun.which("redis-cli") === null) throw new Error("redis-cli not found: install it (apt-get install -y redis-tools)");
  ns = makeNamespacePair("myriad-kv");
});

afterAll(async () => {
  await killAllServes();
  ns?.remove();
});

/** Runs redis-cli in namespace `where` against host:port; returns its stdout and stderr. */
function redisCli(where: string, host: string, port: number, args: string[]): string {
  const r = Bun.spawnSync(ns.exec(where, ["redis-cli", "-h", host, "-p", String(port), ...args]), { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
  return r.stdout.toString() + r.stderr.toString();
}

/** Runs the bun RESP probe in the client namespace: the exact bytes it got, and whether the server closed. */
async function probe(port: number, replies: number, ...commands: string[]): Promise<{ text: string; closed: boolean }> {
  const p = Bun.spawn(ns.exec(ns.client, [process.execPath, PROBE, SERVER_ADDRESS, String(port), String(replies), ...commands]), {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`resp-probe exited ${code}: ${err}`);
  return JSON.parse(out.trim()) as { text: string; closed: boolean };
}

describe("KV access across machines (two network namespaces)", () => {
  test("protected mode on by default: a remote client gets -DENIED and is closed; loopback is served; start-up says so", async () => {
    const s = await startServe(["--host", "0.0.0.0", "--port", "6380", "--no-admin"], {}, 20_000, ns.exec(ns.server, []));
    expect(s.out.text).toContain("  access: no password, protected mode on: clients from other than loopback get -DENIED (set --requirepass");
    const remote = await probe(6380, 0);
    expect(remote.closed).toBe(true);
    expect(remote.text).toStartWith("-DENIED ");
    expect(remote.text).toContain("--requirepass <password>");
    expect(remote.text).toContain("--protected-mode no");
    expect(redisCli(ns.server, "127.0.0.1", 6380, ["PING"])).toBe("PONG\n");
    expect(redisCli(ns.server, "127.0.0.1", 6380, ["INFO", "stats"])).toContain("rejected_connections:1\r\n");
    expect((await stopServe(s)).code).toBe(0);
  });

  test("--protected-mode no: remote clients are served, and start-up says nothing guards the store", async () => {
    const s = await startServe(["--host", "0.0.0.0", "--port", "6381", "--no-admin", "--protected-mode", "no"], {}, 20_000, ns.exec(ns.server, []));
    expect(s.out.text).toContain("  access: no password and protected mode off (--protected-mode no): anyone who can reach the port can read and write every key");
    expect(redisCli(ns.client, SERVER_ADDRESS, 6381, ["SET", "k", "from-afar"])).toBe("OK\n");
    expect(redisCli(ns.client, SERVER_ADDRESS, 6381, ["GET", "k"])).toBe("from-afar\n");
    expect((await stopServe(s)).code).toBe(0);
  });

  test("--requirepass (MYRIAD_REQUIREPASS): NOAUTH, WRONGPASS counted, AUTH and HELLO 2 AUTH over redis-cli; CLIENT LIST shows the remote address", async () => {
    const s = await startServe(["--host", "0.0.0.0", "--port", "6382", "--no-admin"], { MYRIAD_REQUIREPASS: PASSWORD }, 20_000, ns.exec(ns.server, []));
    expect(s.out.text).toContain("  access: password required");
    expect(s.out.text).not.toContain(PASSWORD);
    expect(await probe(6382, 1, "PING")).toEqual({ text: NOAUTH, closed: false });
    expect(await probe(6382, 2, "AUTH nope", "GET k")).toEqual({ text: WRONGPASS + NOAUTH, closed: false });
    expect(redisCli(ns.client, SERVER_ADDRESS, 6382, ["-a", "nope", "--no-auth-warning", "PING"])).toContain(
      "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.",
    );
    const auth = ["-a", PASSWORD, "--no-auth-warning"];
    expect(redisCli(ns.client, SERVER_ADDRESS, 6382, [...auth, "SET", "k", "v"])).toBe("OK\n");
    expect(redisCli(ns.client, SERVER_ADDRESS, 6382, ["--user", "default", "--pass", PASSWORD, "--no-auth-warning", "GET", "k"])).toBe("v\n");
    expect(redisCli(ns.client, SERVER_ADDRESS, 6382, ["HELLO", "2", "AUTH", "default", PASSWORD])).toContain("proto\n2\n");
    expect(redisCli(ns.client, SERVER_ADDRESS, 6382, ["HELLO", "3", "AUTH", "default", PASSWORD])).toContain("NOPROTO unsupported protocol version: this server speaks RESP2 only");
    expect(redisCli(ns.client, SERVER_ADDRESS, 6382, [...auth, "INFO", "stats"])).toContain("acl_access_denied_auth:2\r\n");
    // The address behind the connection, as any redis client sees it.
    const info = redisCli(ns.client, SERVER_ADDRESS, 6382, [...auth, "CLIENT", "INFO"]);
    expect(info).toMatch(new RegExp(`^id=\\d+ addr=${CLIENT_ADDRESS.replaceAll(".", "\\.")}:\\d+ laddr=${SERVER_ADDRESS.replaceAll(".", "\\.")}:6382 name= age=\\d+ idle=0 flags=N db=0 .* cmd=client\\|info user=default`));
    expect((await stopServe(s)).code).toBe(0);
  });

  test("two listeners (loopback and the veth): a remote subscriber and a local publisher; CLIENT LIST shows both with their own ids and addresses", async () => {
    const s = await startServe(
      ["--host", `127.0.0.1,${SERVER_ADDRESS}`, "--port", "6383", "--no-admin", "--requirepass", PASSWORD],
      {},
      30_000,
      ns.exec(ns.server, []),
    );
    const sub = Bun.spawn(ns.exec(ns.client, ["redis-cli", "-h", SERVER_ADDRESS, "-p", "6383", "-a", PASSWORD, "--no-auth-warning", "SUBSCRIBE", "news"]), {
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const local = ["-a", PASSWORD, "--no-auth-warning"];
      // Until it has subscribed: redis-cli sends AUTH first, and CLIENT LIST may see it between the two.
      const list = await until("the remote subscriber in CLIENT LIST, subscribed", () => {
        const text = redisCli(ns.server, "127.0.0.1", 6383, [...local, "CLIENT", "LIST"]);
        return text.split("\n").some((l) => l.includes(`addr=${CLIENT_ADDRESS}:`) && l.includes(" sub=1 ")) ? text : undefined;
      });
      const lines = list.trim().split("\n");
      expect(lines.length).toBe(2);
      const remote = lines.find((l) => l.includes(`addr=${CLIENT_ADDRESS}:`))!;
      const self = lines.find((l) => l.includes("addr=127.0.0.1:"))!;
      expect(remote).toContain(`laddr=${SERVER_ADDRESS}:6383 `);
      expect(remote).toContain(" flags=P db=0 sub=1 ");
      expect(remote).toContain(" cmd=subscribe ");
      expect(self).toContain("laddr=127.0.0.1:6383 ");
      expect(self).toContain(" cmd=client|list ");
      expect(/^id=(\d+) /.exec(remote)![1]).not.toBe(/^id=(\d+) /.exec(self)![1]);
      expect(redisCli(ns.server, "127.0.0.1", 6383, [...local, "PUBLISH", "news", "hello from loopback"])).toBe("1\n");
      expect(redisCli(ns.server, "127.0.0.1", 6383, ["GET", "k"]).trim()).toBe("NOAUTH Authentication required.");
    } finally {
      process.kill(sub.pid, "SIGTERM");
      await sub.exited;
    }
    expect(await new Response(sub.stdout).text()).toContain("message\nnews\nhello from loopback\n");
    expect((await stopServe(s)).code).toBe(0);
  });
});
