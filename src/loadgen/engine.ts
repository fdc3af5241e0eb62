/**
 * One load process's connections: opens its share through a bounded connect window,
 * holds them, and optionally drives traffic (ping or closed-loop request/response),
 * counting everything the report needs. The parent (coordinator.ts) runs one engine per
 * child process and merges their counters and histograms.
 *
 * Per-connection state lives in typed arrays indexed by the connection's local index (the
 * socket's `data`); the only per-connection objects are Bun's sockets themselves.
 */
import type { Socket } from "bun";
import { MyriadRangeError } from "../errors.ts";
import { isSelfConnect } from "../pool/index.ts";
import { LogHistogram, type HistogramJSON } from "./histogram.ts";
import type { RespSupport } from "./resp-support.ts";
import { tupleOf, type Target } from "./targets.ts";

export type LoadMode = "idle" | "ping" | "rr";
export type LoadProtocol = "echo" | "lines" | "resp";

/** What one engine does. Durations in ms, rates per second. */
export interface EngineOptions {
  /** Connections this engine opens. */
  connections: number;
  /** Global index of this engine's first connection and the stride between its connections (process p of P: p, P). */
  indexOffset?: number;
  indexStride?: number;
  /** Source addresses to bind (empty: let the kernel pick) and destinations; see targets.ts tupleOf. */
  sources: readonly string[];
  targets: readonly Target[];
  /** Most connects in flight at once (default 256). */
  connectWindow?: number;
  /** New connections per second, 0 (default) = as fast as the window allows. */
  connectRatePerSec?: number;
  /** A connect not done after this long counts as ETIMEDOUT (default 10 s). */
  connectTimeoutMs?: number;
  /** Extra attempts per failed connection (default 0). */
  retries?: number;
  mode?: LoadMode;
  protocol?: LoadProtocol;
  /** Request payload bytes: echo frame size, line length, RESP SET value size (default 16). */
  payloadBytes?: number;
  /** ping mode: each connection sends one frame this often (default 10 s). */
  pingIntervalMs?: number;
  /** rr mode: requests per second over this engine's connections; 0 = closed loop, one outstanding per connection. */
  requestRatePerSec?: number;
  /** rr/resp: share of GETs (rest SETs), 0..1 (default 0.8). */
  getRatio?: number;
  /** rr/resp: distinct keys (default 1000). */
  keyspace?: number;
  /**
   * Confirm each connection with one round trip (the protocol's ping: echo bytes, "PING\n",
   * RESP PING) before counting it open; it holds its connect-window place until the reply.
   * A connection the server has not accepted yet cannot answer, so the window then also
   * bounds the servers' accept queues (Bun listens with a backlog of 512; an overflowing
   * queue drops SYNs, and each drop stalls that connect for 1 s). Default false.
   */
  confirm?: boolean;
}

/** Counters of one engine (or the sum of many). */
export interface LoadCounters {
  target: number;
  /** Connect calls made (first attempts and retries). */
  attempts: number;
  /** Connects in flight now. */
  connecting: number;
  /** Connections open now. */
  open: number;
  /** Most connections open at once. */
  peakOpen: number;
  /** Connects that succeeded (ever). */
  connected: number;
  /** Connections given up after their last attempt failed. */
  failed: number;
  /** Failed attempts by error kind (ECONNREFUSED, EADDRNOTAVAIL, EMFILE, ETIMEDOUT, ...). */
  errors: Record<string, number>;
  /** Open connections closed by the other side or the network (not by stop). */
  lost: number;
  requests: number;
  responses: number;
  bytesOut: number;
  bytesIn: number;
  /** ping mode: pings not sent because the previous one was unanswered. */
  skipped: number;
  /** Replies the protocol could not parse, or RESP error replies. */
  badReplies: number;
  /** True once every connection has either opened or failed for good. */
  rampDone: boolean;
  /** ms from the first connect to rampDone (or to now while ramping). */
  rampMs: number;
  rssBytes: number;
}

/** Counters plus the mergeable histograms (µs): connect time and request latency. */
export interface EngineReport extends LoadCounters {
  connectUs: HistogramJSON;
  latencyUs: HistogramJSON;
}

