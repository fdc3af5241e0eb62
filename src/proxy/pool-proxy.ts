/**
 * One pool of the proxy: the reactor handler of its client connections and the dispatch of
 * every request by what its command is (commands.ts): routed by its keys down the shared
 * connections, split by server and merged (split.ts), answered here (PING, ECHO, AUTH, INFO...),
 * moved to a dedicated connection (pinned.ts, pubsub.ts), or refused with an error naming the
 * command and why. Reply ordering, client states and stats are PoolCore's (pool-core.ts).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Conn, Handler } from "../reactor/index.ts";
import { VERSION } from "../version.ts";
import { BlockTimeout, type CommandSpec, Kind, lookupCommand } from "./commands.ts";
import { type ClientState, Mode } from "./client.ts";
import type { ProxyPoolConfig } from "./config.ts";
import { Pinning } from "./pinned.ts";
import { PoolCore, type PoolProxyOptions } from "./pool-core.ts";
import { PubSub } from "./pubsub.ts";
import { bulkReply, errorReply, OK, PONG, simpleReply } from "./replies.ts";
import type { Request } from "./request.ts";
import { digits, encodePart, Merge } from "./split.ts";

export type { PoolProxyOptions, PoolProxyStats } from "./pool-core.ts";

const enc = new TextEncoder();
const NOAUTH = errorReply("NOAUTH Authentication required.");
const WRONGPASS = errorReply("WRONGPASS invalid username-password pair or user is disabled.");
const RESET = simpleReply("RESET");

/** One pool at run time (see the file comment): createProxy gives it its reactor server. */
export class PoolProxy extends PoolCore {
  private readonly pinning = new Pinning(this);
  private readonly pubsub = new PubSub(this);
  /** Servers per key of the request being split. */
  private keyServers = new Int32Array(64);
  /** Keys and encoded argument bytes per server of the request being split. */
  private readonly partKeys: Int32Array;
  private readonly partBytes: Int32Array;

  constructor(cfg: ProxyPoolConfig, opts: PoolProxyOptions) {
    super(cfg, opts);
    this.partKeys = new Int32Array(cfg.servers.length);
    this.partBytes = new Int32Array(cfg.servers.length);
  }

  /** The reactor handler of this pool's client connections. */
  readonly handler: Handler<Request> = {
    open: () => {
      this.accepted++;
    },
    message: (conn, req) => this.onRequest(conn, req),
    close: (conn) => this.onClose(conn.id),
  };

  private onRequest(conn: Conn, req: Request): void {
    const id = conn.id;
    const c = this.clients.get(id);
    if (c !== undefined) {
      if (c.quitting) return;
      if (c.backlog !== null) {
        this.hold(c, req);
        this.limitInFlight(c);
        return;
      }
    }
    this.handle(id, c, req);
    // The request may have made the client's state (its first in flight).
    const after = c ?? this.clients.get(id);
    if (after !== undefined) this.limitInFlight(after);
  }

  private onClose(id: number): void {
    this.authed?.delete(id);
    const c = this.clients.get(id);
    if (c === undefined) return;
    this.clients.delete(id);
    c.closed = true;
    this.unpause(c);
    c.backlog = null;
    c.gateStart = null;
    c.out.length = 0;
    this.pinning.unblock(c);
    this.pinning.unpin(c, false);
    this.pubsub.leave(c);
    // A closed state is not recycled: replies still in flight may name it.
  }

