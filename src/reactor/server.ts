/**
 * The reactor: createServer over Bun.listen. This file is the connection lifecycle (Bun's
 * open, data, drain, end, close and error callbacks), the public Server API, stats and stop;
 * the rest lives beside it by concern (see state.ts for the map): input.ts, output.ts,
 * dispatch.ts, deadlines.ts, fanout.ts, listen.ts.
 *
 * Per connection the server keeps Bun's socket object (in `sockets`, indexed by slot: one
 * array reference, 8 bytes) and typed-array fields: the ConnTable's (48 bytes) plus
 * openedAt 4 + stallSince 4 + closeReason 1, plus the timing wheel's entry. No closure,
 * Map entry or object per connection; socket.data is the connection's handle (a number).
 * Those arrays are reserved for maxConnections but cost memory per page written, so a
 * connection writes a field only when it uses it: ConnTable keeps free slots zeroed,
 * closeReason is put back to R_NONE at close, and openedAt / stallSince are written (and
 * read) only while handshakeTimeoutMs / writeStallTimeoutMs are set; they keep whatever the
 * slot's last user left, never read before they are written again. The table's bytesIn /
 * bytesOut columns stay unwritten (the byte counts are server-wide). One connection that
 * never sends or receives a byte writes `state` and its socket reference, plus lastActivity
 * and openedAt when idleTimeoutMs and handshakeTimeoutMs are set; reads and writes that the
 * kernel takes at once add nothing.
 *
 * Peer close: sockets are half-open (allowHalfOpen), so a peer's FIN leaves the write queue
 * to be flushed before we close (onEnd). Bun does not report a FIN to a paused socket (it
 * stops reading it), only a reset: a paused or closing connection sees the FIN once it
 * drains and resumes, and one that never drains is closed by writeStallTimeoutMs or by
 * stop()'s deadline (Bun 1.4.5, checked: FIN unseen while paused, RST reported).
 *
 * One file a little past 500 lines on purpose: Bun's callbacks and the stop and stats paths
 * share the class's private lifecycle state; the seams that stand apart already live beside
 * it, and splitting the callbacks from the class would put a module boundary inside the
 * accept path.
 */
import type { SocketHandler } from "bun";
import { NO_REF } from "../conn-table/index.ts";
import { MyriadError } from "../errors.ts";
import { cancelDeadline, dueReason, refile, releaseClock } from "./deadlines.ts";
import { callClose, callOpen, enterEvent, handlerThrew, leaveEvent, report } from "./dispatch.ts";
import { ServerOptionError } from "./errors.ts";
import { broadcast } from "./fanout.ts";
import { decodeInput, hold, pauseReading, releaseInput, resumeReading, stageInput, unpauseIfDrained } from "./input.ts";
import { bindListener } from "./listen.ts";
import { resolveOptions } from "./options.ts";
import { ProxyStage } from "./proxy-stage.ts";
import { ServerBus } from "./cluster-bus.ts";
import { closeAfterFlush, closeNow, flushQueue, joinBroadcasts, releaseQueue, write } from "./output.ts";
import {
  F_CLOSING,
  F_ERRORED,
  F_HELD,
  F_NOREAD,
  F_PAUSED,
  F_STAGED,
  ReactorState,
  S_CLOSED,
  S_OPEN,
  SLOT_MASK,
  type Sock,
} from "./state.ts";
import { R_ERROR, R_LIMIT, R_NONE, R_PEER, R_PROXY, R_SHUTDOWN, R_WRITE_STALL, closedRecord, reasonCode } from "./stats.ts";
import type { CloseReason, Server, ServerOptions, ServerStats } from "./types.ts";
import { WebSocketStage } from "./websocket.ts";
import type { WebSocketServer, WebSocketServerOptions } from "./websocket-types.ts";
import { MyriadTypeError } from "../errors.ts";

