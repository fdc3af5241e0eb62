/**
 * WebSocket servers compared in one run: myriad (createServer protocol "websocket"),
 * Bun.serve's websocket (uWebSockets inside) and, under Node, the `ws` package.
 *
 *   bun bench/websocket.ts [--only idle,echo,publish] [--servers myriad,bun,ws] [--quick]
 *                          [--idle 10000,19000] [--warmup 5000] [--echo 100,1000] [--seconds 5] [--bytes 32]
 *                          [--publish 5000,50000] [--messages 100] [--rounds 3]
 *
 * - idle: userland memory per idle upgraded connection: the server process's RSS (after a
 *   GC) with N open connections minus before any, over N; myriad's own TCP server (same
 *   client, no upgrade) for the "within 1.1x of myriad TCP" goal, and raw-tcp, a plain
 *   Bun.listen server (counts opens and closes, echoes data) with the same client: the floor
 *   any server on Bun.listen pays, measured in the same run. Printed twice: RSS (the
 *   issue's measure) and RssAnon (private anonymous pages only: without the pages of the
 *   bun/node binary that running code faults in, which every process shares). With
 *   --warmup W (default 5,000; 0: off) the whole measure is repeated, in fresh processes, with
 *   a baseline taken after every server has accepted W connections (upgraded) and seen them
 *   close: one-time costs apart from per-connection ones. The plain figure is always printed.
 * - echo: messages per second, one 32-byte message in flight per connection, N connections;
 *   with myriad, also raw-ws: the floor a WebSocket echo on Bun.listen pays (rawWebSocketEcho).
 * - publish: N subscribers to one topic; the server publishes --messages 32-byte messages in
 *   one burst (one loop turn); deliveries per second counted at the clients, first byte to
 *   last. Past the per-process descriptor limit (ulimit -n) the subscribers are spread over
 *   several server processes sharing the port (reusePort) and as many client processes, and
 *   every server publishes the burst to its share at the same moment (Bun.serve alike; ws
 *   has no topics: it loops over its clients, as its users do).
 * Every server runs in its own process, every client in others (raw TCP clients speaking
 * the protocol, the same for all servers), stopped by pid. Each measurement takes --rounds
 * turns, servers alternating, and the table shows the median with the range.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Child } from "./lib/child.ts";
import { cpuMs, rssAnonBytes } from "./lib/measure.ts";

const args = process.argv.slice(2);
const ROOT = join(import.meta.dir, "..");
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const MASK = [0x11, 0x22, 0x33, 0x44];

type Kind = "myriad" | "bun" | "ws" | "myriad-tcp" | "raw-ws" | "raw-tcp";

/** Idle kinds that take the client without the upgrade: a plain TCP connection held open. */
const isTcp = (k: Kind) => k === "myriad-tcp" || k === "raw-tcp";


// ---- servers (child processes) --------------------------------------------------------------

