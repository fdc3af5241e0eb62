/**
 * What every part of a pool shares: its configuration, upstream servers and key router, its
 * client states, the putting back of replies in each client's order and their one write per
 * client per turn, the requests held while a client waits, ejection, the counters and stats.
 * The request handlers build on it: pool-proxy.ts (dispatch, shared connections, split
 * commands, commands answered here), pinned.ts (blocking commands and transactions) and
 * pubsub.ts (subscriptions). Its members are the proxy folder's own, not exported by index.ts.
 */
import { createHash } from "node:crypto";
import type { Server } from "../reactor/index.ts";
import type { CommandSpec } from "./commands.ts";
import { ClientState, Mode, PENDING, PUSH_COST, type ReplyFiller } from "./client.ts";
import type { ProxyPoolConfig } from "./config.ts";
import { Placement } from "./placement.ts";
import { errorReply, OK, showBytes } from "./replies.ts";
import { type Request, Request as RequestParser } from "./request.ts";
import { KeyRouter } from "./routing.ts";
import { Upstream, type UpstreamOwner, type UpstreamStats } from "./upstream.ts";

/** Most requests held for a client waiting on a blocking command, a connection or EXEC. */
const MAX_BACKLOG_BYTES = 64 << 20;
/** States kept for reuse. */
const MAX_FREE_STATES = 1024;
/**
 * How often idle client states are recycled: a state unused for a whole period goes. Not at
 * once when a client's replies are out: a client sending one request per round trip would
 * take and give back its state (a map insert and delete, a reset) on every request.
 */
const STATE_SWEEP_MS = 1000;

/** Counters of one pool (a snapshot). */
export interface PoolProxyStats {
  name: string;
  /** "host:port" or the unix socket path. */
  listen: string;
  clientConnections: number;
  clientsAccepted: number;
  /** Commands received. */
  requests: number;
  /** Commands answered with an error by the proxy (refused, keys across servers, upstream failure...). */
  errors: number;
  /** Commands refused as not carried through the proxy (counted in errors too). */
  refused: number;
  /** Timeouts and ejections summed over the servers. */
  timeouts: number;
  ejections: number;
  /** Servers on the continuum now. */
  liveServers: number;
  /** Clients whose reading is paused now because too much of theirs is in flight (maxClientInFlight*). */
  pausedClients: number;
  /** Requests sent upstream or held, not yet answered, over all clients (pub/sub deliveries are not requests). */
  inFlightRequests: number;
  /** Bytes of those requests (and of requests held behind a blocking command), over all clients. */
  inFlightBytes: number;
  /** Clients in a transaction, blocked, or subscribed now. */
  pinnedClients: number;
  blockedClients: number;
  subscribedClients: number;
  servers: UpstreamStats[];
}

/** Options of a pool beyond its configuration. */
export interface PoolProxyOptions {
  /** Most dedicated connections per server (blocking commands and transactions at once). */
  maxDedicatedPerServer: number;
  /**
   * A client with more requests than this in flight (sent upstream or held, not yet answered)
   * has its reading paused until they fall to half: backpressure, as the kernel's window
   * gives, instead of buffering a client that pipelines faster than the servers answer.
   */
  maxClientInFlightRequests: number;
  /** The same bound in request bytes. */
  maxClientInFlightBytes: number;
  /** Called on ejections and returns (logging). */
  onEvent?: (e: { type: "eject" | "return"; pool: string; server: string; retryMs?: number }) => void;
}

/** A pool's shared state and reply ordering (see the file comment); PoolProxy is the one subclass. */
export abstract class PoolCore implements UpstreamOwner, ReplyFiller {
  readonly placement: Placement;
  readonly upstreams: Upstream[];
  readonly router: KeyRouter;
  /** Set by createProxy once the reactor server listens. */
  server!: Server;
  listenText = "";
  readonly clients = new Map<number, ClientState>();
  private readonly free: ClientState[] = [];
  private readonly dirty: ClientState[] = [];
  private flushQueued = false;
  private readonly flushFn = () => this.flush();
  /** Clients that gave the pool's redis_auth password (null: the pool has none). */
  readonly authed: Set<number> | null;
  readonly passwordDigest: Buffer | null;
  private readonly retryTimers = new Set<ReturnType<typeof setTimeout>>();
  /** Runs sweepStates while any client has a state. */
  private sweepTimer: ReturnType<typeof setInterval> | undefined = undefined;
  /** Parses the requests held in a backlog again when their turn comes. */
  private readonly parser = new RequestParser();
  requests = 0;
  /** Clients whose reading is paused by limitInFlight now. */
  pausedClients = 0;
  errors = 0;
  refused = 0;
  accepted = 0;
  private stopped = false;

