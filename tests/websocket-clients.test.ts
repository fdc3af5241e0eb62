/**
 * WebSocket servers against clients we did not write: the `ws` package's client under Node
 * (it checks servers strictly), Debian's python3-websockets, Chromium's own WebSocket
 * (playwright), and `bun run serve --app ws-echo | ws-chat` with workers and TLS (wss://)
 * with the admin server counting. Each needs its tool and fails saying how to install it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type WebSocketServer } from "../src/reactor/index.ts";
import { launchBrowser } from "./helpers/browser.ts";
import { startServe, stopServe } from "./helpers/serve-process.ts";
import { until } from "./helpers/until.ts";

const FIXTURES = join(import.meta.dir, "fixtures");
const PYTHON = "/usr/bin/python3";
const servers: WebSocketServer[] = [];
const pages: { stop(force?: boolean): unknown }[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop({ graceful: false });
  for (const p of pages) p.stop(true);
});

/** An echo server that records the close codes its handler saw. */
async function echo(): Promise<{ server: WebSocketServer; closes: [number, string][] }> {
  const closes: [number, string][] = [];
  const server = await createServer({
    protocol: "websocket",
    perMessageDeflate: true,
    subprotocols: ["v1.chat"],
    handler: {
      message(conn, data) {
        conn.send(data);
      },
      close(_conn, code, reason) {
        closes.push([code, reason]);
      },
    },
  });
  servers.push(server);
  return { server, closes };
}

/** Runs a client program; its last stdout line is JSON. */
async function runClient(cmd: string[]): Promise<any> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", cwd: join(import.meta.dir, "..") });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${err}${out}`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

describe("third-party clients", () => {
  test("the ws package under Node: text, binary, compressed, fragmented, ping, close code", async () => {
    if (Bun.which("node") === null) throw new Error("node is needed for the ws client test: install it (apt-get install nodejs)");
    const { server, closes } = await echo();
    const r = await runClient(["node", join(FIXTURES, "ws-node-client.cjs"), `ws://127.0.0.1:${server.port}/`, "v1.chat"]);
    expect(r.errors).toEqual([]);
    expect(r.protocol).toBe("v1.chat");
    expect(r.extensions).toContain("permessage-deflate");
    expect(r.echoes).toEqual(["hello from node", [0, 1, 2, 254, 255], "text of 200000", "price: €42"]);
    expect(r.pong).toBe("are you there");
    expect(r.closeCode).toBe(4001);
    await until("the server's close callback", () => closes.length === 1);
    expect(closes).toEqual([[4001, "done here"]]);
  });

  test("Debian's python3-websockets: compression negotiated, fragments joined, ping, close code", async () => {
    const check = Bun.spawnSync([PYTHON, "-c", "import websockets"]);
    if (check.exitCode !== 0) throw new Error(`${PYTHON} cannot import websockets: install it (apt-get install python3-websockets)`);
    const { server, closes } = await echo();
    const r = await runClient([PYTHON, join(FIXTURES, "ws-python-client.py"), `ws://127.0.0.1:${server.port}/`]);
    expect(r.extensions).toBe("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    expect(r.echoes).toEqual(["hello from python", [0, 1, 254, 255], "κόσμε fragments", "text of 100000"]);
    expect(r.pong).toBe(true);
    expect(r.closeCode).toBe(4002);
    await until("the server's close callback", () => closes.length === 1);
    expect(closes).toEqual([[4002, "python done"]]);
  });

  test("Chromium's WebSocket: text, binary, a 256 KiB message, compression, close", async () => {
    const { server, closes } = await echo();
    const browser = await launchBrowser({ width: 400, height: 300 });
    try {
      // A page from loopback: Chromium blocks a public page (about:blank counts) from reaching loopback.
      const page = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("<!doctype html><title>ws</title>", { headers: { "content-type": "text/html" } }) });
      pages.push(page);
      await browser.page.goto(`http://127.0.0.1:${page.port}/`);
      const r = await browser.page.evaluate(async (url: string) => {
        const ws = new WebSocket(url, "v1.chat");
        ws.binaryType = "arraybuffer";
        const got: unknown[] = [];
        await new Promise<void>((resolve, reject) => {
          ws.onopen = () => {
            ws.send("hello from chromium");
            ws.send(new Uint8Array([9, 8, 7]));
            ws.send("z".repeat(1 << 18));
          };
          ws.onmessage = (e) => {
            got.push(typeof e.data === "string" ? (e.data.length > 64 ? `text of ${e.data.length}` : e.data) : [...new Uint8Array(e.data)]);
            if (got.length === 3) ws.close(1000, "bye from chromium");
          };
          ws.onclose = () => resolve();
          ws.onerror = () => reject(new Error("websocket error"));
        });
        return { got, protocol: ws.protocol, extensions: ws.extensions };
      }, `ws://127.0.0.1:${server.port}/`);
      expect(r.got).toEqual(["hello from chromium", [9, 8, 7], `text of ${1 << 18}`]);
      expect(r.protocol).toBe("v1.chat");
      expect(r.extensions).toContain("permessage-deflate");
      await until("the server's close callback", () => closes.length === 1);
      expect(closes).toEqual([[1000, "bye from chromium"]]);
    } finally {
      await browser.close();
    }
  });
});

