/**
 * Echo round trips per second: myriad vs raw Bun.listen vs Node `net`, same client, same run.
 *
 *   bun bench/echo.ts [--quick] [--connections 100,1000] [--seconds 5] [--bytes 32]
 *                     [--client-procs 1] [--rounds 3] [--only myriad,bun,node]
 *
 * Each server runs in its own process (Node's under `node`); the client runs in
 * --client-procs other processes. Every connection keeps one message of --bytes in flight:
 * send, wait for the whole echo, send again. After a warm-up second the clients count
 * completed round trips for --seconds. myriad runs the raw codec with an echo handler
 * (conn.write(frame)); raw Bun and Node write back what they read. Goal (issue 3): myriad
 * >= 0.95x raw Bun. Each server process is stopped by pid. Servers take turns on distinct
 * 127.0.0.x addresses so that one run's TIME_WAIT never starves the next of ports.
 * The servers take turns --rounds times (bun, myriad, node, bun, myriad, ...) and the table
 * shows each one's median, so that a burst of other load hits every server alike.
 * Besides round trips/s the table shows the server's CPU time per round trip (from
 * /proc/<pid>/stat), which stays meaningful when other work shares the machine.
 * Env MYRIAD_OPTS='{"measureLatency":false}' passes extra ServerOptions to myriad's server.
 *
 *   bun bench/echo.ts --micro [--quick]
 *
 * In-process instead: the server's per-event userland cost, ns per data event, without
 * sockets or syscalls. It drives the server's Bun callbacks (open, data) with a stand-in
 * socket whose write() takes every byte, for handlers that write 0, 1 or 16 small
 * replies (bytes or strings), echo a 32-byte read, or echo from an async function; each
 * with measureLatency on and off, best of 5; plus the cost of one performance.now().
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Child } from "./lib/child.ts";
import { cpuMs } from "./lib/measure.ts";

const args = process.argv.slice(2);

async function bunServer(kind: string, host: string): Promise<void> {
  if (kind === "myriad") {
    const { createServer } = await import("../src/reactor/index.ts");
    const server = await createServer({
      hostname: host,
      port: 0,
      ...JSON.parse(process.env.MYRIAD_OPTS ?? "{}"),
      handler: {
        message(conn, frame: Uint8Array) {
          conn.write(frame);
        },
      },
    });
    console.log(JSON.stringify({ port: server.port }));
  } else {
    const listener = Bun.listen({
      hostname: host,
      port: 0,
      socket: {
        binaryType: "uint8array",
        data(s, d) {
          s.write(d);
        },
      },
    });
    console.log(JSON.stringify({ port: listener.port }));
  }
  for await (const _ of console); // until the parent kills us
}

const NODE_SERVER = `
const net = require("node:net");
const server = net.createServer((s) => {
  s.setNoDelay(true);
  s.on("data", (d) => s.write(d));
  s.on("error", () => {});
});
server.listen(0, process.argv[2], () => console.log(JSON.stringify({ port: server.address().port })));
`;

/** n connections, one message in flight each; prints {roundTrips, seconds} after warm-up + measure. */
async function client(host: string, port: number, n: number, bytes: number, seconds: number): Promise<void> {
  const msg = new Uint8Array(bytes).fill(120);
  let counting = false;
  let roundTrips = 0;
  let all = 0;
  const pending = new Int32Array(n);
  const sockets: import("bun").Socket<number>[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch: Promise<void>[] = [];
    for (let k = i; k < Math.min(n, i + 200); k++) {
      batch.push(
        Bun.connect<number>({
          hostname: host,
          port,
          data: k,
          socket: {
            binaryType: "uint8array",
            data(s, d) {
              let got = pending[s.data]! + d.length;
              while (got >= bytes) {
                got -= bytes;
                all++;
                if (counting) roundTrips++;
                s.write(msg);
              }
              pending[s.data] = got;
            },
            error() {},
          },
        }).then((s) => {
          s.setNoDelay(true);
          sockets.push(s);
        }),
      );
    }
    await Promise.all(batch);
  }
  for (const s of sockets) s.write(msg);
  await Bun.sleep(1000); // warm-up
  counting = true;
  const t0 = performance.now();
  await Bun.sleep(seconds * 1000);
  counting = false;
  const took = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ roundTrips, seconds: took, all }));
  for (const s of sockets) s.end();
  process.exit(0);
}

type Kind = "myriad" | "bun" | "node";


