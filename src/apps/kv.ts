/**
 * The RESP key-value app behind `bun run serve`: a redis-compatible subset (strings, expiry,
 * pub/sub, the connection commands redis-cli and redis-benchmark send), answering errors
 * with redis 7's exact texts.
 *
 *   const app = createKvApp();
 *   const server = await createServer({ port: 6380, protocol: app.protocol, handler: app.handler });
 *
 * This file is the dispatcher: it admits connections (protected mode, kv-auth.ts), looks a
 * request's command up (commands.ts, without allocating), checks arity, authentication and
 * the subscribed-mode rule, and runs the command. The commands live by family in
 * kv-cmd-strings.ts, kv-cmd-keys.ts, kv-cmd-connection.ts, kv-cmd-server.ts and
 * kv-cmd-pubsub.ts, each built over a small context (kv-context.ts); what the app knows of
 * each connection is in kv-clients.ts.
 *
 * Each reply is written with conn.write as soon as it is known (replies.ts): the reactor
 * gathers the writes of one data event into one send, so a pipelined batch costs one write
 * and the app keeps no buffer, flush or object per connection. Keys are latin1 strings,
 * values binary-safe bytes owned by the store (kv-store.ts); deadlines live on a timing
 * wheel with a lazy check on access.
 */
import type { NodeBus } from "../bus/index.ts";
import { MyriadRangeError, MyriadTypeError } from "../errors.ts";
import { ProtocolError, type Conn, type Handler } from "../reactor/index.ts";
import { CommandTable, arityOk, type CommandSpec } from "./commands.ts";
import { DENIED_REPLY, NOAUTH_REPLY, Password, isLoopbackAddress } from "./kv-auth.ts";
import { CLIENT_AUTHED, CLIENT_CLOSING, CLIENT_OPEN, CoarseClock, KvClients, slotOf, type CurrentClient } from "./kv-clients.ts";
import { ALLOWED_BEFORE_AUTH, addConnectionCommands } from "./kv-cmd-connection.ts";
import { addKeyCommands } from "./kv-cmd-keys.ts";
import { addPubSubCommands } from "./kv-cmd-pubsub.ts";
import { addServerCommands } from "./kv-cmd-server.ts";
import { addStringCommands } from "./kv-cmd-strings.ts";
import { arityErrorReply, cString, type KvStats, type Run } from "./kv-context.ts";
import { KvStore } from "./kv-store.ts";
import { PubSub } from "./pubsub.ts";
import { error as errorReply } from "./replies.ts";

/** Options of createKvApp. */
export interface KvAppOptions {
  /** Expiry wheel resolution in ms (default 10): a key is reaped at most one tick after its deadline. */
  tickMs?: number;
  /** Most keys; a write that would add one more answers "-OOM ...". Default unlimited. */
  maxKeys?: number;
  /** Monotonic clock in ms (default performance.now); tests pass a fake one. */
  now?: () => number;
  /**
   * The node bus of a fleet: PUBLISH reaches the subscribers of every node, and this node
   * subscribes on the bus to each channel while one of its connections does. Default none.
   */
  bus?: NodeBus;
  /**
   * The password of the default user (redis's requirepass): a connection runs no command but
   * AUTH, HELLO and QUIT until `AUTH <password>`, `AUTH default <password>` or
   * `HELLO 2 AUTH default <password>`. Unset: no password.
   */
  requirePass?: string;
  /**
   * Protected mode (default true), as redis has it: with no requirePass, a connection from
   * other than loopback (see isLoopbackAddress) is answered -DENIED, saying how to fix it, and
   * closed. false serves everyone who can reach the port.
   */
  protectedMode?: boolean;
}

/** The KV app: a handler for createServer({ protocol: "resp" }) over one store. */
export interface KvApp {
  readonly protocol: "resp";
  /**
   * The handler for createServer({ protocol: "resp" }). It takes frames as respCodec decodes
   * them and relies on that codec's contract: an argument of at most COPY_MAX_BYTES is a
   * fresh array, which the store keeps as it is; a longer one is a view, which the store copies.
   * Replies are written during message() (the reactor sends one read's replies at once).
   */
  readonly handler: Handler<Uint8Array[]>;
  /**
   * A handler for one more server sharing this app's store, channels and clients (CLIENT LIST
   * shows them all). Two servers hand out the same connection ids, so each server needs a
   * handler of its own: `handler` for the first, one of these for each other.
   */
  handlerForListener(): Handler<Uint8Array[]>;
  readonly store: KvStore;
  /** Channels of SUBSCRIBE / PUBLISH. */
  readonly pubsub: PubSub;
  /** Connections currently open (as seen by the handler). */
  readonly connectedClients: number;
  /** Commands processed since start. */
  readonly commandsProcessed: number;
  /** AUTH and HELLO ... AUTH answered WRONGPASS since start (INFO: acl_access_denied_auth). */
  readonly authFailures: number;
  /** Connections refused by protected mode since start (INFO: rejected_connections). */
  readonly deniedConnections: number;
  /** Stops the expiry and clock timers. */
  close(): void;
}

