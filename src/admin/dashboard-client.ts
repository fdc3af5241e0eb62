/**
 * The dashboard's script, run in the browser (served as /assets/dashboard.js, types stripped
 * at startup by Bun.Transpiler). It polls /stats once a second, keeps the last
 * HISTORY_POINTS samples in rings, and redraws the big numbers and uPlot charts.
 *
 * Token: open the page as `/?token=<admin token>`; the token moves to sessionStorage (and
 * out of the address bar and history) and is sent as `Authorization: Bearer` on each poll.
 *
 * One file past 500 lines on purpose: it is served to the browser as one script (transpiled
 * at startup, no bundler), so its parts (formatting, the chart store, the panels) stay in the
 * one module the page loads.
 */
import type uPlot from "uplot";
import type { AdminStatsBody, PoolStats, ServerStats } from "./types.ts";

const UPlot = (globalThis as unknown as { uPlot: typeof uPlot }).uPlot;

const POLL_MS = 1000;
const HISTORY_POINTS = 300; // 5 minutes at one poll a second
const REASONS = ["peer", "idle", "handshake", "protocol", "writeStall", "shutdown", "server", "error"] as const;
const PALETTE = ["#58a6ff", "#3fb950", "#f85149", "#d29922", "#bc8cff", "#39c5cf", "#ff7b72", "#e3b341", "#8b949e", "#f778ba"];

// ---- token -------------------------------------------------------------------------------

function takeToken(): string | null {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl !== null) {
    sessionStorage.setItem("myriad-admin-token", fromUrl);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return sessionStorage.getItem("myriad-admin-token");
}
const token = takeToken();

// ---- formatting --------------------------------------------------------------------------

function fmtCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
function fmtSi(n: number, digits = 1): string {
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(digits) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(digits) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(digits) + "k";
  return a >= 100 || n === Math.round(n) ? String(Math.round(n)) : n.toFixed(digits);
}
function fmtBytes(n: number): string {
  const a = Math.abs(n);
  // Three significant digits at most ("372 KiB", "72.5 MiB"): the cards stay narrow.
  const fixed = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));
  if (a >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
  if (a >= 1 << 20) return fixed(n / (1 << 20)) + " MiB";
  if (a >= 1 << 10) return fixed(n / (1 << 10)) + " KiB";
  return Math.round(n) + " B";
}
function hms(unixS: number): string {
  const d = new Date(unixS * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
function fmtDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function el(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`dashboard: missing #${id}`);
  return e;
}
function setText(id: string, text: string, raw?: number): void {
  const e = el(id);
  if (e.textContent !== text) e.textContent = text;
  if (raw !== undefined) e.dataset.value = String(raw);
}

/** Sets a big number whose unit (after the last space, e.g. "114.0 KiB") is drawn smaller. */
function setValue(id: string, text: string, raw: number): void {
  const e = el(id);
  const cut = text.lastIndexOf(" ");
  const num = cut < 0 ? text : text.slice(0, cut);
  const unit = cut < 0 ? "" : text.slice(cut);
  if (e.dataset.text !== text) {
    e.dataset.text = text;
    e.textContent = num;
    if (unit) {
      const u = e.ownerDocument.createElement("span");
      u.className = "unit";
      u.textContent = unit;
      e.appendChild(u);
    }
  }
  e.dataset.value = String(raw);
}

// ---- history -----------------------------------------------------------------------------

/**
 * The last HISTORY_POINTS samples of every series a chart has ever shown, by key, aligned
 * with one time column (unix seconds, as uPlot wants). Series that appear later (a new pool,
 * a first close for some reason) are back-filled with nulls, so a chart can change which
 * series it shows without losing the others' history.
 */
class Store {
  readonly time: number[] = [];
  readonly cols = new Map<string, Array<number | null>>();
  push(x: number, values: Record<string, number | null>): void {
    for (const key of Object.keys(values)) {
      if (!this.cols.has(key)) this.cols.set(key, new Array<number | null>(this.time.length).fill(null));
    }
    this.time.push(x);
    for (const [key, col] of this.cols) col.push(values[key] ?? null);
    if (this.time.length > HISTORY_POINTS) {
      this.time.shift();
      for (const col of this.cols.values()) col.shift();
    }
  }
  data(keys: string[]): uPlot.AlignedData {
    const empty = new Array<number | null>(this.time.length).fill(null);
    return [this.time, ...keys.map((k) => this.cols.get(k) ?? empty)] as unknown as uPlot.AlignedData;
  }
}

// ---- charts ------------------------------------------------------------------------------

type SeriesSpec = { key: string; label: string; color: string; scale?: string; fmt: (v: number) => string; dash?: number[] };
/** A y axis: `minTop` is the least top of its range (so an all-zero chart has sensible ticks);
 *  `whole` keeps ticks on whole numbers (counts of things). */
type AxisSpec = { scale: string; fmt: (v: number) => string; side?: 1 | 3; minTop?: number; whole?: boolean };

/** Tick steps 1, 2, 5, 10, 20, 50, ... for axes of whole numbers. */
const WHOLE_INCRS = Array.from({ length: 30 }, (_, i) => [1, 2, 5][i % 3]! * 10 ** Math.floor(i / 3));

interface Chart {
  plot: uPlot | null;
  store: Store;
  keys: string[]; // the series shown, in order; a change rebuilds the plot
  axes: AxisSpec[];
}

const charts = new Map<string, Chart>();

function chartWidth(box: HTMLElement): number {
  return Math.max(240, box.clientWidth - 2);
}

/** Every series here is non-negative: start the y axis at 0 so that levels compare honestly. */
function zeroBased(minTop: number): uPlot.Range.Function {
  return (_u, _min, max) => [0, Math.max(minTop, max !== null && max > 0 ? max * 1.1 : 0)];
}

/** Returns an axis width that fits its widest tick label. */
function axisSize(_u: uPlot, values: string[] | null): number {
  let longest = 0;
  for (const v of values ?? []) if (v && v.length > longest) longest = v.length;
  return Math.max(36, Math.ceil(longest * 7.2) + 18);
}

function chart(boxId: string, axes: AxisSpec[]): Chart {
  let c = charts.get(boxId);
  if (!c) {
    c = { plot: null, store: new Store(), keys: [], axes };
    charts.set(boxId, c);
  }
  return c;
}

/** Shows `series` in the chart, rebuilding the plot only when the set of keys changed. */
function showSeries(boxId: string, series: SeriesSpec[]): void {
  const c = charts.get(boxId);
  if (!c) return;
  const keys = series.map((s) => s.key);
  if (c.plot && keys.join("\u0000") === c.keys.join("\u0000")) return;
  const box = el(boxId);
  c.plot?.destroy();
  c.keys = keys;
  const axisStyle = { stroke: "#9da7b3", grid: { stroke: "#262c36", width: 1 }, ticks: { stroke: "#262c36", width: 1 } };
  const opts: uPlot.Options = {
    width: chartWidth(box),
    height: 180,
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: {
      // At least a minute wide, so early ticks are not fractions of a second.
      x: { time: true, range: (_u, min, max) => [Math.min(min, max - 60), max] },
      ...Object.fromEntries(c.axes.map((a) => [a.scale, { range: zeroBased(a.minTop ?? 1) }])),
    },
    series: [
      { value: (_u: uPlot, v: number | null) => (v === null ? "–" : hms(v)) },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 1.5,
        scale: s.scale ?? "y",
        dash: s.dash,
        points: { show: false },
        value: (_u: uPlot, v: number | null) => (v === null ? "–" : s.fmt(v)),
      })),
    ],
    axes: [
      // Plain hh:mm:ss ticks: the default two-line date labels get clipped at the left edge.
      { ...axisStyle, space: 70, values: (_u: uPlot, vals: number[]) => vals.map((v) => hms(v)) },
      ...c.axes.map((a) => ({
        ...axisStyle,
        scale: a.scale,
        side: a.side ?? 3,
        size: axisSize,
        ...(a.whole ? { incrs: WHOLE_INCRS } : {}),
        grid: a.side === 1 ? { show: false } : axisStyle.grid,
        values: (_u: uPlot, vals: number[]) => vals.map((v) => (v == null ? "" : a.fmt(v))),
      })),
    ],
  };
  c.plot = new UPlot(opts, c.store.data(keys), box);
}

