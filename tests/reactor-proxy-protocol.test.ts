/**
 * The reactor's proxyProtocol option against raw sockets that write headers byte by byte, and
 * against three PROXY senders we did not write: curl --haproxy-protocol (v1), nginx's stream
 * module (proxy_protocol on: v1) and HAProxy (send-proxy-v2).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "../src/reactor/index.ts";
import { until } from "./helpers/until.ts";
import { freePort } from "./helpers/ports.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const servers: Server[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop({ graceful: false });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A server that answers each line with "<remoteAddress>:<remotePort> <line>\n" and records close reasons. */
async function addressEcho(extra: Record<string, unknown> = {}) {
  const opens: string[] = [];
  const closes: string[] = [];
  const server = await createServer({
    port: 0,
    hostname: "127.0.0.1",
    protocol: "lines",
    proxyProtocol: true,
    ...extra,
    handler: {
      open(conn) {
        opens.push(`${conn.remoteAddress}:${conn.remotePort}`);
      },
      message(conn, line: Uint8Array) {
        conn.write(`${conn.remoteAddress}:${conn.remotePort} ${new TextDecoder().decode(line)}\n`);
      },
      close(_conn, reason) {
        closes.push(reason);
      },
    },
  });
  servers.push(server);
  return { server, opens, closes };
}

/** A line client over Bun.connect, optionally from a given loopback source address. */
async function lineClient(port: number, localAddress?: string) {
  let text = "";
  let isClosed = false;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    ...(localAddress ? { localAddress } : {}),
    socket: {
      data(_s: unknown, d: Uint8Array) {
        text += new TextDecoder().decode(d);
      },
      close() {
        isClosed = true;
      },
      error() {},
    },
  } as unknown as Parameters<typeof Bun.connect>[0]);
  let readAt = 0;
  return {
    write(b: Uint8Array) {
      socket.write(b);
    },
    /** The next line the server sent (without "\n"). */
    async readLine(): Promise<string> {
      await until("a line from the server", () => text.indexOf("\n", readAt) >= 0, 5_000);
      const nl = text.indexOf("\n", readAt);
      const line = text.slice(readAt, nl);
      readAt = nl + 1;
      return line;
    },
    /** Everything received so far, as text. */
    raw(): string {
      return text;
    },
    async waitClosed(): Promise<void> {
      await until("the server to close the connection", () => isClosed, 5_000);
    },
    close() {
      socket.end();
    },
  };
}

const V2_SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
function v2Inet(src: number[], sport: number): Uint8Array {
  return Uint8Array.from([...V2_SIG, 0x21, 0x11, 0, 12, ...src, 127, 0, 0, 1, sport >> 8, sport & 0xff, 0x18, 0xeb]);
}