const ERR_PROTOCOL_REPLY = errorReply("ERR Protocol error: invalid request");
const ERR_TOO_LARGE_REPLY = errorReply("ERR Protocol error: request larger than maxFrameBytes");

/** Commands a subscribed connection may still send, as redis allows. */
const ALLOWED_WHEN_SUBSCRIBED = new Set(["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "ping", "quit", "reset"]);

/** Flags of a connection on the fast path: open, authenticated, not closing. */
const CLIENT_READY = CLIENT_OPEN | CLIENT_AUTHED;

/** Id bases of successive listeners: apart by more than any connection id (ids are below 2^32). */
const LISTENER_ID_STRIDE = 2 ** 32;

function checkAppOptions(opts: KvAppOptions): void {
  if (typeof opts !== "object" || opts === null) {
    throw new MyriadTypeError("ERR_APP_OPTION", `createKvApp: options must be an object like { requirePass: "..." }, got ${String(opts)}`);
  }
  const { requirePass, protectedMode } = opts;
  if (requirePass !== undefined && (typeof requirePass !== "string" || requirePass === "")) {
    throw new MyriadRangeError("ERR_APP_OPTION", "createKvApp: requirePass must be a non-empty string (leave it unset for no password)");
  }
  if (protectedMode !== undefined && typeof protectedMode !== "boolean") {
    throw new MyriadTypeError("ERR_APP_OPTION", `createKvApp: protectedMode must be true or false, got ${String(protectedMode)}`);
  }
}

/**
 * Creates the key-value app: a handler for createServer({ protocol: "resp" }) over a fresh
 * store. Throws MyriadTypeError / MyriadRangeError (ERR_APP_OPTION) naming a bad option.
 */
export function createKvApp(opts: KvAppOptions = {}): KvApp {
  checkAppOptions(opts);
  const store = new KvStore({ tickMs: opts.tickMs, maxKeys: opts.maxKeys, now: opts.now });
  const pubsub = new PubSub();
  const bus = opts.bus ?? null;
  if (bus !== null) connectBus(pubsub, bus);
  const table = new CommandTable<Run>();
  const clock = new CoarseClock();
  const password = opts.requirePass === undefined ? null : new Password(opts.requirePass);
  /** Protected mode applies: no password, and not turned off. */
  const loopbackOnly = password === null && opts.protectedMode !== false;
  /** One table of clients per server (listener); see handlerForListener. */
  const listeners: KvClients[] = [];
  let commands = 0;
  const stats: KvStats = {
    connected: 0,
    get commands() {
      return commands;
    },
    startedAtMs: Date.now(),
    authFailures: 0,
    deniedConnections: 0,
  };
  /**
   * The connection whose request is being answered: the reactor's Conn, valid during the
   * callback that set it (message or error), which is the only time replies are sent.
   */
  let target: Conn | null = null;
  const send = (reply: Uint8Array): void => {
    target!.write(reply);
  };
  const current: CurrentClient = { clients: new KvClients(0), slot: 0, id: 0 };

  const ctx = { store, pubsub, send, bus };
  addStringCommands(table, ctx);
  addKeyCommands(table, ctx);
  addConnectionCommands(table, { pubsub, send, current, password, stats, listeners, clock });
  addServerCommands(table, { ...ctx, table, stats });
  addPubSubCommands(table, { pubsub, send, bus, current });

  function unknownCommand(args: Uint8Array[]): void {
    // redis 7: each argument quoted, until 128 bytes of them are shown.
    let shown = "";
    for (let i = 1; i < args.length && shown.length < 128; i++) shown += `'${cString(args[i]!, 128 - shown.length)}' `;
    send(errorReply(`ERR unknown command '${cString(args[0]!, 128)}', with args beginning with: ${shown}`));
  }

  /** The handler for the connections of one server, recorded in `clients`. */
  function handlerFor(clients: KvClients): Handler<Uint8Array[]> {
    const idBase = clients.idBase;

    /** Records a new connection, and refuses it in protected mode; returns its flags. */
    function admit(conn: Conn): number {
      const slot = clients.open(conn, password === null ? CLIENT_AUTHED : 0, clock.refresh());
      stats.connected++;
      clock.hold();
      if (loopbackOnly && !isLoopbackAddress(conn.remoteAddress)) {
        stats.deniedConnections++;
        clients.flags[slot]! |= CLIENT_CLOSING;
        // As redis does at accept: say why and how to fix it, then close (after the write is flushed).
        conn.write(DENIED_REPLY);
        conn.close();
      }
      return clients.flags[slot]!;
    }

    return {
      open(conn: Conn) {
        admit(conn);
      },
      message(conn: Conn, args: Uint8Array[]) {
        const argc = args.length;
        // An empty request ("*0", a blank inline line) gets no reply, as in redis.
        if (argc === 0) return;
        const slot = slotOf(conn.id);
        let flags = slot < clients.flags.length ? clients.flags[slot]! : 0;
        if (flags !== CLIENT_READY) {
          // A connection the handler was not told about (no open call) is admitted now.
          if (flags === 0) flags = admit(conn);
          if (flags & CLIENT_CLOSING) return;
        }
        target = conn;
        current.clients = clients;
        current.slot = slot;
        current.id = idBase + conn.id;
        commands++;
        clients.lastCommandAtMs[slot] = clock.nowMs;
        const cmd: CommandSpec<Run> | undefined = table.lookup(args[0]!);
        if (cmd === undefined) {
          clients.lastCommand[slot] = undefined;
          unknownCommand(args);
          return;
        }
        clients.lastCommand[slot] = cmd.name;
        if (!arityOk(cmd.arity, argc)) send(arityErrorReply(cmd.name));
        else if (!(flags & CLIENT_AUTHED) && !ALLOWED_BEFORE_AUTH.has(cmd.name)) send(NOAUTH_REPLY);
        else if (pubsub.isSubscribed(current.id) && !ALLOWED_WHEN_SUBSCRIBED.has(cmd.name))
          send(
            errorReply(`ERR Can't execute '${cmd.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`),
          );
        else cmd.run(args, conn);
      },
      error(conn: Conn, err: Error) {
        if (err instanceof ProtocolError) {
          // As redis does before it drops a client that sent garbage: say why (the reactor
          // sends it before it closes the connection).
          target = conn;
          send(err.code === "ERR_FRAME_TOO_LARGE" ? ERR_TOO_LARGE_REPLY : ERR_PROTOCOL_REPLY);
        } else {
          console.error(`myriad kv: connection ${conn.id}: ${err.stack ?? err.message}`);
        }
      },
      close(conn: Conn) {
        const slot = slotOf(conn.id);
        if (slot < clients.flags.length && clients.flags[slot] !== 0) {
          clients.close(slot);
          stats.connected--;
          clock.release();
        }
        pubsub.forget(idBase + conn.id);
      },
    };
  }

  function handlerForListener(): Handler<Uint8Array[]> {
    const clients = new KvClients(listeners.length * LISTENER_ID_STRIDE);
    listeners.push(clients);
    return handlerFor(clients);
  }

  return {
    protocol: "resp",
    handler: handlerForListener(),
    handlerForListener,
    store,
    pubsub,
    get connectedClients() {
      return stats.connected;
    },
    get commandsProcessed() {
      return commands;
    },
    get authFailures() {
      return stats.authFailures;
    },
    get deniedConnections() {
      return stats.deniedConnections;
    },
    close() {
      store.close();
      clock.stop();
    },
  };
}

/**
 * Wires pubsub to the bus: a channel active on this node is subscribed on the bus, and what
 * other nodes publish on it goes to this node's subscribers.
 */
function connectBus(pubsub: PubSub, bus: NodeBus): void {
  const unsubscribers = new Map<string, () => void>();
  pubsub.onChannelActive = (channelKey, active) => {
    if (active) {
      const channelBytes = Buffer.from(channelKey, "latin1");
      unsubscribers.set(
        channelKey,
        bus.subscribe(channelKey, (payload) => {
          pubsub.publish(channelBytes, payload, channelKey);
        }),
      );
    } else {
      unsubscribers.get(channelKey)?.();
      unsubscribers.delete(channelKey);
    }
  };
}
