/**
 * One pool of the proxy: its client connections (a reactor server with the proxy's RESP
 * codec), the placement of keys, and its upstream servers. Every request is routed by its
 * keys and its reply put back in the client's order (client.ts); multi-key commands are split
 * by server and merged; blocking commands, transactions and subscriptions get dedicated
 * connections; what a shared connection cannot carry is answered with an error naming the
 * command and why.
 */
import { timingSafeEqual, createHash } from "node:crypto";
import { respReplyCodec } from "../codec/index.ts";
import type { Conn, Handler, Server } from "../reactor/index.ts";
import { VERSION } from "../version.ts";
import { BlockTimeout, type CommandSpec, Kind, lookupCommand } from "./commands.ts";
import { ClientState, Mode, PENDING } from "./client.ts";
import type { ProxyPoolConfig } from "./config.ts";
import type { DedicatedConnection, ReplyCallback } from "./dedicated.ts";
import { Placement } from "./placement.ts";
import {
  arrayElements,
  arrayReply,
  bulkPayload,
  bulkReply,
  EMPTY_ARRAY,
  errorReply,
  integerOf,
  integerReply,
  isErrorReply,
  NULL_BULK,
  OK,
  PONG,
  QUEUED,
  showBytes,
  simpleReply,
} from "./replies.ts";
import { encodeArgs, type Request, Request as RequestParser, writeHeader } from "./request.ts";
import { SubLink, Subscription } from "./subscription.ts";
import { Upstream, type UpstreamStats } from "./upstream.ts";

const enc = new TextEncoder();
const MULTI = encodeArgs([enc.encode("MULTI")]);
const DISCARD = encodeArgs([enc.encode("DISCARD")]);
const EXECABORT = errorReply("EXECABORT Transaction discarded because of previous errors.");
const NOAUTH = errorReply("NOAUTH Authentication required.");
const WRONGPASS = errorReply("WRONGPASS invalid username-password pair or user is disabled.");
const RESET = simpleReply("RESET");
const SUB_CONTEXT_COMMANDS = "only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context";
/** Most requests held for a client waiting on a blocking command, a connection or EXEC. */
const MAX_BACKLOG_BYTES = 64 << 20;
/** States kept for reuse. */
const MAX_FREE_STATES = 1024;

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
  /** Called on ejections and returns (logging). */
  onEvent?: (e: { type: "eject" | "return"; pool: string; server: string; retryMs?: number }) => void;
}

/** One pool at run time (see the file comment): createProxy gives it its reactor server. */
export class PoolProxy {
  readonly placement: Placement;
  readonly upstreams: Upstream[];
  /** Set by createProxy once the reactor server listens. */
  server!: Server;
  listenText = "";
  private readonly clients = new Map<number, ClientState>();
  private readonly free: ClientState[] = [];
  private readonly dirty: ClientState[] = [];
  private flushQueued = false;
  private readonly flushFn = () => this.flush();
  private readonly authed: Set<number> | null;
  private readonly passwordDigest: Buffer | null;
  private readonly retryTimers = new Set<ReturnType<typeof setTimeout>>();
  private readonly parser = new RequestParser();
  /** Servers per key of the request being routed (split commands). */
  private keyServers = new Int32Array(64);
  private crossError = "";
  private requests = 0;
  private errors = 0;
  private refused = 0;
  private accepted = 0;
  private stopped = false;

  constructor(
    readonly cfg: ProxyPoolConfig,
    private readonly opts: PoolProxyOptions,
  ) {
    this.placement = new Placement(cfg);
    this.upstreams = cfg.servers.map((s, i) => new Upstream(i, s, cfg, this, opts.maxDedicatedPerServer));
    this.authed = cfg.redisAuth !== "" ? new Set() : null;
    this.passwordDigest = cfg.redisAuth !== "" ? createHash("sha256").update(cfg.redisAuth).digest() : null;
  }

  /** The reactor handler of this pool's client connections. */
  readonly handler: Handler<Request> = {
    open: () => {
      this.accepted++;
    },
    message: (conn, req) => this.onRequest(conn, req),
    close: (conn) => this.onClose(conn.id),
  };

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

  private stateOf(id: number): ClientState {
    let c = this.clients.get(id);
    if (c === undefined) {
      c = this.free.pop() ?? new ClientState();
      c.reset(id);
      this.clients.set(id, c);
    }
    return c;
  }

  private recycle(c: ClientState): void {
    this.clients.delete(c.id);
    if (this.free.length < MAX_FREE_STATES) this.free.push(c);
  }

  private onClose(id: number): void {
    this.authed?.delete(id);
    const c = this.clients.get(id);
    if (c === undefined) return;
    this.clients.delete(id);
    c.closed = true;
    c.backlog = null;
    c.gateStart = null;
    c.out.length = 0;
    if (c.blocked !== null) {
      // Closing the dedicated connection unblocks the command on the server.
      const b = c.blocked;
      c.blocked = null;
      void b.up.dedicated.destroy(b.conn).catch(() => {});
    }
    this.unpin(c, false);
    this.leaveSubscribed(c);
    // A closed state is not recycled: replies still in flight may name it.
  }

  // ---- replies in order --------------------------------------------------------------------

  /** Answers the request being handled: at once when nothing is pending, else in order. */
  private reply(id: number, c: ClientState | undefined, bytes: Uint8Array): void {
    if (c === undefined) {
      this.server.write(id, bytes);
      return;
    }
    this.fill(c, c.reserve(), bytes);
  }