async function run(kind: Kind, host: string, conns: number, o: Opts, nodeFile: string): Promise<{ rate: number; cpuUsPerRt: number }> {
  const server = new Child(
    kind === "node" ? ["node", nodeFile, host] : [process.execPath, import.meta.path, "--role", "server", kind, host],
  );
  const clients: Child[] = [];
  try {
    const { port } = await server.next();
    const cpu0 = cpuMs(server.proc.pid);
    for (let p = 0; p < o.clientProcs; p++) {
      const share = Math.floor(conns / o.clientProcs) + (p < conns % o.clientProcs ? 1 : 0);
      clients.push(
        new Child([process.execPath, import.meta.path, "--role", "client", host, String(port), String(share), String(o.bytes), String(o.seconds)]),
      );
    }
    let rate = 0;
    let all = 0;
    for (const c of clients) {
      const r = await c.next(60_000 + o.seconds * 2000);
      rate += r.roundTrips / r.seconds;
      all += r.all;
    }
    // Server CPU per round trip: steadier than round trips/s on a machine shared with others.
    return { rate, cpuUsPerRt: ((cpuMs(server.proc.pid) - cpu0) * 1000) / all };
  } finally {
    for (const c of clients) await c.stop();
    await server.stop();
  }
}

interface Opts {
  seconds: number;
  bytes: number;
  clientProcs: number;
}

/** ns per data event for a few handlers, driving the server's callbacks with a stand-in socket. */
async function micro(quick: boolean): Promise<void> {
  const { createServer } = await import("../src/reactor/index.ts");
  const OK = new TextEncoder().encode("+OK\r\n");
  const read = new Uint8Array(32).fill(120);
  type Body = (conn: import("../src/reactor/index.ts").Conn, frame: Uint8Array) => unknown;
  const cases: Array<[string, Body]> = [
    ["no write", () => {}],
    ["1 write of 5 B", (c) => c.write(OK)],
    ["16 writes of 5 B", (c) => {
      for (let i = 0; i < 16; i++) c.write(OK);
    }],
    ['16 writes of "+OK\\r\\n"', (c) => {
      for (let i = 0; i < 16; i++) c.write("+OK\r\n");
    }],
    ["echo 32 B", (c, f) => c.write(f)],
    ["echo 32 B, async handler", async (c, f) => {
      c.write(f);
    }],
  ];
  const n = quick ? 100_000 : 1_000_000;
  console.log(`ns per data event (one 32-byte read, raw codec), best of 5 x ${n} events`);
  console.log("handler                          measureLatency on   off");
  for (const [label, body] of cases) {
    const ns: number[] = [];
    for (const measureLatency of [true, false]) {
      let current: Body = body;
      const server = await createServer({
        hostname: "127.0.0.1",
        port: 0,
        maxConnections: 64,
        measureLatency,
        handler: { message: (c, f: Uint8Array) => current(c, f) as void },
      });
      const s = server as unknown as { onOpen(x: unknown): void; onData(x: unknown, d: Uint8Array): void; onClose(x: unknown): void };
      const sock = {
        data: -1,
        remoteAddress: "127.0.0.1",
        write: (_d: Uint8Array, _o: number, len: number) => len,
        pause() {},
        resume() {},
        end: () => s.onClose(sock),
        terminate: () => s.onClose(sock),
      };
      s.onOpen(sock);
      let best = Infinity;
      for (let r = 0; r < 5; r++) {
        for (let i = 0; i < n / 10; i++) s.onData(sock, read);
        const t0 = performance.now();
        for (let i = 0; i < n; i++) s.onData(sock, read);
        best = Math.min(best, ((performance.now() - t0) * 1e6) / n);
      }
      current = () => {};
      await server.stop({ graceful: false });
      ns.push(best);
    }
    console.log(`${label.padEnd(32)} ${ns[0]!.toFixed(1).padStart(17)} ${ns[1]!.toFixed(1).padStart(5)}`);
  }
  let x = 0;
  const t0 = performance.now();
  for (let i = 0; i < n * 5; i++) x += performance.now();
  console.log(`one performance.now(): ${(((performance.now() - t0) * 1e6) / (n * 5)).toFixed(1)} ns${x > 0 ? "" : " "}`);
}