/** Appends one sample to the chart's store and redraws; the legend shows the newest values
 *  unless the pointer is over the plot. */
function pushPoint(boxId: string, x: number, values: Record<string, number | null>): void {
  const c = charts.get(boxId);
  if (!c || !c.plot) return;
  c.store.push(x, values);
  c.plot.setData(c.store.data(c.keys));
  if ((c.plot.cursor.left ?? -1) < 0) c.plot.setLegend({ idx: c.store.time.length - 1 });
}

const perSec = (v: number) => fmtSi(v) + "/s";
const bytesPerSec = (v: number) => fmtBytes(v) + "/s";
const color = (i: number) => PALETTE[i % PALETTE.length] as string;

function buildFixedCharts(): void {
  chart("chart-connections", [{ scale: "y", fmt: (v) => fmtSi(v, 0), minTop: 10, whole: true }]);
  showSeries("chart-connections", [
    { key: "connections", label: "connections", color: color(0), fmt: fmtCount },
    { key: "paused", label: "paused", color: color(3), fmt: fmtCount, dash: [4, 4] },
  ]);
  chart("chart-rates", [{ scale: "y", fmt: perSec }]);
  showRates(new Set());
  chart("chart-bytes", [{ scale: "y", fmt: bytesPerSec, minTop: 1024 }]);
  showSeries("chart-bytes", [
    { key: "in", label: "in", color: color(0), fmt: bytesPerSec },
    { key: "out", label: "out", color: color(1), fmt: bytesPerSec },
  ]);
  chart("chart-memory", [{ scale: "y", fmt: fmtBytes, minTop: 1024 }, { scale: "rss", fmt: fmtBytes, side: 1, minTop: 1 << 20 }]);
  showSeries("chart-memory", [
    { key: "perConn", label: "(rss − rss at 0 conns) / connection", color: color(4), fmt: fmtBytes },
    { key: "rss", label: "rss (right axis)", color: color(8), fmt: fmtBytes, scale: "rss", dash: [4, 4] },
    { key: "baseline", label: "rss at 0 conns (right axis)", color: color(5), fmt: fmtBytes, scale: "rss", dash: [1, 3] },
  ]);
  chart("chart-writeq", [{ scale: "y", fmt: fmtBytes, minTop: 1024, whole: true }]);
  showSeries("chart-writeq", [
    { key: "writeQueue", label: "write queue", color: color(3), fmt: fmtBytes },
  ]);
  chart("chart-pools", [{ scale: "y", fmt: (v) => fmtSi(v, 0), minTop: 4, whole: true }]);
  showPools([], false);
}

/** Accepts always; rejects and each close reason once it has happened at least once, so the
 *  legend lists what is going on rather than eight flat zeros. */
function showRates(seen: Set<string>): void {
  const series: SeriesSpec[] = [{ key: "accepted", label: "accepted", color: color(1), fmt: perSec }];
  if (seen.has("rejected")) series.push({ key: "rejected", label: "rejected", color: color(2), fmt: perSec });
  REASONS.forEach((r, i) => {
    if (seen.has(r)) series.push({ key: `closed:${r}`, label: `closed: ${r}`, color: color(i + 3), fmt: perSec, dash: [3, 3] });
  });
  showSeries("chart-rates", series);
}

type PoolEntry = AdminStatsBody["pools"][number];

/** A pool's key in the chart's store: each worker's pool of a name is a pool of its own. */
function poolKey(p: PoolEntry): string {
  return `${p.worker ?? ""}\u0000${p.name}`;
}

