/**
 * The KV app's connection commands: AUTH, HELLO, CLIENT (ID, GETNAME, SETNAME, SETINFO,
 * INFO, LIST), PING, ECHO, SELECT and QUIT, answered as redis 7 does. HELLO speaks RESP2
 * only: HELLO 3 is refused (with or without AUTH) until the app speaks RESP3.
 */
import type { Conn } from "../reactor/index.ts";
import type { CommandTable } from "./commands.ts";
import { isWord } from "./commands.ts";
import { int64IsBig, int64Small, parseInt64 } from "./int64.ts";
import { WRONGPASS_REPLY, isDefaultUser, type Password } from "./kv-auth.ts";
import { CLIENT_AUTHED, CLIENT_CLOSING, type CoarseClock, type CurrentClient, type KvClients } from "./kv-clients.ts";
import { ERR_NOT_INT_REPLY, ERR_SYNTAX_REPLY, arityErrorReply, cString, keyOf, type KvContext, type KvStats, type Run } from "./kv-context.ts";
import { EMPTY_BULK, NIL, OK, PONG, arrayHeader, bulk, bulkLatin1, error as errorReply, integer } from "./replies.ts";

/** The redis version whose behaviour (and error texts) the app follows; INFO and HELLO report it. */
export const REDIS_COMPAT_VERSION = "7.0.15";

/** What the connection family needs besides pub/sub and the reply path. */
interface ConnectionContext extends Pick<KvContext, "pubsub" | "send"> {
  readonly current: CurrentClient;
  /** The default user's password; null: none (every connection is authenticated). */
  readonly password: Password | null;
  /** authFailures counts every WRONGPASS answer. */
  readonly stats: Pick<KvStats, "authFailures">;
  /** Every server's table, for CLIENT LIST. */
  readonly listeners: readonly KvClients[];
  readonly clock: CoarseClock;
}

const PONG_BULK = bulkLatin1("pong");
const ERR_NO_PASSWORD_REPLY = errorReply(
  "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
);
const ERR_NOPROTO_REPLY = errorReply("NOPROTO unsupported protocol version");
const ERR_NO_RESP3_REPLY = errorReply(
  "NOPROTO unsupported protocol version: this server speaks RESP2 only (HELLO 2 [AUTH <user> <password>])",
);
const ERR_HELLO_NOAUTH_REPLY = errorReply(
  "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option " +
    "can be used to authenticate the client and select the RESP protocol version at the same time",
);
const ERR_CLIENT_NAME_REPLY = errorReply("ERR Client names cannot contain spaces, newlines or special characters.");

