/**
 * A client on a dedicated upstream connection of its own: a blocking command (BLPOP, XREAD
 * BLOCK...) until its reply, a transaction (MULTI...EXEC, queued here until its first key
 * tells the server) or WATCH until EXEC/DISCARD/UNWATCH. The client's later requests wait in
 * its backlog meanwhile, and the move to the dedicated connection waits for the replies still
 * in flight on the shared ones, so the client's order holds.
 */
import { type ClientState, Mode } from "./client.ts";
import { type CommandSpec, Kind } from "./commands.ts";
import type { DedicatedConnection, ReplyCallback } from "./dedicated.ts";
import type { PoolCore } from "./pool-core.ts";
import { EMPTY_ARRAY, errorReply, OK, QUEUED, simpleReply } from "./replies.ts";
import { encodeArgs, type Request } from "./request.ts";
import { asKeys, isSplit } from "./routing.ts";
import type { Upstream } from "./upstream.ts";

const enc = new TextEncoder();
const MULTI = encodeArgs([enc.encode("MULTI")]);
const DISCARD = encodeArgs([enc.encode("DISCARD")]);
const EXECABORT = errorReply("EXECABORT Transaction discarded because of previous errors.");
const RESET = simpleReply("RESET");

/** Blocking commands and transactions of one pool's clients (see the file comment). */
export class Pinning {
  constructor(private readonly pool: PoolCore) {}

  // ---- blocking commands -------------------------------------------------------------------

  /** Runs a blocking command on a dedicated connection; the client's later requests wait for its reply. */
  blocking(c: ClientState, s: number, req: Request, timeoutMs: number): void {
    const up = this.pool.upstreams[s]!;
    const seq = c.reserve();
    const bytes = req.copy();
    c.backlog = [];
    up.requests++;
    this.pool.whenCaughtUp(c, seq, () => this.startBlocking(c, up, seq, bytes, timeoutMs));
  }

