/**
 * The KV app's server and connection commands: PING, ECHO, SELECT, QUIT, COMMAND, CLIENT,
 * CONFIG, HELLO and INFO — what redis-cli, redis-benchmark and client libraries send when
 * they connect, answered as redis 7 does.
 */
import type { Conn } from "../reactor/index.ts";
import { VERSION } from "../version.ts";
import type { CommandTable } from "./commands.ts";
import { isWord } from "./commands.ts";
import { int64IsBig, int64Small, parseInt64 } from "./int64.ts";
import { ERR_NOT_INT_REPLY, arityErrorReply, cString, keyOf, type KvContext, type Run } from "./kv-context.ts";
import { EMPTY_BULK, NIL, OK, PONG, arrayHeader, bulk, bulkLatin1, error as errorReply, integer } from "./replies.ts";

/** The redis version whose behaviour (and error texts) the app follows; INFO and HELLO report it. */
const REDIS_COMPAT_VERSION = "7.0.15";

/** The app's counters, as INFO reports them. */
export interface KvStats {
  /** Connections open now (as seen by the handler). */
  connected: number;
  /** Commands processed since start. */
  readonly commands: number;
  /** Date.now() when the app was created. */
  readonly startedAtMs: number;
}

/** What the server family needs besides the store and the reply path. */
interface ServerContext extends KvContext {
  /** Every command of the app (COMMAND COUNT). */
  readonly table: CommandTable<Run>;
  readonly stats: KvStats;
  /** Names given by CLIENT SETNAME, by connection id (only connections that set one). */
  readonly clientNames: Map<number, string>;
  /** Closes conn once its replies are flushed and ignores the rest of its batch (QUIT). */
  quit(conn: Conn): void;
}

/** The CONFIG GET parameters answered (what redis-benchmark asks). */
const CONFIG_VALUES: Record<string, string> = { save: "", appendonly: "no", databases: "1", maxmemory: "0" };

const PONG_BULK = bulkLatin1("pong");

/** Adds the server and connection commands to table. */
export function addServerCommands(table: CommandTable<Run>, ctx: ServerContext): void {
  const { store, pubsub, send, stats, clientNames } = ctx;

  function unknownSubcommand(args: Uint8Array[], container: string): void {
    send(errorReply(`ERR unknown subcommand '${cString(args[1]!, 128)}'. Try ${container} HELP.`));
  }

  function cmdPing(args: Uint8Array[], conn: Conn): void {
    if (args.length <= 2 && pubsub.isSubscribed(conn.id)) {
      // In subscribed mode redis answers PING as a push-style array.
      send(arrayHeader(2));
      send(PONG_BULK);
      if (args.length === 2) send(bulk(args[1]!));
      else send(EMPTY_BULK);
    } else if (args.length === 1) send(PONG);
    else if (args.length === 2) send(bulk(args[1]!));
    else send(arityErrorReply("ping"));
  }

  function cmdEcho(args: Uint8Array[]): void {
    send(bulk(args[1]!));
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
    ctx.quit(conn);
  }

  function cmdCommand(args: Uint8Array[]): void {
    // redis-cli asks COMMAND DOCS at start for its hints: an empty answer is enough.
    if (args.length >= 2 && isWord(args[1]!, "count")) send(integer(table.all.length));
    else send(arrayHeader(0));
  }

  function cmdClient(args: Uint8Array[], conn: Conn): void {
    const sub = args[1]!;
    if (isWord(sub, "setname")) {
      if (args.length !== 3) return send(arityErrorReply("client|setname"));
      const name = args[2]!;
      for (let i = 0; i < name.length; i++) {
        const c = name[i]!;
        if (c < 33 || c > 126) return send(errorReply("ERR Client names cannot contain spaces, newlines or special characters."));
      }
      if (name.length === 0) clientNames.delete(conn.id);
      else clientNames.set(conn.id, keyOf(name));
      send(OK);
    } else if (isWord(sub, "getname")) {
      if (args.length !== 2) return send(arityErrorReply("client|getname"));
      const name = clientNames.get(conn.id);
      if (name === undefined) send(NIL);
      else send(bulkLatin1(name));
    } else if (isWord(sub, "id")) {
      if (args.length !== 2) return send(arityErrorReply("client|id"));
      send(integer(conn.id));
    } else if (isWord(sub, "setinfo")) {
      if (args.length !== 4) return send(arityErrorReply("client|setinfo"));
      send(OK);
    } else {
      unknownSubcommand(args, "CLIENT");
    }
  }

  function cmdConfig(args: Uint8Array[]): void {
    const sub = args[1]!;
    if (isWord(sub, "get")) {
      if (args.length < 3) return send(arityErrorReply("config|get"));
      const pairs: string[] = [];
      for (let i = 2; i < args.length; i++) {
        const name = keyOf(args[i]!).toLowerCase();
        const v = CONFIG_VALUES[name];
        if (v !== undefined && !pairs.includes(name)) pairs.push(name, v);
      }
      send(arrayHeader(pairs.length));
      for (const p of pairs) send(bulkLatin1(p));
    } else if (isWord(sub, "set")) {
      if (args.length < 4) return send(arityErrorReply("config|set"));
      send(errorReply(`ERR Unknown option or number of arguments for CONFIG SET - '${cString(args[2]!, Infinity)}'`));
    } else if (isWord(sub, "resetstat")) {
      if (args.length !== 2) return send(arityErrorReply("config|resetstat"));
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
          ["uptime_in_seconds", Math.floor((Date.now() - stats.startedAtMs) / 1000)],
          ["bun_version", Bun.version],
        ],
      ],
      ["Clients", [["connected_clients", stats.connected], ["pubsub_clients", pubsub.subscribers]]],
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
          ["total_commands_processed", stats.commands],
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
    .add("ping", -1, cmdPing)
    .add("echo", 2, cmdEcho)
    .add("info", -1, cmdInfo)
    .add("quit", -1, cmdQuit)
    .add("select", 2, cmdSelect)
    .add("command", -1, cmdCommand)
    .add("client", -2, cmdClient)
    .add("config", -2, cmdConfig)
    .add("hello", -1, cmdHello);
}
