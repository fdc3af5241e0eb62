import { COUNTED_CLOSE_REASONS } from "../reactor/index.ts";
import type { PoolProxyStats, UpstreamStats } from "../proxy/index.ts";
import type { AdminSnapshot, HistogramMs, PoolStats, ServerStats } from "./types.ts";
import type { WebSocketStats } from "../reactor/index.ts";

/** The content type of Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Returns `v` escaped for a label value: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (ch) => (ch === "\\" ? "\\\\" : ch === '"' ? '\\"' : "\\n"));
}

/** Returns `v` escaped for a # HELP docstring: backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (ch) => (ch === "\\" ? "\\\\" : "\\n"));
}

/** Returns `n` as the exposition format writes a float: +Inf, -Inf, NaN, else JS notation
 *  (which Go's ParseFloat, Prometheus's parser, accepts). */
function formatValue(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (Number.isNaN(n)) return "NaN";
  return String(n);
}

type Kind = "counter" | "gauge" | "histogram";

/** Returns names made unique in order: the second "a" becomes "a#2", and so on, so that two
 *  workers or pools that share a name never produce duplicate series. */
function uniqueNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n}#${k}`;
  });
}

/**
 * Returns each pool's rendered labels: `worker="w",pool="p"` (or `pool="p"` for a pool
 * without a worker), with a name repeated within one worker made unique, so that no two
 * series collide while the same pool name under two workers stays the same name.
 */
function poolLabels(pools: AdminSnapshot["pools"]): string[] {
  const seen = new Map<string, number>();
  return pools.map((p) => {
    const key = `${p.worker ?? ""}\u0000${p.name}`;
    const k = (seen.get(key) ?? 0) + 1;
    seen.set(key, k);
    const name = k === 1 ? p.name : `${p.name}#${k}`;
    const pool = `pool="${escapeLabelValue(name)}"`;
    return p.worker === undefined ? pool : `worker="${escapeLabelValue(p.worker)}",${pool}`;
  });
}

/**
 * Writes families one at a time so that every family's # HELP and # TYPE come right before
 * its samples and its samples stay together, as the format requires.
 */
class Writer {
  readonly out: string[] = [];