describe("proxyProtocol on the reactor", () => {
  test("v1 and v2 headers give conn.remoteAddress and remotePort of the client, also split byte by byte", async () => {
    const { server, opens } = await addressEcho();
    const a = await lineClient(server.port);
    a.write(enc("PROXY TCP4 203.0.113.7 127.0.0.1 51234 6380\r\nhello\n"));
    expect(await a.readLine()).toBe("203.0.113.7:51234 hello");
    const b = await lineClient(server.port);
    const bytes = new Uint8Array([...v2Inet([198, 51, 100, 9], 40000), ...enc("split\n")]);
    for (const byte of bytes) {
      b.write(Uint8Array.of(byte));
      await Bun.sleep(0);
    }
    expect(await b.readLine()).toBe("198.51.100.9:40000 split");
    // The open hook runs once the header is in: it sees the client, not the balancer.
    expect(opens).toEqual(["203.0.113.7:51234", "198.51.100.9:40000"]);
    a.close();
    b.close();
  });

  test("a v2 LOCAL header (a balancer's health check) keeps the socket's own address", async () => {
    const { server } = await addressEcho();
    const c = await lineClient(server.port);
    c.write(Uint8Array.from([...V2_SIG, 0x20, 0x00, 0, 0, ...enc("ping\n")]));
    expect(await c.readLine()).toMatch(/^127\.0\.0\.1:\d+ ping$/);
    c.close();
  });

  test("a missing or malformed header closes with reason proxy and is counted; others are served", async () => {
    const { server, closes } = await addressEcho();
    const good = await lineClient(server.port);
    good.write(enc("PROXY TCP4 10.0.0.1 10.0.0.2 1000 2000\r\n"));
    for (const bad of ["hello\n", "PROXY TCP4 10.0.0.1 10.0.0.2 99999 2000\r\n", "PROXY TCP9 x y 1 2\r\n"]) {
      const c = await lineClient(server.port);
      c.write(enc(bad));
      await c.waitClosed();
    }
    await until("three proxy closes", () => server.stats().closed.proxy === 3, 5_000);
    // The handler never saw them open, so it sees no close either.
    expect(closes).toEqual([]);
    good.write(enc("still here\n"));
    expect(await good.readLine()).toBe("10.0.0.1:1000 still here");
    good.close();
  });

  test("a header that never completes is closed by handshakeTimeoutMs with reason proxy", async () => {
    const { server, closes } = await addressEcho({ handshakeTimeoutMs: 200 });
    const c = await lineClient(server.port);
    c.write(enc("PROXY TCP4 10.0.0.1"));
    await c.waitClosed();
    await until("the slow header closed", () => server.stats().closed.proxy === 1, 5_000);
    expect(closes).toEqual([]);
  });

  test("the per-IP limit counts the client's address from the header, not the balancer's", async () => {
    const { server, closes } = await addressEcho({ maxConnectionsPerIp: 1 });
    const a = await lineClient(server.port);
    a.write(enc("PROXY TCP4 10.9.9.1 127.0.0.1 1 2\r\na\n"));
    expect(await a.readLine()).toBe("10.9.9.1:1 a");
    // Same balancer address (127.0.0.1), another client: served.
    const b = await lineClient(server.port);
    b.write(enc("PROXY TCP4 10.9.9.2 127.0.0.1 1 2\r\nb\n"));
    expect(await b.readLine()).toBe("10.9.9.2:1 b");
    // The first client again: over its limit.
    const c = await lineClient(server.port);
    c.write(enc("PROXY TCP4 10.9.9.1 127.0.0.1 3 2\r\nc\n"));
    await c.waitClosed();
    await until("the second connection of 10.9.9.1 refused", () => server.stats().rejected === 1, 5_000);
    expect(server.stats().connections).toBe(2);
    a.close();
    b.close();
  });

  test("proxyProtocolFrom: a connection from another address is closed before it is read", async () => {
    const { server, closes } = await addressEcho({ proxyProtocolFrom: ["127.0.0.2"] });
    const denied = await lineClient(server.port);
    denied.write(enc("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\nx\n"));
    await denied.waitClosed();
    await until("the connection from 127.0.0.1 closed", () => server.stats().closed.proxy === 1, 5_000);
    const allowed = await lineClient(server.port, "127.0.0.2");
    allowed.write(enc("PROXY TCP4 10.0.0.7 10.0.0.2 7 2\r\ny\n"));
    expect(await allowed.readLine()).toBe("10.0.0.7:7 y");
    allowed.close();
  });

  test("option checks: proxyProtocolFrom needs proxyProtocol and addresses", async () => {
    const h = { message() {} };
    await expect(createServer({ port: 0, protocol: "raw", proxyProtocolFrom: ["1.2.3.4"], handler: h })).rejects.toMatchObject({ code: "ERR_SERVER_OPTION" });
    await expect(createServer({ port: 0, protocol: "raw", proxyProtocol: true, proxyProtocolFrom: ["not an ip"], handler: h })).rejects.toMatchObject({ code: "ERR_SERVER_OPTION" });
    await expect(createServer({ port: 0, protocol: "raw", proxyProtocol: true, tls: { cert: "x", key: "y" }, handler: h })).rejects.toMatchObject({ code: "ERR_SERVER_OPTION", option: "proxyProtocol" });
  });
});

/** curl's body, run without blocking this process's event loop (the server under test runs in it). */
async function curl(args: string[]): Promise<string> {
  const proc = Bun.spawn(["curl", "-s", "--max-time", "5", ...args], { stdout: "pipe", stderr: "ignore" });
  const body = await new Response(proc.stdout).text();
  await proc.exited;
  return body;
}