  private replyError(id: number, c: ClientState | undefined, text: string): void {
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
  private whenCaughtUp(c: ClientState, seq: number, start: () => void): void {
    if (c.head === seq) start();
    else {
      c.gateSeq = seq;
      c.gateStart = start;
    }
  }

  /**
   * Writes every client's ready replies, one write per client. Runs at the end of the turn
   * of the event loop (setImmediate), not as a microtask: a client whose pipeline spans
   * several servers then gets the replies of every upstream read of the turn in one write.
   */
  private flush(): void {
    this.flushQueued = false;
    const list = this.dirty;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      c.dirty = false;
      if (c.closed) continue;
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
      if (c.closeAt >= 0 && c.head > c.closeAt) {
        this.server.close(c.id);
        continue;
      }
      if (c.idle && !c.closed) this.recycle(c);
    }
    list.length = 0;
  }

  // ---- requests ----------------------------------------------------------------------------

  private onRequest(conn: Conn, req: Request): void {
    const id = conn.id;
    const c = this.clients.get(id);
    if (c !== undefined) {
      if (c.quitting) return;
      if (c.backlog !== null) {
        this.hold(c, req);
        return;
      }
    }
    this.handle(id, c, req);
  }

  /** Keeps a copy of the request until the client may go on (see ClientState.backlog). */
  private hold(c: ClientState, req: Request): void {
    const bytes = req.bytes().slice();
    c.backlogBytes += bytes.length;
    if (c.backlogBytes > MAX_BACKLOG_BYTES) {
      // A client that pipelines this much behind a blocking command is closed rather than buffered without bound.
      this.server.close(c.id, "error");
      return;
    }
    c.backlog!.push(bytes);
  }

  /** Handles the requests held while the client waited, until one makes it wait again. */
  private resume(c: ClientState): void {
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
    if (c.idle && !c.closed) this.recycle(c);
  }

  private handle(id: number, c: ClientState | undefined, req: Request): void {
    if (req.argc === 0) return; // an empty request: redis skips it without a reply
    this.requests++;
    const cmd = lookupCommand(req.buf, req.argStart[0]!, req.argEnd[0]!);
    if (this.authed !== null && !this.authed.has(id) && (cmd === undefined || (cmd.name !== "AUTH" && cmd.name !== "QUIT" && cmd.name !== "HELLO"))) {
      this.errors++;
      this.reply(id, c, NOAUTH);
      return;
    }
    if (c !== undefined && c.mode !== Mode.Normal) {
      if (c.mode === Mode.Subscribed) return this.inSubscribed(c, req, cmd);
      if (c.mode === Mode.MultiUnbound) return this.inMultiUnbound(c, req, cmd);
      return this.inPinned(c, req, cmd);
    }
    if (cmd === undefined) return this.unknown(id, c, req);
    if (req.argc < cmd.minArgs) return this.arity(id, c, cmd);
    switch (cmd.kind) {
      case Kind.Keys:
      case Kind.NumKeys:
      case Kind.Streams: {
        const s = this.serverOfKeys(req, cmd);
        if (s < 0) return this.replyError(id, c, this.routeError(s, cmd));
        const blockMs = this.blockTimeoutMs(req, cmd);
        if (blockMs >= 0) return this.blocking(this.stateOf(id), s, req, blockMs);
        return this.forward(id, c, s, req.bytes());
      }
      case Kind.SplitMget:
      case Kind.SplitSum:
      case Kind.SplitMset:
        return this.split(id, c, req, cmd);
      case Kind.Local:
        return this.local(id, c, req, cmd);
      case Kind.Transaction:
        return this.transaction(id, c, req, cmd);
      case Kind.PubSub:
        return this.pubsub(this.stateOf(id), req, cmd);
      case Kind.Refused:
        this.refused++;
        return this.replyError(id, c, `ERR proxy: ${cmd.name} is not supported through the proxy: ${cmd.reason}`);
    }
  }

  private unknown(id: number, c: ClientState | undefined, req: Request): void {
    this.refused++;
    this.replyError(id, c, `ERR unknown command ${showBytes(req.arg(0))}: the proxy does not know which server it goes to`);
  }

  private arity(id: number, c: ClientState | undefined, cmd: CommandSpec): void {
    this.replyError(id, c, `ERR wrong number of arguments for '${cmd.name.toLowerCase()}' command`);
  }

  private routeError(s: number, cmd: CommandSpec): string {
    if (s === -1) {
      return `ERR proxy: no server of pool ${this.cfg.name} is live (all ejected after failures; they are retried every ${this.cfg.serverRetryTimeoutMs} ms)`;
    }
    if (s === -2) return `ERR proxy: ${cmd.name} ${this.crossError}: the keys of one command must be on one server; give them a common hash tag ${this.cfg.hashTag !== "" ? `(${this.cfg.hashTag[0]}...${this.cfg.hashTag[1]})` : "(set hash_tag in the pool)"}`;
    return `ERR proxy: ${cmd.name}: ${this.crossError}`;
  }

  /** The server of key buf[start, end), or -1 when none is live. */
  private serverOf(buf: Uint8Array, start: number, end: number): number {
    return this.placement.serverOf(buf, start, end);
  }