/** "host:port" as redis prints a peer: IPv6 addresses in brackets. */
function formatAddr(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Adds the connection commands to table. */
export function addConnectionCommands(table: CommandTable<Run>, ctx: ConnectionContext): void {
  const { pubsub, send, current, password, stats, listeners, clock } = ctx;

  /** Authenticates the current connection with user (null: the one-argument form) and pass; answers WRONGPASS and counts it when wrong. */
  function authenticate(user: Uint8Array | null, pass: Uint8Array): boolean {
    // Without a password the default user takes any password, as redis's nopass user does.
    const ok = password === null ? user !== null && isDefaultUser(user) : password.matches(user, pass);
    if (ok) {
      current.clients.flags[current.slot]! |= CLIENT_AUTHED;
      return true;
    }
    stats.authFailures++;
    send(WRONGPASS_REPLY);
    return false;
  }

  function cmdAuth(args: Uint8Array[]): void {
    if (args.length > 3) return send(ERR_SYNTAX_REPLY);
    if (args.length === 2 && password === null) return send(ERR_NO_PASSWORD_REPLY);
    if (args.length === 2 ? authenticate(null, args[1]!) : authenticate(args[1]!, args[2]!)) send(OK);
  }

  function isSubscribed(): boolean {
    return pubsub.isSubscribed(current.id);
  }

  function cmdPing(args: Uint8Array[]): void {
    if (args.length <= 2 && isSubscribed()) {
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
    current.clients.flags[current.slot]! |= CLIENT_CLOSING;
    conn.close();
  }

  /** True when name is not a valid client name (redis: printable ASCII, no space). */
  function badClientName(name: Uint8Array): boolean {
    for (let i = 0; i < name.length; i++) {
      const c = name[i]!;
      if (c < 33 || c > 126) return true;
    }
    return false;
  }

  function setName(name: Uint8Array): void {
    const { clients, slot } = current;
    if (name.length === 0) clients.names.delete(slot);
    else clients.names.set(slot, keyOf(name));
  }

  function cmdHello(args: Uint8Array[]): void {
    let user: Uint8Array | null = null;
    let pass: Uint8Array | null = null;
    let name: Uint8Array | null = null;
    if (args.length >= 2) {
      if (!parseInt64(args[1]!) || int64IsBig) return send(errorReply("ERR Protocol version is not an integer or out of range"));
      if (int64Small === 3) return send(ERR_NO_RESP3_REPLY);
      if (int64Small !== 2) return send(ERR_NOPROTO_REPLY);
      for (let j = 2; j < args.length; j++) {
        const more = args.length - 1 - j;
        const opt = args[j]!;
        if (isWord(opt, "auth") && more >= 2) {
          user = args[j + 1]!;
          pass = args[j + 2]!;
          j += 2;
        } else if (isWord(opt, "setname") && more >= 1) {
          name = args[++j]!;
          if (badClientName(name)) return send(ERR_CLIENT_NAME_REPLY);
        } else {
          return send(errorReply(`ERR Syntax error in HELLO option '${cString(opt, Infinity)}'`));
        }
      }
    }
    if (user !== null && pass !== null && !authenticate(user, pass)) return;
    if (!(current.clients.flags[current.slot]! & CLIENT_AUTHED)) return send(ERR_HELLO_NOAUTH_REPLY);
    if (name !== null) setName(name);
    send(arrayHeader(14));
    send(bulkLatin1("server"));
    send(bulkLatin1("redis"));
    send(bulkLatin1("version"));
    send(bulkLatin1(REDIS_COMPAT_VERSION));
    send(bulkLatin1("proto"));
    send(integer(2));
    send(bulkLatin1("id"));
    send(integer(current.id));
    send(bulkLatin1("mode"));
    send(bulkLatin1("standalone"));
    send(bulkLatin1("role"));
    send(bulkLatin1("master"));
    send(bulkLatin1("modules"));
    send(arrayHeader(0));
  }

  /**
   * One CLIENT LIST line for the connection in `slot` of `clients`, in redis's field order
   * (fields redis has and the app cannot know — fd, buffer sizes, memory — are left out).
   */
  function clientLine(clients: KvClients, slot: number, nowMs: number): string {
    const conn = clients.conns[slot]!;
    const id = clients.idBase + conn.id;
    const subs = pubsub.countOf(id);
    const age = Math.floor((nowMs - clients.openedAtMs[slot]!) / 1000);
    const idle = Math.floor((nowMs - clients.lastCommandAtMs[slot]!) / 1000);
    return (
      `id=${id} addr=${formatAddr(conn.remoteAddress, conn.remotePort)} laddr=${formatAddr(conn.localAddress, conn.localPort)} ` +
      `name=${clients.names.get(slot) ?? ""} age=${age} idle=${idle} flags=${subs > 0 ? "P" : "N"} db=0 sub=${subs} psub=0 ssub=0 ` +
      `multi=-1 cmd=${clients.lastCommand[slot] ?? "NULL"} user=default redir=-1 resp=2\n`
    );
  }

  function cmdClientList(args: Uint8Array[]): void {
    // CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]], as redis reads it.
    let type: string | null = null;
    let ids: Set<number> | null = null;
    for (let j = 2; j < args.length; j++) {
      if (isWord(args[j]!, "type") && j + 1 < args.length) {
        type = keyOf(args[++j]!).toLowerCase();
        if (type !== "normal" && type !== "master" && type !== "replica" && type !== "slave" && type !== "pubsub")
          return send(errorReply(`ERR Unknown client type '${cString(args[j]!, Infinity)}'`));
      } else if (isWord(args[j]!, "id") && j + 1 < args.length) {
        ids = new Set();
        for (j++; j < args.length; j++) {
          if (!parseInt64(args[j]!) || int64IsBig || int64Small < 1) return send(errorReply("ERR Invalid client ID"));
          ids.add(int64Small);
        }
      } else return send(ERR_SYNTAX_REPLY);
    }
    const nowMs = clock.nowMs;
    let text = "";
    for (const clients of listeners) {
      for (const slot of clients.openSlots()) {
        const id = clients.idBase + clients.conns[slot]!.id;
        if (ids !== null && !ids.has(id)) continue;
        if (type !== null && type !== (pubsub.isSubscribed(id) ? "pubsub" : "normal")) continue;
        text += clientLine(clients, slot, nowMs);
      }
    }
    send(bulkLatin1(text));
  }

  function cmdClient(args: Uint8Array[]): void {
    const sub = args[1]!;
    const { clients, slot } = current;
    if (isWord(sub, "setname")) {
      clients.lastCommand[slot] = "client|setname";
      if (args.length !== 3) return send(arityErrorReply("client|setname"));
      if (badClientName(args[2]!)) return send(ERR_CLIENT_NAME_REPLY);
      setName(args[2]!);
      send(OK);
    } else if (isWord(sub, "getname")) {
      clients.lastCommand[slot] = "client|getname";
      if (args.length !== 2) return send(arityErrorReply("client|getname"));
      const name = clients.names.get(slot);
      if (name === undefined) send(NIL);
      else send(bulkLatin1(name));
    } else if (isWord(sub, "id")) {
      clients.lastCommand[slot] = "client|id";
      if (args.length !== 2) return send(arityErrorReply("client|id"));
      send(integer(current.id));
    } else if (isWord(sub, "info")) {
      clients.lastCommand[slot] = "client|info";
      if (args.length !== 2) return send(arityErrorReply("client|info"));
      send(bulkLatin1(clientLine(clients, slot, clock.nowMs)));
    } else if (isWord(sub, "list")) {
      clients.lastCommand[slot] = "client|list";
      cmdClientList(args);
    } else if (isWord(sub, "setinfo")) {
      clients.lastCommand[slot] = "client|setinfo";
      if (args.length !== 4) return send(arityErrorReply("client|setinfo"));
      send(OK);
    } else {
      send(errorReply(`ERR unknown subcommand '${cString(sub, 128)}'. Try CLIENT HELP.`));
    }
  }

  table
    .add("auth", -2, cmdAuth)
    .add("hello", -1, cmdHello)
    .add("client", -2, cmdClient)
    .add("ping", -1, cmdPing)
    .add("echo", 2, cmdEcho)
    .add("select", 2, cmdSelect)
    .add("quit", -1, cmdQuit);
}

/** Commands a connection may send before it has authenticated, as redis allows. */
export const ALLOWED_BEFORE_AUTH: ReadonlySet<string> = new Set(["auth", "hello", "quit"]);