/** A pool's name in legends and tables: "redis", or "redis @ worker-1" when several workers
 *  report pools. */
function poolLabel(p: PoolEntry, manyWorkers: boolean): string {
  return manyWorkers && p.worker !== undefined ? `${p.name} @ ${p.worker}` : p.name;
}

function showPools(pools: PoolEntry[], manyWorkers: boolean): void {
  const series: SeriesSpec[] = [];
  pools.forEach((p, i) => {
    const k = poolKey(p);
    const n = poolLabel(p, manyWorkers);
    series.push({ key: `${k}\u0000borrowed`, label: `${n} borrowed`, color: color(i), fmt: fmtCount });
    series.push({ key: `${k}\u0000size`, label: `${n} size`, color: color(i), fmt: fmtCount, dash: [1, 3] });
    series.push({ key: `${k}\u0000waiting`, label: `${n} waiting`, color: color(i + 2), fmt: fmtCount, dash: [5, 3] });
  });
  if (series.length === 0) series.push({ key: "none", label: "no pools registered", color: color(8), fmt: fmtCount });
  showSeries("chart-pools", series);
}

// ---- tables ------------------------------------------------------------------------------

function renderRows(tbodyId: string, rows: string[][]): void {
  const tbody = el(tbodyId);
  const doc = tbody.ownerDocument;
  const frag = doc.createDocumentFragment();
  for (const cells of rows) {
    const tr = doc.createElement("tr");
    for (const c of cells) {
      const td = doc.createElement("td");
      td.textContent = c; // text, never HTML: worker and pool names come from the server
      tr.appendChild(td);
    }
    frag.appendChild(tr);
  }
  tbody.replaceChildren(frag);
}

/** A worker's WebSocket counters, as ServerStats carries them. */
type WebSocketStats = NonNullable<ServerStats["websocket"]>;

/** A rate cell: "–" until two polls are in. */
function fmtRate(r: number | null): string {
  return r === null ? "–" : fmtSi(r);
}

/** Orders code/status keys ("1000", "1006", "404") as numbers. */
function byNumber(a: string, b: string): number {
  return Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Adds the counts of a by-code record. */
function sumRecord(r: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(r)) n += v;
  return n;
}

/**
 * WebSocket servers: one row per worker that has WebSocket listeners (and "all" first when
 * several do), with messages per second since the previous poll; then every close code and
 * refusal status seen, per worker and in all. Hidden while no worker reports WebSocket stats,
 * so a TCP server's page shows nothing of it.
 */