/** Creates zeroed counters for `target` connections. */
export function emptyCounters(target = 0): LoadCounters {
  return {
    target,
    attempts: 0,
    connecting: 0,
    open: 0,
    peakOpen: 0,
    connected: 0,
    failed: 0,
    errors: {},
    lost: 0,
    requests: 0,
    responses: 0,
    bytesOut: 0,
    bytesIn: 0,
    skipped: 0,
    badReplies: 0,
    rampDone: target === 0,
    rampMs: 0,
    rssBytes: 0,
  };
}

/**
 * Adds `b` into `a` (sums; peakOpen sums too: processes peak together at the end of a ramp;
 * rampDone is the AND, rampMs the max). Returns a.
 */
export function addCounters(a: LoadCounters, b: LoadCounters): LoadCounters {
  a.target += b.target;
  a.attempts += b.attempts;
  a.connecting += b.connecting;
  a.open += b.open;
  a.peakOpen += b.peakOpen;
  a.connected += b.connected;
  a.failed += b.failed;
  for (const [k, v] of Object.entries(b.errors)) a.errors[k] = (a.errors[k] ?? 0) + v;
  a.lost += b.lost;
  a.requests += b.requests;
  a.responses += b.responses;
  a.bytesOut += b.bytesOut;
  a.bytesIn += b.bytesIn;
  a.skipped += b.skipped;
  a.badReplies += b.badReplies;
  a.rampDone = a.rampDone && b.rampDone;
  a.rampMs = Math.max(a.rampMs, b.rampMs);
  a.rssBytes += b.rssBytes;
  return a;
}

const ERRNO_NAMES: Record<number, string> = {
  24: "EMFILE",
  23: "ENFILE",
  99: "EADDRNOTAVAIL",
  98: "EADDRINUSE",
  111: "ECONNREFUSED",
  104: "ECONNRESET",
  110: "ETIMEDOUT",
  105: "ENOBUFS",
  101: "ENETUNREACH",
  113: "EHOSTUNREACH",
  32: "EPIPE",
};

/** The error kind of a failed connect or socket: its errno name (ECONNREFUSED, EMFILE, ...) or "other". */
export function errorKind(e: unknown): string {
  const err = e as { code?: unknown; errno?: unknown } | null;
  if (err && typeof err.code === "string" && /^E[A-Z0-9]+$/.test(err.code)) return err.code;
  if (err && typeof err.errno === "number") {
    const name = ERRNO_NAMES[Math.abs(err.errno)];
    if (name) return name;
  }
  return "other";
}

const ST_PENDING = 0;
const ST_CONNECTING = 1;
const ST_OPEN = 2;
const ST_FAILED = 3;
const ST_LOST = 4;
const ST_TIMED_OUT = 5;
const ST_CLOSED = 6;
/** Connected, probe sent, waiting for the reply (confirm mode). */
const ST_CONFIRMING = 7;

const TICK_MS = 10;

/** Reads VmRSS of this process (bytes) without allocating much: process.memoryUsage().rss. */
function rss(): number {
  return process.memoryUsage().rss;
}

/**
 * The engine of one load process. Contract: start() opens `connections` connections through
 * at most connectWindow concurrent connects; every connection ends up counted once as
 * connected or failed (after its retries); stop() closes everything and resolves when no
 * socket of this engine is open or connecting.
 */
export class LoadEngine {
  readonly options: Required<EngineOptions>;
  private readonly sockets: (Socket<number> | undefined)[];
  private readonly state: Uint8Array;
  private readonly attemptsOf: Uint8Array;
  private readonly connectStart: Float64Array;
  private readonly sentAt: Float64Array;
  private readonly expect: Int32Array;
  /** Partial RESP replies and unsent request tails: rare, so a Map rather than a column. */
  private readonly spill = new Map<number, Uint8Array>();
  private readonly unsent = new Map<number, Uint8Array>();
  private readonly inflight = new Set<number>();
  private readonly retryQueue: number[] = [];
  private nextFresh = 0;
  private c: LoadCounters;
  readonly connectUs = new LogHistogram();
  readonly latencyUs = new LogHistogram();
  private startedAt = 0;
  private rampEndedAt = 0;
  private connectingAllowed = false;
  private trafficOn = false;
  private stopping = false;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private lastTick = 0;
  private connectTokens = 0;
  private trafficTokens = 0;
  private rrCursor = 0;
  private pingCursor = 0;
  private readonly handlers: import("bun").SocketHandler<number>;
  private readonly pingFrame: Uint8Array;
  private readonly echoFrame: Uint8Array;
  private readonly lineFrame: Uint8Array;
  private readonly respGets: Uint8Array[] = [];
  private readonly respSets: Uint8Array[] = [];
  private rampWaiters: (() => void)[] = [];
  private stopWaiters: (() => void)[] = [];
  private readonly resp: RespSupport | undefined;

