/**
 * The JavaScript of one WebSocket echo in myriad, without the kernel: a real upgraded
 * connection over loopback, then the server's read callback (onData) called directly with a
 * masked binary frame, many times, its socket's write replaced by a counter; beside it, in
 * the same run, raw-ws's loop (bench/websocket.ts rawWebSocketEcho: parse, unmask, frame,
 * one write) over the same frame. ns per message, median of the rounds after the first
 * (the JIT's warm-up). Hot caches: on the wire the same code costs several times this.
 *
 *   bun bench/websocket-path.ts [--bytes 32] [--messages 2000000] [--rounds 5]
 */
import { createServer } from "../src/reactor/index.ts";
import { intFlag, median } from "./lib/measure.ts";

const args = process.argv.slice(2);
for (const a of args) {
  if (a.startsWith("--") && !["--bytes", "--messages", "--rounds"].includes(a)) {
    console.error(`websocket-path: unknown flag ${a}; accepted: --bytes, --messages, --rounds`);
    process.exit(2);
  }
}
const bytes = intFlag(args, "--bytes", 32);
const N = intFlag(args, "--messages", 2_000_000);
const rounds = intFlag(args, "--rounds", 5);
if (bytes > 125) {
  console.error("websocket-path: --bytes takes 1..125 (one 7-bit-length frame)");
  process.exit(2);
}

const MASK = [0x11, 0x22, 0x33, 0x44];
const frame = new Uint8Array(6 + bytes);
frame[0] = 0x82;
frame[1] = 0x80 | bytes;
frame.set(MASK, 2);
for (let i = 0; i < bytes; i++) frame[6 + i] = 120 ^ MASK[i & 3]!;

// myriad: a server, one real upgraded connection, then its read callback driven directly.
const server = await createServer({
  protocol: "websocket",
  hostname: "127.0.0.1",
  port: 0,
  measureLatency: false,
  handler: {
    message(conn, data) {
      conn.send(data);
    },
  },
});
let replied = false;
const client = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() { replied = true; } } });
client.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
const deadline = Date.now() + 10_000;
while (!replied && Date.now() < deadline) await Bun.sleep(5);
if (!replied) throw new Error("websocket-path: the upgrade was not answered");
// Internals on purpose: the reactor's sockets column and its (private) read callback.
const internals = server as unknown as { sockets: ({ write: (b: Uint8Array, o: number, l: number) => number } | undefined)[]; onData(s: unknown, b: Uint8Array): void };
const sock = internals.sockets.find((x) => x != null)!;
let written = 0;
sock.write = (_b, _o, l) => {
  written += l;
  return l;
};

// raw-ws's loop over the same frame, writing to a counter too.
const out = new Uint8Array(1 << 16);
const rawSock = { data: 1, write: (_b: Uint8Array, _o: number, l: number) => ((written += l), l) };
function rawData(s: typeof rawSock, d: Uint8Array): void {
  let p = 0;
  let o = 0;
  while (p + 6 <= d.length) {
    const n = d[p + 1]! & 0x7f;
    const k = p + 2;
    if (k + 4 + n > d.length) break;
    out[o] = 0x82;
    out[o + 1] = n;
    for (let i = 0; i < n; i++) out[o + 2 + i] = d[k + 4 + i]! ^ d[k + (i & 3)]!;
    o += 2 + n;
    p = k + 4 + n;
  }
  if (o > 0 && s.data === 1) s.write(out, 0, o);
}

const per: Record<string, number[]> = { myriad: [], "raw-ws": [] };
for (let r = 0; r < rounds; r++) {
  let t0 = Bun.nanoseconds();
  for (let i = 0; i < N; i++) internals.onData(sock, frame);
  per.myriad!.push((Bun.nanoseconds() - t0) / N);
  t0 = Bun.nanoseconds();
  for (let i = 0; i < N; i++) rawData(rawSock, frame);
  per["raw-ws"]!.push((Bun.nanoseconds() - t0) / N);
}
const expected = 2 * rounds * N * (2 + bytes);
if (written !== expected) throw new Error(`websocket-path: wrote ${written} bytes, expected ${expected}`);
console.log(`per message, ${bytes}-byte binary frames, ${N.toLocaleString("en-US")} per round, median of rounds 2..${rounds} (range):`);
for (const [k, xs] of Object.entries(per)) {
  const rest = xs.slice(1);
  console.log(`  ${k.padEnd(7)} ${median(rest).toFixed(1)} ns (${Math.min(...rest).toFixed(1)}-${Math.max(...rest).toFixed(1)})`);
}
client.end();
await server.stop();
process.exit(0);