function renderWebSocket(body: AdminStatsBody, dtS: number, x: number): void {
  const scopes: Array<{ name: string; ws: WebSocketStats; old: WebSocketStats | undefined }> = [];
  const oldOf = new Map<string, WebSocketStats | undefined>((prev?.workers ?? []).map((w) => [w.worker, w.stats.websocket]));
  const perWorker = body.workers.filter((w) => w.stats.websocket !== undefined);
  if (perWorker.length > 1 && body.totals.websocket !== undefined) scopes.push({ name: "all", ws: body.totals.websocket, old: prev?.totals.websocket });
  for (const w of perWorker) scopes.push({ name: w.worker, ws: w.stats.websocket!, old: oldOf.get(w.worker) });
  const shown = scopes.length > 0;
  el("ws-section").hidden = !shown;
  if (!shown) return;

  const rows: string[][] = [];
  const codes: string[][] = [];
  for (const { name, ws, old } of scopes) {
    rows.push([name, fmtCount(ws.connections), fmtCount(ws.upgraded), fmtCount(sumRecord(ws.refused)),
      fmtRate(rate(ws.messagesIn, old?.messagesIn, dtS)), fmtRate(rate(ws.messagesOut, old?.messagesOut, dtS)),
      fmtCount(ws.messagesIn), fmtCount(ws.messagesOut), fmtCount(ws.published), `${fmtCount(ws.pingsIn)} / ${fmtCount(ws.pingsOut)}`,
      `${fmtCount(ws.topics)} / ${fmtCount(ws.subscriptions)}`, fmtBytes(ws.messageBufferBytes)]);
    for (const code of Object.keys(ws.closeCodes).sort(byNumber)) {
      const n = ws.closeCodes[code]!;
      codes.push([name, "closed", code, fmtCount(n), fmtRate(rate(n, old === undefined ? undefined : (old.closeCodes[code] ?? 0), dtS))]);
    }
    for (const status of Object.keys(ws.refused).sort(byNumber)) {
      const n = ws.refused[status]!;
      codes.push([name, "refused", status, fmtCount(n), fmtRate(rate(n, old === undefined ? undefined : (old.refused[status] ?? 0), dtS))]);
    }
  }
  renderRows("ws-body", rows);
  renderRows("ws-codes-body", codes);

  // The chart is made the first time it is shown: a hidden box has no width to size it by.
  const panel = el("ws-chart-panel");
  if (panel.hidden) {
    panel.hidden = false;
    chart("chart-ws", [{ scale: "y", fmt: perSec }]);
    showSeries("chart-ws", [
      { key: "in", label: "messages in", color: color(0), fmt: perSec },
      { key: "out", label: "messages out", color: color(1), fmt: perSec },
    ]);
  }
  const t = body.totals.websocket;
  const p = prev?.totals.websocket;
  pushPoint("chart-ws", x, t === undefined ? { in: null, out: null } : { in: rate(t.messagesIn, p?.messagesIn, dtS), out: rate(t.messagesOut, p?.messagesOut, dtS) });
}

/**
 * The proxy's pools, one row each: client connections, requests per second since the
 * previous poll, errors, timeouts, ejections, the upstream connections over its servers, the
 * read backpressure (clients paused for too much in flight, and the requests and bytes in
 * flight: the pool stats /metrics's myriad_proxy_paused_clients, _in_flight_requests and
 * _in_flight_bytes read), and request latency: the mean over all servers' round trips and
 * the worst server's p99 (the servers' histograms are not merged here).
 */
function renderProxyPools(body: AdminStatsBody, dtS: number): void {
  const before = new Map<string, number>();
  for (const g of prev?.proxy ?? []) for (const p of g.pools) before.set(`${g.worker ?? ""}\u0000${p.name}`, p.requests);
  const rows: string[][] = [];
  for (const g of body.proxy ?? []) {
    for (const p of g.pools) {
      let shared = 0, dedicated = 0, sumMs = 0, count = 0, worstP99 = 0;
      for (const s of p.servers) {
        shared += s.connections;
        dedicated += s.dedicatedConnections;
        sumMs += s.latencyMs.sumMs;
        count += s.latencyMs.count;
        if (s.p99Ms > worstP99) worstP99 = s.p99Ms;
      }
      rows.push([g.worker ?? "", p.name, p.listen, fmtCount(p.clientConnections), fmtCount(p.clientsAccepted),
        fmtRate(rate(p.requests, before.get(`${g.worker ?? ""}\u0000${p.name}`), dtS)), fmtCount(p.requests), fmtCount(p.errors),
        fmtCount(p.refused), fmtCount(p.timeouts), fmtCount(p.ejections), `${p.liveServers} / ${p.servers.length}`,
        `${fmtCount(shared)} + ${fmtCount(dedicated)}`, `${p.pinnedClients} / ${p.blockedClients} / ${p.subscribedClients}`,
        fmtCount(p.pausedClients), fmtCount(p.inFlightRequests), fmtBytes(p.inFlightBytes),
        count > 0 ? `${(sumMs / count).toFixed(2)} ms` : "–", count > 0 ? `${worstP99.toFixed(2)} ms` : "–"]);
    }
  }
  renderRows("proxy-pools-body", rows);
  el("proxy-pools-section").hidden = rows.length === 0;
}