  constructor(
    readonly cfg: ProxyPoolConfig,
    private readonly opts: PoolProxyOptions,
  ) {
    this.placement = new Placement(cfg);
    this.upstreams = cfg.servers.map((s, i) => new Upstream(i, s, cfg, this, opts.maxDedicatedPerServer));
    this.router = new KeyRouter(cfg, this.placement, this.upstreams);
    this.authed = cfg.redisAuth !== "" ? new Set() : null;
    this.passwordDigest = cfg.redisAuth !== "" ? createHash("sha256").update(cfg.redisAuth).digest() : null;
  }

  /** Handles one request of client `id` (c: its state, if it has one). */
  abstract handle(id: number, c: ClientState | undefined, req: Request): void;
  /** Answers a command the proxy answers itself (PING, ECHO, QUIT, SELECT, AUTH, INFO, HELLO, RESET). */
  abstract local(id: number, c: ClientState | undefined, req: Request, cmd: CommandSpec): void;

  // ---- ejection ----------------------------------------------------------------------------

  /** Takes server i off the continuum for server_retry_timeout, then puts it back. */
  eject(i: number): void {
    const up = this.upstreams[i]!;
    if (!up.live || this.stopped) return;
    up.live = false;
    up.ejections++;
    this.placement.setLive(i, false);
    this.opts.onEvent?.({ type: "eject", pool: this.cfg.name, server: up.cfg.address, retryMs: this.cfg.serverRetryTimeoutMs });
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (this.stopped) return;
      up.live = true;
      this.placement.setLive(i, true);
      this.opts.onEvent?.({ type: "return", pool: this.cfg.name, server: up.cfg.address });
    }, this.cfg.serverRetryTimeoutMs);
    (timer as { unref?: () => void }).unref?.();
    this.retryTimers.add(timer);
  }

  // ---- client states -----------------------------------------------------------------------

  /** Client id's state, made (or taken from the free list) when it has none. */
  stateOf(id: number): ClientState {
    let c = this.clients.get(id);
    if (c === undefined) {
      c = this.free.pop() ?? new ClientState();
      c.reset(id, this);
      this.clients.set(id, c);
      if (this.sweepTimer === undefined && !this.stopped) {
        this.sweepTimer = setInterval(() => this.sweepStates(), STATE_SWEEP_MS);
        (this.sweepTimer as { unref?: () => void }).unref?.();
      }
    }
    return c;
  }

  /** Recycles the states of clients idle since the last sweep; stops sweeping when none is left. */
  private sweepStates(): void {
    for (const c of this.clients.values()) {
      if (c.used) c.used = false;
      else if (c.idle) this.recycle(c);
    }
    if (this.clients.size === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  /** Drops an idle client's state (kept for reuse). */
  private recycle(c: ClientState): void {
    this.clients.delete(c.id);
    if (this.free.length < MAX_FREE_STATES) this.free.push(c);
  }

  // ---- replies in order --------------------------------------------------------------------

  /** Answers the request being handled: at once when nothing is pending, else in order. */
  reply(id: number, c: ClientState | undefined, bytes: Uint8Array): void {
    if (c === undefined) {
      this.server.write(id, bytes);
      return;
    }
    this.fill(c, c.reserve(), bytes);
  }

  /** Answers the request being handled with an error the proxy made (counted). */
  replyError(id: number, c: ClientState | undefined, text: string): void {
    this.errors++;
    this.reply(id, c, errorReply(text));
  }

  /** The reply of sequence `seq` arrived: writes it and every reply after it that is there. */
  fill(c: ClientState, seq: number, bytes: Uint8Array): void {
    if (c.closed) return;
    c.ring[seq & c.mask] = bytes;
    if (seq !== c.head) return;
    const ring = c.ring;
    const mask = c.mask;
    while (c.head < c.tail) {
      const r = ring[c.head & mask]!;
      if (r === PENDING) break;
      ring[c.head & mask] = PENDING;
      const cost = c.costs[c.head & mask]!;
      if (cost === PUSH_COST) c.pushes--;
      else c.inFlightBytes -= cost;
      c.out.push(r);
      c.outBytes += r.length;
      if (c.head === c.closeAt) {
        c.head++;
        break;
      }
      c.head++;
    }
    if (c.gateStart !== null && c.head === c.gateSeq) {
      const start = c.gateStart;
      c.gateStart = null;
      start();
    }
    if (c.readPaused) this.resumeIfBelow(c);
    if (c.head === c.tail && c.closeAt < 0 && !c.closed) {
      // Every request of the client is answered: no reply of this turn can join these, so
      // they leave now, not at the turn's end (a client sending one request per round trip
      // gets its reply without waiting for the turn; one that pipelines still gets one write).
      this.writeOut(c);
      return;
    }
    if (!c.dirty) {
      c.dirty = true;
      this.dirty.push(c);
      if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(this.flushFn);
      }
    }
  }

  /**
   * Runs `start` once every reply before `seq` (a sequence just reserved) is written: at once
   * when none is pending. Work moving the client to a dedicated connection waits so, lest it
   * overtake the client's requests still in flight on the shared connections.
   */
  whenCaughtUp(c: ClientState, seq: number, start: () => void): void {
    if (c.head === seq) start();
    else {
      c.gateSeq = seq;
      c.gateStart = start;
    }
  }

  /**
   * Writes every client's ready replies, one write per client, for clients with requests
   * still unanswered (fill writes the others at once). Runs at the end of the turn of the
   * event loop (setImmediate), not as a microtask: a client whose pipeline spans several
   * servers then gets the replies of every upstream read of the turn in one write.
   */
  private flush(): void {
    this.flushQueued = false;
    const list = this.dirty;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      c.dirty = false;
      if (c.closed) continue;
      this.writeOut(c);
      if (c.closeAt >= 0 && c.head > c.closeAt) this.server.close(c.id);
    }
    list.length = 0;
  }

  /** Writes the client's ready replies in one write. */
  private writeOut(c: ClientState): void {
    const out = c.out;
    if (out.length === 1) this.server.write(c.id, out[0]!);
    else if (out.length > 1) {
      const all = new Uint8Array(c.outBytes);
      let p = 0;
      for (const r of out) {
        all.set(r, p);
        p += r.length;
      }
      this.server.write(c.id, all);
    }
    out.length = 0;
    c.outBytes = 0;
  }

  /** QUIT: +OK in order, then the connection closes once it is written. */
  quit(c: ClientState): void {
    c.quitting = true;
    const seq = c.reserve();
    c.closeAt = seq;
    this.fill(c, seq, OK);
  }

  // ---- bounding what a client has in flight -------------------------------------------------

  /**
   * After a request of c: pauses reading c while its requests in flight (or held behind a
   * blocking command) pass either bound. Without this, a client pipelining faster than the
   * servers answer (or into a stopped one) would be buffered here without bound. Pub/sub
   * deliveries waiting behind a request of c are not its requests: a subscriber is not paused
   * for what is published to it.
   */
  limitInFlight(c: ClientState): void {
    if (c.readPaused || c.closed) return;
    if (c.requestsInFlight <= this.opts.maxClientInFlightRequests && c.inFlightBytes + c.backlogBytes <= this.opts.maxClientInFlightBytes) return;
    c.readPaused = true;
    this.pausedClients++;
    this.server.pauseReading(c.id);
  }

  /** Resumes reading c once its requests in flight are at or under half of both bounds. */
  resumeIfBelow(c: ClientState): void {
    if (c.requestsInFlight > this.opts.maxClientInFlightRequests >>> 1) return;
    if (c.inFlightBytes + c.backlogBytes > this.opts.maxClientInFlightBytes / 2) return;
    this.unpause(c);
  }

  /** Lifts limitInFlight's pause of c (also when it closes). */
  unpause(c: ClientState): void {
    if (!c.readPaused) return;
    c.readPaused = false;
    this.pausedClients--;
    if (!c.closed) this.server.resumeReading(c.id);
  }

  // ---- requests held while a client waits --------------------------------------------------

  /** Keeps a copy of the request until the client may go on (see ClientState.backlog). */
  hold(c: ClientState, req: Request): void {
    const bytes = req.copy();
    c.backlogBytes += bytes.length;
    if (c.backlogBytes > MAX_BACKLOG_BYTES) {
      // A client that pipelines this much behind a blocking command is closed rather than buffered without bound.
      this.server.close(c.id, "error");
      return;
    }
    c.backlog!.push(bytes);
  }

  /** Handles the requests held while the client waited, until one makes it wait again. */
  resume(c: ClientState): void {
    const frames = c.backlog;
    if (frames === null || c.closed) return;
    c.backlog = null;
    c.backlogBytes = 0;
    for (let i = 0; i < frames.length; i++) {
      if (c.closed || c.quitting) return;
      // Handling a request may have made the client wait again: the rest waits too.
      const held = c.backlog as Uint8Array[] | null;
      if (held !== null) {
        for (let k = i; k < frames.length; k++) {
          held.push(frames[k]!);
          c.backlogBytes += frames[k]!.length;
        }
        return;
      }
      const f = frames[i]!;
      this.handle(c.id, c, this.parser.parse(f, 0, f.length));
    }
    if (c.readPaused) this.resumeIfBelow(c);
  }

  // ---- errors every handler answers --------------------------------------------------------

  /** A command the proxy does not know: it cannot tell which server it goes to. */
  unknown(id: number, c: ClientState | undefined, req: Request): void {
    this.refused++;
    this.replyError(id, c, `ERR unknown command ${showBytes(req.arg(0))}: the proxy does not know which server it goes to`);
  }

  /** redis's wrong-number-of-arguments error. */
  arity(id: number, c: ClientState | undefined, cmd: CommandSpec): void {
    this.replyError(id, c, `ERR wrong number of arguments for '${cmd.name.toLowerCase()}' command`);
  }

  // ---- stats and stop ----------------------------------------------------------------------

  /** A snapshot of the pool's counters and its servers'. */
  stats(): PoolProxyStats {
    const servers = this.upstreams.map((u) => u.stats());
    let pinned = 0;
    let blocked = 0;
    let subscribed = 0;
    let inFlightRequests = 0;
    let inFlightBytes = 0;
    for (const c of this.clients.values()) {
      inFlightRequests += c.requestsInFlight + (c.backlog?.length ?? 0);
      inFlightBytes += c.inFlightBytes + c.backlogBytes;
      if (c.mode === Mode.Pinned || c.mode === Mode.MultiUnbound) pinned++;
      if (c.blocked !== null) blocked++;
      if (c.mode === Mode.Subscribed) subscribed++;
    }
    return {
      name: this.cfg.name,
      listen: this.listenText,
      clientConnections: this.server?.connections ?? 0,
      clientsAccepted: this.accepted,
      requests: this.requests,
      errors: this.errors + servers.reduce((n, s) => n + s.timeouts + s.errors, 0),
      refused: this.refused,
      timeouts: servers.reduce((n, s) => n + s.timeouts, 0),
      ejections: servers.reduce((n, s) => n + s.ejections, 0),
      liveServers: this.placement.liveServers,
      pausedClients: this.pausedClients,
      inFlightRequests,
      inFlightBytes,
      pinnedClients: pinned,
      blockedClients: blocked,
      subscribedClients: subscribed,
      servers,
    };
  }

  /** Stops the retry timers and closes the upstream connections (after createProxy stopped the server). */
  async close(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    await Promise.all(this.upstreams.map((u) => u.close(timeoutMs)));
  }
}