/** A Bun server (myriad, myriad-tcp, raw-tcp or bun) on host: echo (and, to publish, every connection subscribed to "t"); stdin: mem, publish N B. */
async function bunServer(kind: Kind, host: string, reusePort: boolean, port: number, subscribe: boolean): Promise<void> {
  let connections = 0;
  const report = () => {
    Bun.gc(true);
    const m = process.memoryUsage();
    console.log(JSON.stringify({ rss: m.rss, anon: rssAnonBytes(), heapUsed: m.heapUsed, connections }));
  };
  let publish: (data: Uint8Array) => void;
  let listening: number;
  if (kind === "myriad" || kind === "myriad-tcp") {
    const { createServer } = await import("../src/reactor/index.ts");
    report(); // baseline: after imports, before listening (myriad's tables count against it)
    if (kind === "myriad") {
      const server = await createServer({
        protocol: "websocket",
        hostname: host,
        port,
        reusePort,
        measureLatency: false,
        handler: {
          open(conn) {
            connections++;
            if (subscribe) conn.subscribe("t");
          },
          message(conn, data) {
            conn.send(data);
          },
          close() {
            connections--;
          },
        },
      });
      publish = (d) => server.publish("t", d);
      listening = server.port;
    } else {
      const server = await createServer({
        hostname: host,
        port,
        reusePort,
        measureLatency: false,
        handler: {
          open() {
            connections++;
          },
          message(conn, frame: Uint8Array) {
            conn.write(frame);
          },
          close() {
            connections--;
          },
        },
      });
      publish = () => {};
      listening = server.port;
    }
  } else if (kind === "raw-ws") {
    report();
    listening = rawWebSocketEcho(host, port, reusePort);
    publish = () => {};
  } else if (kind === "raw-tcp") {
    // The floor of any server on Bun.listen: Bun's socket and nothing of ours per connection.
    report();
    const socket = {
      binaryType: "uint8array" as const,
      open() {
        connections++;
      },
      data(s: import("bun").Socket<number>, data: Uint8Array) {
        s.write(data);
      },
      close() {
        connections--;
      },
    };
    // As rawWebSocketEcho: Bun.listen's types know no reusePort.
    const listener = Bun.listen<number>({ hostname: host, port, reusePort, data: 0, socket } as unknown as import("bun").TCPSocketListenOptions<number>);
    publish = () => {};
    listening = listener.port;
  } else {
    report();
    const server = Bun.serve({
      hostname: host,
      port,
      reusePort,
      fetch(req, srv) {
        if (srv.upgrade(req)) return undefined;
        return new Response("upgrade required", { status: 426 });
      },
      websocket: {
        perMessageDeflate: false,
        open(ws) {
          connections++;
          if (subscribe) ws.subscribe("t");
        },
        message(ws, m) {
          ws.send(m);
        },
        close() {
          connections--;
        },
      },
    });
    publish = (d) => server.publish("t", d);
    listening = server.port!;
  }
  console.log(JSON.stringify({ port: listening }));
  for await (const line of console) {
    const [cmd, a, b] = line.trim().split(" ");
    if (cmd === "mem") report();
    else if (cmd === "publish") {
      const msg = new Uint8Array(Number(b)).fill(120);
      const t0 = performance.now();
      for (let i = 0; i < Number(a); i++) publish!(msg);
      console.log(JSON.stringify({ publishMs: performance.now() - t0 }));
    }
  }
}

/**
 * The floor of the echo table ("raw-ws"): the least a WebSocket echo server on `Bun.listen`
 * can do, which no real server may do so little: the upgrade answered from its key alone
 * (no other header read or checked), then for each read every whole masked frame echoed as a
 * binary frame into one buffer and written with one socket.write; no validation, no control
 * frames, no fragments, no partial frames (the echo client sends none: one small message in
 * flight per connection arrives in one read on loopback). What myriad pays above this is
 * its own; what this pays above Bun.serve is Bun.listen's. Returns the port.
 */
function rawWebSocketEcho(host: string, port: number, reusePort: boolean): number {
  const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  const out = new Uint8Array(1 << 16);
  const socket: import("bun").SocketHandler<number, "uint8array"> = {
    binaryType: "uint8array",
    open(s) {
      s.data = 0; // 0: before the upgrade; 1: upgraded
    },
      data(s, d: Uint8Array) {
        let p = 0;
        if (s.data === 0) {
          const text = Buffer.from(d.buffer, d.byteOffset, d.length).toString("latin1");
          const at = text.indexOf("Sec-WebSocket-Key: ");
          const end = text.indexOf("\r\n\r\n");
          if (at < 0 || end < 0) {
            s.end();
            return;
          }
          const key = text.slice(at + 19, text.indexOf("\r\n", at));
          const accept = new Bun.CryptoHasher("sha1").update(key + GUID).digest("base64");
          s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
          s.data = 1;
          p = end + 4;
        }
        let o = 0;
        while (p + 6 <= d.length) {
          let n = d[p + 1]! & 0x7f;
          let k = p + 2;
          if (n === 126) {
            n = (d[k]! << 8) | d[k + 1]!;
            k += 2;
          }
          if (k + 4 + n > d.length || o + 4 + n > out.length) break;
          out[o] = 0x82;
          let hb = 2;
          if (n < 126) out[o + 1] = n;
          else {
            out[o + 1] = 126;
            out[o + 2] = n >> 8;
            out[o + 3] = n & 0xff;
            hb = 4;
          }
          for (let i = 0; i < n; i++) out[o + hb + i] = d[k + 4 + i]! ^ d[k + (i & 3)]!;
          o += hb + n;
          p = k + 4 + n;
        }
        if (o > 0) s.write(out, 0, o);
      },
    close() {},
    error() {},
  };
  // As src/reactor/listen.ts: Bun.listen's types know only the "buffer" handler and no reusePort.
  return Bun.listen<number>({ hostname: host, port, reusePort, socket } as unknown as import("bun").TCPSocketListenOptions<number>).port;
}

