/**
 * A fleet client process: many RESP subscriber connections through the balancer, each
 * checking that every message reaches it once and in order, and that the node saw its real
 * address; plus a publisher and a bus-latency probe. Runs on the lab's client machine and
 * talks to the orchestrator (bench/fleet.ts) with one command per stdin line and one JSON
 * object per stdout line.
 *
 * Commands:
 *   connect <host> <port> <n> <sources,...>   open n subscribers of channel "news" (SUBSCRIBE
 *                                              after CLIENT INFO), reconnecting if closed
 *   report                                     counts so far
 *   check <from> <to>                          how many live subscribers got every seq in
 *                                              [from, to] exactly once, in order
 *   publish <host> <port> <from> <to> [proxy]  PUBLISH news <seq> for each seq, pipelined (proxy:
 *                                              a PROXY v1 header first, for a node directly)
 *   latency <pubHost> <pubPort> <remoteHost> <remotePort> <n>
 *                                              PROXY-v1 connections straight to two nodes:
 *                                              delivery time on the publisher's node and on the
 *                                              other one, n messages one at a time
 *   quit
 */
import type { Socket } from "bun";
import { respReplyCodec, type RespValue } from "../../src/codec/index.ts";

const enc = new TextEncoder();
const MAX_REPLY = 1 << 20;
const cmd = (...words: string[]) => enc.encode(`*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join("")}`);
const nowMs = () => performance.timeOrigin + performance.now();

interface Sub {
  socket: Socket<number> | null;
  pending: Uint8Array | null;
  subscribed: boolean;
  addrChecked: boolean;
  addrOk: boolean;
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** Messages that came twice or out of order: never expected, always a failure. */
  broken: number;
  /** First seq of the current run without a gap (a gap is expected where publishes were refused). */
  runStart: number;
  reconnects: number;
  /** reconnects when the orchestrator last said "mark": a window's stayers are those still at it. */
  reconnectsAtMark: number;
  localAddr: string;
  localPort: number;
  /** Seqs arrive on this connection after "subscribe" (once CLIENT INFO and SUBSCRIBE are answered). */
  repliesSeen: number;
}

let subs: Sub[] = [];
let target = { host: "", port: 0 };
let sources: string[] = [];
let stopping = false;
let lastDeliveryMs = 0;
let firstDeliveryMs = 0;
let deliveries = 0;

function out(o: unknown): void {
  process.stdout.write(JSON.stringify(o) + "\n");
}

/** Feeds bytes to a per-connection reply reader; calls onReply per complete reply. */
function feed(state: { pending: Uint8Array | null }, bytes: Uint8Array, onReply: (r: RespValue) => void): boolean {
  let buf = bytes;
  if (state.pending) {
    buf = new Uint8Array(state.pending.length + bytes.length);
    buf.set(state.pending);
    buf.set(bytes, state.pending.length);
  }
  let at = 0;
  while (at < buf.length) {
    const n = respReplyCodec.measure(buf, at, buf.length, MAX_REPLY);
    if (n === 0) break;
    if (n < 0) return false;
    onReply(respReplyCodec.decode(buf, at, n));
    at += n;
  }
  state.pending = at === buf.length ? null : buf.slice(at);
  return true;
}

function onSubReply(s: Sub, r: RespValue): void {
  s.repliesSeen++;
  if (s.repliesSeen === 1) {
    // CLIENT INFO: "id=.. addr=ip:port laddr=..": the node must have seen our own address.
    const m = typeof r === "string" ? /(?:^| )addr=(\S+)/.exec(r) : null;
    s.addrChecked = true;
    s.addrOk = m !== null && m[1] === `${s.localAddr}:${s.localPort}`;
    return;
  }
  if (Array.isArray(r) && r[0] === "subscribe") {
    s.subscribed = true;
    return;
  }
  if (Array.isArray(r) && r[0] === "message") {
    const seq = Number(r[2]);
    const t = nowMs();
    if (deliveries === 0) firstDeliveryMs = t;
    deliveries++;
    lastDeliveryMs = t;
    if (s.count === 0) {
      s.firstSeq = seq;
      s.runStart = seq;
    } else if (seq <= s.lastSeq) s.broken++;
    else if (seq !== s.lastSeq + 1) s.runStart = seq;
    s.lastSeq = seq;
    s.count++;
  }
}