/** The proxy's servers, one row each, with requests per second since the previous poll. */
function renderProxy(body: AdminStatsBody, dtS: number): void {
  const proxy = body.proxy ?? [];
  const before = new Map<string, number>();
  for (const g of prev?.proxy ?? []) for (const p of g.pools) for (const s of p.servers) before.set(`${g.worker ?? ""}\u0000${p.name}\u0000${s.address}`, s.requests);
  const rows: string[][] = [];
  for (const g of proxy) {
    for (const p of g.pools) {
      for (const s of p.servers) {
        const r = rate(s.requests, before.get(`${g.worker ?? ""}\u0000${p.name}\u0000${s.address}`), dtS);
        rows.push([g.worker ?? "", p.name, s.name === s.address ? s.address : `${s.address} (${s.name})`, s.live ? "live" : "ejected",
          r === null ? "–" : fmtCount(r), fmtCount(s.requests), fmtCount(s.errors), fmtCount(s.timeouts), fmtCount(s.ejections),
          String(s.connections), String(s.dedicatedConnections), fmtCount(s.inFlight), `${s.p50Ms.toFixed(2)} ms`, `${s.p99Ms.toFixed(2)} ms`]);
      }
    }
  }
  renderRows("proxy-body", rows);
  el("proxy-section").hidden = rows.length === 0;
}

// ---- polling -----------------------------------------------------------------------------

let prev: AdminStatsBody | null = null;
let seenRates = new Set<string>();
let lastOk = 0;

/** Returns (cur - old) per second, or null across a counter reset or a zero interval. */
function rate(cur: number, old: number | undefined, dtS: number): number | null {
  if (old === undefined || dtS <= 0 || cur < old) return null;
  return (cur - old) / dtS;
}

function setStatus(kind: "ok" | "warn" | "err", text: string): void {
  const s = el("status");
  s.className = `status ${kind}`;
  s.textContent = text;
}