/**
 * Starts a server: validates opts (ServerOptionError naming the option), listens
 * (ListenError: ERR_ADDRESS_IN_USE, ERR_ACCESS_DENIED or ERR_LISTEN) and resolves once it
 * accepts connections.
 */
export async function createServer<In = any>(opts: ServerOptions<In>): Promise<Server>;
export async function createServer(opts: WebSocketServerOptions): Promise<WebSocketServer>;
// The TCP signature again, last: Parameters<typeof createServer> reads the last overload.
export async function createServer(opts: ServerOptions): Promise<Server>;
export async function createServer(opts: ServerOptions | WebSocketServerOptions): Promise<Server> {
  const o = resolveOptions(opts);
  // protocol "websocket": the upgrade and framing are a stage in front of the (raw) codec,
  // and the reactor calls the stage's adapter, which calls the application's handler.
  const ws = o.websocket === null ? null : new WebSocketStage(o.websocket);
  if (ws !== null) o.handler = ws.reactorHandler;
  const server = new ReactorServer(o);
  if (ws !== null) {
    ws.attach(server);
    server.stage = ws;
    server.websocket = ws;
  }
  if (o.bus !== null) {
    const cluster = new ServerBus(server, o.bus, ws);
    server.cluster = cluster;
    if (ws !== null) ws.onPublished = (topic, data, compress) => cluster.publish(topic, data, compress);
  }
  server.listen();
  return server;
}

class ReactorServer extends ReactorState implements Server {
  /** The WebSocket stage (also this.stage) of a protocol "websocket" server, else null. */
  websocket: WebSocketStage | null = null;
  /** The node bus side of this server (createServer's bus option), else null. */
  cluster: ServerBus | null = null;
  private readonly startedAt = performance.now();
  /** The process's RSS with no connection open: at listen, then at each stats() that finds none. */
  private baselineRss = 0;
  private stopPromise: Promise<ServerStats> | null = null;
  private stopResolve: ((s: ServerStats) => void) | null = null;
  private stopTimer: ReturnType<typeof setTimeout> | null = null;
  private finalStats: ServerStats | null = null;

  /** Binds; throws ListenError. */
  listen(): void {
    // The PROXY header comes first, in front of any other stage.
    if (this.o.proxyProtocol) this.stage = new ProxyStage(this.stage);
    const handlers: SocketHandler<number, "uint8array"> = {
      binaryType: "uint8array",
      open: (s) => this.onOpen(s),
      data: (s, d) => this.onData(s as Sock, d),
      drain: (s) => this.onDrain(s as Sock),
      end: (s) => this.onEnd(s as Sock),
      close: (s) => this.onClose(s),
      error: (s, e) => this.onError(s as Sock, e),
    };
    if (this.o.tls !== undefined) {
      // With a handshake handler Bun calls open at accept, before the TLS handshake, so the
      // handshake timeout also covers a client that never finishes TLS. The handler then
      // owns the authorization decision: refuse an unauthorized client certificate when the
      // options ask for one and do not waive rejectUnauthorized.
      const tls = this.o.tls as { requestCert?: boolean; rejectUnauthorized?: boolean };
      const mustAuthorize = tls.requestCert === true && tls.rejectUnauthorized !== false;
      handlers.handshake = (s, success, authorizationError) => {
        if (success || !mustAuthorize) return;
        const h = (s as Sock).data;
        if (h < 0 || !this.table.isLive(h)) return;
        const why = authorizationError?.message ?? "no certificate, or one the configured CAs did not sign";
        report(this, h, new MyriadError("ERR_TLS_UNAUTHORIZED", `TLS client certificate not authorized (${why}); the connection is closed`, { cause: authorizationError }));
        closeNow(this, h, R_ERROR, true);
      };
    }
    this.listener = bindListener(this.o, handlers);
    this.baselineRss = process.memoryUsage.rss();
  }

  get port(): number {
    const l = this.listener as { port?: number } | null;
    return l?.port ?? 0;
  }