function openSub(i: number): void {
  const s = subs[i]!;
  const source = sources[i % sources.length];
  Bun.connect<number>({
    hostname: target.host,
    port: target.port,
    ...(source ? { localAddress: source } : {}),
    data: i,
    socket: {
      open(socket: Socket<number>) {
        s.socket = socket;
        s.localAddr = socket.localAddress;
        s.localPort = socket.localPort;
        socket.write(new Uint8Array([...cmd("CLIENT", "INFO"), ...cmd("SUBSCRIBE", "news")]));
      },
      data(socket: Socket<number>, bytes: Uint8Array) {
        if (!feed(s, bytes, (r) => onSubReply(s, r))) socket.terminate();
      },
      close() {
        s.socket = null;
        if (stopping) return;
        resetSub(s);
        s.reconnects++;
        setTimeout(() => openSub(i), 20 + Math.random() * 200);
      },
      connectError() {
        if (stopping) return;
        s.reconnects++;
        setTimeout(() => openSub(i), 50 + Math.random() * 200);
      },
      error() {},
    },
  } as unknown as Parameters<typeof Bun.connect<number>>[0]).catch(() => {});
}

function resetSub(s: Sub): void {
  s.pending = null;
  s.subscribed = false;
  s.addrChecked = false;
  s.addrOk = false;
  s.firstSeq = 0;
  s.lastSeq = 0;
  s.count = 0;
  s.broken = 0;
  s.runStart = 0;
  s.repliesSeen = 0;
}

function report(): Record<string, number> {
  let open = 0;
  let subscribed = 0;
  let addrOk = 0;
  let addrBad = 0;
  let reconnects = 0;
  let broken = 0;
  for (const s of subs) {
    if (s.socket) open++;
    if (s.subscribed) subscribed++;
    if (s.addrChecked) s.addrOk ? addrOk++ : addrBad++;
    reconnects += s.reconnects;
    broken += s.broken;
  }
  return { connections: subs.length, open, subscribed, addrOk, addrBad, reconnects, broken, deliveries, firstDeliveryMs, lastDeliveryMs };
}

/**
 * Live subscribers that got every seq of [from, to] exactly once and in order; `reconnected`:
 * subscribers that reconnected since the last mark; `stayersIncomplete`: those that did not
 * and still miss something (the ones a window's check is about).
 */
function check(from: number, to: number): Record<string, number> {
  let complete = 0;
  let incomplete = 0;
  let reconnected = 0;
  let stayersIncomplete = 0;
  for (const s of subs) {
    const moved = s.reconnects !== s.reconnectsAtMark;
    if (moved) reconnected++;
    const whole = s.socket !== null && s.count > 0 && s.broken === 0 && s.runStart <= from && s.lastSeq >= to;
    if (whole) complete++;
    else {
      incomplete++;
      if (!moved) stayersIncomplete++;
    }
  }
  return { complete, incomplete, reconnected, stayersIncomplete };
}

async function publish(host: string, port: number, from: number, to: number, proxyHeader: boolean): Promise<Record<string, number>> {
  let replies = 0;
  let errors = 0;
  let receivers = 0;
  const state = { pending: null as Uint8Array | null };
  const total = to - from + 1;
  const started = nowMs();
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const socket = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data(_s, bytes) {
        feed(state, bytes, (r) => {
          replies++;
          if (typeof r === "number") receivers += r;
          else errors++;
          if (replies === total) done();
        });
      },
      close() {
        done();
      },
      error() {},
    },
  });
  // Straight to a node (not through the balancer), the PROXY header the node requires comes first.
  if (proxyHeader) socket.write(enc.encode(`PROXY TCP4 10.77.200.2 ${host} 40001 ${port}\r\n`));
  // Pipelined in batches so that one write is never huge.
  for (let seq = from; seq <= to; seq += 100) {
    const parts: Uint8Array[] = [];
    for (let k = seq; k <= Math.min(to, seq + 99); k++) parts.push(cmd("PUBLISH", "news", String(k)));
    socket.write(Buffer.concat(parts));
  }
  await finished;
  socket.end();
  return { published: total, replies, errors, receivers, publishStartedMs: started, publishDoneMs: nowMs() };
}