describe("proxyProtocol on a WebSocket listener", () => {
  test("the header comes before the upgrade; the WebSocket handler sees the client behind the balancer", async () => {
    const opened: string[] = [];
    const server = await createServer({
      port: 0,
      hostname: "127.0.0.1",
      protocol: "websocket",
      proxyProtocol: true,
      handler: {
        open(conn) {
          opened.push(`${conn.remoteAddress}:${conn.remotePort}`);
        },
        message(conn, data) {
          conn.send(`${conn.remoteAddress} ${String(data)}`);
        },
      },
    });
    servers.push(server);
    const c = await lineClient(server.port);
    const key = Buffer.from("0123456789abcdef").toString("base64");
    c.write(
      enc(
        "PROXY TCP6 2001:db8::42 2001:db8::1 50000 443\r\n" +
          `GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    expect(await c.readLine()).toBe("HTTP/1.1 101 Switching Protocols\r");
    await until("the WebSocket open", () => opened.length === 1, 5_000);
    expect(opened).toEqual(["2001:db8::42:50000"]);
    // A masked text frame "hi": the reply names the client from the header.
    const mask = [1, 2, 3, 4];
    const payload = [..."hi"].map((ch, i) => ch.charCodeAt(0) ^ mask[i % 4]!);
    c.write(Uint8Array.from([0x81, 0x80 | payload.length, ...mask, ...payload]));
    await until("the echoed frame", () => c.raw().includes("2001:db8::42 hi"), 5_000);
    c.close();
  });
});

describe("PROXY senders we did not write", () => {
  /** A server that answers any request with an HTTP response naming the client address. */
  async function httpAddressServer() {
    const server = await createServer({
      port: 0,
      hostname: "127.0.0.1",
      protocol: "raw",
      proxyProtocol: true,
      handler: {
        message(conn) {
          const body = `${conn.remoteAddress}:${conn.remotePort}`;
          conn.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
          conn.close();
        },
      },
    });
    servers.push(server);
    return server;
  }

  test("curl --haproxy-protocol (v1)", async () => {
    if (!Bun.which("curl")) throw new Error("curl not found: apt-get install curl");
    const server = await httpAddressServer();
    expect(await curl(["--haproxy-protocol", "--interface", "127.0.0.3", `http://127.0.0.1:${server.port}/`])).toMatch(/^127\.0\.0\.3:\d+$/);
  });

  test("nginx stream with proxy_protocol on (v1): the node sees the client behind nginx", async () => {
    const nginx = Bun.which("nginx") ?? (Bun.which("nginx", { PATH: "/usr/sbin" }) as string | null);
    const module = "/usr/lib/nginx/modules/ngx_stream_module.so";
    if (!nginx || !(await Bun.file(module).exists()))
      throw new Error("nginx with the stream module not found: apt-get install nginx-light libnginx-mod-stream");
    const server = await httpAddressServer();
    const dir = mkdtempSync(join(tmpdir(), "myriad-nginx-"));
    dirs.push(dir);
    const front = freePort();
    writeFileSync(
      join(dir, "nginx.conf"),
      `load_module ${module};
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
stream {
  server {
    listen 127.0.0.1:${front};
    proxy_pass 127.0.0.1:${server.port};
    proxy_protocol on;
  }
}
`,
    );
    const proc = Bun.spawn([nginx, "-p", dir, "-c", join(dir, "nginx.conf")], { stdout: "ignore", stderr: "pipe" });
    try {
      let body = "";
      await until(
        "nginx to answer",
        async () => (body = await curl(["--interface", "127.0.0.4", `http://127.0.0.1:${front}/`])) !== "",
        10_000,
      );
      // nginx connected from 127.0.0.1; its header named the client, 127.0.0.4.
      expect(body).toMatch(/^127\.0\.0\.4:\d+$/);
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  });

  test("HAProxy send-proxy-v2: the node sees the client behind HAProxy", async () => {
    const haproxy = Bun.which("haproxy") ?? Bun.which("haproxy", { PATH: "/usr/sbin" });
    if (!haproxy) throw new Error("haproxy not found: apt-get install haproxy");
    const server = await httpAddressServer();
    const dir = mkdtempSync(join(tmpdir(), "myriad-haproxy-"));
    dirs.push(dir);
    const front = freePort();
    writeFileSync(
      join(dir, "haproxy.cfg"),
      `defaults
  mode tcp
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend f
  bind 127.0.0.1:${front}
  default_backend b
backend b
  server s1 127.0.0.1:${server.port} send-proxy-v2
`,
    );
    const proc = Bun.spawn([haproxy, "-db", "-f", join(dir, "haproxy.cfg")], { stdout: "ignore", stderr: "pipe" });
    try {
      let body = "";
      await until(
        "haproxy to answer",
        async () => (body = await curl(["--interface", "127.0.0.5", `http://127.0.0.1:${front}/`])) !== "",
        10_000,
      );
      expect(body).toMatch(/^127\.0\.0\.5:\d+$/);
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  });
});
