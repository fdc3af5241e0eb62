/**
 * What a connection costs the server's JS heap: Bun's own socket object and nothing else.
 * No closure, Map entry or object per connection, even with timeouts armed on the wheel and
 * a partial frame held per connection (those live in typed arrays and pooled segments).
 * The clients run in a child process so that their objects are not in this heap.
 */
import { afterAll, expect, test } from "bun:test";
import { heapStats } from "bun:jsc";
import type { SegmentPool } from "../src/conn-table/index.ts";
import { createServer, type Server } from "../src/reactor/index.ts";
import { until } from "./helpers/net.ts";

const children: Array<ReturnType<typeof Bun.spawn>> = [];
const servers: Server[] = [];
afterAll(async () => {
  for (const c of children) {
    c.kill("SIGKILL");
    await c.exited;
  }
  for (const s of servers) await s.stop({ graceful: false });
});

/** Opens n connections to port in a child process; each sends `greeting`. Resolves once all are open. */
async function clientsInChild(port: number, n: number, greeting: string): Promise<ReturnType<typeof Bun.spawn>> {
  const script = `
    const socks = [];
    for (let i = 0; i < ${n}; i++) {
      socks.push(await Bun.connect({ hostname: "127.0.0.1", port: ${port}, socket: { data() {}, close() {}, error() {} } }));
    }
    for (const s of socks) s.write(${JSON.stringify(greeting)});
    console.log("open");
    await Bun.stdin.text(); // until the parent closes stdin or kills us
  `;
  const child = Bun.spawn([process.execPath, "-e", script], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  children.push(child);
  const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
  const first = await Promise.race([reader.read(), Bun.sleep(20_000).then(() => null)]);
  if (first === null || first.done) throw new Error(`client child ${child.pid} did not open its ${n} connections`);
  reader.releaseLock();
  return child;
}

async function stopChild(child: ReturnType<typeof Bun.spawn>): Promise<void> {
  child.kill("SIGKILL");
  await child.exited;
}

function objectCounts(): Record<string, number> {
  Bun.gc(true);
  return { ...(heapStats().objectTypeCounts as Record<string, number>) };
}

function refsHeld(server: Server): number {
  const pool = (server as unknown as { pool?: SegmentPool }).pool;
  if (pool === undefined) throw new Error("reactor internals changed: the server's SegmentPool is no longer its `pool` field");
  const st = pool.stats();
  return st.segmentsInUse + st.fallbackBuffers;
}

test("per connection the heap holds Bun's socket and no other object (timeouts armed, a partial frame held)", async () => {
  const n = 1500;
  let opened = 0;
  let closed = 0;
  const server = await createServer({
    protocol: "lines",
    maxConnections: 4000,
    idleTimeoutMs: 60_000,
    handshakeTimeoutMs: 60_000,
    handler: {
      open() {
        opened++;
      },
      message(conn, line: Uint8Array) {
        conn.write(line);
        conn.write("\n");
      },
      close() {
        closed++;
      },
    },
  });
  servers.push(server);
  // Warm-up: every code path once (JIT, lazily made wheel and segment chunks), then back to zero.
  const warm = await clientsInChild(server.port, 20, "hello\npart");
  await until(() => server.connections === 20 && refsHeld(server) === 20, 10_000, "the warm-up connections");
  await stopChild(warm);
  await until(() => server.connections === 0, 10_000, "the warm-up connections to close");

  // The warm-up's closed sockets may outlive their close by a tick or two: take the baseline
  // once the socket count has settled, or a late collection would be subtracted from `during`.
  let before = objectCounts();
  for (let i = 0; i < 20; i++) {
    await Bun.sleep(25);
    const again = objectCounts();
    const settled = (again.TCPSocket ?? 0) === (before.TCPSocket ?? 0);
    before = again;
    if (settled) break;
  }
  const child = await clientsInChild(server.port, n, "hello world\npartial line");
  await until(() => server.connections === n, 20_000, `${n} connections`);
  // Every connection had one frame handled and holds the start of the next.
  await until(() => server.stats().framesIn === 20 + n && refsHeld(server) === n, 20_000, "a partial line held per connection");
  const during = objectCounts();
  const grown = Object.entries(during)
    .map(([type, count]) => [type, count - (before[type] ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .sort((a, b) => b[1] - a[1]);
  console.log(`heap objects grown with ${n} connections:`, grown.slice(0, 6).map(([t, d]) => `${t} +${d}`).join(", "));
  expect(during.TCPSocket! - (before.TCPSocket ?? 0)).toBeGreaterThanOrEqual(n); // the measurement sees sockets
  // Anything made per connection would grow by n; JIT structures and code blocks grow by a fixed ~100.
  const perConnection = grown.filter(([type, d]) => type !== "TCPSocket" && d >= n / 4).map(([type, d]) => `${type} +${d}`);
  expect(perConnection).toEqual([]);
  expect(opened).toBe(20 + n);

  // Closed connections leave nothing behind: the sockets array lets go of Bun's sockets.
  await stopChild(child);
  await until(() => server.connections === 0, 20_000, "the connections to close");
  expect(closed).toBe(20 + n);
  expect(refsHeld(server)).toBe(0);
  const after = objectCounts();
  expect((after.TCPSocket ?? 0) - (before.TCPSocket ?? 0)).toBeLessThan(n / 10);
}, 60_000);