  /**
   * The one server holding every key of req (by cmd's key rule): its index, -1 when no
   * server is live, -2 when the keys are on different servers, -3 for a bad key count
   * (crossError says what).
   */
  private serverOfKeys(req: Request, cmd: CommandSpec): number {
    const argc = req.argc;
    if (cmd.kind === Kind.Keys && cmd.first === cmd.last) {
      // One key (GET, SET, ...): the hot path.
      const i = cmd.first;
      return i < argc ? this.serverOf(req.buf, req.argStart[i]!, req.argEnd[i]!) : this.serverOf(req.buf, 0, 0);
    }
    let first: number;
    let last: number;
    let step = 1;
    let fixed = -1;
    if (cmd.kind === Kind.NumKeys) {
      const n = this.intArg(req, cmd.numkeysAt);
      if (!Number.isInteger(n) || n < 0) {
        this.crossError = "numkeys must be an integer >= 0";
        return -3;
      }
      if (n > argc - cmd.numkeysAt - 1) {
        this.crossError = "Number of keys can't be greater than number of args";
        return -3;
      }
      fixed = cmd.first > 0 ? cmd.first : -1;
      first = cmd.numkeysAt + 1;
      last = cmd.numkeysAt + n;
    } else if (cmd.kind === Kind.Streams) {
      let streams = -1;
      for (let i = 1; i < argc; i++) {
        if (req.argIs(i, "STREAMS")) {
          streams = i;
          break;
        }
      }
      const rest = streams < 0 ? 0 : argc - streams - 1;
      if (streams < 0 || rest === 0 || rest % 2 !== 0) {
        // Malformed: any server answers with redis's own error.
        return this.serverOf(req.buf, 0, 0);
      }
      first = streams + 1;
      last = streams + rest / 2;
    } else {
      first = cmd.first;
      last = cmd.last < 0 ? argc + cmd.last : cmd.last;
      step = cmd.step;
    }
    this.scanServer = -4;
    if (fixed >= 0) {
      const r = this.scanKey(req, fixed);
      if (r < 0) return r;
    }
    for (let i = first; i <= last && i < argc; i += step) {
      const r = this.scanKey(req, i);
      if (r < 0) return r;
    }
    // No key at all (EVAL with numkeys 0, OBJECT HELP): as nutcracker, the empty key.
    return this.scanServer === -4 ? this.serverOf(req.buf, 0, 0) : this.scanServer;
  }

  /** serverOfKeys' scan: the server of the keys so far (-4 before the first) and the first key's index. */
  private scanServer = -4;
  private scanFirstKey = -1;

  private scanKey(req: Request, i: number): number {
    const s = this.serverOf(req.buf, req.argStart[i]!, req.argEnd[i]!);
    if (s < 0) return -1;
    if (this.scanServer === -4) {
      this.scanServer = s;
      this.scanFirstKey = i;
    } else if (s !== this.scanServer) {
      this.crossError = `keys ${showBytes(req.arg(this.scanFirstKey))} and ${showBytes(req.arg(i))} are on different servers (${this.upstreams[this.scanServer]!.cfg.address} and ${this.upstreams[s]!.cfg.address})`;
      return -2;
    }
    return s;
  }

  private intArg(req: Request, i: number): number {
    const t = req.argText(i);
    return /^-?[0-9]+$/.test(t) ? Number(t) : NaN;
  }

  /** A blocking command's own timeout plus the pool's, in ms (Infinity for "forever"); -1 when it does not block. */
  private blockTimeoutMs(req: Request, cmd: CommandSpec): number {
    let seconds: number;
    switch (cmd.block) {
      case BlockTimeout.None:
        return -1;
      case BlockTimeout.LastArgSeconds:
        seconds = Number(req.argText(req.argc - 1));
        break;
      case BlockTimeout.FirstArgSeconds:
        seconds = Number(req.argText(1));
        break;
      case BlockTimeout.BlockOptionMs: {
        let ms = -1;
        for (let i = 1; i < req.argc - 1; i++) {
          if (req.argIs(i, "STREAMS")) break;
          if (req.argIs(i, "BLOCK")) {
            ms = Number(req.argText(i + 1));
            break;
          }
        }
        if (ms < 0) return -1;
        if (!Number.isFinite(ms)) return this.cfg.timeoutMs; // redis answers the bad value
        return ms === 0 ? Infinity : ms + this.cfg.timeoutMs;
      }
    }
    if (!Number.isFinite(seconds) || seconds < 0) return this.cfg.timeoutMs; // redis answers the bad value
    return seconds === 0 ? Infinity : seconds * 1000 + this.cfg.timeoutMs;
  }

  // ---- the shared connections --------------------------------------------------------------

  private forward(id: number, c: ClientState | undefined, s: number, bytes: Uint8Array): void {
    const state = c ?? this.stateOf(id);
    const seq = state.reserve();
    this.upstreams[s]!.send(bytes.slice(), (reply) => this.fill(state, seq, reply));
  }

  // ---- multi-key commands ------------------------------------------------------------------

  private split(id: number, c: ClientState | undefined, req: Request, cmd: CommandSpec): void {
    const step = cmd.kind === Kind.SplitMset ? 2 : 1;
    const nkeys = cmd.kind === Kind.SplitMset ? (req.argc - 1) / 2 : req.argc - 1;
    if (!Number.isInteger(nkeys)) return this.arity(id, c, cmd);
    if (this.keyServers.length < nkeys) this.keyServers = new Int32Array(Math.max(nkeys, this.keyServers.length * 2));
    const servers = this.keyServers;
    let same = true;
    for (let k = 0; k < nkeys; k++) {
      const i = 1 + k * step;
      const s = this.serverOf(req.buf, req.argStart[i]!, req.argEnd[i]!);
      if (s < 0) return this.replyError(id, c, this.routeError(-1, cmd));
      servers[k] = s;
      if (s !== servers[0]) same = false;
    }
    if (same) return this.forward(id, c, servers[0]!, req.bytes());
    // One request per server holding some of the keys, merged back in key order. The parts
    // are written straight from the request's bytes: no argument arrays, no views.
    const nservers = this.upstreams.length;
    const count = new Int32Array(nservers);
    const bytes = new Int32Array(nservers);
    for (let k = 0; k < nkeys; k++) {
      const s = servers[k]!;
      count[s]!++;
      for (let j = 0; j < step; j++) {
        const i = 1 + k * step + j;
        const len = req.argEnd[i]! - req.argStart[i]!;
        bytes[s]! += 1 + digits(len) + 2 + len + 2;
      }
    }
    const nameStart = req.argStart[0]!;
    const nameLen = req.argEnd[0]! - nameStart;
    let parts = 0;
    for (let s = 0; s < nservers; s++) if (count[s]! > 0) parts++;
    const state = c ?? this.stateOf(id);
    const seq = state.reserve();
    const merge = new Merge(cmd.kind, nkeys, parts, servers);
    let part = 0;
    for (let s = 0; s < nservers; s++) {
      if (count[s] === 0) continue;
      const argc = 1 + count[s]! * step;
      const out = new Uint8Array(1 + digits(argc) + 2 + 1 + digits(nameLen) + 2 + nameLen + 2 + bytes[s]!);
      let o = writeHeader(out, 0, 42, argc);
      o = writeBulk(out, o, req.buf, nameStart, nameLen);
      for (let k = 0; k < nkeys; k++) {
        if (servers[k] !== s) continue;
        for (let j = 0; j < step; j++) {
          const i = 1 + k * step + j;
          o = writeBulk(out, o, req.buf, req.argStart[i]!, req.argEnd[i]! - req.argStart[i]!);
        }
      }
      merge.parts[part] = s;
      const p = part++;
      this.upstreams[s]!.send(out, (reply) => {
        if (merge.add(p, reply)) this.fill(state, seq, merge.result());
      });
    }
  }