  /** An engine; loads the RESP codec only when protocol is "resp". */
  static async create(opts: EngineOptions): Promise<LoadEngine> {
    const resp = opts.protocol === "resp" ? (await import("./resp-support.ts")).respSupport : undefined;
    return new LoadEngine(opts, resp);
  }

  /** Prefer LoadEngine.create; protocol "resp" needs `resp` (src/loadgen/resp-support.ts). */
  constructor(opts: EngineOptions, resp?: RespSupport) {
    const o: Required<EngineOptions> = {
      connections: opts.connections,
      indexOffset: opts.indexOffset ?? 0,
      indexStride: opts.indexStride ?? 1,
      sources: opts.sources,
      targets: opts.targets,
      connectWindow: opts.connectWindow ?? 256,
      connectRatePerSec: opts.connectRatePerSec ?? 0,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      retries: opts.retries ?? 0,
      mode: opts.mode ?? "idle",
      protocol: opts.protocol ?? "echo",
      payloadBytes: opts.payloadBytes ?? 16,
      pingIntervalMs: opts.pingIntervalMs ?? 10_000,
      requestRatePerSec: opts.requestRatePerSec ?? 0,
      getRatio: opts.getRatio ?? 0.8,
      keyspace: opts.keyspace ?? 1000,
      confirm: opts.confirm ?? false,
    };
    if (!Number.isInteger(o.connections) || o.connections < 0) throw new MyriadRangeError("ERR_LOADGEN_CONNECTIONS", `connections must be an integer >= 0, got ${o.connections}`);
    if (!Array.isArray(o.targets) || o.targets.length === 0) throw new MyriadRangeError("ERR_LOADGEN_ADDRESS", "targets must name at least one host:port");
    if (!(o.connectWindow >= 1)) throw new MyriadRangeError("ERR_LOADGEN_OPTION", `connectWindow must be >= 1, got ${o.connectWindow}`);
    if (!(o.payloadBytes >= 1)) throw new MyriadRangeError("ERR_LOADGEN_OPTION", `payloadBytes must be >= 1, got ${o.payloadBytes}`);
    if (o.protocol === "resp" && resp === undefined) throw new MyriadRangeError("ERR_LOADGEN_OPTION", "protocol resp needs the RESP support: use LoadEngine.create");
    this.resp = resp;
    this.options = o;
    const n = o.connections;
    this.sockets = new Array(n);
    this.state = new Uint8Array(n);
    this.attemptsOf = new Uint8Array(n);
    this.connectStart = new Float64Array(n);
    // Traffic columns only when there is traffic: an idle million keeps them at zero length.
    const traffic = o.mode !== "idle" || o.confirm ? n : 0;
    this.sentAt = new Float64Array(traffic);
    this.expect = new Int32Array(traffic);
    this.c = emptyCounters(n);

    this.echoFrame = new Uint8Array(o.payloadBytes).fill(120); // "xxxx..."
    const line = new Uint8Array(o.payloadBytes).fill(120);
    line[line.length - 1] = 10;
    this.lineFrame = line;
    this.pingFrame =
      o.protocol === "resp" ? resp!.encode(["PING"]) : o.protocol === "lines" ? new TextEncoder().encode("PING\n") : this.echoFrame;
    if (o.protocol === "resp" && o.mode === "rr") {
      // Requests are prebuilt per key so the hot path only picks one.
      const value = "v".repeat(o.payloadBytes);
      const keys = Math.min(o.keyspace, 10_000);
      for (let k = 0; k < keys; k++) {
        this.respGets.push(resp!.encode(["GET", `key:${k}`]));
        this.respSets.push(resp!.encode(["SET", `key:${k}`, value]));
      }
    }

    const self = this;
    this.handlers = {
      binaryType: "uint8array",
      open() {},
      data(socket, data) {
        self.onData(socket.data, data as unknown as Uint8Array);
      },
      drain(socket) {
        self.flushUnsent(socket.data);
      },
      close(socket) {
        self.onClose(socket.data);
      },
      error(socket, err) {
        self.bump(errorKind(err));
      },
      connectError() {
        // The connect promise rejects too; counted there.
      },
    };
  }