  get hostname(): string {
    const l = this.listener as { hostname?: string } | null;
    return this.o.unix !== "" ? "" : (l?.hostname ?? this.o.hostname);
  }

  get unix(): string {
    return this.o.unix;
  }

  get accepting(): boolean {
    return !this.stopping;
  }

  get connections(): number {
    return this.table.size;
  }

  // ---- Bun callbacks -----------------------------------------------------------------------

  private onOpen(socket: Sock): void {
    const budget = this.budget;
    if (this.stopping || (budget !== null && budget.live >= budget.max)) return this.reject(socket);
    let ip = "";
    const perIp = this.perIp;
    const proxied = this.proxyAddress !== null;
    if (proxied && this.o.proxyProtocolFrom !== null && !this.o.proxyProtocolFrom.has(socket.remoteAddress ?? "")) {
      // Not one of the balancers: closed before it is read, counted as a PROXY refusal.
      socket.data = -1;
      this.closedCounts[R_PROXY]!++;
      socket.terminate();
      return;
    }
    // A proxied connection is counted per IP once its header names the client (proxy-stage.ts).
    if (perIp !== null && !proxied) {
      ip = socket.remoteAddress ?? "";
      const n = perIp.get(ip) ?? 0;
      if (n >= this.o.maxConnectionsPerIp) return this.reject(socket);
      perIp.set(ip, n + 1);
    }
    const table = this.table;
    const h = table.alloc();
    if (h < 0) {
      if (perIp !== null) this.ipRelease(ip);
      return this.reject(socket);
    }
    if (budget !== null) budget.live++;
    socket.data = h;
    const slot = h & SLOT_MASK;
    this.sockets[slot] = socket;
    table.state[slot] = S_OPEN;
    // closeReason is R_NONE (0) already: onClose puts it back before the slot is freed.
    this.accepted++;
    if (table.size > this.peak) this.peak = table.size;
    if (this.idleTimeoutMs > 0 || this.handshakeTimeoutMs > 0 || proxied) {
      // Only the timeouts read these; left unwritten, their pages cost nothing (see file comment).
      const nowF = performance.now();
      const now = nowF >>> 0;
      if (this.idleTimeoutMs > 0) table.lastActivity[slot] = now;
      if (this.handshakeTimeoutMs > 0 || proxied) this.openedAt[slot] = now;
      refile(this, slot, nowF);
    }
    // Broadcasts made earlier in this turn are not for a connection that was not there.
    if (this.bcLen !== 0) joinBroadcasts(this, slot);
    const stage = this.stage;
    if (stage !== null && stage.open(this, h, slot)) {
      table.flags[slot]! |= F_STAGED; // handler.open is the stage's to call
      return;
    }
    if (this.handler.open !== undefined) callOpen(this, h, slot);
  }

  /** Over a limit or stopping: closed at once (never queued, never retried), counted. */
  private reject(socket: Sock): void {
    socket.data = -1;
    this.rejected++;
    socket.terminate();
  }

  private onData(socket: Sock, buf: Uint8Array): void {
    const h = socket.data;
    if (h < 0) return;
    const slot = h & SLOT_MASK;
    const table = this.table;
    const t0 = this.clockPerEvent ? performance.now() : 0;
    // Read only by the idle timeout: without one, a store here is a cache line per event.
    if (this.idleTimeoutMs > 0) table.lastActivity[slot] = t0 >>> 0;
    this.frameStartMs = t0;
    // Server-wide only: nothing reads a per-connection count, and the table's bytesIn column
    // would cost a cache line per read and, once written, 8 bytes of RSS per connection.
    this.bytesIn += buf.length;
    const flags = table.flags[slot]!;
    // One test for the plain path: paused (by writes or the application), closing and staged connections all take the other.
    if ((flags & (F_NOREAD | F_CLOSING | F_STAGED)) !== 0) return this.onOtherData(h, slot, flags, buf);
    enterEvent(this, h, slot);
    try {
      decodeInput(this, h, slot, buf);
    } catch (err) {
      // One try per read, not per frame: a throwing handler closes its connection ("error").
      handlerThrew(this, h, err);
    }
    leaveEvent(this, h);
  }