  // ---- answered here -----------------------------------------------------------------------

  private local(id: number, c: ClientState | undefined, req: Request, cmd: CommandSpec): void {
    switch (cmd.name) {
      case "PING":
        if (req.argc > 2) return this.arity(id, c, cmd);
        return this.reply(id, c, req.argc === 2 ? bulkReply(req.arg(1)) : PONG);
      case "ECHO":
        if (req.argc !== 2) return this.arity(id, c, cmd);
        return this.reply(id, c, bulkReply(req.arg(1)));
      case "QUIT":
        return this.quit(this.stateOf(id));
      case "SELECT":
        if (req.argc !== 2) return this.arity(id, c, cmd);
        if (req.argText(1) === "0") return this.reply(id, c, OK);
        return this.replyError(
          id,
          c,
          `ERR proxy: SELECT ${req.argText(1).slice(0, 20)} is not supported: the proxy serves database 0 only (its servers' database is redis_db ${this.cfg.redisDb})`,
        );
      case "AUTH":
        return this.auth(id, c, req, cmd);
      case "INFO":
        return this.reply(id, c, bulkReply(enc.encode(this.info())));
      case "HELLO":
        this.errors++;
        return this.reply(id, c, errorReply("NOPROTO the proxy speaks RESP2 only: connect without HELLO (RESP3 is not supported through it)"));
      case "RESET":
        this.authed?.delete(id);
        return this.reply(id, c, RESET);
    }
  }

  private quit(c: ClientState): void {
    c.quitting = true;
    const seq = c.reserve();
    c.closeAt = seq;
    this.fill(c, seq, OK);
  }

  private auth(id: number, c: ClientState | undefined, req: Request, cmd: CommandSpec): void {
    if (req.argc !== 2 && req.argc !== 3) return this.arity(id, c, cmd);
    if (this.passwordDigest === null) {
      return this.replyError(
        id,
        c,
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
      );
    }
    const user = req.argc === 3 ? req.argText(1) : "default";
    const given = createHash("sha256").update(req.arg(req.argc - 1)).digest();
    // Both sides hashed to one length, compared in constant time.
    if (user === "default" && timingSafeEqual(given, this.passwordDigest)) {
      this.authed!.add(id);
      return this.reply(id, c, OK);
    }
    this.errors++;
    this.reply(id, c, WRONGPASS);
  }

  /** INFO: the proxy's own, not a backend's (ioredis's ready check reads loading:0 here). */
  private info(): string {
    const s = this.stats();
    return (
      `# Server\r\nmyriad_version:${VERSION}\r\nproxy:twemproxy-compatible\r\nprocess_id:${process.pid}\r\n` +
      `uptime_in_seconds:${Math.floor(process.uptime())}\r\n\r\n` +
      `# Clients\r\nconnected_clients:${s.clientConnections}\r\n\r\n# Persistence\r\nloading:0\r\n\r\n` +
      `# Proxy\r\npool:${this.cfg.name}\r\nlisten:${this.listenText}\r\nhash:${this.cfg.hash}\r\ndistribution:${this.cfg.distribution}\r\n` +
      `servers:${this.upstreams.length}\r\nlive_servers:${s.liveServers}\r\nrequests:${s.requests}\r\nerrors:${s.errors}\r\n` +
      s.servers.map((u, i) => `server${i}:address=${u.address},name=${u.name},live=${u.live ? 1 : 0},requests=${u.requests},connections=${u.connections}\r\n`).join("")
    );
  }

  // ---- blocking commands -------------------------------------------------------------------

  /** Runs a blocking command on a dedicated connection; the client's later requests wait for its reply. */
  private blocking(c: ClientState, s: number, req: Request, timeoutMs: number): void {
    const up = this.upstreams[s]!;
    const seq = c.reserve();
    const bytes = req.bytes().slice();
    c.backlog = [];
    up.requests++;
    this.whenCaughtUp(c, seq, () => this.startBlocking(c, up, seq, bytes, timeoutMs));
  }

