/**
 * Round trips over TLS (a self-signed certificate made with openssl), a unix socket and
 * IPv6 loopback; option validation errors.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MyriadError } from "../src/errors.ts";
import { createServer, ServerOptionError, type Server } from "../src/reactor/index.ts";
import { connect, pseudoRandomBytes, type TestClient } from "./helpers/net.ts";
import { expectSame } from "./helpers/assert.ts";

const dir = mkdtempSync(join(tmpdir(), "myriad-reactor-"));
const servers: Server[] = [];
const clients: TestClient[] = [];
let cert = "";
let key = "";

beforeAll(() => {
  if (!Bun.which("openssl")) {
    throw new Error("openssl is needed to make the test certificate: install it (apt-get install openssl)");
  }
  const r = Bun.spawnSync(
    [
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost",
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
  cert = readFileSync(join(dir, "cert.pem"), "utf8");
  key = readFileSync(join(dir, "key.pem"), "utf8");
});

afterAll(async () => {
  for (const c of clients) if (!c.closed) c.close();
  for (const s of servers) await s.stop({ graceful: false });
  rmSync(dir, { recursive: true, force: true });
});

function echoHandler() {
  return {
    message(conn: { write(d: Uint8Array): boolean }, frame: Uint8Array) {
      conn.write(frame);
    },
  };
}

async function roundTrip(c: TestClient, bytes: Uint8Array): Promise<void> {
  await c.send(bytes);
  await c.waitBytes(bytes.length, 10_000);
  expectSame(c.received(), bytes);
}

test("TLS round trip with a self-signed certificate", async () => {
  let remote = "";
  const server = await createServer({
    tls: { cert, key },
    handler: {
      open(conn) {
        remote = conn.remoteAddress;
      },
      message(conn, frame: Uint8Array) {
        conn.write(frame);
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port, tls: true });
  clients.push(c);
  await roundTrip(c, pseudoRandomBytes(300_000, 9));
  expect(remote).toBe("127.0.0.1");
  expect(server.stats().bytesIn).toBe(300_000);
});

test("TLS: the handshake timeout also covers a client that never starts TLS", async () => {
  let reason = "";
  const server = await createServer({
    tls: { cert, key },
    handshakeTimeoutMs: 150,
    tickMs: 10,
    handler: {
      message() {},
      close(_c, r) {
        reason = r;
      },
    },
  });
  servers.push(server);
  // A plain TCP client: connects, never sends a ClientHello.
  const c = await connect({ port: server.port });
  clients.push(c);
  await c.waitClosed(3000);
  expect(reason).toBe("handshake");
});

test("unix socket round trip", async () => {
  const path = join(dir, "reactor.sock");
  const server = await createServer({ unix: path, protocol: "lines", handler: { message: (conn, l: Uint8Array) => void conn.write(`${l.length}\n`) } });
  servers.push(server);
  expect(server.unix).toBe(path);
  expect(server.port).toBe(0);
  const c = await connect({ unix: path });
  clients.push(c);
  await c.send("hello\nworld!\n");
  await c.waitBytes(4);
  expect(c.text()).toBe("5\n6\n");
});

test("IPv6 loopback round trip", async () => {
  let remote = "";
  const server = await createServer({
    hostname: "::1",
    handler: {
      open(conn) {
        remote = conn.remoteAddress;
      },
      ...echoHandler(),
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port, hostname: "::1" });
  clients.push(c);
  await roundTrip(c, pseudoRandomBytes(50_000, 11));
  expect(remote).toBe("::1");
});

test("reusePort: two servers share one port", async () => {
  const a = await createServer({ reusePort: true, handler: { message: (conn) => void conn.write("a") } });
  servers.push(a);
  const b = await createServer({ port: a.port, reusePort: true, handler: { message: (conn) => void conn.write("b") } });
  servers.push(b);
  expect(b.port).toBe(a.port);
  const seen = new Set<string>();
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const c = await connect({ port: a.port });
    await c.send("?");
    await c.waitBytes(1);
    seen.add(c.text());
    c.close();
  }
  expect([...seen].sort()).toEqual(["a", "b"]);
});

test("bad options fail with an error naming the option", async () => {
  const message = () => {};
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ handler: { message }, maxFrameBytes: -1 }, "maxFrameBytes", "integer"],
    [{ handler: { message }, idleTimeout: 5 }, "idleTimeout", "unknown option"],
    [{ handler: { message }, protocol: "http" }, "protocol", "length-u16"],
    [{ handler: {} }, "handler", "message"],
    [{ handler: { message }, port: 70000 }, "port", "65535"],
    [{ handler: { message }, unix: "/tmp/x.sock", port: 1 }, "unix", "port"],
    [{ handler: { message }, maxWriteBufferBytes: 1000, writeBufferHardLimitBytes: 10 }, "writeBufferHardLimitBytes", "at least"],
    [{ handler: { message }, maxConnections: 0 }, "maxConnections", "1.."],
    [{ handler: { message }, reusePort: "yes" }, "reusePort", "true or false"],
  ];
  for (const [opts, option, text] of cases) {
    let err: unknown;
    try {
      await createServer(opts as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ServerOptionError);
    expect((err as ServerOptionError).option).toBe(option);
    expect((err as ServerOptionError).code).toBe("ERR_SERVER_OPTION");
    expect((err as Error).message).toContain(text);
  }
});

test("TLS: a client without a certificate, when one is required, reaches handler.error as ERR_TLS_UNAUTHORIZED", async () => {
  const errors: unknown[] = [];
  let reason = "";
  const server = await createServer({
    tls: { cert, key, ca: cert, requestCert: true },
    handler: {
      message() {},
      error(_c, e) {
        errors.push(e);
      },
      close(_c, r) {
        reason = r;
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port, tls: true });
  clients.push(c);
  await c.waitClosed(5000);
  expect(errors.length).toBe(1);
  expect(errors[0]).toBeInstanceOf(MyriadError);
  expect((errors[0] as MyriadError).code).toBe("ERR_TLS_UNAUTHORIZED");
  expect((errors[0] as MyriadError).message).toMatch(/TLS client certificate not authorized/);
  expect(reason).toBe("error");
});