/** The ws package's server under Node (stdin: mem, publish N B): echo, and every client is a subscriber. */
const WS_SERVER = `
const { WebSocketServer } = require(process.argv[3]);
const readline = require("node:readline");
let connections = 0;
function report() {
  global.gc();
  const m = process.memoryUsage();
  const anon = /RssAnon:\\s+(\\d+) kB/.exec(require("node:fs").readFileSync("/proc/self/status", "latin1"));
  console.log(JSON.stringify({ rss: m.rss, anon: anon ? Number(anon[1]) * 1024 : 0, heapUsed: m.heapUsed, connections }));
}
report();
const wss = new WebSocketServer({ host: process.argv[2], port: 0, perMessageDeflate: false, clientTracking: true });
wss.on("connection", (ws) => {
  connections++;
  ws.on("message", (d, isBinary) => ws.send(d, { binary: isBinary }));
  ws.on("close", () => connections--);
  ws.on("error", () => {});
});
wss.on("listening", () => console.log(JSON.stringify({ port: wss.address().port })));
readline.createInterface({ input: process.stdin }).on("line", (l) => {
  const [cmd, a, b] = l.trim().split(" ");
  if (cmd === "mem") report();
  else if (cmd === "publish") {
    const msg = Buffer.alloc(Number(b), 120);
    const t0 = performance.now();
    for (let i = 0; i < Number(a); i++) for (const c of wss.clients) c.send(msg, { binary: true });
    console.log(JSON.stringify({ publishMs: performance.now() - t0 }));
  }
});
`;

// ---- clients (child processes) ----------------------------------------------------------------

function upgradeRequest(host: string, port: number): Uint8Array {
  return new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
}

/** A masked binary frame of n bytes of "x". */
function clientFrame(n: number): Uint8Array {
  const hb = n < 126 ? 2 : 4;
  const f = new Uint8Array(hb + 4 + n);
  f[0] = 0x82;
  if (n < 126) f[1] = 0x80 | n;
  else {
    f[1] = 0x80 | 126;
    f[2] = n >> 8;
    f[3] = n & 0xff;
  }
  f.set(MASK, hb);
  for (let i = 0; i < n; i++) f[hb + 4 + i] = 120 ^ MASK[i & 3]!;
  return f;
}

/**
 * Opens n connections (upgraded unless tcp), 200 connects in flight; then per mode:
 * idle: waits; echo: one message in flight each, counts round trips for `seconds` after a
 * second of warm-up; sub: counts messages (frames of `bytes`) and reports first and last
 * arrival once `expect` per connection have come (or on "report").
 */