  private startBlocking(c: ClientState, up: Upstream, seq: number, bytes: Uint8Array, timeoutMs: number): void {
    const pool = this.pool;
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
              pool.fill(c, seq, up.failed(err));
              void up.dedicated.destroy(conn).catch(() => {});
            } else {
              up.replied(-1);
              pool.fill(c, seq, reply!);
              up.dedicated.release(conn);
            }
            pool.resume(c);
          },
          timeoutMs,
        );
      },
      (err: unknown) => {
        pool.fill(c, seq, up.failed(err));
        pool.resume(c);
      },
    );
  }

  /** The client closed: its blocking command's connection is closed, which unblocks the command on the server. */
  unblock(c: ClientState): void {
    if (c.blocked === null) return;
    const b = c.blocked;
    c.blocked = null;
    void b.up.dedicated.destroy(b.conn).catch(() => {});
  }

  // ---- transactions ------------------------------------------------------------------------

  /** MULTI, EXEC, DISCARD, WATCH, UNWATCH from a client in normal mode. */
  transaction(id: number, c: ClientState | undefined, req: Request, cmd: CommandSpec): void {
    const pool = this.pool;
    switch (cmd.name) {
      case "MULTI": {
        if (req.argc !== 1) return pool.arity(id, c, cmd);
        const state = pool.stateOf(id);
        state.mode = Mode.MultiUnbound;
        state.txnFrames = [];
        state.txnDirty = false;
        return pool.reply(id, state, OK);
      }
      case "EXEC":
        return pool.replyError(id, c, "ERR EXEC without MULTI");
      case "DISCARD":
        return pool.replyError(id, c, "ERR DISCARD without MULTI");
      case "UNWATCH":
        return pool.reply(id, c, OK);
      case "WATCH": {
        const s = pool.router.serverOfKeys(req, cmd);
        if (s < 0) return pool.replyError(id, c, pool.router.routeError(s, cmd));
        return this.pin(pool.stateOf(id), s, req.copy(), false, false);
      }
    }
  }

  /**
   * Takes a dedicated connection to server s for the client: sends MULTI and the commands
   * queued before (their +QUEUED was answered already) when `multi`, then `bytes` (whose
   * reply the client gets). Later requests wait until the connection is there.
   */
  private pin(c: ClientState, s: number, bytes: Uint8Array, multi: boolean, isExec: boolean): void {
    const up = this.pool.upstreams[s]!;
    const queued = c.txnFrames;
    c.txnFrames = [];
    c.mode = Mode.Pinned;
    c.inMulti = multi;
    c.pinnedUp = up;
    c.backlog ??= [];
    const seq = c.reserve();
    up.requests++;
    this.pool.whenCaughtUp(c, seq, () => this.startPin(c, up, seq, queued, bytes, multi, isExec));
  }

  private startPin(c: ClientState, up: Upstream, seq: number, queued: Uint8Array[], bytes: Uint8Array, multi: boolean, isExec: boolean): void {
    const pool = this.pool;
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
        conn.send(bytes, (reply, err) => this.pinnedReply(c, conn, seq, reply, err, isExec), pool.cfg.timeoutMs);
        if (!isExec) pool.resume(c);
      },
      (err: unknown) => {
        // No connection: the transaction cannot run. The client still thinks it is in one:
        // EXEC then answers EXECABORT (a WATCH alone simply failed).
        pool.fill(c, seq, up.failed(err));
        c.pinnedUp = null;
        c.inMulti = false;
        c.mode = multi ? Mode.MultiUnbound : Mode.Normal;
        c.txnDirty = multi;
        pool.resume(c);
      },
    );
  }

  /** A reply on a pinned connection; a lost connection loses the transaction, so the client is closed after its replies. */
  private pinnedReply(c: ClientState, conn: DedicatedConnection, seq: number, reply: Uint8Array | null, err: Error | null, ends: boolean): void {
    const pool = this.pool;
    if (err !== null) {
      pool.fill(c, seq, c.pinnedUp?.failed(err) ?? errorReply(`ERR proxy: ${err.message}`));
      if (c.pinned === conn && !c.closed) {
        c.closeAt = Math.max(c.closeAt, c.tail - 1);
        c.quitting = true;
        this.unpin(c, false);
        if (c.head > c.closeAt) pool.server.close(c.id);
      }
      return;
    }
    c.pinnedUp?.replied(-1);
    pool.fill(c, seq, reply!);
    if (ends && c.pinned === conn) {
      this.unpin(c, true);
      pool.resume(c);
    }
  }

  /** Ends the pin: the connection goes back to the pool (clean after EXEC/DISCARD/UNWATCH) or is closed. */
  unpin(c: ClientState, reusable: boolean): void {
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
  inMultiUnbound(c: ClientState, req: Request, cmd: CommandSpec | undefined): void {
    const pool = this.pool;
    const id = c.id;
    if (cmd === undefined) {
      c.txnDirty = true;
      return pool.unknown(id, c, req);
    }
    if (req.argc < cmd.minArgs) {
      c.txnDirty = true;
      return pool.arity(id, c, cmd);
    }
    switch (cmd.name) {
      case "MULTI":
        return pool.replyError(id, c, "ERR MULTI calls can not be nested");
      case "DISCARD":
        c.mode = Mode.Normal;
        c.txnFrames = [];
        c.txnDirty = false;
        return pool.reply(id, c, OK);
      case "EXEC":
        if (c.txnDirty || c.txnFrames.length === 0) {
          const dirty = c.txnDirty;
          c.mode = Mode.Normal;
          c.txnFrames = [];
          c.txnDirty = false;
          return pool.reply(id, c, dirty ? EXECABORT : EMPTY_ARRAY);
        }
        // Only keyless commands: any live server runs them.
        {
          const s = pool.router.serverOf(req.buf, 0, 0);
          if (s < 0) return pool.replyError(id, c, pool.router.routeError(-1, cmd));
          return this.pin(c, s, req.copy(), true, true);
        }
      case "WATCH":
        return pool.replyError(id, c, "ERR WATCH inside MULTI is not allowed");
      case "QUIT":
        return pool.quit(c);
      case "RESET":
        c.mode = Mode.Normal;
        c.txnFrames = [];
        c.txnDirty = false;
        pool.authed?.delete(id);
        return pool.reply(id, c, RESET);
    }
    switch (cmd.kind) {
      case Kind.Keys:
      case Kind.NumKeys:
      case Kind.Streams:
      case Kind.SplitMget:
      case Kind.SplitSum:
      case Kind.SplitMset: {
        const s = pool.router.serverOfKeys(req, isSplit(cmd) ? asKeys(cmd) : cmd);
        if (s < 0) {
          c.txnDirty = true;
          return pool.replyError(id, c, pool.router.routeError(s, cmd));
        }
        return this.pin(c, s, req.copy(), true, false);
      }
      case Kind.Local:
        if (cmd.name === "PING" || cmd.name === "ECHO") {
          c.txnFrames.push(req.copy());
          return pool.reply(id, c, QUEUED);
        }
        break;
      case Kind.Transaction: // UNWATCH
        c.txnFrames.push(req.copy());
        return pool.reply(id, c, QUEUED);
    }
    c.txnDirty = true;
    if (cmd.kind === Kind.Refused) pool.refused++;
    pool.replyError(id, c, `ERR proxy: ${cmd.name} is not supported inside MULTI through the proxy${cmd.reason !== "" ? `: ${cmd.reason}` : ""}`);
  }

  /** On a pinned connection (a transaction or WATCH): everything goes down it, keys checked to be on its server. */
  inPinned(c: ClientState, req: Request, cmd: CommandSpec | undefined): void {
    const pool = this.pool;
    const id = c.id;
    const conn = c.pinned!;
    const up = c.pinnedUp!;
    if (cmd === undefined) {
      if (c.inMulti) c.txnDirty = true;
      return pool.unknown(id, c, req);
    }
    if (req.argc < cmd.minArgs) {
      if (c.inMulti) c.txnDirty = true;
      return pool.arity(id, c, cmd);
    }
    let ends = false;
    switch (cmd.name) {
      case "QUIT":
        this.unpin(c, false);
        return pool.quit(c);
      case "RESET":
        this.unpin(c, false);
        return pool.reply(id, c, RESET);
      case "AUTH":
      case "SELECT":
      case "INFO":
      case "HELLO":
        return pool.local(id, c, req, cmd);
      case "EXEC":
        if (c.inMulti && c.txnDirty) {
          // The transaction had a refused command: discard it upstream, answer as redis would.
          conn.send(DISCARD, () => {});
          this.unpin(c, true);
          return pool.reply(id, c, EXECABORT);
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
      if (cmd.kind === Kind.Refused) pool.refused++;
      return pool.replyError(id, c, `ERR proxy: ${cmd.name} is not supported${cmd.kind === Kind.PubSub ? " in a transaction" : ` through the proxy: ${cmd.reason}`}`);
    }
    if (cmd.kind === Kind.Keys || cmd.kind === Kind.NumKeys || cmd.kind === Kind.Streams || isSplit(cmd) || cmd.name === "WATCH") {
      const s = pool.router.serverOfKeys(req, isSplit(cmd) ? asKeys(cmd) : cmd);
      if (s !== up.index) {
        if (c.inMulti) c.txnDirty = true;
        if (s < 0) return pool.replyError(id, c, pool.router.routeError(s, cmd));
        return pool.replyError(
          id,
          c,
          `ERR proxy: ${cmd.name} has a key on server ${pool.upstreams[s]!.cfg.address}, but this transaction runs on ${up.cfg.address}: the keys of a transaction must be on one server; give them a common hash tag`,
        );
      }
    }
    const seq = c.reserve();
    const timeoutMs = c.inMulti ? pool.cfg.timeoutMs : Math.max(pool.router.blockTimeoutMs(req, cmd), pool.cfg.timeoutMs);
    up.requests++;
    if (ends) c.backlog ??= []; // later requests wait for the end of the transaction
    conn.send(req.bytes(), (reply, err) => this.pinnedReply(c, conn, seq, reply, err, ends), timeoutMs);
  }
}