  /** Counters now (a copy, rssBytes refreshed). */
  counters(): LoadCounters {
    const c = { ...this.c, errors: { ...this.c.errors } };
    c.connecting = this.inflight.size;
    c.rampMs = this.startedAt === 0 ? 0 : (this.rampEndedAt || performance.now()) - this.startedAt;
    c.rssBytes = rss();
    return c;
  }

  /** Counters and histograms. */
  report(): EngineReport {
    return { ...this.counters(), connectUs: this.connectUs.toJSON(), latencyUs: this.latencyUs.toJSON() };
  }

  /** Starts connecting. Resolves once the ramp is done (every connection open or failed for good) or stopConnecting() was called. */
  start(): Promise<void> {
    if (this.startedAt !== 0) return this.ramped();
    this.startedAt = performance.now();
    this.lastTick = this.startedAt;
    this.connectingAllowed = true;
    this.connectTokens = this.options.connectRatePerSec > 0 ? Math.min(this.options.connectWindow, this.options.connectRatePerSec / 10) : 0;
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.pump();
    this.checkRampDone();
    return this.ramped();
  }

  /** Resolves when the ramp is over. */
  ramped(): Promise<void> {
    if (this.c.rampDone) return Promise.resolve();
    return new Promise((resolve) => this.rampWaiters.push(resolve));
  }

  /** Stops opening connections (pending ones are counted as not attempted); the ramp ends when in-flight connects settle. */
  stopConnecting(): void {
    this.connectingAllowed = false;
    this.retryQueue.length = 0;
    this.nextFresh = this.options.connections;
    this.checkRampDone();
  }

  /** Starts traffic on every open connection (ping or rr mode; idle: no-op). */
  startTraffic(): void {
    if (this.options.mode === "idle" || this.stopping) return;
    this.trafficOn = true;
    if (this.options.mode === "rr" && this.options.requestRatePerSec === 0) {
      for (let i = 0; i < this.options.connections; i++) if (this.state[i] === ST_OPEN) this.send(i);
    }
  }

  /** Stops traffic (outstanding requests are left to finish or be dropped at stop). */
  stopTraffic(): void {
    this.trafficOn = false;
  }

