/**
 * Subscribed clients: SUBSCRIBE goes to the server holding the channel, PSUBSCRIBE to every
 * server, each over the client's own dedicated connection to that server (subscription.ts);
 * deliveries are passed on while the client still wants them; UNSUBSCRIBE is answered here.
 * A subscribed client may send only what redis allows in that context.
 */
import { type ClientState, Mode } from "./client.ts";
import { type CommandSpec, Kind } from "./commands.ts";
import type { PoolCore } from "./pool-core.ts";
import { arrayElements, arrayReply, bulkPayload, bulkReply, integerReply, isErrorReply, NULL_BULK, simpleReply } from "./replies.ts";
import { encodeArgs, type Request } from "./request.ts";
import { SubLink, Subscription } from "./subscription.ts";

const enc = new TextEncoder();
const RESET = simpleReply("RESET");
const SUB_CONTEXT_COMMANDS = "only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context";

/** The pub/sub side of one pool's clients (see the file comment). */
export class PubSub {
  constructor(private readonly pool: PoolCore) {}

  /** SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE or PUNSUBSCRIBE: the client is (or stays) subscribed. */
  pubsub(c: ClientState, req: Request, cmd: CommandSpec): void {
    const pool = this.pool;
    c.mode = Mode.Subscribed;
    c.sub ??= new Subscription();
    const sub = c.sub;
    if (cmd.name === "SUBSCRIBE") {
      for (let i = 1; i < req.argc; i++) {
        const ch = req.arg(i);
        const key = latin1(ch);
        const s = pool.router.serverOf(ch, 0, ch.length);
        if (s < 0) {
          pool.replyError(c.id, c, pool.router.routeError(-1, cmd));
          continue;
        }
        const already = sub.channels.has(key);
        sub.channels.add(key);
        const confirm = arrayReply([bulkReply(enc.encode("subscribe")), bulkReply(ch), integerReply(sub.count)]);
        const seq = c.reserve();
        if (already) {
          pool.fill(c, seq, confirm);
          continue;
        }
        this.link(c, s).send(encodeArgs([enc.encode("SUBSCRIBE"), ch]), (reply, err) => {
          if (err !== null || isErrorReply(reply!)) {
            sub.channels.delete(key);
            pool.fill(c, seq, err !== null ? pool.upstreams[s]!.failed(err) : reply!);
            this.maybeLeave(c);
          } else pool.fill(c, seq, confirm);
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
          pool.fill(c, seq, confirm);
          continue;
        }
        // A pattern may match channels of any server: it is subscribed on every one.
        let waiting = pool.upstreams.length;
        let failure: Uint8Array | null = null;
        const bytes = encodeArgs([enc.encode("PSUBSCRIBE"), pattern]);
        for (let s = 0; s < pool.upstreams.length; s++) {
          this.link(c, s).send(bytes, (reply, err) => {
            if (err !== null) failure ??= pool.upstreams[s]!.failed(err);
            else if (isErrorReply(reply!)) failure ??= reply!;
            if (--waiting > 0) return;
            if (failure !== null) {
              sub.patterns.delete(key);
              pool.fill(c, seq, failure);
              this.maybeLeave(c);
            } else pool.fill(c, seq, confirm);
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
      pool.reply(c.id, c, arrayReply([bulkReply(kind), NULL_BULK, integerReply(sub.count)]));
    }
    for (const t of targets) {
      const key = latin1(t);
      if (set.delete(key)) {
        const bytes = encodeArgs([enc.encode(patterns ? "PUNSUBSCRIBE" : "UNSUBSCRIBE"), t]);
        if (patterns) for (const link of sub.links.values()) link.send(bytes, () => {});
        else {
          const s = pool.router.serverOf(t, 0, t.length);
          sub.links.get(s)?.send(bytes, () => {});
        }
      }
      pool.reply(c.id, c, arrayReply([bulkReply(kind), bulkReply(t), integerReply(sub.count)]));
    }
    this.maybeLeave(c);
  }

  /** The client's dedicated connection to server s for its subscriptions (opened on first use). */
  private link(c: ClientState, s: number): SubLink {
    const pool = this.pool;
    const sub = c.sub!;
    let link = sub.links.get(s);
    if (link !== undefined) return link;
    const up = pool.upstreams[s]!;
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
          if (!c.closed && c.sub === sub && sub.links.get(s) === made) pool.server.close(c.id, "error");
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
    // Its own kind of sequence: it keeps its place after the client's requests still unanswered
    // (a SUBSCRIBE's confirmation comes before what it brings) but is not one of them.
    if (wanted) this.pool.fill(c, c.reservePush(), reply);
  }

  /** A request from a subscribed client: more (un)subscribing, PING, QUIT or RESET; anything else is an error. */
  inSubscribed(c: ClientState, req: Request, cmd: CommandSpec | undefined): void {
    const pool = this.pool;
    if (cmd !== undefined && cmd.kind === Kind.PubSub) {
      if (req.argc < cmd.minArgs) return pool.arity(c.id, c, cmd);
      return this.pubsub(c, req, cmd);
    }
    switch (cmd?.name) {
      case "PING":
        return pool.reply(c.id, c, arrayReply([bulkReply(enc.encode("pong")), bulkReply(req.argc > 1 ? req.arg(1) : new Uint8Array(0))]));
      case "QUIT":
        return pool.quit(c);
      case "RESET":
        this.leave(c);
        pool.authed?.delete(c.id);
        return pool.reply(c.id, c, RESET);
    }
    pool.replyError(c.id, c, `ERR Can't execute '${req.argText(0).toLowerCase().slice(0, 40)}': ${SUB_CONTEXT_COMMANDS}`);
  }

  private maybeLeave(c: ClientState): void {
    if (c.sub !== null && c.sub.count === 0) this.leave(c);
  }

  /** Closes the client's subscriber connections and returns it to normal mode. */
  leave(c: ClientState): void {
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
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}
