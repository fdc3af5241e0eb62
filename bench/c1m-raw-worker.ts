/**
 * The c1m baseline: a worker on raw `Bun.listen` (no reactor, no codec, no connection table)
 * that speaks the cluster worker protocol (src/cluster/protocol.ts), so the same supervisor
 * runs it and the experiment measures it the same way as myriad's workers. It echoes bytes
 * and keeps nothing per connection but what Bun itself keeps. It imports nothing: its
 * baseline is Bun's.
 */
import type { Socket, SocketHandler, TCPSocketListener } from "bun";

const raw = process.env.MYRIAD_CLUSTER_WORKER;
if (raw === undefined || typeof process.send !== "function") {
  console.error("bench/c1m-raw-worker.ts is started by the cluster supervisor (bun run c1m), not by hand");
  process.exit(2);
}
const cfg = JSON.parse(raw) as {
  listen: { hostname: string; port: number }[];
  maxConnections: number;
  statsIntervalMs: number;
};

let connections = 0;
let peak = 0;
let accepted = 0;
let rejected = 0;
let closedPeer = 0;
let closedShutdown = 0;
let bytesIn = 0;
let stopping = false;
const startedAt = performance.now();

const handlers: SocketHandler<undefined> = {
  binaryType: "uint8array",
  open(socket: Socket<undefined>) {
    if (stopping || connections >= cfg.maxConnections) {
      rejected++;
      socket.terminate();
      return;
    }
    accepted++;
    connections++;
    if (connections > peak) peak = connections;
  },
  data(socket: Socket<undefined>, data) {
    bytesIn += data.length;
    socket.write(data as unknown as Uint8Array);
  },
  close() {
    connections--;
    if (stopping) closedShutdown++;
    else closedPeer++;
  },
};

const listeners: TCPSocketListener<undefined>[] = [];
try {
  for (const a of cfg.listen) {
    // reusePort is missing from bun-types' listen options (it is honoured at runtime).
    const opts = { hostname: a.hostname, port: a.port, socket: handlers, ...{ reusePort: true } };
    listeners.push(Bun.listen<undefined>(opts));
  }
} catch (e) {
  process.send({ t: "fatal", message: `cannot listen: ${(e as Error).message}` });
  setTimeout(() => process.exit(1), 50);
  await new Promise(() => {});
}

function stats() {
  const mem = process.memoryUsage();
  return {
    connections,
    peakConnections: peak,
    accepted,
    rejected,
    closed: { peer: closedPeer, idle: 0, handshake: 0, protocol: 0, writeStall: 0, shutdown: closedShutdown, server: 0, error: 0 },
    bytesIn,
    bytesOut: bytesIn,
    framesIn: 0,
    framesOut: 0,
    writeQueueBytes: 0,
    pausedConnections: 0,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    uptimeMs: performance.now() - startedAt,
    requestLatency: { boundsMs: [], counts: [0], sumMs: 0, count: 0 },
  };
}
const send = (m: unknown) => {
  try {
    process.send!(m);
  } catch {
    // supervisor gone
  }
};

const timer = setInterval(() => send({ t: "stats", stats: stats() }), cfg.statsIntervalMs);
function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  // stop(true) closes every open socket at once: the raw baseline has no graceful drain.
  for (const l of listeners) l.stop(true);
  send({ t: "stopped", stats: stats() });
  setTimeout(() => process.exit(0), 50);
}
process.on("message", (m: { t: string; id?: number }) => {
  if (m.t === "stop") stop();
  else if (m.t === "stats") send({ t: "stats", stats: stats(), id: m.id });
});
process.on("disconnect", () => process.exit(0));
process.on("SIGINT", () => {});
process.on("SIGTERM", stop);
send({ t: "ready", pid: process.pid, listen: listeners.map((l) => ({ hostname: l.hostname, port: l.port })) });
send({ t: "stats", stats: stats() });
