/**
 * Burst fan-out: one message after another published to every subscriber in one burst,
 * deliveries per second counted at the clients, first delivery to last (issue 13).
 *
 *   bun bench/fanout.ts [--subscribers 5000,50000] [--messages 100] [--bytes 32]
 *                       [--client-procs N] [--rounds 3] [--bursts 3] [--loop-bursts N]
 *                       [--per-process N] [--only myriad,bun-ws,loop]
 *
 * Servers of each kind in turns (myriad, bun-ws, loop, myriad, ...) --rounds times, each turn
 * with fresh connections and --bursts bursts (--loop-bursts for the loop, default --bursts:
 * it is ~50x slower, and at 50,000 subscribers one burst of it takes minutes):
 *   myriad  createServer (raw codec) and --messages calls of server.broadcast(msg);
 *   bun-ws  Bun.serve with a websocket handler: every connection upgrades and subscribes to
 *           one topic, then --messages calls of server.publish(topic, msg) (uWebSockets'
 *           publish: binary frames, 2-byte header);
 *   loop    Bun.listen and, per message, socket.write(msg) on every socket: one send per
 *           message per subscriber, what a framework without batching does.
 * Past what one process may hold (ulimit -n, as bench/websocket.ts computes it: at most
 * 19,000; --per-process sets it lower) the subscribers are spread over several server processes of the kind, each on its
 * own port with client processes of its own, and all of them publish the burst at the same
 * moment, as bench/websocket.ts does for its 50,000 row. --client-procs is client processes
 * per server process: default 4 with one server process (the earlier 5,000 runs), 1 with
 * several (as websocket.ts).
 * The clients (raw Bun.connect sockets for all three, the WebSocket upgrade done by hand)
 * check every byte that identifies a message: each subscriber must get exactly the burst's
 * messages, each once, in order (message k of burst b carries k and b; the WebSocket frame
 * header is checked too), or the run fails. Each client reports the arrival of its first
 * delivery and of its last, on the shared clock (performance.timeOrigin + now()).
 * deliveries/s = Σ deliveries / (latest last − earliest first), over all client processes.
 * Also shown: how long the publishing calls took in the servers (the slowest), and the CPU
 * time per delivery of the servers and of the clients, summed over their processes (from
 * /proc/<pid>/stat, 10 ms resolution): steadier than a rate on a shared machine, and it
 * tells whether the clients are the limit.
 * The table gives each server's median over all its bursts with the min–max.
 */
import { Child } from "./lib/child.ts";
import { cpuMs, intFlag, median } from "./lib/measure.ts";

type Kind = "myriad" | "bun-ws" | "loop";
const KINDS: Kind[] = ["myriad", "bun-ws", "loop"];
const TOPIC = "t";
const WS_HEADER_BYTES = 2; // a server frame of <= 125 bytes: FIN/opcode byte + length byte
/** Each kind on its own loopback address: one turn's TIME_WAIT sockets never starve the next of ports. */
const HOST: Record<Kind, string> = { myriad: "127.0.0.6", "bun-ws": "127.0.0.7", loop: "127.0.0.8" };

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

/** Message k of burst b, `bytes` long: k in byte 0, b in byte 1, 0xa5 ^ k in the last byte. */
function message(k: number, b: number, bytes: number): Uint8Array {
  const m = new Uint8Array(bytes).fill(0x6d);
  m[0] = k & 0xff;
  m[1] = b & 0xff;
  m[bytes - 1] = (0xa5 ^ k) & 0xff;
  return m;
}

// ---- server role -------------------------------------------------------------------------

