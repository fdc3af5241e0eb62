/**
 * The RESP key-value app behind `bun run serve`: a redis-compatible subset (strings, expiry,
 * the connection commands redis-cli and redis-benchmark send), answering errors with
 * redis 7's exact texts.
 *
 *   const app = createKvApp();
 *   const server = await createServer({ port: 6380, protocol: app.protocol, handler: app.handler });
 *
 * Each reply is written with conn.write as soon as it is known (replies.ts): the reactor
 * gathers the writes of one data event into one send, so a pipelined batch costs one write
 * and the app keeps no buffer, flush or object per connection. Command names are matched
 * without allocating (commands.ts); keys are latin1 strings, values binary-safe bytes owned
 * by the store (kv-store.ts); deadlines live on a timing wheel with a lazy check on access.
 */
import { ProtocolError, type Conn, type Handler } from "../reactor/index.ts";
import { VERSION } from "../version.ts";
import { CommandTable, arityOk, isWord, type CommandSpec } from "./commands.ts";
import { int64AsBig, int64Big, int64Bytes, int64IsBig, int64Small, parseInt64, INT64_MAX, INT64_MIN } from "./int64.ts";
import { KvStore, SetCondition } from "./kv-store.ts";
import { PubSub } from "./pubsub.ts";
import { EMPTY_BULK, NIL, OK, PONG, arrayHeader, bulk, bulkLatin1, error as errorReply, integer, integerText } from "./replies.ts";

export { KvStore, SetCondition, type KvStoreOptions } from "./kv-store.ts";

/** The redis version whose behaviour (and error texts) the app follows; INFO reports it. */
export const REDIS_COMPAT_VERSION = "7.0.15";

export interface KvAppOptions {
  /** Expiry wheel resolution in ms (default 10): a key is reaped at most one tick after its deadline. */
  tickMs?: number;
  /** Most keys; a write that would add one more answers "-OOM ...". Default unlimited. */
  maxKeys?: number;
  /** Monotonic clock in ms (default performance.now); tests pass a fake one. */
  now?: () => number;
}