function render(body: AdminStatsBody, ready: boolean): void {
  const t: ServerStats = body.totals;
  const p = prev?.totals;
  const dtS = prev ? (body.timeMs - prev.timeMs) / 1000 : 0;
  const x = body.timeMs / 1000;

  const accepted = rate(t.accepted, p?.accepted, dtS);
  const rejected = rate(t.rejected, p?.rejected, dtS);
  const closedRates = REASONS.map((r) => rate(t.closed[r] ?? 0, p?.closed[r], dtS));
  const closedSum = closedRates.every((v) => v === null) ? null : closedRates.reduce<number>((a, v) => a + (v ?? 0), 0);
  const inRate = rate(t.bytesIn, p?.bytesIn, dtS);
  const outRate = rate(t.bytesOut, p?.bytesOut, dtS);
  // The process's own footprint (runtime, code, heap at rest) is not a connection's cost:
  // count only what the RSS grew by since the servers last had no connection.
  const baseline = t.baselineRssBytes;
  const perConn = t.connections > 0 && baseline !== undefined && baseline > 0 ? Math.max(0, t.rssBytes - baseline) / t.connections : null;

  setText("connections", fmtCount(t.connections), t.connections);
  setText("peak", fmtCount(t.peakConnections), t.peakConnections);
  setText("accept-rate", accepted === null ? "–" : fmtSi(accepted), accepted ?? 0);
  setText("close-rate", closedSum === null ? "–" : fmtSi(closedSum), closedSum ?? 0);
  setValue("mem-per-conn", perConn === null ? "–" : fmtBytes(perConn), perConn ?? 0);
  setValue("rss", fmtBytes(t.rssBytes), t.rssBytes);
  setText("rss-baseline", baseline === undefined ? "–" : fmtBytes(baseline), baseline ?? 0);
  setValue("bytes-in-rate", inRate === null ? "–" : bytesPerSec(inRate), inRate ?? 0);
  setValue("bytes-out-rate", outRate === null ? "–" : bytesPerSec(outRate), outRate ?? 0);
  setValue("write-queue", fmtBytes(t.writeQueueBytes), t.writeQueueBytes);
  setText("workers", String(body.workers.length), body.workers.length);
  setText("uptime", fmtDuration(t.uptimeMs));
  const lat = t.requestLatency;
  setText("request-latency", lat.count > 0 ? `${((lat.sumMs / lat.count) * 1000).toFixed(1)} µs avg per request` : "–");

  pushPoint("chart-connections", x, { connections: t.connections, paused: t.pausedConnections });

  const seen = new Set<string>();
  if (t.rejected > 0) seen.add("rejected");
  for (const r of REASONS) if ((t.closed[r] ?? 0) > 0) seen.add(r);
  for (const k of seenRates) seen.add(k); // never drop a series once shown
  seenRates = seen;
  showRates(seen);
  const rates: Record<string, number | null> = { accepted, rejected };
  REASONS.forEach((r, i) => (rates[`closed:${r}`] = closedRates[i] ?? null));
  pushPoint("chart-rates", x, rates);

  pushPoint("chart-bytes", x, { in: inRate, out: outRate });
  pushPoint("chart-memory", x, { perConn, rss: t.rssBytes, baseline: baseline ?? null });
  pushPoint("chart-writeq", x, { writeQueue: t.writeQueueBytes });

  const manyWorkers = body.workers.length > 1;
  showPools(body.pools, manyWorkers);
  const pools: Record<string, number | null> = {};
  for (const p of body.pools) {
    const k = poolKey(p);
    pools[`${k}\u0000borrowed`] = p.stats.borrowed;
    pools[`${k}\u0000size`] = p.stats.size;
    pools[`${k}\u0000waiting`] = p.stats.waiting;
  }
  pushPoint("chart-pools", x, pools);

  renderRows("workers-body", body.workers.map((w) => [
    w.worker,
    String(w.pid),
    fmtCount(w.stats.connections),
    fmtCount(w.stats.peakConnections),
    fmtCount(w.stats.accepted),
    fmtBytes(w.stats.rssBytes),
    w.stats.connections > 0 && (w.stats.baselineRssBytes ?? 0) > 0
      ? fmtBytes(Math.max(0, w.stats.rssBytes - w.stats.baselineRssBytes!) / w.stats.connections)
      : "–",
    fmtBytes(w.stats.writeQueueBytes),
    fmtDuration(w.stats.uptimeMs),
  ]));
  renderRows("pools-body", body.pools.map((p) => {
    const s: PoolStats = p.stats;
    return [p.worker ?? "", p.name, String(s.size), String(s.idle), String(s.borrowed), String(s.waiting), String(s.pending),
      fmtCount(s.acquired), fmtCount(s.timeouts), `${s.acquireWaitMs.p99.toFixed(2)} ms`];
  }));
  el("pools-section").hidden = body.pools.length === 0;
  renderWebSocket(body, dtS, x);
  renderProxyPools(body, dtS);
  renderProxy(body, dtS);

  setStatus(ready ? "ok" : "warn", ready ? "accepting" : "stopping");
  setText("updated", hms(body.timeMs / 1000));
  prev = body;
}

async function poll(): Promise<void> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  try {
    const [res, ready] = await Promise.all([
      fetch("stats", { headers, cache: "no-store", signal: AbortSignal.timeout(5000) }),
      fetch("readyz", { cache: "no-store", signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false),
    ]);
    if (res.status === 401) {
      setStatus("err", token ? "token rejected" : "token required: open this page as /?token=<admin token>");
    } else if (!res.ok) {
      setStatus("err", `stats: HTTP ${res.status}`);
    } else {
      render((await res.json()) as AdminStatsBody, ready);
      lastOk = Date.now();
    }
  } catch {
    setStatus("err", lastOk ? `unreachable for ${fmtDuration(Date.now() - lastOk)}` : "unreachable");
  }
  setTimeout(poll, POLL_MS);
}

let resizeTimer = 0;
addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const [id, c] of charts) c.plot?.setSize({ width: chartWidth(el(id)), height: 180 });
  }, 100) as unknown as number;
});

buildFixedCharts();
void poll();
