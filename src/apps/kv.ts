/**
 * The RESP key-value app behind `bun run serve`: a redis-compatible subset (strings, expiry,
 * pub/sub, the connection commands redis-cli and redis-benchmark send), answering errors
 * with redis 7's exact texts.
 *
 *   const app = createKvApp();
 *   const server = await createServer({ port: 6380, protocol: app.protocol, handler: app.handler });
 *
 * This file is the dispatcher: it looks a request's command up (commands.ts, without
 * allocating), checks arity and the subscribed-mode rule, and runs the command. The commands
 * live by family in kv-cmd-strings.ts, kv-cmd-keys.ts, kv-cmd-server.ts and
 * kv-cmd-pubsub.ts, each built over a small context (kv-context.ts).
 *
 * Each reply is written with conn.write as soon as it is known (replies.ts): the reactor
 * gathers the writes of one data event into one send, so a pipelined batch costs one write
 * and the app keeps no buffer, flush or object per connection. Keys are latin1 strings,
 * values binary-safe bytes owned by the store (kv-store.ts); deadlines live on a timing
 * wheel with a lazy check on access.
 */
import type { NodeBus } from "../bus/index.ts";
import { ProtocolError, type Conn, type Handler } from "../reactor/index.ts";
import { CommandTable, arityOk, type CommandSpec } from "./commands.ts";
import { addKeyCommands } from "./kv-cmd-keys.ts";
import { addPubSubCommands } from "./kv-cmd-pubsub.ts";
import { addServerCommands, type KvStats } from "./kv-cmd-server.ts";
import { addStringCommands } from "./kv-cmd-strings.ts";
import { arityErrorReply, cString, type Run } from "./kv-context.ts";
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
  readonly store: KvStore;
  /** Channels of SUBSCRIBE / PUBLISH. */
  readonly pubsub: PubSub;
  /** Connections currently open (as seen by the handler). */
  readonly connectedClients: number;
  /** Commands processed since start. */
  readonly commandsProcessed: number;
  /** Stops the expiry timer. */
  close(): void;
}

const ERR_PROTOCOL_REPLY = errorReply("ERR Protocol error: invalid request");
const ERR_TOO_LARGE_REPLY = errorReply("ERR Protocol error: request larger than maxFrameBytes");

/** Commands a subscribed connection may still send, as redis allows. */
const ALLOWED_WHEN_SUBSCRIBED = new Set(["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "ping", "quit", "reset"]);

/** Creates the key-value app: a handler for createServer({ protocol: "resp" }) over a fresh store. */
export function createKvApp(opts: KvAppOptions = {}): KvApp {
  const store = new KvStore({ tickMs: opts.tickMs, maxKeys: opts.maxKeys, now: opts.now });
  const pubsub = new PubSub();
  const bus = opts.bus ?? null;
  if (bus !== null) connectBus(pubsub, bus);
  const table = new CommandTable<Run>();
  const clientNames = new Map<number, string>();
  let commands = 0;
  const stats: KvStats = {
    connected: 0,
    get commands() {
      return commands;
    },
    startedAtMs: Date.now(),
  };
  /**
   * The connection whose request is being answered: the reactor's Conn, valid during the
   * callback that set it (message or error), which is the only time replies are sent.
   */
  let target: Conn | null = null;
  const send = (reply: Uint8Array): void => {
    target!.write(reply);
  };
  /** Handle of a connection that sent QUIT: the rest of its batch is ignored. */
  let quitting = -1;
  const quit = (conn: Conn): void => {
    quitting = conn.id;
    conn.close();
  };

  const ctx = { store, pubsub, send, bus };
  addStringCommands(table, ctx);
  addKeyCommands(table, ctx);
  addServerCommands(table, { ...ctx, table, stats, clientNames, quit });
  addPubSubCommands(table, ctx);

  function unknownCommand(args: Uint8Array[]): void {
    // redis 7: each argument quoted, until 128 bytes of them are shown.
    let shown = "";
    for (let i = 1; i < args.length && shown.length < 128; i++) shown += `'${cString(args[i]!, 128 - shown.length)}' `;
    send(errorReply(`ERR unknown command '${cString(args[0]!, 128)}', with args beginning with: ${shown}`));
  }

  const handler: Handler<Uint8Array[]> = {
    open() {
      stats.connected++;
    },
    message(conn: Conn, args: Uint8Array[]) {
      const argc = args.length;
      // An empty request ("*0", a blank inline line) gets no reply, as in redis.
      if (argc === 0) return;
      if (conn.id === quitting) return;
      target = conn;
      commands++;
      const cmd: CommandSpec<Run> | undefined = table.lookup(args[0]!);
      if (cmd === undefined) unknownCommand(args);
      else if (!arityOk(cmd.arity, argc)) send(arityErrorReply(cmd.name));
      else if (pubsub.isSubscribed(conn.id) && !ALLOWED_WHEN_SUBSCRIBED.has(cmd.name))
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
      stats.connected--;
      if (clientNames.size !== 0) clientNames.delete(conn.id);
      pubsub.forget(conn.id);
      if (quitting === conn.id) quitting = -1;
    },
  };

  return {
    protocol: "resp",
    handler,
    store,
    pubsub,
    get connectedClients() {
      return stats.connected;
    },
    get commandsProcessed() {
      return commands;
    },
    close() {
      store.close();
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