  private startBlocking(c: ClientState, up: Upstream, seq: number, bytes: Uint8Array, timeoutMs: number): void {
    up.dedicated.acquire().then(
      (conn) => {
        if (c.closed) {
          up.dedicated.release(conn);
          return;
        }
        c.blocked = { conn, up };
        conn.send(
          bytes,
          (reply, err) => {
            // Not ours any more: the client closed and its close destroyed the connection.
            if (c.blocked === null || c.blocked.conn !== conn) return;
            c.blocked = null;
            if (err !== null) {
              this.fill(c, seq, up.failed(err));
              void up.dedicated.destroy(conn).catch(() => {});
            } else {
              up.replied(-1);
              this.fill(c, seq, reply!);
              up.dedicated.release(conn);
            }
            this.resume(c);
          },
          timeoutMs,
        );
      },
      (err: unknown) => {
        this.fill(c, seq, up.failed(err));
        this.resume(c);
      },
    );
  }

  // ---- transactions ------------------------------------------------------------------------

  private transaction(id: number, c: ClientState | undefined, req: Request, cmd: CommandSpec): void {
    switch (cmd.name) {
      case "MULTI": {
        if (req.argc !== 1) return this.arity(id, c, cmd);
        const state = this.stateOf(id);
        state.mode = Mode.MultiUnbound;
        state.txnFrames = [];
        state.txnDirty = false;
        return this.reply(id, state, OK);
      }
      case "EXEC":
        return this.replyError(id, c, "ERR EXEC without MULTI");
      case "DISCARD":
        return this.replyError(id, c, "ERR DISCARD without MULTI");
      case "UNWATCH":
        return this.reply(id, c, OK);
      case "WATCH": {
        const s = this.serverOfKeys(req, cmd);
        if (s < 0) return this.replyError(id, c, this.routeError(s, cmd));
        return this.pin(this.stateOf(id), s, req.bytes().slice(), false, false);
      }
    }
  }

  /**
   * Takes a dedicated connection to server s for the client: sends MULTI and the commands
   * queued before (their +QUEUED was answered already) when `multi`, then `bytes` (whose
   * reply the client gets). Later requests wait until the connection is there.
   */
  private pin(c: ClientState, s: number, bytes: Uint8Array, multi: boolean, isExec: boolean): void {
    const up = this.upstreams[s]!;
    const queued = c.txnFrames;
    c.txnFrames = [];
    c.mode = Mode.Pinned;
    c.inMulti = multi;
    c.pinnedUp = up;
    c.backlog ??= [];
    const seq = c.reserve();
    up.requests++;
    this.whenCaughtUp(c, seq, () => this.startPin(c, up, seq, queued, bytes, multi, isExec));
  }

  private startPin(c: ClientState, up: Upstream, seq: number, queued: Uint8Array[], bytes: Uint8Array, multi: boolean, isExec: boolean): void {
    up.dedicated.acquire().then(
      (conn) => {
        if (c.closed) {
          up.dedicated.release(conn);
          return;
        }
        c.pinned = conn;
        const swallow: ReplyCallback = () => {};
        if (multi) {
          conn.send(MULTI, swallow);
          for (const f of queued) conn.send(f, swallow);
        }
        conn.send(bytes, (reply, err) => this.pinnedReply(c, conn, seq, reply, err, isExec), this.cfg.timeoutMs);
        if (!isExec) this.resume(c);
      },
      (err: unknown) => {
        // No connection: the transaction cannot run. The client still thinks it is in one:
        // EXEC then answers EXECABORT (a WATCH alone simply failed).
        this.fill(c, seq, up.failed(err));
        c.pinnedUp = null;
        c.inMulti = false;
        c.mode = multi ? Mode.MultiUnbound : Mode.Normal;
        c.txnDirty = multi;
        this.resume(c);
      },
    );
  }

  /** A reply on a pinned connection; a lost connection loses the transaction, so the client is closed after its replies. */
  private pinnedReply(c: ClientState, conn: DedicatedConnection, seq: number, reply: Uint8Array | null, err: Error | null, ends: boolean): void {
    if (err !== null) {
      this.fill(c, seq, c.pinnedUp?.failed(err) ?? errorReply(`ERR proxy: ${err.message}`));
      if (c.pinned === conn && !c.closed) {
        c.closeAt = Math.max(c.closeAt, c.tail - 1);
        c.quitting = true;
        this.unpin(c, false);
        if (c.head > c.closeAt) this.server.close(c.id);
      }
      return;
    }
    c.pinnedUp?.replied(-1);
    this.fill(c, seq, reply!);
    if (ends && c.pinned === conn) {
      this.unpin(c, true);
      this.resume(c);
    }
  }

  /** Ends the pin: the connection goes back to the pool (clean after EXEC/DISCARD/UNWATCH) or is closed. */
  private unpin(c: ClientState, reusable: boolean): void {
    const conn = c.pinned;
    const up = c.pinnedUp;
    c.pinned = null;
    c.pinnedUp = null;
    c.inMulti = false;
    c.txnDirty = false;
    if (c.mode === Mode.Pinned) c.mode = Mode.Normal;
    if (conn === null || up === null) return;
    if (reusable && !conn.closed) up.dedicated.release(conn);
    else void up.dedicated.destroy(conn).catch(() => {});
  }