async function client(mode: string, host: string, port: number, n: number, bytes: number, seconds: number, expectEach: number, tcp: boolean): Promise<void> {
  const request = upgradeRequest(host, port);
  const msg = clientFrame(bytes);
  const frameBytes = (bytes < 126 ? 2 : 4) + bytes; // what the server sends back: unmasked
  let upgraded = 0;
  let failed = 0;
  let counting = false;
  let roundTrips = 0;
  let all = 0;
  let firstAt = 0;
  let lastAt = 0;
  let delivered = 0;
  const pending = new Int32Array(n); // bytes of the current frame(s) received; -1 before the 101
  const sockets: import("bun").Socket<number>[] = [];
  const onUpgraded = (s: import("bun").Socket<number>) => {
    upgraded++;
    if (mode === "echo") s.write(msg);
  };
  const handlers = {
    binaryType: "uint8array" as const,
    open(s: import("bun").Socket<number>) {
      if (!tcp) s.write(request);
      else onUpgraded(s);
    },
    data(s: import("bun").Socket<number>, d: Uint8Array) {
      const i = s.data;
      let got = pending[i]!;
      let at = 0;
      if (got < 0) {
        // Waiting for the 101's blank line (it arrives in one read on loopback).
        const text = Buffer.from(d.buffer, d.byteOffset, d.length).toString("latin1");
        const end = text.indexOf("\r\n\r\n");
        if (end < 0 || !text.startsWith("HTTP/1.1 101")) {
          failed++;
          s.end();
          return;
        }
        at = end + 4;
        got = 0;
        onUpgraded(s);
      }
      got += d.length - at;
      if (mode === "echo") {
        while (got >= frameBytes) {
          got -= frameBytes;
          all++;
          if (counting) roundTrips++;
          s.write(msg);
        }
      } else if (mode === "sub") {
        let k = 0;
        while (got >= frameBytes) {
          got -= frameBytes;
          k++;
        }
        if (k > 0) {
          const now = performance.timeOrigin + performance.now();
          if (firstAt === 0) firstAt = now;
          lastAt = now;
          delivered += k;
          if (delivered === expectEach * n) console.log(JSON.stringify({ delivered, firstAt, lastAt }));
        }
      }
      pending[i] = got;
    },
    close() {},
    error() {},
  };
  pending.fill(tcp ? 0 : -1);
  for (let i = 0; i < n; i += 200) {
    const batch: Promise<void>[] = [];
    for (let k = i; k < Math.min(n, i + 200); k++) {
      batch.push(
        Bun.connect<number>({ hostname: host, port, data: k, socket: handlers }).then(
          (s) => {
            s.setNoDelay(true);
            sockets.push(s);
          },
          () => {
            failed++;
          },
        ),
      );
    }
    await Promise.all(batch);
  }
  const deadline = Date.now() + 120_000;
  while (upgraded + failed < n && Date.now() < deadline) await Bun.sleep(20);
  console.log(JSON.stringify({ connected: upgraded, failed, all }));
  if (mode === "echo") {
    await Bun.sleep(1000); // warm-up
    counting = true;
    const t0 = performance.now();
    await Bun.sleep(seconds * 1000);
    counting = false;
    console.log(JSON.stringify({ roundTrips, seconds: (performance.now() - t0) / 1000, all }));
  }
  for await (const line of console) {
    if (line.trim() === "report") console.log(JSON.stringify({ delivered, firstAt, lastAt }));
  }
}

// ---- orchestration ----------------------------------------------------------------------------

/** The soft limit of open files of this process (what each child gets). */
function nofile(): number {
  const r = Bun.spawnSync(["sh", "-c", "ulimit -n"]);
  return Number(r.stdout.toString().trim()) || 1024;
}

function serverCmd(kind: Kind, host: string, wsFile: string, subscribe = false): string[] {
  if (kind === "ws") return ["node", "--expose-gc", wsFile, host, join(ROOT, "node_modules", "ws")];
  return [process.execPath, import.meta.path, "--role", "server", kind, host, "0", "0", subscribe ? "1" : "0"];
}

function clientCmd(mode: string, host: string, port: number, n: number, bytes: number, seconds: number, expectEach: number, tcp: boolean): string[] {
  return [process.execPath, import.meta.path, "--role", "client", mode, host, String(port), String(n), String(bytes), String(seconds), String(expectEach), tcp ? "1" : "0"];
}

function spawn(cmd: string[]): Child {
  return new Child(cmd);
}

/** Per idle connection: RSS growth and RssAnon growth, in bytes. */
interface IdleResult {
  rss: number;
  anon: number;
}

/** Polls the server's report until it holds `n` connections (60 s at most); returns the last report. */
async function memWhen(server: Child, n: number): Promise<{ rss: number; anon: number; connections: number }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    server.send("mem");
    const m = await server.next();
    if (m.connections === n || Date.now() > deadline) return m;
    await Bun.sleep(200);
  }
}

/**
 * Idle memory per connection of n connections. warm = 0: the issue's plain measure, from
 * before the server listened. warm > 0: the server first accepts (and upgrades) `warm`
 * connections that then close, and the baseline is taken after that, so one-time costs
 * (code paged in and compiled, pools and heap grown once) are not counted per connection;
 * every server gets the same warm-up.
 */