  /** A read on a paused, closing or staged connection (see input.ts for the stage). */
  private onOtherData(h: number, slot: number, flags: number, buf: Uint8Array): void {
    if ((flags & F_CLOSING) !== 0) return; // a closing connection's input is dropped
    // Bun may still hand over a read that raced with pause(): keep it for resume.
    if ((flags & F_NOREAD) !== 0) return hold(this, slot, buf, 0, buf.length);
    enterEvent(this, h, slot);
    try {
      stageInput(this, h, slot, buf);
    } catch (err) {
      handlerThrew(this, h, err);
    }
    leaveEvent(this, h);
  }

  private onDrain(socket: Sock): void {
    const h = socket.data;
    if (h < 0) return;
    const slot = h & SLOT_MASK;
    if (!flushQueue(this, slot)) return;
    const flags = this.table.flags[slot]!;
    if (this.table.outRef[slot]! === NO_REF && (flags & F_CLOSING) !== 0) return closeNow(this, h, R_NONE, false);
    unpauseIfDrained(this, h, slot);
  }

  /**
   * The peer sent FIN: it sends nothing more but may still be reading (a client that writes
   * its request and shuts down its side, as `nc -N` does). Without allowHalfOpen, Bun would
   * close the socket here and drop the write queue; instead the connection closes ("peer")
   * once its queue is flushed, or "writeStall" when it cannot flush within
   * writeStallTimeoutMs. A partial frame can no longer complete and is dropped.
   */
  private onEnd(socket: Sock): void {
    const h = socket.data;
    if (h < 0) return;
    closeAfterFlush(this, h, R_NONE);
  }

  private onClose(socket: Sock): void {
    const h = socket.data;
    if (h < 0) return;
    socket.data = -1;
    const table = this.table;
    if (!table.isLive(h)) return;
    const slot = h & SLOT_MASK;
    const flags = table.flags[slot]!;
    let code = this.closeReason[slot]!;
    if (code === R_NONE) code = (flags & F_ERRORED) !== 0 ? R_ERROR : R_PEER;
    else this.closeReason[slot] = R_NONE; // as the next occupant of the slot expects it
    this.closedCounts[code]!++;
    if ((flags & F_PAUSED) !== 0) this.pausedConnections--;
    if ((flags & F_HELD) !== 0) this.heldConnections--;
    releaseQueue(this, slot);
    releaseInput(this, slot);
    cancelDeadline(this, slot);
    if (this.budget !== null) this.budget.live--;
    const proxyAddress = this.proxyAddress;
    if (proxyAddress === null) {
      if (this.perIp !== null) this.ipRelease(socket.remoteAddress ?? "");
    } else if (proxyAddress[slot] !== undefined) {
      // Counted per IP when its header arrived (and only then).
      if (this.perIp !== null) this.ipRelease(proxyAddress[slot]!);
    }
    table.state[slot] = S_CLOSED;
    if (slot === this.corkSlot) this.corkHandle = -1;
    const opened = (flags & F_STAGED) === 0 || this.stage!.close(this, h, slot);
    if (opened && this.handler.close !== undefined) callClose(this, h, slot, code);
    this.sockets[slot] = undefined;
    if (proxyAddress !== null) proxyAddress[slot] = undefined;
    table.free(h);
    if (this.stopping && table.size === 0) this.finishStop();
  }

  private onError(socket: Sock, err: Error): void {
    const h = socket.data;
    if (h < 0 || !this.table.isLive(h)) return;
    this.table.flags[h & SLOT_MASK]! |= F_ERRORED;
    report(this, h, err);
  }

  private ipRelease(ip: string): void {
    const perIp = this.perIp!;
    const n = perIp.get(ip) ?? 0;
    if (n <= 1) perIp.delete(ip);
    else perIp.set(ip, n - 1);
  }

