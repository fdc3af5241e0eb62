/**
 * Burst fan-out: one message after another published to every subscriber in one burst,
 * deliveries per second counted at the clients, first byte to last (issue 13).
 *
 *   bun bench/fanout.ts [--subscribers 5000] [--messages 100] [--bytes 32] [--client-procs 4]
 *                       [--rounds 3] [--bursts 3] [--only myriad,bun-ws,loop]
 *
 * Servers, each in its own process, in turns (myriad, bun-ws, loop, myriad, ...) --rounds
 * times, each turn with fresh connections and --bursts bursts:
 *   myriad  createServer (raw codec) and --messages calls of server.broadcast(msg);
 *   bun-ws  Bun.serve with a websocket handler: every connection upgrades and subscribes to
 *           one topic, then --messages calls of server.publish(topic, msg) (uWebSockets'
 *           publish: binary frames, 2-byte header);
 *   loop    Bun.listen and, per message, socket.write(msg) on every socket: one send per
 *           message per subscriber, what a framework without batching does.
 * The clients (--client-procs processes, raw Bun.connect sockets for all three, the
 * WebSocket upgrade done by hand) count bytes; each reports the time its first byte arrived
 * and the time its last one did, on the shared clock (performance.timeOrigin + now()).
 * deliveries/s = subscribers × messages / (latest last − earliest first). Also shown: how
 * long the publishing calls took in the server, and the server's CPU time per delivery
 * (from /proc/<pid>/stat, 10 ms resolution), steadier than a rate on a shared machine.
 * The table gives each server's median over all its bursts with the min–max.
 */
import { Child } from "./lib/child.ts";
import { cpuMs, intFlag, median } from "./lib/measure.ts";

type Kind = "myriad" | "bun-ws" | "loop";
const KINDS: Kind[] = ["myriad", "bun-ws", "loop"];
const TOPIC = "t";
const WS_HEADER_BYTES = 2; // a server frame of <= 125 bytes: FIN/opcode byte + length byte

const args = process.argv.slice(2);

function now(): number {
  return performance.timeOrigin + performance.now();
}

async function lines(onLine: (line: string) => void): Promise<void> {
  for await (const line of console) onLine(line.trim());
}

function reply(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// ---- server role -------------------------------------------------------------------------

async function server(kind: Kind): Promise<void> {
  let count: () => number;
  let publish: (msg: Uint8Array) => void;
  if (kind === "myriad") {
    const { createServer } = await import("../src/reactor/index.ts");
    const srv = await createServer({ hostname: "127.0.0.1", port: 0, measureLatency: false, handler: { message() {} } });
    count = () => srv.connections;
    publish = (msg) => void srv.broadcast(msg);
    reply({ port: srv.port });
  } else if (kind === "bun-ws") {
    let open = 0;
    const srv = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req, s) {
        if (s.upgrade(req)) return undefined;
        return new Response("upgrade only", { status: 400 });
      },
      websocket: {
        open(ws) {
          ws.subscribe(TOPIC);
          open++;
        },
        message() {},
        close() {
          open--;
        },
      },
    });
    count = () => open;
    publish = (msg) => void srv.publish(TOPIC, msg);
    reply({ port: srv.port });
  } else {
    const sockets = new Set<import("bun").Socket<undefined>>();
    const l = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        binaryType: "uint8array",
        open: (s) => void sockets.add(s),
        close: (s) => void sockets.delete(s),
        data() {},
        error() {},
      },
    });
    count = () => sockets.size;
    publish = (msg) => {
      for (const s of sockets) s.write(msg);
    };
    reply({ port: l.port });
  }
  await lines((line) => {
    const [cmd, a, b] = line.split(" ");
    if (cmd === "count") return reply({ count: count() });
    if (cmd === "go") {
      const messages = Number(a);
      const msg = new Uint8Array(Number(b)).fill(0x6d);
      const t0 = performance.now();
      for (let i = 0; i < messages; i++) publish(msg);
      reply({ publishMs: performance.now() - t0 });
    }
  });
}