describe("bun run load --protocol websocket", () => {
  test("upgrade, then rr messages echoed and pings answered; a server that refuses the upgrade fails the connects", async () => {
    const { server } = await echo();
    const load = async (port: number, mode: string, extra: string[] = []) => {
      const p = Bun.spawn([process.execPath, "run", "load", "--protocol", "websocket", "-c", "40", "-t", `127.0.0.1:${port}`, "--mode", mode, "--duration", "1s", "--ping-interval", "100ms", "--sources", "none", "--processes", "1", "--json", "--no-progress", ...extra], {
        cwd: join(import.meta.dir, ".."),
        stdout: "pipe",
        stderr: "pipe",
      });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (out.trim() === "") throw new Error(`load exited ${code}: ${err}`);
      return { code, report: JSON.parse(out) };
    };
    for (const mode of ["rr", "ping"]) {
      const { code, report } = await load(server.port, mode, ["--confirm"]);
      expect(code).toBe(0);
      expect(report.connections).toMatchObject({ target: 40, reached: 40, held: 40, failed: 0 });
      expect(report.traffic.responses).toBeGreaterThan(0);
      expect(report.traffic.badReplies).toBe(0);
    }
    const stats = server.stats().websocket!;
    expect(stats.upgraded).toBe(80);
    expect(stats.messagesIn).toBeGreaterThan(40); // the confirm probes, then the rr messages
    expect(stats.pingsIn).toBeGreaterThan(0);
    // A TCP echo server answers the upgrade with its own bytes, not a 101.
    const tcp = await createServer({ handler: { message(conn, frame: Uint8Array) { conn.write(frame); } } });
    try {
      const { report } = await load(tcp.port, "idle", ["--retries", "0"]);
      expect(report.connections).toMatchObject({ reached: 0, failed: 40, errors: { EHANDSHAKE: 40 } });
    } finally {
      await tcp.stop({ graceful: false });
    }
  }, 60_000);
});

describe("bun run serve --app ws-echo / ws-chat", () => {
  test("ws-echo on 2 workers over TLS (wss://), ws-chat to every subscriber; admin counts WebSocket connections, messages, close codes", async () => {
    if (Bun.which("openssl") === null) throw new Error("openssl is needed to make the test certificate: install it (apt-get install openssl)");
    const dir = mkdtempSync(join(tmpdir(), "myriad-wss-"));
    try {
      Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost"]);
      expect(existsSync(join(dir, "cert.pem"))).toBe(true);
      const wss = await startServe(["--app", "ws-echo", "--port", "0", "--workers", "2", "--admin-port", "0", "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")]);
      try {
        expect(wss.out.text).toContain("ws-echo (websocket) on 2 workers");
        // Workers share a port chosen by the first: read it from the startup block.
        const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(wss.out.text)![1]);
        const admin = /admin: (http:\/\/[^ ]+)/.exec(wss.out.text)![1]!;
        for (let i = 0; i < 2; i++) {
          const r = await runClient(["node", join(FIXTURES, "ws-node-client.cjs"), `wss://127.0.0.1:${port}/`]);
          expect(r.echoes.length).toBe(4);
          expect(r.closeCode).toBe(4001);
        }
        const stats = await until("the workers' WebSocket counts", async () => {
          const s = (await (await fetch(`${admin}stats`)).json()) as any;
          return s.totals.websocket?.closeCodes?.["4001"] === 2 ? s : undefined;
        });
        expect(stats.totals.websocket).toMatchObject({ upgraded: 2, messagesIn: 8, connections: 0 });
        const metrics = await (await fetch(`${admin}metrics`)).text();
        expect(metrics).toMatch(/myriad_websocket_closed_total\{worker="[^"]+",code="4001"\} \d/);
        expect(metrics).toContain("# TYPE myriad_websocket_messages_received_total counter");
      } finally {
        expect((await stopServe(wss)).code).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // ws-chat, one worker: a message reaches every connection, its sender included.
    const chat = await startServe(["--app", "ws-chat", "--port", "0", "--no-admin"]);
    try {
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(chat.out.text)![1]);
      const received: string[][] = [[], [], []];
      const sockets = received.map((box) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
        ws.onmessage = (e) => box.push(String(e.data));
        return ws;
      });
      await until("three open chat connections", () => sockets.every((w) => w.readyState === WebSocket.OPEN));
      sockets[1]!.send("hi all");
      await until("the message at every connection", () => received.every((box) => box.includes("hi all")));
      for (const w of sockets) w.close();
    } finally {
      expect((await stopServe(chat)).code).toBe(0);
    }
  }, 60_000);
});