  /** After MULTI, before a key told the server: queue keyless commands, bind at the first key. */
  private inMultiUnbound(c: ClientState, req: Request, cmd: CommandSpec | undefined): void {
    const id = c.id;
    if (cmd === undefined) {
      c.txnDirty = true;
      return this.unknown(id, c, req);
    }
    if (req.argc < cmd.minArgs) {
      c.txnDirty = true;
      return this.arity(id, c, cmd);
    }
    switch (cmd.name) {
      case "MULTI":
        return this.replyError(id, c, "ERR MULTI calls can not be nested");
      case "DISCARD":
        c.mode = Mode.Normal;
        c.txnFrames = [];
        c.txnDirty = false;
        return this.reply(id, c, OK);
      case "EXEC":
        if (c.txnDirty || c.txnFrames.length === 0) {
          const dirty = c.txnDirty;
          c.mode = Mode.Normal;
          c.txnFrames = [];
          c.txnDirty = false;
          return this.reply(id, c, dirty ? EXECABORT : EMPTY_ARRAY);
        }
        // Only keyless commands: any live server runs them.
        {
          const s = this.serverOf(req.buf, 0, 0);
          if (s < 0) return this.replyError(id, c, this.routeError(-1, cmd));
          return this.pin(c, s, req.bytes().slice(), true, true);
        }
      case "WATCH":
        return this.replyError(id, c, "ERR WATCH inside MULTI is not allowed");
      case "QUIT":
        return this.quit(c);
      case "RESET":
        c.mode = Mode.Normal;
        c.txnFrames = [];
        c.txnDirty = false;
        this.authed?.delete(id);
        return this.reply(id, c, RESET);
    }
    switch (cmd.kind) {
      case Kind.Keys:
      case Kind.NumKeys:
      case Kind.Streams:
      case Kind.SplitMget:
      case Kind.SplitSum:
      case Kind.SplitMset: {
        const s = this.serverOfKeys(req, cmd.kind === Kind.SplitMget || cmd.kind === Kind.SplitSum || cmd.kind === Kind.SplitMset ? asKeys(cmd) : cmd);
        if (s < 0) {
          c.txnDirty = true;
          return this.replyError(id, c, this.routeError(s, cmd));
        }
        return this.pin(c, s, req.bytes().slice(), true, false);
      }
      case Kind.Local:
        if (cmd.name === "PING" || cmd.name === "ECHO") {
          c.txnFrames.push(req.bytes().slice());
          return this.reply(id, c, QUEUED);
        }
        break;
      case Kind.Transaction: // UNWATCH
        c.txnFrames.push(req.bytes().slice());
        return this.reply(id, c, QUEUED);
    }
    c.txnDirty = true;
    if (cmd.kind === Kind.Refused) this.refused++;
    this.replyError(id, c, `ERR proxy: ${cmd.name} is not supported inside MULTI through the proxy${cmd.reason !== "" ? `: ${cmd.reason}` : ""}`);
  }

  /** On a pinned connection (a transaction or WATCH): everything goes down it, keys checked to be on its server. */
  private inPinned(c: ClientState, req: Request, cmd: CommandSpec | undefined): void {
    const id = c.id;
    const conn = c.pinned!;
    const up = c.pinnedUp!;
    if (cmd === undefined) {
      if (c.inMulti) c.txnDirty = true;
      return this.unknown(id, c, req);
    }
    if (req.argc < cmd.minArgs) {
      if (c.inMulti) c.txnDirty = true;
      return this.arity(id, c, cmd);
    }
    let ends = false;
    switch (cmd.name) {
      case "QUIT":
        this.unpin(c, false);
        return this.quit(c);
      case "RESET":
        this.unpin(c, false);
        return this.reply(id, c, RESET);
      case "AUTH":
      case "SELECT":
      case "INFO":
      case "HELLO":
        return this.local(id, c, req, cmd);
      case "EXEC":
        if (c.inMulti && c.txnDirty) {
          // The transaction had a refused command: discard it upstream, answer as redis would.
          conn.send(DISCARD, () => {});
          this.unpin(c, true);
          return this.reply(id, c, EXECABORT);
        }
        ends = true;
        break;
      case "DISCARD":
        ends = c.inMulti;
        break;
      case "UNWATCH":
        ends = !c.inMulti;
        break;
      case "MULTI":
        c.inMulti = true;
        break;
    }
    if (cmd.kind === Kind.Refused || cmd.kind === Kind.PubSub) {
      if (c.inMulti) c.txnDirty = true;
      if (cmd.kind === Kind.Refused) this.refused++;
      return this.replyError(id, c, `ERR proxy: ${cmd.name} is not supported${cmd.kind === Kind.PubSub ? " in a transaction" : ` through the proxy: ${cmd.reason}`}`);
    }
    if (cmd.kind === Kind.Keys || cmd.kind === Kind.NumKeys || cmd.kind === Kind.Streams || cmd.kind === Kind.SplitMget || cmd.kind === Kind.SplitSum || cmd.kind === Kind.SplitMset || cmd.name === "WATCH") {
      const rule = cmd.kind === Kind.SplitMget || cmd.kind === Kind.SplitSum || cmd.kind === Kind.SplitMset ? asKeys(cmd) : cmd;
      const s = this.serverOfKeys(req, rule);
      if (s !== up.index) {
        if (c.inMulti) c.txnDirty = true;
        if (s < 0) return this.replyError(id, c, this.routeError(s, cmd));
        return this.replyError(
          id,
          c,
          `ERR proxy: ${cmd.name} has a key on server ${this.upstreams[s]!.cfg.address}, but this transaction runs on ${up.cfg.address}: the keys of a transaction must be on one server; give them a common hash tag`,
        );
      }
    }
    const seq = c.reserve();
    const timeoutMs = c.inMulti ? this.cfg.timeoutMs : Math.max(this.blockTimeoutMs(req, cmd), this.cfg.timeoutMs);
    up.requests++;
    if (ends) c.backlog ??= []; // later requests wait for the end of the transaction
    conn.send(req.bytes(), (reply, err) => this.pinnedReply(c, conn, seq, reply, err, ends), timeoutMs);
  }

  // ---- pub/sub -----------------------------------------------------------------------------