  // ---- the public API (Server, and ConnOps for Conn) ------------------------------------------

  send(id: number, message: unknown): boolean {
    if (this.websocket !== null) return this.websocket.send(id, message as string | Uint8Array);
    if (!this.isOpen(id)) return false;
    return this.write(id, this.codec.encode(message));
  }

  broadcast(bytes: Uint8Array | string): number {
    const n = broadcast(this, bytes);
    if (this.cluster !== null) this.cluster.broadcast(bytes);
    return n;
  }

  /** WebSocket servers: see WebSocketServer.publish. */
  publish(topic: string, data: string | Uint8Array, compress?: boolean): number {
    if (this.websocket === null) throw new MyriadTypeError("ERR_SERVER_OPTION", 'publish needs a protocol "websocket" server; TCP servers have broadcast');
    return this.websocket.publish(topic, data, compress);
  }

  /** WebSocket servers: subscribers of topic. */
  subscriberCount(topic: string): number {
    return this.websocket === null ? 0 : this.websocket.subscriberCount(topic);
  }

  isOpen(id: number): boolean {
    const table = this.table;
    const slot = id & SLOT_MASK;
    return table.isLive(id) && table.state[slot] === S_OPEN && (table.flags[slot]! & F_CLOSING) === 0;
  }

  remoteAddress(id: number): string {
    if (!this.table.isLive(id)) return "";
    const slot = id & SLOT_MASK;
    const proxied = this.proxyAddress?.[slot];
    if (proxied !== undefined) return proxied;
    return this.sockets[slot]?.remoteAddress ?? "";
  }

  remotePort(id: number): number {
    if (!this.table.isLive(id)) return 0;
    const slot = id & SLOT_MASK;
    if (this.proxyAddress?.[slot] !== undefined) return this.proxyPort![slot]!;
    return this.sockets[slot]?.remotePort ?? 0;
  }

  localAddress(id: number): string {
    if (!this.table.isLive(id)) return "";
    return this.sockets[id & SLOT_MASK]?.localAddress ?? "";
  }

  localPort(id: number): number {
    if (!this.table.isLive(id)) return 0;
    return this.sockets[id & SLOT_MASK]?.localPort ?? 0;
  }

  close(id: number, reason?: CloseReason): void {
    closeAfterFlush(this, id, reasonCode(reason));
  }

  pauseReading(id: number): void {
    pauseReading(this, id);
  }

  resumeReading(id: number): void {
    resumeReading(this, id);
  }

  // ---- deadlines (the clock's ClockClient) -------------------------------------------------

  /** Called by the clock when slot's timer fires: close what is due, re-file the rest. */
  onTimer(slot: number): void {
    const h = this.table.handleOf(slot);
    if (h < 0 || this.table.state[slot] !== S_OPEN) return;
    const code = dueReason(this, slot);
    // A stalled writer is cut off (its queue dropped); the others are flushed and ended.
    if (code !== R_NONE) closeNow(this, h, code, code === R_WRITE_STALL);
  }

  /** The wheel was rebuilt: file every live slot's deadline again. */
  refileAll(): void {
    if (!this.clocked) return;
    const table = this.table;
    const nowF = performance.now();
    table.forEachLive((h) => {
      const slot = h & SLOT_MASK;
      if (table.state[slot] === S_OPEN) refile(this, slot, nowF);
    });
  }

  // ---- stats and stop ----------------------------------------------------------------------