// ---- client role -------------------------------------------------------------------------

async function client(port: number, n: number, ws: boolean): Promise<void> {
  const upgrade = new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  const END = "\r\n\r\n";
  let ready = 0;
  let total = 0;
  let expect = Infinity;
  let first = 0;
  let reported = false;
  const head: string[] = new Array(n).fill("");
  const upgraded = new Uint8Array(n);
  const count = (bytes: number): void => {
    if (total === 0) first = now();
    total += bytes;
    if (!reported && total >= expect) {
      reported = true;
      reply({ first, last: now(), bytes: total });
    }
  };
  const sockets: import("bun").Socket<number>[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(n, i + 200); k++) {
      batch.push(
        Bun.connect<number>({
          hostname: "127.0.0.1",
          port,
          data: k,
          socket: {
            binaryType: "uint8array",
            open(s) {
              if (ws) s.write(upgrade);
              else ready++;
            },
            data(s, d) {
              if (!ws || upgraded[s.data] === 1) return count(d.length);
              // The upgrade response, then maybe frames in the same read.
              const text = head[s.data] + Buffer.from(d).toString("latin1");
              const end = text.indexOf(END);
              if (end < 0) return void (head[s.data] = text);
              if (!text.startsWith("HTTP/1.1 101")) throw new Error(`no upgrade: ${text.slice(0, 80)}`);
              upgraded[s.data] = 1;
              head[s.data] = "";
              ready++;
              const rest = text.length - end - END.length;
              if (rest > 0) count(rest);
            },
            error() {},
          },
        }).then((s) => sockets.push(s)),
      );
    }
    await Promise.all(batch);
  }
  for (let i = 0; i < 20_000 && ready < n; i++) await Bun.sleep(5);
  reply({ ready });
  await lines((line) => {
    const [cmd, a] = line.split(" ");
    if (cmd === "reset") {
      total = 0;
      first = 0;
      reported = false;
      expect = Number(a);
      reply({ reset: true });
    }
  });
}

// ---- parent ------------------------------------------------------------------------------

interface Opts {
  subscribers: number;
  messages: number;
  bytes: number;
  clientProcs: number;
  rounds: number;
  bursts: number;
  only: Kind[];
}

interface Burst {
  rate: number;
  publishMs: number;
  cpuNsPerDelivery: number;
}


async function turn(kind: Kind, o: Opts): Promise<Burst[]> {
  const srv = new Child([process.execPath, import.meta.path, "--role", "server", kind]);
  const clients: Child[] = [];
  try {
    const { port } = await srv.next(30_000);
    for (let p = 0; p < o.clientProcs; p++) {
      const share = Math.floor(o.subscribers / o.clientProcs) + (p < o.subscribers % o.clientProcs ? 1 : 0);
      clients.push(new Child([process.execPath, import.meta.path, "--role", "client", String(port), String(share), kind === "bun-ws" ? "ws" : "tcp"]));
    }
    for (const c of clients) {
      const r = await c.next(120_000);
      if (r.ready === undefined) throw new Error(`client: ${JSON.stringify(r)}`);
    }
    for (let i = 0; ; i++) {
      srv.send("count");
      const { count } = await srv.next();
      if (count === o.subscribers) break;
      if (i > 2000) throw new Error(`${kind}: ${count} of ${o.subscribers} subscribers after 20 s`);
      await Bun.sleep(10);
    }
    const perConn = o.messages * (o.bytes + (kind === "bun-ws" ? WS_HEADER_BYTES : 0));
    const out: Burst[] = [];
    for (let b = 0; b < o.bursts; b++) {
      const shares = clients.map((_, p) => Math.floor(o.subscribers / o.clientProcs) + (p < o.subscribers % o.clientProcs ? 1 : 0));
      clients.forEach((c, p) => c.send(`reset ${shares[p]! * perConn}`));
      for (const c of clients) await c.next();
      const cpu0 = cpuMs(srv.proc.pid);
      srv.send(`go ${o.messages} ${o.bytes}`);
      const { publishMs } = await srv.next();
      let first = Infinity;
      let last = 0;
      for (const c of clients) {
        const r = await c.next(60_000);
        first = Math.min(first, r.first);
        last = Math.max(last, r.last);
      }
      const deliveries = o.subscribers * o.messages;
      out.push({
        rate: deliveries / ((last - first) / 1000),
        publishMs,
        cpuNsPerDelivery: ((cpuMs(srv.proc.pid) - cpu0) * 1e6) / deliveries,
      });
    }
    return out;
  } finally {
    for (const c of clients) await c.stop();
    await srv.stop();
  }
}