  private pubsub(c: ClientState, req: Request, cmd: CommandSpec): void {
    c.mode = Mode.Subscribed;
    c.sub ??= new Subscription();
    const sub = c.sub;
    if (cmd.name === "SUBSCRIBE") {
      for (let i = 1; i < req.argc; i++) {
        const ch = req.arg(i);
        const key = latin1(ch);
        const s = this.serverOf(ch, 0, ch.length);
        if (s < 0) {
          this.replyError(c.id, c, this.routeError(-1, cmd));
          continue;
        }
        const already = sub.channels.has(key);
        sub.channels.add(key);
        const confirm = arrayReply([bulkReply(enc.encode("subscribe")), bulkReply(ch), integerReply(sub.count)]);
        const seq = c.reserve();
        if (already) {
          this.fill(c, seq, confirm);
          continue;
        }
        this.link(c, s).send(encodeArgs([enc.encode("SUBSCRIBE"), ch]), (reply, err) => {
          if (err !== null || isErrorReply(reply!)) {
            sub.channels.delete(key);
            this.fill(c, seq, err !== null ? this.upstreams[s]!.failed(err) : reply!);
            this.maybeLeaveSubscribed(c);
          } else this.fill(c, seq, confirm);
        });
      }
      return;
    }
    if (cmd.name === "PSUBSCRIBE") {
      for (let i = 1; i < req.argc; i++) {
        const pattern = req.arg(i);
        const key = latin1(pattern);
        const already = sub.patterns.has(key);
        sub.patterns.add(key);
        const confirm = arrayReply([bulkReply(enc.encode("psubscribe")), bulkReply(pattern), integerReply(sub.count)]);
        const seq = c.reserve();
        if (already) {
          this.fill(c, seq, confirm);
          continue;
        }
        // A pattern may match channels of any server: it is subscribed on every one.
        let waiting = this.upstreams.length;
        let failure: Uint8Array | null = null;
        const bytes = encodeArgs([enc.encode("PSUBSCRIBE"), pattern]);
        for (let s = 0; s < this.upstreams.length; s++) {
          this.link(c, s).send(bytes, (reply, err) => {
            if (err !== null) failure ??= this.upstreams[s]!.failed(err);
            else if (isErrorReply(reply!)) failure ??= reply!;
            if (--waiting > 0) return;
            if (failure !== null) {
              sub.patterns.delete(key);
              this.fill(c, seq, failure);
              this.maybeLeaveSubscribed(c);
            } else this.fill(c, seq, confirm);
          });
        }
      }
      return;
    }
    // UNSUBSCRIBE / PUNSUBSCRIBE: answered here at once; deliveries for what is gone are dropped.
    const patterns = cmd.name === "PUNSUBSCRIBE";
    const set = patterns ? sub.patterns : sub.channels;
    const kind = enc.encode(patterns ? "punsubscribe" : "unsubscribe");
    const targets: Uint8Array[] = [];
    if (req.argc > 1) for (let i = 1; i < req.argc; i++) targets.push(req.arg(i));
    else for (const k of set) targets.push(Buffer.from(k, "latin1"));
    if (targets.length === 0) {
      this.reply(c.id, c, arrayReply([bulkReply(kind), NULL_BULK, integerReply(sub.count)]));
    }
    for (const t of targets) {
      const key = latin1(t);
      if (set.delete(key)) {
        const bytes = encodeArgs([enc.encode(patterns ? "PUNSUBSCRIBE" : "UNSUBSCRIBE"), t]);
        if (patterns) for (const link of sub.links.values()) link.send(bytes, () => {});
        else {
          const s = this.serverOf(t, 0, t.length);
          sub.links.get(s)?.send(bytes, () => {});
        }
      }
      this.reply(c.id, c, arrayReply([bulkReply(kind), bulkReply(t), integerReply(sub.count)]));
    }
    this.maybeLeaveSubscribed(c);
  }

  /** The client's dedicated connection to server s for its subscriptions (opened on first use). */
  private link(c: ClientState, s: number): SubLink {
    const sub = c.sub!;
    let link = sub.links.get(s);
    if (link !== undefined) return link;
    const up = this.upstreams[s]!;
    const made = new SubLink(up);
    link = made;
    sub.links.set(s, made);
    up.subscriberConnections++;
    up.openDedicated().then(
      (conn) => {
        if (c.closed || c.sub !== sub || sub.links.get(s) !== made) {
          conn.close();
          return;
        }
        conn.onPush = (reply) => this.deliver(c, sub, reply);
        conn.onClose = () => {
          // Subscriptions on that server are gone: the client must know, so it is closed (it resubscribes on reconnect).
          if (!c.closed && c.sub === sub && sub.links.get(s) === made) this.server.close(c.id, "error");
        };
        made.opened(conn);
      },
      (err: Error) => made.openFailed(err),
    );
    return made;
  }

  /** A message or pmessage from a subscriber connection, if the client still wants it. */
  private deliver(c: ClientState, sub: Subscription, reply: Uint8Array): void {
    if (c.closed || c.sub !== sub) return;
    const els = arrayElements(reply);
    if (els === null) return;
    const name = bulkPayload(els[1]!);
    if (name === null) return;
    const wanted = els.length === 3 ? sub.channels.has(latin1(name)) : sub.patterns.has(latin1(name));
    if (wanted) this.fill(c, c.reserve(), reply);
  }

  private inSubscribed(c: ClientState, req: Request, cmd: CommandSpec | undefined): void {
    if (cmd !== undefined && cmd.kind === Kind.PubSub) {
      if (req.argc < cmd.minArgs) return this.arity(c.id, c, cmd);
      return this.pubsub(c, req, cmd);
    }
    switch (cmd?.name) {
      case "PING":
        return this.reply(c.id, c, arrayReply([bulkReply(enc.encode("pong")), bulkReply(req.argc > 1 ? req.arg(1) : new Uint8Array(0))]));
      case "QUIT":
        return this.quit(c);
      case "RESET":
        this.leaveSubscribed(c);
        this.authed?.delete(c.id);
        return this.reply(c.id, c, RESET);
    }
    this.replyError(c.id, c, `ERR Can't execute '${req.argText(0).toLowerCase().slice(0, 40)}': ${SUB_CONTEXT_COMMANDS}`);
  }