  /**
   * Closes every connection (abortively: no TIME_WAIT left behind) and stops timers.
   * Resolves when nothing is open or connecting. Idempotent.
   */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.trafficOn = false;
      this.stopConnecting();
      const sockets = this.sockets;
      for (let i = 0; i < sockets.length; i++) {
        const s = sockets[i];
        if (s !== undefined) {
          sockets[i] = undefined;
          if (this.state[i] === ST_CONFIRMING) this.inflight.delete(i);
          else this.c.open--;
          this.state[i] = ST_CLOSED;
          s.terminate();
        }
      }
    }
    if (this.inflight.size === 0) return this.finishStop();
    return new Promise((resolve) => this.stopWaiters.push(resolve));
  }

  private finishStop(): Promise<void> {
    if (this.ticker !== undefined) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    const w = this.stopWaiters;
    this.stopWaiters = [];
    for (const f of w) f();
    return Promise.resolve();
  }

  private bump(kind: string): void {
    this.c.errors[kind] = (this.c.errors[kind] ?? 0) + 1;
  }

  private checkRampDone(): void {
    if (this.c.rampDone) return;
    if (this.nextFresh >= this.options.connections && this.retryQueue.length === 0 && this.inflight.size === 0) {
      this.c.rampDone = true;
      this.rampEndedAt = performance.now();
      const w = this.rampWaiters;
      this.rampWaiters = [];
      for (const f of w) f();
    }
  }

  private tick(): void {
    const now = performance.now();
    const dt = now - this.lastTick;
    this.lastTick = now;
    const o = this.options;
    if (o.connectRatePerSec > 0) {
      this.connectTokens = Math.min(this.connectTokens + (o.connectRatePerSec * dt) / 1000, Math.max(1, o.connectRatePerSec / 10));
    }
    // Connects stuck past the timeout (SYNs dropped on a full listen queue retransmit after 1, 3, 7 s).
    if (this.inflight.size > 0) {
      for (const i of this.inflight) {
        if (now - this.connectStart[i]! > o.connectTimeoutMs) {
          this.inflight.delete(i);
          const s = this.sockets[i];
          if (s !== undefined) {
            // Connected but never confirmed.
            this.sockets[i] = undefined;
            this.sentAt[i] = 0;
            s.terminate();
          }
          this.state[i] = ST_TIMED_OUT;
          this.bump("ETIMEDOUT");
          this.failed(i);
        }
      }
    }
    this.pump();
    this.checkRampDone();
    if (this.trafficOn) this.trafficTick(dt);
    if (this.stopping && this.inflight.size === 0) void this.finishStop();
  }

  /** Starts connects while the window, the rate and the work allow. */
  private pump(): void {
    const o = this.options;
    while (this.connectingAllowed && this.inflight.size < o.connectWindow) {
      if (o.connectRatePerSec > 0) {
        if (this.connectTokens < 1) return;
        this.connectTokens -= 1;
      }
      let i: number;
      if (this.nextFresh < o.connections) i = this.nextFresh++;
      else if (this.retryQueue.length > 0) i = this.retryQueue.shift()!;
      else return;
      this.connect(i);
    }
  }

  private connect(i: number): void {
    const o = this.options;
    const { source, target } = tupleOf(o.indexOffset + i * o.indexStride, o.sources, o.targets);
    this.state[i] = ST_CONNECTING;
    this.attemptsOf[i]!++;
    this.c.attempts++;
    this.connectStart[i] = performance.now();
    this.inflight.add(i);
    const opts: Record<string, unknown> = { hostname: target.host, port: target.port, data: i, socket: this.handlers };
    if (source !== undefined) opts.localAddress = source;
    let p: Promise<Socket<number>>;
    try {
      p = Bun.connect(opts as unknown as Parameters<typeof Bun.connect<number>>[0]);
    } catch (e) {
      this.connectFailed(i, e);
      return;
    }
    p.then(
      (socket) => this.connected(i, socket),
      (e) => this.connectFailed(i, e),
    );
  }

  private connected(i: number, socket: Socket<number>): void {
    if (this.state[i] !== ST_CONNECTING || this.stopping) {
      // Timed out earlier (already counted) or stopping: not ours to keep.
      socket.terminate();
      if (this.inflight.delete(i)) this.afterSettle();
      return;
    }
    if (isSelfConnect(socket)) {
      // A target port on this host with nothing listening, picked as the source port too: the
      // socket is connected to itself and would echo our own bytes. A failed connect, retried.
      socket.terminate();
      this.inflight.delete(i);
      this.bump("ESELFCONNECT");
      this.failed(i);
      this.afterSettle();
      return;
    }
    this.sockets[i] = socket;
    if (this.options.confirm) {
      this.state[i] = ST_CONFIRMING;
      this.send(i);
      return;
    }
    this.opened(i);
  }

  /** Connection i is open (connected, and confirmed when asked): leaves the window. */
  private opened(i: number): void {
    this.inflight.delete(i);
    this.state[i] = ST_OPEN;
    this.connectUs.record((performance.now() - this.connectStart[i]!) * 1000);
    this.c.connected++;
    this.c.open++;
    if (this.c.open > this.c.peakOpen) this.c.peakOpen = this.c.open;
    if (this.trafficOn && this.options.mode === "rr" && this.options.requestRatePerSec === 0) this.send(i);
    this.afterSettle();
  }

  private connectFailed(i: number, e: unknown): void {
    if (!this.inflight.delete(i)) return; // timed out earlier: already counted
    this.bump(errorKind(e));
    this.failed(i);
    this.afterSettle();
  }

  private failed(i: number): void {
    if (!this.stopping && this.connectingAllowed && this.attemptsOf[i]! <= this.options.retries) {
      this.state[i] = ST_PENDING;
      this.retryQueue.push(i);
    } else {
      this.state[i] = ST_FAILED;
      this.c.failed++;
    }
  }

  private afterSettle(): void {
    if (this.stopping) {
      if (this.inflight.size === 0) void this.finishStop();
      return;
    }
    this.pump();
    this.checkRampDone();
  }

  private onClose(i: number): void {
    if (this.state[i] === ST_CONFIRMING) {
      // Closed before the probe came back: a failed connect (e.g. reset by a server over its limit).
      this.sockets[i] = undefined;
      this.sentAt[i] = 0;
      this.spill.delete(i);
      this.unsent.delete(i);
      if (this.inflight.delete(i)) {
        this.bump("ECONNRESET");
        this.failed(i);
        this.afterSettle();
      }
      return;
    }
    if (this.state[i] !== ST_OPEN) return; // closed by stop(), or never ours
    this.state[i] = ST_LOST;
    this.sockets[i] = undefined;
    this.c.open--;
    this.c.lost++;
    if (this.sentAt.length > 0) this.sentAt[i] = 0;
    this.spill.delete(i);
    this.unsent.delete(i);
  }

  private trafficTick(dtMs: number): void {
    const o = this.options;
    const n = o.connections;
    if (n === 0) return;
    if (o.mode === "ping") {
      // Every connection once per interval, spread evenly over it.
      this.trafficTokens += (this.c.open * dtMs) / o.pingIntervalMs;
      let budget = Math.floor(this.trafficTokens);
      this.trafficTokens -= budget;
      let scanned = 0;
      while (budget > 0 && scanned < n) {
        const i = this.pingCursor;
        this.pingCursor = i + 1 === n ? 0 : i + 1;
        scanned++;
        if (this.state[i] !== ST_OPEN) continue;
        budget--;
        if (this.sentAt[i] !== 0) this.c.skipped++;
        else this.send(i);
      }
    } else if (o.mode === "rr" && o.requestRatePerSec > 0) {
      this.trafficTokens = Math.min(this.trafficTokens + (o.requestRatePerSec * dtMs) / 1000, Math.max(1, o.requestRatePerSec / 10));
      let budget = Math.floor(this.trafficTokens);
      let scanned = 0;
      while (budget > 0 && scanned < n) {
        const i = this.rrCursor;
        this.rrCursor = i + 1 === n ? 0 : i + 1;
        scanned++;
        if (this.state[i] !== ST_OPEN || this.sentAt[i] !== 0) continue;
        budget--;
        this.trafficTokens -= 1;
        this.send(i);
      }
    }
  }

  /** Sends one request (or ping) on connection i. */
  private send(i: number): void {
    const socket = this.sockets[i];
    if (socket === undefined) return;
    const o = this.options;
    let frame: Uint8Array;
    if (o.mode === "ping" || this.state[i] === ST_CONFIRMING) {
      frame = this.pingFrame;
    } else if (o.protocol === "resp") {
      const k = (Math.random() * this.respGets.length) | 0;
      frame = Math.random() < o.getRatio ? this.respGets[k]! : this.respSets[k]!;
    } else {
      frame = o.protocol === "lines" ? this.lineFrame : this.echoFrame;
    }
    this.expect[i] = o.protocol === "echo" ? frame.length : 0;
    this.sentAt[i] = performance.now();
    if (this.state[i] !== ST_CONFIRMING) this.c.requests++;
    this.c.bytesOut += frame.length;
    const wrote = socket.write(frame);
    if (wrote < frame.length && wrote >= 0) this.unsent.set(i, frame.subarray(wrote));
  }

  private flushUnsent(i: number): void {
    const rest = this.unsent.get(i);
    const socket = this.sockets[i];
    if (rest === undefined || socket === undefined) return;
    const wrote = socket.write(rest);
    if (wrote >= rest.length || wrote < 0) this.unsent.delete(i);
    else this.unsent.set(i, rest.subarray(wrote));
  }

  private onData(i: number, data: Uint8Array): void {
    this.c.bytesIn += data.length;
    if (this.sentAt.length === 0 || this.sentAt[i] === 0) return; // unsolicited bytes (a greeting): ignored
    switch (this.options.protocol) {
      case "echo":
        this.expect[i]! -= data.length;
        if (this.expect[i]! <= 0) this.complete(i);
        return;
      case "lines":
        if (data.indexOf(10) >= 0) this.complete(i);
        return;
      case "resp": {
        let buf = data;
        const held = this.spill.get(i);
        if (held !== undefined) {
          buf = new Uint8Array(held.length + data.length);
          buf.set(held);
          buf.set(data, held.length);
        }
        const n = this.resp!.measure(buf, buf.length);
        if (n === 0) {
          this.spill.set(i, held === undefined ? data.slice() : buf);
          return;
        }
        this.spill.delete(i);
        if (n < 0 || buf[0] === 45 /* "-" error reply */) this.c.badReplies++;
        this.complete(i);
        return;
      }
    }
  }

  private complete(i: number): void {
    if (this.state[i] === ST_CONFIRMING) {
      this.sentAt[i] = 0;
      this.opened(i);
      return;
    }
    this.latencyUs.record((performance.now() - this.sentAt[i]!) * 1000);
    this.sentAt[i] = 0;
    this.c.responses++;
    if (this.trafficOn && this.options.mode === "rr" && this.options.requestRatePerSec === 0) this.send(i);
  }
}