export interface KvApp {
  readonly protocol: "resp";
  /**
   * The handler for createServer({ protocol: "resp" }). It takes frames as respCodec decodes
   * them and relies on that codec's contract: an argument of at most 32 bytes is a fresh
   * array, which the store keeps as it is; a longer one is a view, which the store copies.
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

type Run = (args: Uint8Array[], conn: Conn) => void;

// Fixed error replies, encoded once (replies are never written into after they are sent).
const ERR_SYNTAX_REPLY = errorReply("ERR syntax error");
const ERR_NOT_INT_REPLY = errorReply("ERR value is not an integer or out of range");
const ERR_OVERFLOW_REPLY = errorReply("ERR increment or decrement would overflow");
const ERR_OOM_REPLY = errorReply("OOM command not allowed when used memory > 'maxmemory'.");
const ERR_PROTOCOL_REPLY = errorReply("ERR Protocol error: invalid request");
const ERR_TOO_LARGE_REPLY = errorReply("ERR Protocol error: request larger than maxFrameBytes");

const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string })
  .latin1Slice;

/** A key's bytes as a latin1 string (one char per byte): any byte string is a distinct key. */
export function keyOf(b: Uint8Array): string {
  return latin1Slice.call(b, 0, b.length);
}

/**
 * respCodec decodes arguments of at most this many bytes into fresh arrays (its documented
 * contract) and longer ones into views of the read buffer.
 */
const RESP_COPY_MAX_BYTES = 32;

/** A value the store may keep: the argument itself when the codec made it a fresh copy, else a copy. */
function owned(arg: Uint8Array): Uint8Array {
  const n = arg.length;
  if (n <= RESP_COPY_MAX_BYTES) return arg;
  const copy = new Uint8Array(n);
  copy.set(arg);
  return copy;
}

/** An argument as redis prints it in "%s" (C string: up to the first NUL byte), latin1. */
function cString(b: Uint8Array, maxBytes: number): string {
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  return latin1Slice.call(b, 0, Math.min(end, maxBytes));
}

/** Creates the key-value app: a handler for createServer({ protocol: "resp" }) over a fresh store. */
export function createKvApp(opts: KvAppOptions = {}): KvApp {
  const store = new KvStore({ tickMs: opts.tickMs, maxKeys: opts.maxKeys, now: opts.now });
  /**
   * The connection whose request is being answered: the reactor's Conn, valid during the
   * callback that set it (message or error), which is the only time replies are sent.
   */
  let target: Conn | null = null;
  const send = (reply: Uint8Array): void => {
    target!.write(reply);
  };
  const table = new CommandTable<Run>();
  const clientNames = new Map<number, string>();
  const pubsub = new PubSub();
  let connected = 0;
  let commands = 0;
  /** Handle of a connection that sent QUIT: the rest of its batch is ignored. */
  let quitting = -1;
  const startedAt = Date.now();

  const arityError = (name: string) => send(errorReply(`ERR wrong number of arguments for '${name}' command`));
  const expireTimeError = (name: string) => send(errorReply(`ERR invalid expire time in '${name}' command`));

  function unknownCommand(args: Uint8Array[]): void {
    // redis 7: each argument quoted, until 128 bytes of them are shown.
    let shown = "";
    for (let i = 1; i < args.length && shown.length < 128; i++) shown += `'${cString(args[i]!, 128 - shown.length)}' `;
    send(errorReply(`ERR unknown command '${cString(args[0]!, 128)}', with args beginning with: ${shown}`));
  }

  function unknownSubcommand(args: Uint8Array[], container: string): void {
    send(errorReply(`ERR unknown subcommand '${cString(args[1]!, 128)}'. Try ${container} HELP.`));
  }

  // --- strings ---------------------------------------------------------------------

  function cmdGet(args: Uint8Array[]): void {
    const v = store.get(keyOf(args[1]!));
    if (v === undefined) send(NIL);
    else send(bulk(v));
  }

  const SET_NX = 1,
    SET_XX = 2,
    SET_GET = 4,
    SET_KEEPTTL = 8,
    SET_EX = 16,
    SET_PX = 32,
    SET_EXAT = 64,
    SET_PXAT = 128;

  function cmdSet(args: Uint8Array[]): void {
    const key = keyOf(args[1]!);
    const argc = args.length;
    if (argc === 3) {
      // The common case: no options.
      if (!store.set(key, owned(args[2]!))) send(ERR_OOM_REPLY);
      else send(OK);
      return;
    }
    // Options as redis's parseExtendedStringArgumentsOrReply reads them: every option is
    // checked for syntax before the expire value is parsed.
    let flags = 0;
    let expireArg: Uint8Array | undefined;
    for (let j = 3; j < argc; j++) {
      const opt = args[j]!;
      const hasNext = j < argc - 1;
      if (isWord(opt, "nx") && !(flags & SET_XX)) flags |= SET_NX;
      else if (isWord(opt, "xx") && !(flags & SET_NX)) flags |= SET_XX;
      else if (isWord(opt, "get")) flags |= SET_GET;
      else if (isWord(opt, "keepttl") && !(flags & (SET_EX | SET_PX | SET_EXAT | SET_PXAT))) flags |= SET_KEEPTTL;
      else if (isWord(opt, "ex") && !(flags & (SET_KEEPTTL | SET_EXAT | SET_PX | SET_PXAT)) && hasNext) {
        flags |= SET_EX;
        expireArg = args[++j];
      } else if (isWord(opt, "px") && !(flags & (SET_KEEPTTL | SET_EX | SET_EXAT | SET_PXAT)) && hasNext) {
        flags |= SET_PX;
        expireArg = args[++j];
      } else if (isWord(opt, "exat") && !(flags & (SET_KEEPTTL | SET_EX | SET_PX | SET_PXAT)) && hasNext) {
        flags |= SET_EXAT;
        expireArg = args[++j];
      } else if (isWord(opt, "pxat") && !(flags & (SET_KEEPTTL | SET_EX | SET_EXAT | SET_PX)) && hasNext) {
        flags |= SET_PXAT;
        expireArg = args[++j];
      } else {
        send(ERR_SYNTAX_REPLY);
        return;
      }
    }
    let ttlMs = 0;
    if (expireArg !== undefined) {
      if (!parseInt64(expireArg)) {
        send(ERR_NOT_INT_REPLY);
        return;
      }
      const seconds = (flags & (SET_EX | SET_EXAT)) !== 0;
      const absolute = (flags & (SET_EXAT | SET_PXAT)) !== 0;
      let when: number;
      if (!int64IsBig) {
        if (int64Small <= 0) {
          expireTimeError("set");
          return;
        }
        when = seconds ? int64Small * 1000 : int64Small;
      } else {
        // Past 2^53: check redis's overflow rules exactly, in bigint.
        let w = int64Big;
        if (w <= 0n || (seconds && w > INT64_MAX / 1000n)) {
          expireTimeError("set");
          return;
        }
        if (seconds) w *= 1000n;
        if (!absolute && w > INT64_MAX - BigInt(Date.now())) {
          expireTimeError("set");
          return;
        }
        when = Number(w);
      }
      ttlMs = absolute ? when - Date.now() : when;
    }
    const old = flags & SET_GET ? store.get(key) : undefined;
    const cond = flags & SET_NX ? SetCondition.IfAbsent : flags & SET_XX ? SetCondition.IfPresent : SetCondition.Always;
    let done: boolean;
    if (expireArg !== undefined && ttlMs <= 0) {
      // An absolute time already past: the write happens and the key is gone at once.
      const exists = store.has(key);
      done = cond === SetCondition.IfAbsent ? !exists : cond === SetCondition.IfPresent ? exists : true;
      if (done) store.delete(key);
    } else {
      done = store.set(key, owned(args[2]!), cond, ttlMs, (flags & SET_KEEPTTL) !== 0);
      if (!done && cond === SetCondition.Always) {
        send(ERR_OOM_REPLY);
        return;
      }
    }
    if (flags & SET_GET) {
      if (old === undefined) send(NIL);
      else send(bulk(old));
    } else if (done) send(OK);
    else send(NIL);
  }

  function cmdDel(args: Uint8Array[]): void {
    let n = 0;
    for (let i = 1; i < args.length; i++) if (store.delete(keyOf(args[i]!))) n++;
    send(integer(n));
  }

  function cmdExists(args: Uint8Array[]): void {
    let n = 0;
    for (let i = 1; i < args.length; i++) if (store.has(keyOf(args[i]!))) n++;
    send(integer(n));
  }

  function incrBy(keyBytes: Uint8Array, byBig: bigint | null, by: number): void {
    const key = keyOf(keyBytes);
    const cur = store.get(key);
    let small = 0;
    let big: bigint | null = null;
    if (cur !== undefined) {
      if (!parseInt64(cur)) {
        send(ERR_NOT_INT_REPLY);
        return;
      }
      if (int64IsBig) big = int64Big;
      else small = int64Small;
    }
    let next: number | bigint;
    if (big === null && byBig === null && Number.isSafeInteger(small + by)) {
      next = small + by;
    } else {
      const r = (big ?? BigInt(small)) + (byBig ?? BigInt(by));
      if (r > INT64_MAX || r < INT64_MIN) {
        send(ERR_OVERFLOW_REPLY);
        return;
      }
      next = r;
    }
    // INCR keeps the key's deadline, as redis does.
    if (!store.set(key, int64Bytes(next), SetCondition.Always, 0, true)) {
      send(ERR_OOM_REPLY);
      return;
    }
    if (typeof next === "number") send(integer(next));
    else send(integerText(String(next)));
  }

  function cmdIncr(args: Uint8Array[]): void {
    incrBy(args[1]!, null, 1);
  }

  function cmdDecr(args: Uint8Array[]): void {
    incrBy(args[1]!, null, -1);
  }

  function cmdIncrBy(args: Uint8Array[]): void {
    if (!parseInt64(args[2]!)) {
      send(ERR_NOT_INT_REPLY);
      return;
    }
    if (int64IsBig) incrBy(args[1]!, int64Big, 0);
    else incrBy(args[1]!, null, int64Small);
  }

  function cmdDecrBy(args: Uint8Array[]): void {
    if (!parseInt64(args[2]!)) {
      send(ERR_NOT_INT_REPLY);
      return;
    }
    const by = int64AsBig();
    if (by === INT64_MIN) {
      send(errorReply("ERR decrement would overflow"));
      return;
    }
    if (int64IsBig) incrBy(args[1]!, -by, 0);
    else incrBy(args[1]!, null, -int64Small);
  }

  function cmdMget(args: Uint8Array[]): void {
    send(arrayHeader(args.length - 1));
    for (let i = 1; i < args.length; i++) {
      const v = store.get(keyOf(args[i]!));
      if (v === undefined) send(NIL);
      else send(bulk(v));
    }
  }

  function cmdMset(args: Uint8Array[]): void {
    if (args.length % 2 === 0) {
      arityError("mset");
      return;
    }
    for (let i = 1; i < args.length; i += 2) {
      if (!store.set(keyOf(args[i]!), owned(args[i + 1]!))) {
        send(ERR_OOM_REPLY);
        return;
      }
    }
    send(OK);
  }

  // --- expiry ----------------------------------------------------------------------

  const EXP_NX = 1,
    EXP_XX = 2,
    EXP_GT = 4,
    EXP_LT = 8;

  function expireGeneric(args: Uint8Array[], name: string, seconds: boolean): void {
    let flags = 0;
    for (let j = 3; j < args.length; j++) {
      const opt = args[j]!;
      if (isWord(opt, "nx")) flags |= EXP_NX;
      else if (isWord(opt, "xx")) flags |= EXP_XX;
      else if (isWord(opt, "gt")) flags |= EXP_GT;
      else if (isWord(opt, "lt")) flags |= EXP_LT;
      else {
        send(errorReply(`ERR Unsupported option ${cString(opt, Infinity)}`));
        return;
      }
    }
    if (flags & EXP_NX && flags & (EXP_XX | EXP_GT | EXP_LT)) {
      send(errorReply("ERR NX and XX, GT or LT options at the same time are not compatible"));
      return;
    }
    if (flags & EXP_GT && flags & EXP_LT) {
      send(errorReply("ERR GT and LT options at the same time are not compatible"));
      return;
    }
    if (!parseInt64(args[2]!)) {
      send(ERR_NOT_INT_REPLY);
      return;
    }
    let ttlMs: number;
    if (!int64IsBig) {
      // |v| <= 2^53: neither the unit conversion nor adding the unix time can overflow int64.
      ttlMs = seconds ? int64Small * 1000 : int64Small;
    } else {
      let w = int64Big;
      if (seconds) {
        if (w > INT64_MAX / 1000n || w < INT64_MIN / 1000n) {
          expireTimeError(name);
          return;
        }
        w *= 1000n;
      }
      if (w > INT64_MAX - BigInt(Date.now())) {
        expireTimeError(name);
        return;
      }
      ttlMs = Number(w);
    }
    const key = keyOf(args[1]!);
    // Without NX/XX/GT/LT the current TTL does not matter: expire() answers for a missing key.
    if (!flags) return send(integer(store.expire(key, ttlMs) ? 1 : 0));
    const current = store.ttlMs(key);
    if (current === -2) {
      send(integer(0));
      return;
    }
    if (flags & EXP_NX && current !== -1) return send(integer(0));
    if (flags & EXP_XX && current === -1) return send(integer(0));
    if (flags & EXP_GT && (current === -1 || ttlMs <= current)) return send(integer(0));
    if (flags & EXP_LT && current !== -1 && ttlMs >= current) return send(integer(0));
    send(integer(store.expire(key, ttlMs) ? 1 : 0));
  }

  function cmdExpire(args: Uint8Array[]): void {
    expireGeneric(args, "expire", true);
  }

  function cmdPexpire(args: Uint8Array[]): void {
    expireGeneric(args, "pexpire", false);
  }

  function cmdTtl(args: Uint8Array[]): void {
    const t = store.ttlMs(keyOf(args[1]!));
    send(integer(t < 0 ? t : Math.floor((Math.ceil(t) + 500) / 1000)));
  }

  function cmdPttl(args: Uint8Array[]): void {
    const t = store.ttlMs(keyOf(args[1]!));
    send(integer(t < 0 ? t : Math.ceil(t)));
  }

  function cmdPersist(args: Uint8Array[]): void {
    send(integer(store.persist(keyOf(args[1]!)) ? 1 : 0));
  }

  // --- server and connection -------------------------------------------------------

  function cmdPing(args: Uint8Array[], conn: Conn): void {
    if (args.length <= 2 && pubsub.isSubscribed(conn.id)) {
      // In subscribed mode redis answers PING as a push-style array.
      send(arrayHeader(2));
      send(bulkLatin1("pong"));
      if (args.length === 2) send(bulk(args[1]!));
      else send(EMPTY_BULK);
    } else if (args.length === 1) send(PONG);
    else if (args.length === 2) send(bulk(args[1]!));
    else arityError("ping");
  }

  function cmdEcho(args: Uint8Array[]): void {
    send(bulk(args[1]!));
  }

  function cmdDbsize(): void {
    send(integer(store.size));
  }

  function cmdFlushall(args: Uint8Array[], _conn: Conn): void {
    if (args.length > 2 || (args.length === 2 && !isWord(args[1]!, "sync") && !isWord(args[1]!, "async"))) {
      send(ERR_SYNTAX_REPLY);
      return;
    }
    store.flush();
    send(OK);
  }

  function cmdSelect(args: Uint8Array[]): void {
    if (!parseInt64(args[1]!)) {
      send(ERR_NOT_INT_REPLY);
      return;
    }
    if (int64IsBig || int64Small > 2147483647 || int64Small < -2147483648) send(errorReply("ERR value is out of range, value must between -2147483648 and 2147483647"));
    else if (int64Small !== 0) send(errorReply("ERR DB index is out of range"));
    else send(OK);
  }

  function cmdQuit(_args: Uint8Array[], conn: Conn): void {
    send(OK);
    quitting = conn.id;
    conn.close();
  }

  function cmdCommand(args: Uint8Array[]): void {
    // redis-cli asks COMMAND DOCS at start for its hints: an empty answer is enough.
    if (args.length >= 2 && isWord(args[1]!, "count")) send(integer(table.all.length));
    else send(arrayHeader(0));
  }

  function cmdClient(args: Uint8Array[], conn: Conn): void {
    const sub = args[1]!;
    if (isWord(sub, "setname")) {
      if (args.length !== 3) return arityError("client|setname");
      const name = args[2]!;
      for (let i = 0; i < name.length; i++) {
        const c = name[i]!;
        if (c < 33 || c > 126) return send(errorReply("ERR Client names cannot contain spaces, newlines or special characters."));
      }
      if (name.length === 0) clientNames.delete(conn.id);
      else clientNames.set(conn.id, keyOf(name));
      send(OK);
    } else if (isWord(sub, "getname")) {
      if (args.length !== 2) return arityError("client|getname");
      const name = clientNames.get(conn.id);
      if (name === undefined) send(NIL);
      else send(bulkLatin1(name));
    } else if (isWord(sub, "id")) {
      if (args.length !== 2) return arityError("client|id");
      send(integer(conn.id));
    } else if (isWord(sub, "setinfo")) {
      if (args.length !== 4) return arityError("client|setinfo");
      send(OK);
    } else {
      unknownSubcommand(args, "CLIENT");
    }
  }

  /** The CONFIG GET parameters answered (what redis-benchmark asks). */
  const CONFIG_VALUES: Record<string, string> = { save: "", appendonly: "no", databases: "1", maxmemory: "0" };

  function cmdConfig(args: Uint8Array[]): void {
    const sub = args[1]!;
    if (isWord(sub, "get")) {
      if (args.length < 3) return arityError("config|get");
      const pairs: string[] = [];
      for (let i = 2; i < args.length; i++) {
        const name = keyOf(args[i]!).toLowerCase();
        const v = CONFIG_VALUES[name];
        if (v !== undefined && !pairs.includes(name)) pairs.push(name, v);
      }
      send(arrayHeader(pairs.length));
      for (const p of pairs) send(bulkLatin1(p));
    } else if (isWord(sub, "set")) {
      if (args.length < 4) return arityError("config|set");
      send(errorReply(`ERR Unknown option or number of arguments for CONFIG SET - '${cString(args[2]!, Infinity)}'`));
    } else if (isWord(sub, "resetstat")) {
      if (args.length !== 2) return arityError("config|resetstat");
      send(OK);
    } else {
      unknownSubcommand(args, "CONFIG");
    }
  }

  function cmdHello(args: Uint8Array[], conn: Conn): void {
    if (args.length >= 2) {
      if (!parseInt64(args[1]!) || int64IsBig) return send(errorReply("ERR Protocol version is not an integer or out of range"));
      if (int64Small !== 2) return send(errorReply("NOPROTO unsupported protocol version"));
      if (args.length > 2) return send(errorReply(`ERR Syntax error in HELLO option '${cString(args[2]!, Infinity)}'`));
    }
    send(arrayHeader(14));
    send(bulkLatin1("server"));
    send(bulkLatin1("redis"));
    send(bulkLatin1("version"));
    send(bulkLatin1(REDIS_COMPAT_VERSION));
    send(bulkLatin1("proto"));
    send(integer(2));
    send(bulkLatin1("id"));
    send(integer(conn.id));
    send(bulkLatin1("mode"));
    send(bulkLatin1("standalone"));
    send(bulkLatin1("role"));
    send(bulkLatin1("master"));
    send(bulkLatin1("modules"));
    send(arrayHeader(0));
  }

  // --- pub/sub ---------------------------------------------------------------------

  function subscriptionReply(kind: string, channel: Uint8Array | string | null, count: number): void {
    send(arrayHeader(3));
    send(bulkLatin1(kind));
    if (channel === null) send(NIL);
    else if (typeof channel === "string") send(bulkLatin1(channel));
    else send(bulk(channel));
    send(integer(count));
  }

  function cmdSubscribe(args: Uint8Array[], conn: Conn): void {
    for (let i = 1; i < args.length; i++) subscriptionReply("subscribe", args[i]!, pubsub.subscribe(conn, keyOf(args[i]!)));
  }

  function cmdUnsubscribe(args: Uint8Array[], conn: Conn): void {
    if (args.length === 1) {
      const mine = pubsub.channelsOf(conn.id);
      if (mine.length === 0) subscriptionReply("unsubscribe", null, 0);
      for (const ch of mine) subscriptionReply("unsubscribe", ch, pubsub.unsubscribe(conn.id, ch));
      return;
    }
    for (let i = 1; i < args.length; i++) subscriptionReply("unsubscribe", args[i]!, pubsub.unsubscribe(conn.id, keyOf(args[i]!)));
  }

  function cmdPublish(args: Uint8Array[]): void {
    send(integer(pubsub.publish(args[1]!, args[2]!, keyOf(args[1]!))));
  }

  /** Commands a subscribed connection may still send, as redis allows. */
  const allowedWhenSubscribed = new Set(["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "ping", "quit", "reset"]);

  function cmdInfo(args: Uint8Array[]): void {
    const wanted = new Set<string>();
    for (let i = 1; i < args.length; i++) wanted.add(keyOf(args[i]!).toLowerCase());
    const all = wanted.size === 0 || wanted.has("all") || wanted.has("everything") || wanted.has("default");
    const mem = process.memoryUsage();
    const sections: [string, [string, string | number][]][] = [
      [
        "Server",
        [
          ["redis_version", REDIS_COMPAT_VERSION],
          ["myriad_version", VERSION],
          ["redis_mode", "standalone"],
          ["process_id", process.pid],
          ["uptime_in_seconds", Math.floor((Date.now() - startedAt) / 1000)],
          ["bun_version", Bun.version],
        ],
      ],
      ["Clients", [["connected_clients", connected], ["pubsub_clients", pubsub.subscribers]]],
      [
        "Memory",
        [
          ["used_memory", mem.heapUsed],
          ["used_memory_rss", mem.rss],
          ["maxmemory", 0],
        ],
      ],
      ["Persistence", [["loading", 0]]],
      [
        "Stats",
        [
          ["total_commands_processed", commands],
          ["expired_keys", store.expiredKeys],
          ["pubsub_channels", pubsub.channelCount],
        ],
      ],
      ["Keyspace", store.size > 0 ? [["db0", `keys=${store.size},expires=${store.expiresCount},avg_ttl=0`]] : []],
    ];
    let text = "";
    for (const [name, fields] of sections) {
      if (!all && !wanted.has(name.toLowerCase())) continue;
      if (text) text += "\r\n";
      text += `# ${name}\r\n`;
      for (const [k, v] of fields) text += `${k}:${v}\r\n`;
    }
    send(bulkLatin1(text));
  }

  table
    .add("get", 2, cmdGet)
    .add("set", -3, cmdSet)
    .add("ping", -1, cmdPing)
    .add("echo", 2, cmdEcho)
    .add("del", -2, cmdDel)
    .add("exists", -2, cmdExists)
    .add("incr", 2, cmdIncr)
    .add("decr", 2, cmdDecr)
    .add("incrby", 3, cmdIncrBy)
    .add("decrby", 3, cmdDecrBy)
    .add("mget", -2, cmdMget)
    .add("mset", -3, cmdMset)
    .add("expire", -3, cmdExpire)
    .add("pexpire", -3, cmdPexpire)
    .add("ttl", 2, cmdTtl)
    .add("pttl", 2, cmdPttl)
    .add("persist", 2, cmdPersist)
    .add("dbsize", 1, cmdDbsize)
    .add("flushall", -1, cmdFlushall)
    .add("flushdb", -1, cmdFlushall)
    .add("info", -1, cmdInfo)
    .add("quit", -1, cmdQuit)
    .add("select", 2, cmdSelect)
    .add("command", -1, cmdCommand)
    .add("client", -2, cmdClient)
    .add("config", -2, cmdConfig)
    .add("hello", -1, cmdHello)
    .add("subscribe", -2, cmdSubscribe)
    .add("unsubscribe", -1, cmdUnsubscribe)
    .add("publish", 3, cmdPublish);

  const handler: Handler<Uint8Array[]> = {
    open() {
      connected++;
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
      else if (!arityOk(cmd.arity, argc)) arityError(cmd.name);
      else if (pubsub.isSubscribed(conn.id) && !allowedWhenSubscribed.has(cmd.name))
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
      connected--;
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
      return connected;
    },
    get commandsProcessed() {
      return commands;
    },
    close() {
      store.close();
    },
  };
}