async function idle(kind: Kind, host: string, n: number, wsFile: string, warm = 0): Promise<IdleResult> {
  const server = spawn(serverCmd(kind, host, wsFile));
  let client: Child | null = null;
  try {
    let base = await server.next();
    const { port } = await server.next();
    if (warm > 0) {
      const w = spawn(clientCmd("idle", host, port, warm, 32, 0, 0, isTcp(kind)));
      try {
        const done = await w.next(120_000);
        if (done.connected !== warm) throw new Error(`${kind}: warm-up: only ${done.connected} of ${warm} connections upgraded`);
        await memWhen(server, warm);
      } finally {
        await w.stop();
      }
      const after = await memWhen(server, 0);
      if (after.connections !== 0) throw new Error(`${kind}: warm-up connections not closed (${after.connections} left)`);
      await Bun.sleep(500);
      server.send("mem");
      base = await server.next();
    }
    client = spawn(clientCmd("idle", host, port, n, 32, 0, 0, isTcp(kind)));
    const done = await client.next(300_000);
    if (done.connected !== n) throw new Error(`${kind}: only ${done.connected} of ${n} connections upgraded (${done.failed} failed); check ulimit -n`);
    await memWhen(server, n);
    await Bun.sleep(500); // allocations of the accept burst settle; measure again
    server.send("mem");
    const after = await server.next();
    if (after.connections !== n) throw new Error(`${kind}: server holds ${after.connections} of ${n}`);
    return { rss: (after.rss - base.rss) / n, anon: (after.anon - base.anon) / n };
  } finally {
    if (client) await client.stop();
    await server.stop();
  }
}

/** One echo measurement: round trips per second at the clients, and the server's CPU per round trip (µs). */
async function echo(kind: Kind, host: string, n: number, bytes: number, seconds: number, wsFile: string): Promise<{ rate: number; cpuUs: number }> {
  const server = spawn(serverCmd(kind, host, wsFile));
  let client: Child | null = null;
  try {
    await server.next();
    const { port } = await server.next();
    client = spawn(clientCmd("echo", host, port, n, bytes, seconds, 0, false));
    const c = await client.next(120_000);
    if (c.connected !== n) throw new Error(`${kind}: ${c.connected} of ${n} upgraded`);
    const cpu0 = cpuMs(server.proc.pid);
    const r = await client.next(60_000 + seconds * 2000);
    // The server's CPU from the clients' start to their report, over the round trips in
    // between: the steadier figure where client and server share the cores.
    const cpuUs = ((cpuMs(server.proc.pid) - cpu0) * 1000) / (r.all - c.all);
    return { rate: r.roundTrips / r.seconds, cpuUs };
  } finally {
    if (client) await client.stop();
    await server.stop();
  }
}

