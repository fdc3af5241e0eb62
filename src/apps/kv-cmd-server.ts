/**
 * The KV app's server commands: COMMAND, CONFIG and INFO — what redis-cli and
 * redis-benchmark ask a server at start and what monitoring reads — answered as redis 7 does.
 */
import { VERSION } from "../version.ts";
import type { CommandTable } from "./commands.ts";
import { isWord } from "./commands.ts";
import { REDIS_COMPAT_VERSION } from "./kv-cmd-connection.ts";
import { arityErrorReply, cString, keyOf, type KvContext, type KvStats, type Run } from "./kv-context.ts";
import { OK, arrayHeader, bulkLatin1, error as errorReply, integer } from "./replies.ts";

/** What the server family needs besides the store and the reply path. */
interface ServerContext extends Pick<KvContext, "store" | "pubsub" | "send"> {
  /** Every command of the app (COMMAND COUNT). */
  readonly table: CommandTable<Run>;
  readonly stats: KvStats;
}

/** The CONFIG GET parameters answered (what redis-benchmark asks). */
const CONFIG_VALUES: Record<string, string> = { save: "", appendonly: "no", databases: "1", maxmemory: "0" };

/** Adds the server commands to table. */
export function addServerCommands(table: CommandTable<Run>, ctx: ServerContext): void {
  const { store, pubsub, send, stats } = ctx;

  function cmdCommand(args: Uint8Array[]): void {
    // redis-cli asks COMMAND DOCS at start for its hints: an empty answer is enough.
    if (args.length >= 2 && isWord(args[1]!, "count")) send(integer(table.all.length));
    else send(arrayHeader(0));
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
      send(errorReply(`ERR unknown subcommand '${cString(sub, 128)}'. Try CONFIG HELP.`));
    }
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
          ["rejected_connections", stats.deniedConnections],
          ["expired_keys", store.expiredKeys],
          ["pubsub_channels", pubsub.channelCount],
          ["acl_access_denied_auth", stats.authFailures],
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

  table.add("info", -1, cmdInfo).add("command", -1, cmdCommand).add("config", -2, cmdConfig);
}