async function server(kind: Kind, host: string): Promise<void> {
  let count: () => number;
  let publish: (msg: Uint8Array) => void;
  if (kind === "myriad") {
    const { createServer } = await import("../src/reactor/index.ts");
    const srv = await createServer({ hostname: host, port: 0, measureLatency: false, handler: { message() {} } });
    count = () => srv.connections;
    publish = (msg) => void srv.broadcast(msg);
    reply({ port: srv.port });
  } else if (kind === "bun-ws") {
    let open = 0;
    const srv = Bun.serve({
      hostname: host,
      port: 0,
      fetch(req, s) {
        if (s.upgrade(req)) return undefined;
        return new Response("upgrade only", { status: 400 });
      },
      websocket: {
        perMessageDeflate: false,
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
      hostname: host,
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
    const [cmd, a, b, c] = line.split(" ");
    if (cmd === "count") return reply({ count: count() });
    if (cmd === "go") {
      const messages = Number(a);
      const msgs = Array.from({ length: messages }, (_, k) => message(k, Number(c), Number(b)));
      const t0 = performance.now();
      for (let i = 0; i < messages; i++) publish(msgs[i]!);
      reply({ publishMs: performance.now() - t0 });
    }
  });
}

// ---- client role -------------------------------------------------------------------------

/**
 * n connections to host:port (upgraded when ws). Per burst ("reset <burst>"), every
 * connection must receive exactly `messages` messages of `bytes` (framed when ws), message k
 * carrying k and the burst; reports {first, last, delivered, bad} once every byte expected
 * has come, bad counting bytes that were not what that place in the stream should hold
 * (a lost, repeated, reordered or extra message makes some).
 */
async function client(host: string, port: number, n: number, ws: boolean, messages: number, bytes: number): Promise<void> {
  const upgrade = new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  const END = "\r\n\r\n";
  const hdr = ws ? WS_HEADER_BYTES : 0;
  const msgLen = hdr + bytes;
  const perConn = messages * msgLen;
  const expect = n * perConn;
  // The checked places of a message: offset in the message, and the byte expected there
  // (-1, -2, -3: message index, burst, 0xa5 ^ index; filled in per message).
  const checkOff: number[] = [];
  const checkVal: number[] = [];
  if (ws) checkOff.push(0, 1), checkVal.push(0x82, bytes);
  checkOff.push(hdr, hdr + 1, hdr + bytes - 1);
  checkVal.push(-1, -2, -3);
  let burst = -1;
  let ready = 0;
  let total = 0;
  let bad = 0;
  let first = 0;
  let reported = false;
  const pos = new Int32Array(n); // bytes of this burst connection i has received
  const head: string[] = new Array(n).fill("");
  const upgraded = new Uint8Array(n);
  const receive = (i: number, d: Uint8Array, from: number): void => {
    const len = d.length - from;
    if (len <= 0) return;
    if (burst < 0) {
      bad += len; // nothing was published yet
      return;
    }
    if (total === 0) first = now();
    const p = pos[i]!;
    const end = p + len;
    if (end > perConn) bad += end - perConn; // more than the burst: a message repeated or extra
    const stop = Math.min(end, perConn);
    for (let k = Math.floor(p / msgLen); k * msgLen < stop; k++) {
      const base = k * msgLen;
      for (let c = 0; c < checkOff.length; c++) {
        const q = base + checkOff[c]!;
        if (q < p || q >= stop) continue;
        const v = checkVal[c]!;
        const want = v >= 0 ? v : v === -1 ? k & 0xff : v === -2 ? burst & 0xff : (0xa5 ^ k) & 0xff;
        if (d[from + q - p] !== want) bad++;
      }
    }
    pos[i] = end;
    total += len;
    if (!reported && total >= expect) {
      reported = true;
      // Every connection got exactly perConn bytes when none got more and the sum is right.
      reply({ first, last: now(), delivered: Math.floor(total / msgLen), bad: bad + (total - expect) });
    }
  };
  const sockets: import("bun").Socket<number>[] = [];
  let failed = 0;
  for (let i = 0; i < n; i += 200) {
    const batch: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(n, i + 200); k++) {
      batch.push(
        Bun.connect<number>({
          hostname: host,
          port,
          data: k,
          socket: {
            binaryType: "uint8array",
            open(s) {
              if (ws) s.write(upgrade);
              else ready++;
            },
            data(s, d) {
              if (!ws || upgraded[s.data] === 1) return receive(s.data, d, 0);
              // The upgrade response, then maybe frames in the same read.
              const text = head[s.data] + Buffer.from(d).toString("latin1");
              const end = text.indexOf(END);
              if (end < 0) return void (head[s.data] = text);
              if (!text.startsWith("HTTP/1.1 101")) throw new Error(`no upgrade: ${text.slice(0, 80)}`);
              upgraded[s.data] = 1;
              ready++;
              const rest = text.length - end - END.length;
              head[s.data] = "";
              if (rest > 0) receive(s.data, d, d.length - rest);
            },
            error() {},
          },
        }).then(
          (s) => void sockets.push(s),
          () => void failed++,
        ),
      );
    }
    await Promise.all(batch);
  }
  for (let i = 0; i < 24_000 && ready + failed < n; i++) await Bun.sleep(5);
  reply({ ready, failed });
  await lines((line) => {
    const [cmd, a] = line.split(" ");
    if (cmd === "reset") {
      // Bytes of the last burst that came after its report: the parent fails on any.
      const late = burst < 0 ? bad : total - expect + bad;
      burst = Number(a);
      total = 0;
      bad = 0;
      first = 0;
      reported = false;
      pos.fill(0);
      reply({ late });
    } else if (cmd === "report") {
      reply({ late: burst < 0 ? bad : total - expect + bad });
    }
  });
}

// ---- parent ------------------------------------------------------------------------------

interface Opts {
  messages: number;
  bytes: number;
  clientProcs: number | null;
  rounds: number;
  bursts: number;
  loopBursts: number;
  only: Kind[];
  perProcess: number;
}

interface Burst {
  rate: number;
  publishMs: number;
  serverNsPerDelivery: number;
  clientNsPerDelivery: number;
}

/** The soft limit of open files of this process (what each child gets). */
function nofile(): number {
  const r = Bun.spawnSync(["sh", "-c", "ulimit -n"]);
  return Number(r.stdout.toString().trim()) || 1024;
}

/** n split into parts shares, the first ones one bigger. */
const split = (n: number, parts: number) => Array.from({ length: parts }, (_, p) => Math.floor(n / parts) + (p < n % parts ? 1 : 0));

const sumCpu = (cs: Child[]) => cs.reduce((t, c) => t + cpuMs(c.proc.pid), 0);

/** Reads each client's answer to reset/report: no byte may have come after a burst was complete. */
async function lateCheck(kind: Kind, clients: Child[]): Promise<void> {
  for (const [i, c] of clients.entries()) {
    const { late } = await c.next();
    if (late !== 0) throw new Error(`${kind}: client ${i}: ${late} bytes wrong or extra after the burst's last message`);
  }
}

async function turn(kind: Kind, n: number, o: Opts): Promise<Burst[]> {
  const procs = Math.ceil(n / o.perProcess);
  const perServer = o.clientProcs ?? (procs === 1 ? 4 : 1);
  const host = HOST[kind];
  const servers: Child[] = [];
  const clients: Child[] = [];
  const clientShares: number[] = [];
  try {
    const shares = split(n, procs);
    const ports: number[] = [];
    for (let p = 0; p < procs; p++) {
      const srv = new Child([process.execPath, import.meta.path, "--role", "server", kind, host]);
      servers.push(srv);
      ports.push((await srv.next(30_000)).port);
    }
    for (let p = 0; p < procs; p++) {
      for (const share of split(shares[p]!, perServer)) {
        clientShares.push(share);
        const cmd = ["--role", "client", host, String(ports[p]), String(share), kind === "bun-ws" ? "ws" : "tcp", String(o.messages), String(o.bytes)];
        clients.push(new Child([process.execPath, import.meta.path, ...cmd]));
      }
    }
    for (const [i, c] of clients.entries()) {
      const r = await c.next(300_000);
      if (r.ready !== clientShares[i]) throw new Error(`${kind}: client ${i}: ${r.ready} of ${clientShares[i]} connected (${r.failed} failed)`);
    }
    for (const [p, srv] of servers.entries()) {
      for (let i = 0; ; i++) {
        srv.send("count");
        const { count } = await srv.next();
        if (count === shares[p]) break;
        if (i > 2000) throw new Error(`${kind}: server ${p}: ${count} of ${shares[p]} subscribers after 20 s`);
        await Bun.sleep(10);
      }
    }
    const deliveries = n * o.messages;
    // Generous: the loop delivers ~50k/s on a loaded machine; the others far faster.
    const waitMs = 120_000 + deliveries / 10;
    const out: Burst[] = [];
    for (let b = 0; b < (kind === "loop" ? o.loopBursts : o.bursts); b++) {
      for (const c of clients) c.send(`reset ${b}`);
      await lateCheck(kind, clients);
      const server0 = sumCpu(servers);
      const client0 = sumCpu(clients);
      for (const srv of servers) srv.send(`go ${o.messages} ${o.bytes} ${b}`);
      let publishMs = 0;
      for (const srv of servers) publishMs = Math.max(publishMs, (await srv.next(waitMs)).publishMs);
      let first = Infinity;
      let last = 0;
      let delivered = 0;
      for (const [i, c] of clients.entries()) {
        const r = await c.next(waitMs).catch(() => {
          throw new Error(`${kind}: client ${i} did not receive all of burst ${b} in ${waitMs} ms: lost deliveries`);
        });
        if (r.bad !== 0) throw new Error(`${kind}: client ${i}, burst ${b}: ${r.bad} bytes out of place (a message lost, repeated or out of order)`);
        first = Math.min(first, r.first);
        last = Math.max(last, r.last);
        delivered += r.delivered;
      }
      if (delivered !== deliveries) throw new Error(`${kind}: ${delivered} of ${deliveries} deliveries`);
      out.push({
        rate: deliveries / ((last - first) / 1000),
        publishMs,
        serverNsPerDelivery: ((sumCpu(servers) - server0) * 1e6) / deliveries,
        clientNsPerDelivery: ((sumCpu(clients) - client0) * 1e6) / deliveries,
      });
    }
    for (const c of clients) c.send("report");
    await lateCheck(kind, clients);
    return out;
  } finally {
    for (const c of clients) await c.stop();
    for (const s of servers) await s.stop();
  }
}

async function main(): Promise<void> {
  const role = args.indexOf("--role");
  if (role >= 0) {
    const [what, a, b, c, d, e, f] = args.slice(role + 1);
    if (what === "server") return server(a as Kind, b!);
    return client(a!, Number(b), Number(c), d === "ws", Number(e), Number(f));
  }
  const usage =
    "bun bench/fanout.ts [--subscribers 5000,50000] [--messages 100] [--bytes 32] [--client-procs N] [--rounds 3] [--bursts 3] [--loop-bursts N] [--per-process N] [--only myriad,bun-ws,loop]";
  const known = ["--subscribers", "--messages", "--bytes", "--client-procs", "--rounds", "--bursts", "--loop-bursts", "--per-process", "--only", "--help"];
  for (const a of args) {
    if (a.startsWith("--") && !known.includes(a)) {
      console.error(`unknown flag ${a}; known: ${known.join(" ")}`);
      process.exit(2);
    }
  }
  if (args.includes("--help")) {
    console.log(usage);
    return;
  }
  const listFlag = (name: string, dflt: string): string[] => {
    const i = args.indexOf(name);
    return (i >= 0 ? (args[i + 1] ?? "") : dflt).split(",");
  };
  const only = listFlag("--only", KINDS.join(","));
  for (const k of only) {
    if (!KINDS.includes(k as Kind)) {
      console.error(`--only: expected names among ${KINDS.join(",")}, got ${JSON.stringify(k)}`);
      process.exit(2);
    }
  }
  const subscribers = listFlag("--subscribers", "5000,50000").map((v) => {
    const x = Number(v.replace(/k$/, "000"));
    if (!Number.isInteger(x) || x < 1) {
      console.error(`--subscribers: expected positive integers, got ${JSON.stringify(v)}`);
      process.exit(2);
    }
    return x;
  });
  const bursts = intFlag(args, "--bursts", 3);
  const limit = nofile();
  const o: Opts = {
    messages: intFlag(args, "--messages", 100),
    bytes: intFlag(args, "--bytes", 32),
    clientProcs: args.includes("--client-procs") ? intFlag(args, "--client-procs", 1) : null,
    rounds: intFlag(args, "--rounds", 3),
    bursts,
    loopBursts: intFlag(args, "--loop-bursts", bursts),
    only: only as Kind[],
    // As bench/websocket.ts: what one process may hold, less its own descriptors.
    perProcess: Math.min(
      intFlag(args, "--per-process", 19_000),
      19_000,
      limit - Math.min(1024, Math.max(32, Math.floor(limit / 64))) - 100,
    ),
  };
  if (o.bytes < 3 || o.bytes > 125) {
    console.error(`--bytes: between 3 (a message carries its index and burst) and 125 (one 2-byte WebSocket header), got ${o.bytes}`);
    process.exit(2);
  }
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  for (const n of subscribers) {
    const procs = Math.ceil(n / o.perProcess);
    const perServer = o.clientProcs ?? (procs === 1 ? 4 : 1);
    const results = new Map<Kind, Burst[]>();
    for (let r = 0; r < o.rounds; r++) {
      for (const kind of o.only) {
        console.error(`fanout: ${n} subscribers, round ${r + 1}/${o.rounds}, ${kind} ...`);
        const bs = await turn(kind, n, o);
        results.set(kind, [...(results.get(kind) ?? []), ...bs]);
        console.error(`  ${kind}: ${bs.map((b) => fmt(b.rate)).join(", ")} deliveries/s`);
      }
    }
    console.log(
      `\n${fmt(n)} subscribers x ${o.messages} messages of ${o.bytes} B in one burst; ` +
        (procs > 1 ? `${procs} server processes of ~${fmt(Math.ceil(n / procs))} each, publishing at once, ` : "one server process, ") +
        `${perServer} client process(es) per server process; ${o.rounds} rounds x ${o.bursts} bursts` +
        (o.loopBursts !== o.bursts ? ` (loop: ${o.loopBursts})` : "") +
        "; every delivery checked (all messages, once, in order); median (min-max)",
    );
    console.log("server   deliveries/s                         publish calls ms   server CPU ns/delivery   client CPU ns/delivery");
    for (const [kind, bs] of results) {
      const rates = bs.map((b) => b.rate);
      console.log(
        `${kind.padEnd(8)} ${`${fmt(median(rates))} (${fmt(Math.min(...rates))}-${fmt(Math.max(...rates))})`.padEnd(36)} ` +
          `${median(bs.map((b) => b.publishMs)).toFixed(1).padStart(16)}   ${median(bs.map((b) => b.serverNsPerDelivery)).toFixed(0).padStart(22)}   ` +
          `${median(bs.map((b) => b.clientNsPerDelivery)).toFixed(0).padStart(22)}`,
      );
    }
    const m = results.get("myriad");
    const w = results.get("bun-ws");
    if (m && w) {
      const ratios = m.map((b, i) => b.rate / (w[i] ?? w[0]!).rate);
      console.log(
        `myriad / bun-ws: ${(median(m.map((b) => b.rate)) / median(w.map((b) => b.rate))).toFixed(2)}x ` +
          `(per-burst ratios ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
      );
    }
  }
}

await main();
process.exit(0);
