/**
 * One load process's connections: opens its share through a bounded connect window,
 * holds them, and optionally drives traffic (ping or closed-loop request/response),
 * counting everything the report needs. The parent (coordinator.ts) runs one engine per
 * child process and merges their counters and histograms.
 *
 * Per-connection state lives in typed arrays indexed by the connection's local index (the
 * socket's `data`); the only per-connection objects are Bun's sockets themselves.
 *
 * One file a little past 500 lines on purpose: the connect window, the hold and the traffic
 * loops are one state machine over the same typed arrays and the same socket callbacks;
 * split by file they would share the columns through exported fields and the per-event
 * callbacks would cross modules on the load client's hot path.
 */
import type { Socket } from "bun";
import { MyriadRangeError } from "../errors.ts";
import { isSelfConnect } from "../pool/index.ts";
import { emptyCounters, errorKind, type EngineReport, type LoadCounters } from "./counters.ts";
import { LogHistogram } from "./histogram.ts";
import { resolveEngineOptions, type EngineOptions } from "./options.ts";
import { RequestFrames } from "./requests.ts";
import type { RespSupport } from "./resp-support.ts";
import { tupleOf } from "./targets.ts";

const ST_PENDING = 0;
const ST_CONNECTING = 1;
const ST_OPEN = 2;
const ST_FAILED = 3;
const ST_LOST = 4;
const ST_TIMED_OUT = 5;
const ST_CLOSED = 6;
/** Connected, probe sent, waiting for the reply (confirm mode). */
const ST_CONFIRMING = 7;
/** websocket: connected, upgrade request sent, waiting for the 101. */
const ST_UPGRADING = 8;

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
  private readonly frames: RequestFrames;
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
    const o = resolveEngineOptions(opts);
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

    this.frames = new RequestFrames(o, resp);

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
          if (this.state[i] === ST_CONFIRMING || this.state[i] === ST_UPGRADING) this.inflight.delete(i);
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
    if (this.options.protocol === "websocket") {
      // Open once the 101 came (and, with confirm, the echo of a message after it).
      this.state[i] = ST_UPGRADING;
      this.c.bytesOut += this.frames.upgrade.length;
      const wrote = socket.write(this.frames.upgrade);
      if (wrote < this.frames.upgrade.length && wrote >= 0) this.unsent.set(i, this.frames.upgrade.subarray(wrote));
      return;
    }
    if (this.options.confirm) {
      this.state[i] = ST_CONFIRMING;
      this.send(i);
      return;
    }
    this.opened(i);
  }

  /** websocket: bytes while waiting for the 101; true once it came (the connection goes on). */
  private upgradeAnswer(i: number, data: Uint8Array): void {
    const held = this.spill.get(i);
    const buf = held === undefined ? data : concatBytes(held, data);
    const text = Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString("latin1");
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) {
      if (buf.length > 8192) return this.upgradeRefused(i, "EHANDSHAKE");
      this.spill.set(i, held === undefined ? data.slice() : buf);
      return;
    }
    this.spill.delete(i);
    if (!text.startsWith("HTTP/1.1 101 ")) return this.upgradeRefused(i, "EHANDSHAKE");
    if (this.options.confirm) {
      this.state[i] = ST_CONFIRMING;
      this.send(i);
      return;
    }
    this.opened(i);
  }

  /** websocket: the server answered the upgrade with something else than 101: a failed connect. */
  private upgradeRefused(i: number, kind: string): void {
    const s = this.sockets[i];
    this.sockets[i] = undefined;
    this.spill.delete(i);
    this.unsent.delete(i);
    this.state[i] = ST_CONNECTING; // so that the close that follows is not counted as a loss
    s?.terminate();
    if (this.inflight.delete(i)) {
      this.bump(kind);
      this.failed(i);
      this.afterSettle();
    }
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
    if (this.state[i] === ST_CONFIRMING || this.state[i] === ST_UPGRADING) {
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
    const frame = this.state[i] === ST_CONFIRMING ? this.frames.probe : o.mode === "ping" ? this.frames.ping : this.frames.request();
    this.expect[i] = this.frames.replyBytes(frame);
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
    if (this.state[i] === ST_UPGRADING) return this.upgradeAnswer(i, data);
    if (this.sentAt.length === 0 || this.sentAt[i] === 0) return; // unsolicited bytes (a greeting): ignored
    switch (this.options.protocol) {
      case "websocket": // the reply's length is known: the frame, unmasked
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

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