  private maybeLeaveSubscribed(c: ClientState): void {
    if (c.sub !== null && c.sub.count === 0) this.leaveSubscribed(c);
  }

  /** Closes the client's subscriber connections and returns it to normal mode. */
  private leaveSubscribed(c: ClientState): void {
    const sub = c.sub;
    if (sub === null) return;
    c.sub = null;
    if (c.mode === Mode.Subscribed) c.mode = Mode.Normal;
    for (const link of sub.links.values()) {
      link.up.subscriberConnections--;
      link.close();
    }
    sub.links.clear();
  }

  // ---- stats and stop ----------------------------------------------------------------------

  /** A snapshot of the pool's counters and its servers'. */
  stats(): PoolProxyStats {
    const servers = this.upstreams.map((u) => u.stats());
    let pinned = 0;
    let blocked = 0;
    let subscribed = 0;
    for (const c of this.clients.values()) {
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
      pinnedClients: pinned,
      blockedClients: blocked,
      subscribedClients: subscribed,
      servers,
    };
  }

  /** Stops the retry timers and closes the upstream connections (after createProxy stopped the server). */
  async close(timeoutMs: number): Promise<void> {
    this.stopped = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    await Promise.all(this.upstreams.map((u) => u.close(timeoutMs)));
  }
}

/** A split command's rule as a plain key range (inside a transaction nothing is split). */
function asKeys(cmd: CommandSpec): CommandSpec {
  return { ...cmd, kind: Kind.Keys };
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}

/** Decimal digits of n >= 0. */
function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Writes "$<len>\r\n" + src[start, start + len) + "\r\n" at out[o]; returns the index after it. */
function writeBulk(out: Uint8Array, o: number, src: Uint8Array, start: number, len: number): number {
  o = writeHeader(out, o, 36, len);
  copyBytes(out, o, src, start, len);
  o += len;
  out[o++] = 13;
  out[o++] = 10;
  return o;
}

/** Copies src[start, start + len) to out[o]: a loop for short runs (a view costs more), set() for long ones. */
function copyBytes(out: Uint8Array, o: number, src: Uint8Array, start: number, len: number): void {
  if (len <= 64) for (let i = 0; i < len; i++) out[o + i] = src[start + i]!;
  else out.set(src.subarray(start, start + len), o);
}

/**
 * The replies of a split command's parts, merged once all arrived. Part p went to server
 * parts[p]; key k went to server keyServer[k] (a copy: the caller's scratch is reused), so a
 * part's values go back to its keys in key order without per-part index lists.
 */
class Merge {
  /** Server of each part, in sending order. */
  readonly parts: Int32Array;
  private readonly keyServer: Int32Array;
  private readonly replies: Uint8Array[];
  private left: number;

  constructor(
    private readonly kind: Kind,
    private readonly nkeys: number,
    parts: number,
    keyServer: Int32Array,
  ) {
    this.parts = new Int32Array(parts);
    this.keyServer = kind === Kind.SplitMget ? keyServer.slice(0, nkeys) : keyServer;
    this.replies = new Array(parts);
    this.left = parts;
  }

  /** Records part p's reply; true when it was the last one. */
  add(p: number, reply: Uint8Array): boolean {
    this.replies[p] = reply;
    return --this.left === 0;
  }

  /** The merged reply: the first error of any part, else MGET's values in key order, the sum, or OK. */
  result(): Uint8Array {
    for (const r of this.replies) if (isErrorReply(r)) return r;
    if (this.kind === Kind.SplitMset) return OK;
    if (this.kind === Kind.SplitSum) {
      let sum = 0;
      for (const r of this.replies) {
        const n = integerOf(r);
        if (Number.isNaN(n)) return errorReply("ERR proxy: a server answered a part of this command with something other than an integer");
        sum += n;
      }
      return integerReply(sum);
    }
    // MGET: locate every value (offsets into its part's reply), then copy them out in key order.
    const nkeys = this.nkeys;
    const from = new Int32Array(nkeys);
    const start = new Int32Array(nkeys);
    const len = new Int32Array(nkeys);
    let total = 1 + digits(nkeys) + 2;
    for (let p = 0; p < this.replies.length; p++) {
      const reply = this.replies[p]!;
      const server = this.parts[p]!;
      if (reply[0] !== 42) return errorReply("ERR proxy: a server answered a part of MGET with something other than an array of values");
      let q = 1;
      let n = 0;
      while (reply[q] !== 13) n = n * 10 + (reply[q++]! - 48);
      q += 2;
      let k = 0;
      for (let e = 0; e < n; e++) {
        while (k < nkeys && this.keyServer[k] !== server) k++;
        const m = respReplyCodec.measure(reply, q, reply.length, reply.length);
        if (k >= nkeys || m <= 0) return errorReply("ERR proxy: a server answered a part of MGET with more values than keys");
        from[k] = p;
        start[k] = q;
        len[k] = m;
        total += m;
        q += m;
        k++;
      }
      while (k < nkeys && this.keyServer[k] !== server) k++;
      if (k < nkeys) return errorReply("ERR proxy: a server answered a part of MGET with fewer values than keys");
    }
    const out = new Uint8Array(total);
    let o = writeHeader(out, 0, 42, nkeys);
    for (let k = 0; k < nkeys; k++) {
      copyBytes(out, o, this.replies[from[k]!]!, start[k]!, len[k]!);
      o += len[k]!;
    }
    return out;
  }
}