async function main(): Promise<void> {
  const known = ["--quick", "--connections", "--seconds", "--bytes", "--client-procs", "--rounds", "--only", "--micro", "--help"];
  for (const a of args) {
    if (a.startsWith("--") && !known.includes(a)) {
      console.error(`echo: unknown flag ${a}; accepted: ${known.join(", ")}`);
      process.exit(2);
    }
  }
  if (args.includes("--help")) {
    console.log("usage: bun bench/echo.ts [--quick] [--connections 100,1000] [--seconds 5] [--bytes 32] [--client-procs 1] [--rounds 3] [--only myriad,bun,node]");
    console.log("       bun bench/echo.ts --micro [--quick]   (in-process: ns per data event, no sockets)");
    return;
  }
  const quick = args.includes("--quick") || process.env.BENCH_QUICK === "1";
  if (args.includes("--micro")) return micro(quick);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const posInt = (name: string, dflt: number) => {
    const v = flag(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      console.error(`echo: ${name} takes a positive integer, got ${v}`);
      process.exit(2);
    }
    return n;
  };
  const o: Opts = {
    seconds: posInt("--seconds", quick ? 2 : 5),
    bytes: posInt("--bytes", 32),
    clientProcs: posInt("--client-procs", 1),
  };
  const rounds = posInt("--rounds", quick ? 1 : 3);
  const connList = (flag("--connections") ?? "100,1000").split(",").map(Number);
  if (connList.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error(`echo: --connections takes positive integers separated by commas, got ${flag("--connections")}`);
    process.exit(2);
  }
  const only = (flag("--only") ?? "myriad,bun,node").split(",");
  const kinds = (["bun", "myriad", "node"] as const).filter((k) => only.includes(k));
  const dir = mkdtempSync(join(tmpdir(), "myriad-echo-"));
  const nodeFile = join(dir, "node-echo.cjs");
  writeFileSync(nodeFile, NODE_SERVER);
  const table: { conns: number; kind: Kind; rate: number; cpuUsPerRt: number }[] = [];
  try {
    let ip = 2;
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    for (const conns of connList) {
      const samples = new Map<Kind, { rate: number[]; cpu: number[] }>(kinds.map((k) => [k, { rate: [], cpu: [] }]));
      for (let round = 0; round < rounds; round++) {
        for (const kind of kinds) {
          console.error(`echo: ${kind}, ${conns} connections, ${o.seconds} s, round ${round + 1}/${rounds} ...`);
          const r = await run(kind, `127.0.0.${2 + (ip++ % 200)}`, conns, o, nodeFile);
          samples.get(kind)!.rate.push(r.rate);
          samples.get(kind)!.cpu.push(r.cpuUsPerRt);
        }
      }
      for (const kind of kinds) {
        const s = samples.get(kind)!;
        table.push({ conns, kind, rate: median(s.rate), cpuUsPerRt: median(s.cpu) });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\necho round trips/s (${o.bytes}-byte messages, one in flight per connection, ${o.seconds} s, ${o.clientProcs} client process(es), median of ${rounds})\n`);
  console.log("connections  server   round trips/s   vs raw Bun   server CPU us/rt   vs raw Bun");
  for (const r of table) {
    const bun = table.find((x) => x.conns === r.conns && x.kind === "bun");
    const ratio = bun ? (r.rate / bun.rate).toFixed(2) + "x" : "-";
    const cpuRatio = bun ? (r.cpuUsPerRt / bun.cpuUsPerRt).toFixed(2) + "x" : "-";
    console.log(
      `${String(r.conns).padStart(11)}  ${r.kind.padEnd(7)} ${r.rate.toFixed(0).padStart(15)}   ${ratio.padStart(10)}   ${r.cpuUsPerRt.toFixed(2).padStart(16)}   ${cpuRatio.padStart(10)}`,
    );
  }
  for (const conns of connList) {
    const my = table.find((x) => x.conns === conns && x.kind === "myriad");
    const bun = table.find((x) => x.conns === conns && x.kind === "bun");
    if (my && bun) console.log(`goal at ${conns}: myriad >= 0.95x raw Bun: ${my.rate / bun.rate >= 0.95 ? "met" : "NOT met"} (${(my.rate / bun.rate).toFixed(3)})`);
  }
}

if (args[0] === "--role") {
  if (args[1] === "server") await bunServer(args[2]!, args[3]!);
  else if (args[1] === "client") await client(args[2]!, Number(args[3]), Number(args[4]), Number(args[5]), Number(args[6]));
  else throw new Error(`unknown role ${args[1]}`);
} else {
  await main();
}