/** Subscribers over `procs` server processes (reusePort on one port; ws: one port each) and as many client processes. */
async function publish(kind: Kind, host: string, n: number, messages: number, bytes: number, wsFile: string, perProcess: number): Promise<{ rate: number; publishMs: number }> {
  const procs = Math.ceil(n / perProcess);
  const servers: Child[] = [];
  const clients: Child[] = [];
  try {
    const ports: number[] = [];
    for (let p = 0; p < procs; p++) {
      // Each server process on its own port, with its own client process: the subscribers of
      // one server are known to be that many (reusePort would spread them unevenly).
      const server = spawn(serverCmd(kind, host, wsFile, true));
      servers.push(server);
      await server.next();
      ports.push((await server.next()).port);
    }
    for (let p = 0; p < procs; p++) {
      const share = Math.floor(n / procs) + (p < n % procs ? 1 : 0);
      const c = spawn(clientCmd("sub", host, ports[p]!, share, bytes, 0, messages, false));
      clients.push(c);
      const r = await c.next(300_000);
      if (r.connected !== share) throw new Error(`${kind}: ${r.connected} of ${share} subscribers upgraded`);
    }
    await Bun.sleep(500);
    for (const s of servers) s.send(`publish ${messages} ${bytes}`);
    let publishMs = 0;
    for (const s of servers) publishMs = Math.max(publishMs, (await s.next(120_000)).publishMs);
    let first = Infinity;
    let last = 0;
    let delivered = 0;
    for (const c of clients) {
      const r = await c.next(120_000);
      first = Math.min(first, r.firstAt);
      last = Math.max(last, r.lastAt);
      delivered += r.delivered;
    }
    if (delivered !== n * messages) throw new Error(`${kind}: ${delivered} of ${n * messages} deliveries`);
    return { rate: delivered / ((last - first) / 1000), publishMs };
  } finally {
    for (const c of clients) await c.stop();
    for (const s of servers) await s.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number, d = 0) => x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const range = (xs: number[], d = 0) => (xs.length > 1 ? ` (${fmt(Math.min(...xs), d)}-${fmt(Math.max(...xs), d)})` : "");

async function main(): Promise<void> {
  const known = ["--only", "--servers", "--quick", "--idle", "--warmup", "--echo", "--seconds", "--bytes", "--publish", "--messages", "--rounds", "--help"];
  for (const a of args) {
    if (a.startsWith("--") && !known.includes(a)) {
      console.error(`websocket bench: unknown flag ${a}; accepted: ${known.join(", ")}`);
      process.exit(2);
    }
  }
  if (args.includes("--help")) {
    console.log("usage: bun bench/websocket.ts [--only idle,echo,publish] [--servers myriad,bun,ws] [--quick] [--idle 10000,19000] [--warmup 5000] [--echo 100,1000] [--seconds 5] [--bytes 32] [--publish 5000,50000] [--messages 100] [--rounds 3]");
    return;
  }
  const quick = args.includes("--quick");
  const flag = (name: string, dflt: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1]! : dflt;
  };
  const ints = (name: string, dflt: string) =>
    flag(name, dflt)
      .split(",")
      .map((v) => {
        const n = Number(v.replace(/k$/, "000"));
        if (!Number.isInteger(n) || n < 1) {
          console.error(`websocket bench: ${name} takes positive integers, got ${v}`);
          process.exit(2);
        }
        return n;
      });
  const only = flag("--only", "idle,echo,publish").split(",");
  const kinds = flag("--servers", "myriad,bun,ws").split(",") as Kind[];
  const rounds = ints("--rounds", quick ? "1" : "3")[0]!;
  const seconds = ints("--seconds", quick ? "2" : "5")[0]!;
  const bytes = ints("--bytes", "32")[0]!;
  const messages = ints("--messages", "100")[0]!;
  const warmup = flag("--warmup", "5000") === "0" ? 0 : ints("--warmup", "5000")[0]!;
  const limit = nofile();
  const perProcess = Math.min(19_000, limit - Math.min(1024, Math.max(32, Math.floor(limit / 64))) - 100);
  const dir = mkdtempSync(join(tmpdir(), "myriad-ws-bench-"));
  const wsFile = join(dir, "ws-server.cjs");
  writeFileSync(wsFile, WS_SERVER);
  // Each kind listens on its own loopback address: TIME_WAIT of one run never starves the next of ports.
  const hostOf = (k: Kind) => `127.0.0.${({ myriad: 2, bun: 3, ws: 4, "myriad-tcp": 5, "raw-ws": 6, "raw-tcp": 7 })[k]}`;
  const out: string[] = [];
  const say = (line = "") => {
    out.push(line);
    console.log(line);
  };
  try {
    if (only.includes("idle")) {
      const variants = warmup > 0 ? [0, warmup] : [0];
      for (const n of ints("--idle", quick ? "2000" : "10000,19000")) {
        const idleKinds: Kind[] = [...kinds, "myriad-tcp", "raw-tcp"];
        for (const warm of variants) {
          const per: Record<string, IdleResult[]> = {};
          for (let r = 0; r < rounds; r++) {
            for (const k of idleKinds) {
              console.error(`websocket bench: idle, ${k}, ${n} connections${warm > 0 ? `, after a warm-up of ${warm}` : ""}, round ${r + 1}/${rounds} ...`);
              (per[k] ??= []).push(await idle(k, hostOf(k), n, wsFile, warm));
            }
          }
          for (const what of ["rss", "anon"] as const) {
            const title = what === "rss" ? "userland memory (RSS growth)" : "private anonymous memory (RssAnon growth)";
            const from = warm === 0 ? "from before listening" : `from after a warm-up of ${fmt(warm)} connections opened and closed`;
            say(`\nidle ${title} per connection, ${fmt(n)} idle connections, ${from} (median of ${rounds}, range)`);
            const med = (k: string) => median(per[k]!.map((x) => x[what]));
            for (const k of idleKinds) {
              const xs = per[k]!.map((x) => x[what]);
              const m = med(k);
              const vsBun = per.bun ? ` ${(m / med("bun")).toFixed(2)}x Bun.serve` : "";
              const vsTcp = k === "myriad-tcp" ? "" : ` ${(m / med("myriad-tcp")).toFixed(2)}x myriad TCP`;
              const vsRaw = ` ${(m / med("raw-tcp")).toFixed(2)}x raw-tcp`;
              say(`  ${k.padEnd(11)} ${fmt(m).padStart(7)} B${range(xs)}${k === "raw-tcp" ? "" : `  ->${vsBun}${vsTcp}${vsRaw}`}`);
            }
          }
        }
      }
    }
    if (only.includes("echo")) {
      // raw-ws, the floor (rawWebSocketEcho), beside myriad: how much of the gap to Bun.serve is Bun.listen's.
      const echoKinds: Kind[] = kinds.includes("myriad") ? [...kinds, "raw-ws"] : kinds;
      for (const n of ints("--echo", quick ? "100" : "100,1000")) {
        const per: Record<string, number[]> = {};
        const cpu: Record<string, number[]> = {};
        for (let r = 0; r < rounds; r++) {
          for (const k of echoKinds) {
            console.error(`websocket bench: echo, ${k}, ${n} connections, ${seconds} s, round ${r + 1}/${rounds} ...`);
            const e = await echo(k, hostOf(k), n, bytes, seconds, wsFile);
            (per[k] ??= []).push(e.rate);
            (cpu[k] ??= []).push(e.cpuUs);
          }
        }
        say(`\necho, ${fmt(n)} connections, ${bytes}-byte messages, one in flight each, ${seconds} s (messages/s, median of ${rounds}, range)`);
        for (const k of echoKinds) {
          const m = median(per[k]!);
          const vsRaw = per["raw-ws"] && k !== "raw-ws" ? ` ${(m / median(per["raw-ws"])).toFixed(2)}x raw-ws` : "";
          say(`  ${k.padEnd(11)} ${fmt(m).padStart(9)}${range(per[k]!)}${per.bun ? `  -> ${(m / median(per.bun)).toFixed(2)}x Bun.serve` : ""}${vsRaw}`);
        }
        // Per round, as the servers alternate within a round (the machine's load shifts between rounds).
        if (per.bun && per.myriad) say(`  myriad / Bun.serve per round: ${per.myriad.map((x, i) => (x / per.bun![i]!).toFixed(2)).join(", ")}`);
        say(`  server CPU per round trip, µs (median of ${rounds}, range; lower is better):`);
        for (const k of echoKinds) {
          const m = median(cpu[k]!);
          say(`  ${k.padEnd(11)} ${fmt(m, 2).padStart(9)}${range(cpu[k]!, 2)}${cpu.bun ? `  -> ${(m / median(cpu.bun)).toFixed(2)}x Bun.serve` : ""}${cpu["raw-ws"] && k !== "raw-ws" ? ` ${(m / median(cpu["raw-ws"])).toFixed(2)}x raw-ws` : ""}`);
        }
      }
    }
    if (only.includes("publish")) {
      for (const n of ints("--publish", quick ? "1000" : "5000,50000")) {
        const per: Record<string, { rate: number; publishMs: number }[]> = {};
        const procs = Math.ceil(n / perProcess);
        for (let r = 0; r < rounds; r++) {
          for (const k of kinds) {
            console.error(`websocket bench: publish, ${k}, ${n} subscribers over ${procs} server process(es), ${messages} messages, round ${r + 1}/${rounds} ...`);
            (per[k] ??= []).push(await publish(k, hostOf(k), n, messages, bytes, wsFile, perProcess));
          }
        }
        say(`\npublish burst: ${messages} messages of ${bytes} B to ${fmt(n)} subscribers${procs > 1 ? ` (${procs} server processes of ~${fmt(Math.ceil(n / procs))} each, publishing at once)` : ""}; deliveries/s at the clients, first to last (median of ${rounds}, range); the publish calls' own time`);
        for (const k of kinds) {
          const rates = per[k]!.map((x) => x.rate);
          const m = median(rates);
          say(`  ${k.padEnd(11)} ${fmt(m).padStart(10)}/s${range(rates)}  publish calls ${fmt(median(per[k]!.map((x) => x.publishMs)), 1)} ms${per.bun ? `  -> ${(m / median(per.bun.map((x) => x.rate))).toFixed(2)}x Bun.serve` : ""}`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args[0] === "--role") {
  if (args[1] === "server") await bunServer(args[2] as Kind, args[3]!, args[4] === "1", Number(args[5] ?? 0), args[6] === "1");
  else if (args[1] === "client") {
    await client(args[2]!, args[3]!, Number(args[4]), Number(args[5]), Number(args[6]), Number(args[7]), Number(args[8]), args[9] === "1");
  } else throw new Error(`unknown role ${args[1]}`);
} else {
  await main();
}