  family(name: string, kind: Kind, help: string, rows: number, sample: (i: number, w: Writer) => void): void {
    if (rows === 0) return;
    this.out.push(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${kind}\n`);
    for (let i = 0; i < rows; i++) sample(i, this);
  }

  /** `labels` is already rendered: `a="x",b="y"` (empty for none). */
  sample(name: string, labels: string, value: number): void {
    this.out.push(labels === "" ? `${name} ${formatValue(value)}\n` : `${name}{${labels}} ${formatValue(value)}\n`);
  }

  /** Writes a histogram's _bucket (cumulative, le in seconds), _sum and _count samples.
   *  `_count` is the +Inf bucket, so the two always agree even if the source's `count` was
   *  read a moment apart from its buckets. */
  histogramSeconds(name: string, labels: string, h: HistogramMs): void {
    let cumulative = 0;
    const sep = labels === "" ? "" : ",";
    for (let i = 0; i < h.boundsMs.length; i++) {
      cumulative += h.counts[i] ?? 0;
      this.sample(`${name}_bucket`, `${labels}${sep}le="${formatValue((h.boundsMs[i] as number) / 1000)}"`, cumulative);
    }
    cumulative += h.counts[h.boundsMs.length] ?? 0;
    this.sample(`${name}_bucket`, `${labels}${sep}le="+Inf"`, cumulative);
    this.sample(`${name}_sum`, labels, h.sumMs / 1000);
    this.sample(`${name}_count`, labels, cumulative);
  }
}

type ServerGauge = { name: string; kind: Kind; help: string; get: (s: ServerStats) => number };

const SERVER_SCALARS: ServerGauge[] = [
  { name: "myriad_connections", kind: "gauge", help: "Open client connections.", get: (s) => s.connections },
  { name: "myriad_connections_peak", kind: "gauge", help: "Most client connections open at once since start.", get: (s) => s.peakConnections },
  { name: "myriad_connections_accepted_total", kind: "counter", help: "Client connections accepted.", get: (s) => s.accepted },
  { name: "myriad_connections_rejected_total", kind: "counter", help: "Client connections closed at once for being over a limit (maxConnections, maxConnectionsPerIp).", get: (s) => s.rejected },
];

const SERVER_SCALARS_AFTER_CLOSED: ServerGauge[] = [
  { name: "myriad_received_bytes_total", kind: "counter", help: "Bytes read from client connections.", get: (s) => s.bytesIn },
  { name: "myriad_sent_bytes_total", kind: "counter", help: "Bytes written to client connections (accepted by the kernel).", get: (s) => s.bytesOut },
  { name: "myriad_frames_received_total", kind: "counter", help: "Frames decoded from client connections.", get: (s) => s.framesIn },
  { name: "myriad_frames_sent_total", kind: "counter", help: "Frames written to client connections.", get: (s) => s.framesOut },
  { name: "myriad_write_queue_bytes", kind: "gauge", help: "Bytes queued in userland because the kernel send buffer was full.", get: (s) => s.writeQueueBytes },
  { name: "myriad_input_buffer_bytes", kind: "gauge", help: "Bytes of incomplete input frames held in pooled segments.", get: (s) => s.inputBufferBytes ?? 0 },
  { name: "myriad_paused_connections", kind: "gauge", help: "Connections whose reading is paused because their write queue is over the high-water mark.", get: (s) => s.pausedConnections },
  { name: "myriad_resident_memory_bytes", kind: "gauge", help: "Resident set size of the worker process.", get: (s) => s.rssBytes },
  { name: "myriad_baseline_resident_memory_bytes", kind: "gauge", help: "Resident set size of the worker process when it last had no connection open (at start, or at a stats read that found none).", get: (s) => s.baselineRssBytes ?? 0 },
  { name: "myriad_heap_used_bytes", kind: "gauge", help: "JavaScript heap in use in the worker process.", get: (s) => s.heapUsedBytes },
  { name: "myriad_uptime_seconds", kind: "gauge", help: "Seconds since the worker's server started.", get: (s) => s.uptimeMs / 1000 },
];

const WEBSOCKET_SCALARS: { name: string; kind: Kind; help: string; get: (s: WebSocketStats) => number }[] = [
  { name: "myriad_websocket_connections", kind: "gauge", help: "Upgraded WebSocket connections open.", get: (s) => s.connections },
  { name: "myriad_websocket_upgrades_total", kind: "counter", help: "WebSocket upgrades answered with 101.", get: (s) => s.upgraded },
  { name: "myriad_websocket_messages_received_total", kind: "counter", help: "WebSocket messages received (after joining fragments).", get: (s) => s.messagesIn },
  { name: "myriad_websocket_messages_sent_total", kind: "counter", help: "WebSocket messages sent (each subscriber a publish reached counts one).", get: (s) => s.messagesOut },
  { name: "myriad_websocket_publishes_total", kind: "counter", help: "server.publish and conn.publish calls.", get: (s) => s.published },
  { name: "myriad_websocket_pings_received_total", kind: "counter", help: "WebSocket pings received.", get: (s) => s.pingsIn },
  { name: "myriad_websocket_pings_sent_total", kind: "counter", help: "WebSocket pings sent (pingIntervalMs, conn.ping).", get: (s) => s.pingsOut },
  { name: "myriad_websocket_topics", kind: "gauge", help: "Topics with at least one subscriber.", get: (s) => s.topics },
  { name: "myriad_websocket_subscriptions", kind: "gauge", help: "Topic subscriptions over all topics.", get: (s) => s.subscriptions },
  { name: "myriad_websocket_message_buffer_bytes", kind: "gauge", help: "Bytes held in incomplete WebSocket messages (fragments, large frames).", get: (s) => s.messageBufferBytes },
];

type PoolScalar = { name: string; kind: Kind; help: string; get: (s: PoolStats) => number };

const POOL_SCALARS: PoolScalar[] = [
  { name: "myriad_pool_size", kind: "gauge", help: "Upstream connections the pool holds (idle and borrowed).", get: (s) => s.size },
  { name: "myriad_pool_idle", kind: "gauge", help: "Idle upstream connections in the pool.", get: (s) => s.idle },
  { name: "myriad_pool_borrowed", kind: "gauge", help: "Upstream connections lent out by the pool.", get: (s) => s.borrowed },
  { name: "myriad_pool_pending_creates", kind: "gauge", help: "Upstream connections being created.", get: (s) => s.pending },
  { name: "myriad_pool_waiting", kind: "gauge", help: "acquire() calls waiting for a connection.", get: (s) => s.waiting },
  { name: "myriad_pool_created_total", kind: "counter", help: "Upstream connections created.", get: (s) => s.created },
  { name: "myriad_pool_destroyed_total", kind: "counter", help: "Upstream connections destroyed.", get: (s) => s.destroyed },
  { name: "myriad_pool_acquired_total", kind: "counter", help: "Successful acquire() calls.", get: (s) => s.acquired },
  { name: "myriad_pool_released_total", kind: "counter", help: "Connections released back to the pool.", get: (s) => s.released },
  { name: "myriad_pool_acquire_timeouts_total", kind: "counter", help: "acquire() calls that timed out.", get: (s) => s.timeouts },
  { name: "myriad_pool_create_errors_total", kind: "counter", help: "Failed attempts to create an upstream connection.", get: (s) => s.createErrors },
  { name: "myriad_pool_rejected_total", kind: "counter", help: "acquire() calls rejected (pool draining or wait queue full).", get: (s) => s.rejected },
];

/**
 * Returns the snapshot in Prometheus text exposition format 0.0.4: every server series has a
 * `worker` label, every pool series a `pool` label (and the `worker` whose app registered
 * it, when the snapshot says); latencies are histograms in seconds.
 * Families with no series (no pools registered) are left out. Ends with a newline.
 */
export function renderMetrics(snap: AdminSnapshot): string {
  const w = new Writer();
  const workers = snap.workers;
  const wl = uniqueNames(workers.map((x) => x.worker)).map((n) => `worker="${escapeLabelValue(n)}"`);
  const stats = (i: number) => (workers[i] as (typeof workers)[number]).stats;

  w.family("myriad_workers", "gauge", "Worker processes reporting stats.", 1, (_, w) => w.sample("myriad_workers", "", workers.length));
  w.family("myriad_worker_info", "gauge", "Always 1; the pid label identifies the worker's process.", workers.length, (i, w) =>
    w.sample("myriad_worker_info", `${wl[i]},pid="${(workers[i] as (typeof workers)[number]).pid}"`, 1),
  );
  for (const m of SERVER_SCALARS) {
    w.family(m.name, m.kind, m.help, workers.length, (i, w) => w.sample(m.name, wl[i] as string, m.get(stats(i))));
  }
  w.family(
    "myriad_connections_closed_total",
    "counter",
    "Client connections closed, by reason (peer, idle, handshake, protocol, writeStall, shutdown, server, error).",
    workers.length,
    (i, w) => {
      const closed = stats(i).closed;
      for (const r of COUNTED_CLOSE_REASONS) w.sample("myriad_connections_closed_total", `${wl[i]},reason="${r}"`, closed[r] ?? 0);
    },
  );
  for (const m of SERVER_SCALARS_AFTER_CLOSED) {
    w.family(m.name, m.kind, m.help, workers.length, (i, w) => w.sample(m.name, wl[i] as string, m.get(stats(i))));
  }
  w.family(
    "myriad_request_duration_seconds",
    "histogram",
    "Server-side time from a decoded request frame to the handler's return, per frame, in seconds.",
    workers.length,
    (i, w) => w.histogramSeconds("myriad_request_duration_seconds", wl[i] as string, stats(i).requestLatency),
  );
  // WebSocket servers: their families, for the workers that report them.
  const ws = workers.map((_, i) => i).filter((i) => stats(i).websocket !== undefined);
  const wss = (k: number) => stats(ws[k]!).websocket!;
  for (const m of WEBSOCKET_SCALARS) {
    w.family(m.name, m.kind, m.help, ws.length, (k, w) => w.sample(m.name, wl[ws[k]!] as string, m.get(wss(k))));
  }
  w.family("myriad_websocket_closed_total", "counter", "Upgraded WebSocket connections closed, by the close code the handler got (1006: no close frame).", ws.length, (k, w) => {
    for (const [code, n] of Object.entries(wss(k).closeCodes)) w.sample("myriad_websocket_closed_total", `${wl[ws[k]!]},code="${escapeLabelValue(code)}"`, n);
  });
  w.family("myriad_websocket_upgrades_refused_total", "counter", "WebSocket upgrade requests answered with an HTTP error, by status.", ws.length, (k, w) => {
    for (const [status, n] of Object.entries(wss(k).refused)) w.sample("myriad_websocket_upgrades_refused_total", `${wl[ws[k]!]},status="${escapeLabelValue(status)}"`, n);
  });

  const pools = snap.pools;
  const pl = poolLabels(pools);
  const pstats = (i: number) => (pools[i] as (typeof pools)[number]).stats;
  for (const m of POOL_SCALARS) {
    w.family(m.name, m.kind, m.help, pools.length, (i, w) => w.sample(m.name, pl[i] as string, m.get(pstats(i))));
  }
  w.family(
    "myriad_pool_acquire_wait_seconds",
    "histogram",
    "Time acquire() waited for a connection, in seconds.",
    pools.length,
    (i, w) => w.histogramSeconds("myriad_pool_acquire_wait_seconds", pl[i] as string, pstats(i).acquireWaitMs),
  );
  const bus = snap.bus;
  if (bus !== undefined) {
    w.family("myriad_bus_up", "gauge", "1 while the node bus is up (subscriber connected, subscriptions confirmed).", 1, (_, w) =>
      w.sample("myriad_bus_up", "", bus.up ? 1 : 0),
    );
    w.family("myriad_bus_channels", "gauge", "Bus channels this node is subscribed to.", 1, (_, w) => w.sample("myriad_bus_channels", "", bus.channels));
    w.family("myriad_bus_published_total", "counter", "Messages this node published on the bus.", 1, (_, w) =>
      w.sample("myriad_bus_published_total", "", bus.published),
    );
    w.family("myriad_bus_publish_errors_total", "counter", "Bus publishes that failed (bus down, timeout, error reply).", 1, (_, w) =>
      w.sample("myriad_bus_publish_errors_total", "", bus.publishErrors),
    );
    w.family("myriad_bus_received_total", "counter", "Messages received from other nodes over the bus.", 1, (_, w) =>
      w.sample("myriad_bus_received_total", "", bus.received),
    );
    w.family("myriad_bus_disconnects_total", "counter", "Times the bus subscriber connection was lost.", 1, (_, w) =>
      w.sample("myriad_bus_disconnects_total", "", bus.disconnects),
    );
  }
  renderProxy(w, snap);
  return w.out.join("");
}

type ProxyPoolRow = { labels: string; stats: PoolProxyStats };
type ProxyServerRow = { labels: string; stats: UpstreamStats };

const PROXY_POOL_SCALARS: Array<{ name: string; kind: Kind; help: string; get: (s: PoolProxyStats) => number }> = [
  { name: "myriad_proxy_client_connections", kind: "gauge", help: "Client connections of a proxy pool.", get: (s) => s.clientConnections },
  { name: "myriad_proxy_requests_total", kind: "counter", help: "Commands a proxy pool received.", get: (s) => s.requests },
  { name: "myriad_proxy_errors_total", kind: "counter", help: "Commands a proxy pool answered with an error of its own (refused, keys across servers, upstream failure, timeout).", get: (s) => s.errors },
  { name: "myriad_proxy_refused_total", kind: "counter", help: "Commands refused as not carried through the proxy (KEYS, CONFIG, ...).", get: (s) => s.refused },
  { name: "myriad_proxy_live_servers", kind: "gauge", help: "Servers of a proxy pool on its continuum (not ejected).", get: (s) => s.liveServers },
  { name: "myriad_proxy_pinned_clients", kind: "gauge", help: "Clients in a transaction or WATCH, on a dedicated upstream connection.", get: (s) => s.pinnedClients },
  { name: "myriad_proxy_blocked_clients", kind: "gauge", help: "Clients waiting on a blocking command, on a dedicated upstream connection.", get: (s) => s.blockedClients },
  { name: "myriad_proxy_subscribed_clients", kind: "gauge", help: "Clients in subscribed mode.", get: (s) => s.subscribedClients },
  { name: "myriad_proxy_paused_clients", kind: "gauge", help: "Clients not being read because too much of theirs is in flight (maxClientInFlightRequests / maxClientInFlightBytes).", get: (s) => s.pausedClients },
  { name: "myriad_proxy_in_flight_requests", kind: "gauge", help: "Client requests sent upstream or held behind a blocking command, not yet answered.", get: (s) => s.inFlightRequests },
  { name: "myriad_proxy_in_flight_bytes", kind: "gauge", help: "Bytes of the client requests in flight.", get: (s) => s.inFlightBytes },
];

const PROXY_SERVER_SCALARS: Array<{ name: string; kind: Kind; help: string; get: (s: UpstreamStats) => number }> = [
  { name: "myriad_proxy_server_live", kind: "gauge", help: "1 while the server is on its pool's continuum, 0 while ejected (auto_eject_hosts).", get: (s) => (s.live ? 1 : 0) },
  { name: "myriad_proxy_server_requests_total", kind: "counter", help: "Requests sent to an upstream server (each part of a split command counts).", get: (s) => s.requests },
  { name: "myriad_proxy_server_replies_total", kind: "counter", help: "Replies from an upstream server (its error replies included).", get: (s) => s.replies },
  { name: "myriad_proxy_server_errors_total", kind: "counter", help: "Requests failed by the upstream connection (closed, refused, none to be had).", get: (s) => s.errors },
  { name: "myriad_proxy_server_timeouts_total", kind: "counter", help: "Requests with no reply within the pool's timeout.", get: (s) => s.timeouts },
  { name: "myriad_proxy_server_ejections_total", kind: "counter", help: "Times the server was taken off its pool's continuum.", get: (s) => s.ejections },
  { name: "myriad_proxy_server_connections", kind: "gauge", help: "Open shared (pipelined) upstream connections to the server.", get: (s) => s.connections },
  { name: "myriad_proxy_server_dedicated_connections", kind: "gauge", help: "Open dedicated upstream connections (blocking commands, transactions, subscriptions).", get: (s) => s.dedicatedConnections },
  { name: "myriad_proxy_server_in_flight", kind: "gauge", help: "Requests to the server waiting for a reply.", get: (s) => s.inFlight },
];

/** The proxy's families: per pool (worker, pool labels) and per server (plus server, server_name). */
function renderProxy(w: Writer, snap: AdminSnapshot): void {
  const groups = snap.proxy ?? [];
  const pools: ProxyPoolRow[] = [];
  const servers: ProxyServerRow[] = [];
  const seen = new Map<string, number>();
  for (const g of groups) {
    for (const p of g.pools) {
      // A pool name repeated within one worker gets "#2" (pool names are unique in a configuration).
      const key = `${g.worker ?? ""}\u0000${p.name}`;
      const k = (seen.get(key) ?? 0) + 1;
      seen.set(key, k);
      const name = k === 1 ? p.name : `${p.name}#${k}`;
      const labels = `${g.worker === undefined ? "" : `worker="${escapeLabelValue(g.worker)}",`}pool="${escapeLabelValue(name)}"`;
      pools.push({ labels, stats: p });
      for (const s of p.servers) {
        servers.push({ labels: `${labels},server="${escapeLabelValue(s.address)}",server_name="${escapeLabelValue(s.name)}"`, stats: s });
      }
    }
  }
  for (const m of PROXY_POOL_SCALARS) w.family(m.name, m.kind, m.help, pools.length, (i, w) => w.sample(m.name, pools[i]!.labels, m.get(pools[i]!.stats)));
  for (const m of PROXY_SERVER_SCALARS) w.family(m.name, m.kind, m.help, servers.length, (i, w) => w.sample(m.name, servers[i]!.labels, m.get(servers[i]!.stats)));
  w.family(
    "myriad_proxy_server_request_duration_seconds",
    "histogram",
    "Round trip of requests on the shared upstream connections, from sending to the reply, in seconds.",
    servers.length,
    (i, w) => w.histogramSeconds("myriad_proxy_server_request_duration_seconds", servers[i]!.labels, servers[i]!.stats.latencyMs),
  );
}