  handle(id: number, c: ClientState | undefined, req: Request): void {
    if (req.argc === 0) return; // an empty request: redis skips it without a reply
    this.requests++;
    const cmd = lookupCommand(req.buf, req.argStart[0]!, req.argEnd[0]!);
    if (this.authed !== null && !this.authed.has(id) && (cmd === undefined || (cmd.name !== "AUTH" && cmd.name !== "QUIT" && cmd.name !== "HELLO"))) {
      this.errors++;
      this.reply(id, c, NOAUTH);
      return;
    }
    if (c !== undefined && c.mode !== Mode.Normal) {
      if (c.mode === Mode.Subscribed) return this.pubsub.inSubscribed(c, req, cmd);
      if (c.mode === Mode.MultiUnbound) return this.pinning.inMultiUnbound(c, req, cmd);
      return this.pinning.inPinned(c, req, cmd);
    }
    if (cmd === undefined) return this.unknown(id, c, req);
    if (req.argc < cmd.minArgs) return this.arity(id, c, cmd);
    switch (cmd.kind) {
      case Kind.Keys:
      case Kind.NumKeys:
      case Kind.Streams: {
        const s = this.router.serverOfKeys(req, cmd);
        if (s < 0) return this.replyError(id, c, this.router.routeError(s, cmd));
        if (cmd.block !== BlockTimeout.None) {
          const blockMs = this.router.blockTimeoutMs(req, cmd);
          if (blockMs >= 0) return this.pinning.blocking(this.stateOf(id), s, req, blockMs);
        }
        return this.forward(id, c, s, req);
      }
      case Kind.SplitMget:
      case Kind.SplitSum:
      case Kind.SplitMset:
        return this.split(id, c, req, cmd);
      case Kind.Local:
        return this.local(id, c, req, cmd);
      case Kind.Transaction:
        return this.pinning.transaction(id, c, req, cmd);
      case Kind.PubSub:
        return this.pubsub.pubsub(this.stateOf(id), req, cmd);
      case Kind.Refused:
        this.refused++;
        return this.replyError(id, c, `ERR proxy: ${cmd.name} is not supported through the proxy: ${cmd.reason}`);
    }
  }

  // ---- the shared connections --------------------------------------------------------------

  private forward(id: number, c: ClientState | undefined, s: number, req: Request): void {
    const state = c ?? this.stateOf(id);
    const bytes = req.copy();
    const seq = state.reserve(bytes.length);
    this.upstreams[s]!.send(bytes, state, seq);
  }

  /** A multi-key command: forwarded whole when its keys are on one server, else one part per server, merged. */
  private split(id: number, c: ClientState | undefined, req: Request, cmd: CommandSpec): void {
    const step = cmd.kind === Kind.SplitMset ? 2 : 1;
    const nkeys = cmd.kind === Kind.SplitMset ? (req.argc - 1) / 2 : req.argc - 1;
    if (!Number.isInteger(nkeys)) return this.arity(id, c, cmd);
    if (this.keyServers.length < nkeys) this.keyServers = new Int32Array(Math.max(nkeys, this.keyServers.length * 2));
    const servers = this.keyServers;
    let same = true;
    for (let k = 0; k < nkeys; k++) {
      const i = 1 + k * step;
      const s = this.router.serverOf(req.buf, req.argStart[i]!, req.argEnd[i]!);
      if (s < 0) return this.replyError(id, c, this.router.routeError(-1, cmd));
      servers[k] = s;
      if (s !== servers[0]) same = false;
    }
    if (same) return this.forward(id, c, servers[0]!, req);
    // Keys and encoded argument bytes per server, then one part per server holding some.
    const nservers = this.upstreams.length;
    const count = this.partKeys.fill(0);
    const bytes = this.partBytes.fill(0);
    for (let k = 0; k < nkeys; k++) {
      const s = servers[k]!;
      count[s]!++;
      for (let j = 0; j < step; j++) {
        const i = 1 + k * step + j;
        const len = req.argEnd[i]! - req.argStart[i]!;
        bytes[s]! += 1 + digits(len) + 2 + len + 2;
      }
    }
    let parts = 0;
    for (let s = 0; s < nservers; s++) if (count[s]! > 0) parts++;
    const state = c ?? this.stateOf(id);
    const seq = state.reserve(req.end - req.start);
    const merge = new Merge(cmd.kind, nkeys, parts, servers, state, seq);
    let part = 0;
    for (let s = 0; s < nservers; s++) {
      if (count[s] === 0) continue;
      const out = encodePart(req, servers, nkeys, step, s, count[s]!, bytes[s]!);
      merge.parts[part] = s;
      this.upstreams[s]!.send(out, merge, part++);
    }
  }

  // ---- answered here -----------------------------------------------------------------------

  local(id: number, c: ClientState | undefined, req: Request, cmd: CommandSpec): void {
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
}