async function main(): Promise<void> {
  const role = args.indexOf("--role");
  if (role >= 0) {
    const [what, a, b, c] = args.slice(role + 1);
    if (what === "server") return server(a as Kind);
    return client(Number(a), Number(b), c === "ws");
  }
  const known = ["--subscribers", "--messages", "--bytes", "--client-procs", "--rounds", "--bursts", "--only", "--help"];
  for (const a of args) {
    if (a.startsWith("--") && !known.includes(a)) {
      console.error(`unknown flag ${a}; known: ${known.join(" ")}`);
      process.exit(2);
    }
  }
  if (args.includes("--help")) {
    console.log("bun bench/fanout.ts [--subscribers 5000] [--messages 100] [--bytes 32] [--client-procs 4] [--rounds 3] [--bursts 3] [--only myriad,bun-ws,loop]");
    return;
  }
  const onlyAt = args.indexOf("--only");
  const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? "").split(",") : KINDS;
  for (const k of only) {
    if (!KINDS.includes(k as Kind)) {
      console.error(`--only: expected names among ${KINDS.join(",")}, got ${JSON.stringify(k)}`);
      process.exit(2);
    }
  }
  const o: Opts = {
    subscribers: intFlag(args, "--subscribers", 5000),
    messages: intFlag(args, "--messages", 100),
    bytes: intFlag(args, "--bytes", 32),
    clientProcs: intFlag(args, "--client-procs", 4),
    rounds: intFlag(args, "--rounds", 3),
    bursts: intFlag(args, "--bursts", 3),
    only: only as Kind[],
  };
  const results = new Map<Kind, Burst[]>();
  for (let r = 0; r < o.rounds; r++) {
    for (const kind of o.only) {
      const bursts = await turn(kind, o);
      results.set(kind, [...(results.get(kind) ?? []), ...bursts]);
      console.error(`round ${r + 1} ${kind}: ${bursts.map((b) => Math.round(b.rate).toLocaleString("en-US")).join(", ")} deliveries/s`);
    }
  }
  console.log(
    `${o.subscribers} subscribers x ${o.messages} messages of ${o.bytes} B in one burst; ${o.clientProcs} client processes; ` +
      `${o.rounds} rounds x ${o.bursts} bursts; median (min-max)`,
  );
  console.log("server   deliveries/s                       publish calls ms   server CPU ns/delivery");
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  for (const [kind, bs] of results) {
    const rates = bs.map((b) => b.rate);
    console.log(
      `${kind.padEnd(8)} ${`${fmt(median(rates))} (${fmt(Math.min(...rates))}-${fmt(Math.max(...rates))})`.padEnd(34)} ` +
        `${median(bs.map((b) => b.publishMs)).toFixed(1).padStart(16)}   ${median(bs.map((b) => b.cpuNsPerDelivery)).toFixed(0).padStart(10)}`,
    );
  }
  const m = results.get("myriad");
  const w = results.get("bun-ws");
  if (m && w) {
    const ratios = m.map((b, i) => b.rate / (w[i] ?? w[0]!).rate);
    console.log(`myriad / bun-ws: ${(median(m.map((b) => b.rate)) / median(w.map((b) => b.rate))).toFixed(2)}x (per-burst ratios ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`);
  }
}

await main();
process.exit(0);