/** Delivery time of n messages on the publisher's node and on another node (through the bus). */
async function latency(pubHost: string, pubPort: number, remoteHost: string, remotePort: number, n: number) {
  const proxyV1 = (host: string, port: number) => enc.encode(`PROXY TCP4 10.77.200.1 ${host} 40000 ${port}\r\n`);
  const arrivals: [number[], number[]] = [[], []];
  const waiters: (() => void)[] = [];
  const mkSub = async (host: string, port: number, which: 0 | 1) => {
    const state = { pending: null as Uint8Array | null };
    let ready!: () => void;
    const subscribed = new Promise<void>((r) => (ready = r));
    const sock = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data(_s, bytes) {
          feed(state, bytes, (r) => {
            if (Array.isArray(r) && r[0] === "subscribe") ready();
            if (Array.isArray(r) && r[0] === "message") {
              arrivals[which].push(nowMs());
              waiters.shift()?.();
            }
          });
        },
        error() {},
      },
    });
    sock.write(new Uint8Array([...proxyV1(host, port), ...cmd("SUBSCRIBE", "lat")]));
    await subscribed;
    return sock;
  };
  const local = await mkSub(pubHost, pubPort, 0);
  const remote = await mkSub(remoteHost, remotePort, 1);
  const pubState = { pending: null as Uint8Array | null };
  const pub = await Bun.connect({ hostname: pubHost, port: pubPort, socket: { data(_s, b) { feed(pubState, b, () => {}); }, error() {} } });
  pub.write(proxyV1(pubHost, pubPort));
  const sent: number[] = [];
  for (let i = 0; i < n; i++) {
    const both = new Promise<void>((r) => {
      let k = 0;
      const one = () => (++k === 2 ? r() : waiters.push(one));
      waiters.push(one);
    });
    sent.push(nowMs());
    pub.write(cmd("PUBLISH", "lat", String(i)));
    await Promise.race([both, Bun.sleep(2_000)]);
  }
  local.end();
  remote.end();
  pub.end();
  const added = arrivals[1].map((t, i) => t - (arrivals[0][i] ?? t)).sort((a, b) => a - b);
  const localMs = arrivals[0].map((t, i) => t - sent[i]!).sort((a, b) => a - b);
  const remoteMs = arrivals[1].map((t, i) => t - sent[i]!).sort((a, b) => a - b);
  const q = (a: number[], p: number) => (a.length ? a[Math.min(a.length - 1, Math.floor(p * a.length))]! : NaN);
  return {
    samples: Math.min(arrivals[0].length, arrivals[1].length),
    localP50Ms: q(localMs, 0.5),
    remoteP50Ms: q(remoteMs, 0.5),
    addedP50Ms: q(added, 0.5),
    addedP90Ms: q(added, 0.9),
  };
}

let lineBuf = "";
process.stdin.on("data", async (chunk) => {
  lineBuf += chunk.toString();
  let nl: number;
  while ((nl = lineBuf.indexOf("\n")) >= 0) {
    const line = lineBuf.slice(0, nl).trim();
    lineBuf = lineBuf.slice(nl + 1);
    const [verb, ...a] = line.split(" ");
    try {
      if (verb === "connect") {
        target = { host: a[0]!, port: Number(a[1]) };
        sources = a[3] ? a[3].split(",") : [];
        const n = Number(a[2]);
        const base = subs.length;
        for (let i = 0; i < n; i++) {
          subs.push({ socket: null, pending: null, subscribed: false, addrChecked: false, addrOk: false, firstSeq: 0, lastSeq: 0, count: 0, broken: 0, runStart: 0, reconnects: 0, reconnectsAtMark: 0, localAddr: "", localPort: 0, repliesSeen: 0 });
          openSub(base + i);
          if (i % 500 === 499) await Bun.sleep(5); // pace the SYNs a little: the balancer's accept queue is finite
        }
        out({ ok: "connect" });
      } else if (verb === "report") out(report());
      else if (verb === "check") out(check(Number(a[0]), Number(a[1])));
      else if (verb === "mark") {
        for (const s of subs) s.reconnectsAtMark = s.reconnects;
        out({ ok: "mark" });
      }
      else if (verb === "incomplete") {
        const from = Number(a[0]);
        const to = Number(a[1]);
        const bad = subs.filter((s) => !(s.socket !== null && s.count > 0 && s.broken === 0 && s.runStart <= from && s.lastSeq >= to));
        out({ sample: bad.slice(0, 5).map((s) => ({ open: s.socket !== null, count: s.count, broken: s.broken, firstSeq: s.firstSeq, runStart: s.runStart, lastSeq: s.lastSeq, reconnects: s.reconnects })) });
      }
      else if (verb === "publish") out(await publish(a[0]!, Number(a[1]), Number(a[2]), Number(a[3]), a[4] === "proxy"));
      else if (verb === "latency") out(await latency(a[0]!, Number(a[1]), a[2]!, Number(a[3]), Number(a[4])));
      else if (verb === "quit") {
        stopping = true;
        for (const s of subs) s.socket?.terminate();
        out({ ok: "quit" });
        process.exit(0);
      } else out({ error: `unknown command ${verb}` });
    } catch (err) {
      out({ error: String(err) });
    }
  }
});
subs = [];