  stats(): ServerStats {
    if (this.finalStats !== null) return this.finalStats;
    const mem = processMemory();
    // Free: stats() reads the RSS anyway, and a moment with no connection is what the
    // process costs without any (its warm-up included), for the per-connection estimate.
    if (this.table.size === 0) this.baselineRss = mem.rss;
    return {
      connections: this.table.size,
      peakConnections: this.peak,
      accepted: this.accepted,
      // An accepted connection the application closed with "limit" was refused by its own
      // limit: counted with the refusals, as CloseReason documents (closed has no "limit").
      rejected: this.rejected + this.closedCounts[R_LIMIT]!,
      closed: closedRecord(this.closedCounts),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      writeQueueBytes: this.writeQueueBytes,
      inputBufferBytes: this.inputBytes,
      pausedConnections: this.pausedConnections,
      readPausedConnections: this.heldConnections,
      rssBytes: mem.rss,
      baselineRssBytes: this.baselineRss,
      heapUsedBytes: mem.heapUsed,
      uptimeMs: performance.now() - this.startedAt,
      requestLatency: this.latency.buckets(),
      ...(this.websocket === null ? {} : { websocket: this.websocket.stats() }),
    };
  }

  stop(opts: { graceful?: boolean; timeoutMs?: number } = {}): Promise<ServerStats> {
    const graceful = opts?.graceful ?? true;
    const timeoutMs = opts?.timeoutMs ?? 10_000;
    // Checked before the stopping check so a bad argument gets the same answer in any state;
    // a promise-returning call reports it by rejecting (src/errors.ts).
    if (typeof graceful !== "boolean") return Promise.reject(new ServerOptionError("stop.graceful", "expected true or false"));
    if (typeof timeoutMs !== "number" || !(timeoutMs >= 0) || timeoutMs > 2 ** 31 - 1) {
      return Promise.reject(new ServerOptionError("stop.timeoutMs", `expected milliseconds 0..${2 ** 31 - 1}, got ${String(timeoutMs)}`));
    }
    if (this.stopPromise !== null) return this.stopPromise;
    this.stopping = true;
    this.stopPromise = new Promise<ServerStats>((resolve) => {
      this.stopResolve = resolve;
    });
    // Stop accepting now; connections stay open until closed below.
    this.listener?.stop(false);
    if (!graceful || timeoutMs === 0) {
      this.closeAll(true);
    } else {
      // setImmediate: a handler that called stop() finishes its callback (and its writes) first.
      setImmediate(() => this.closeAll(false));
      this.stopTimer = setTimeout(() => this.closeAll(true), timeoutMs);
    }
    if (this.table.size === 0) this.finishStop();
    return this.stopPromise;
  }

  /** Closes every connection with "shutdown": abort now, or flush then end. */
  private closeAll(abort: boolean): void {
    if (this.finalStats !== null) return;
    const table = this.table;
    table.forEachLive((h) => {
      const slot = h & SLOT_MASK;
      if (table.state[slot] !== S_OPEN) return;
      if (abort) {
        this.closeReason[slot] = this.closeReason[slot] || R_SHUTDOWN;
        closeNow(this, h, R_SHUTDOWN, true);
      } else {
        this.stage?.goingAway?.(this, h, slot);
        closeAfterFlush(this, h, R_SHUTDOWN);
      }
    });
  }

  private finishStop(): void {
    if (this.finalStats !== null) return;
    if (this.stopTimer !== null) clearTimeout(this.stopTimer);
    this.stopTimer = null;
    releaseClock(this);
    this.listener?.stop(true);
    this.cluster?.close();
    const stats = this.stats();
    this.finalStats = stats;
    this.stopResolve!(stats);
  }
}

// conn.write's hot path is output.ts's write itself, installed as the method: no wrapper call per write.
ReactorServer.prototype.write = write;

/** The last process.memoryUsage() read, and when (performance.now()). */
let memoryRead: NodeJS.MemoryUsage | null = null;
let memoryReadAt = -Infinity;

/**
 * process.memoryUsage(), read at most once per millisecond: a process with several servers
 * (a cluster worker listening on several ports) sums their stats() every report, and each
 * read costs a few microseconds to tens of microseconds with a large heap.
 */
function processMemory(): NodeJS.MemoryUsage {
  const now = performance.now();
  if (memoryRead === null || now - memoryReadAt >= 1) {
    memoryRead = process.memoryUsage();
    memoryReadAt = now;
  }
  return memoryRead;
}
