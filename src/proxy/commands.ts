/**
 * What the proxy does with each redis command: where its keys are, whether it is split over
 * servers, answered by the proxy, run on a connection of its own, or refused (and why).
 *
 * Lookups go by the command name's bytes, case-insensitively, through a small open-addressing
 * table: no string is made per request.
 */

/** How a command is handled. */
export const enum Kind {
  /** Keys at first..last by step (last < 0 counts from the end); all must be on one server. */
  Keys,
  /** A key count at `numkeysAt`, the keys right after it (plus a fixed key at `first` when > 0). */
  NumKeys,
  /** XREAD / XREADGROUP: the keys are the first half of the arguments after STREAMS. */
  Streams,
  /** MGET: split by server, replies merged in key order. */
  SplitMget,
  /** DEL, UNLINK, EXISTS, TOUCH: split by server, integer replies summed. */
  SplitSum,
  /** MSET: split by server (key-value pairs), OK when every part is OK. */
  SplitMset,
  /** Answered by the proxy itself (PING, ECHO, QUIT, SELECT, AUTH, INFO, HELLO, RESET). */
  Local,
  /** MULTI, EXEC, DISCARD, WATCH, UNWATCH: one pinned upstream connection per transaction. */
  Transaction,
  /** SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE: dedicated connections while subscribed. */
  PubSub,
  /** Not carried by the proxy: `reason` says why. */
  Refused,
}

/** Where a blocking command keeps its timeout. */
export const enum BlockTimeout {
  None,
  /** Seconds, the last argument (BLPOP, BRPOP, BLMOVE, ...). */
  LastArgSeconds,
  /** Seconds, argument 1 (BLMPOP, BZMPOP). */
  FirstArgSeconds,
  /** Milliseconds after a BLOCK option (XREAD, XREADGROUP). */
  BlockOptionMs,
}

/** One command's routing rule. */
export interface CommandSpec {
  /** Upper case. */
  readonly name: string;
  readonly kind: Kind;
  /** Fewest arguments, the name included (redis's arity); fewer: the arity error. */
  readonly minArgs: number;
  readonly first: number;
  readonly last: number;
  readonly step: number;
  readonly numkeysAt: number;
  /** A blocking command: it gets a dedicated upstream connection until it answers. */
  readonly block: BlockTimeout;
  /** Why a Refused command is not carried. */
  readonly reason: string;
}

function spec(name: string, kind: Kind, minArgs: number, first = 0, last = 0, step = 1, numkeysAt = 0, block = BlockTimeout.None, reason = ""): CommandSpec {
  return { name, kind, minArgs, first, last, step, numkeysAt, block, reason };
}

const KEYSPACE =
  "it works on a whole keyspace, and the proxy spreads the keys over the pool's servers (it would see one of them): run it on each server directly";
const ADMIN = "it administers one redis-server, and the proxy spreads the keys over the pool's servers: run it on each server directly";
const CONNECTION_STATE = "it sets state on an upstream connection that other clients share";
const ONE_SERVER = "its answer comes from one redis-server, not the pool: ask a server directly";
const SCRIPTS = "scripts and functions are kept per server: load them on each server directly (EVAL works through the proxy)";
const SHARDED = "sharded pub/sub is not carried: use SUBSCRIBE and PUBLISH through the proxy";
const DATABASES = "the proxy serves database 0 only (its servers' redis_db)";
const WAITS = "it waits on a connection's own writes, and the proxy's upstream connections carry many clients' writes";

const SPECS: CommandSpec[] = [];
const single = (names: string, minArgs = 2) => {
  for (const n of names.split(" ")) SPECS.push(spec(n, Kind.Keys, minArgs, 1, 1, 1));
};
single(
  "APPEND BITCOUNT BITFIELD BITFIELD_RO BITPOS DECR DECRBY DUMP EXPIRE EXPIREAT EXPIRETIME GEOADD GEODIST GEOHASH GEOPOS " +
    "GEORADIUS GEORADIUSBYMEMBER GEORADIUS_RO GEORADIUSBYMEMBER_RO GEOSEARCH GET GETBIT GETDEL GETEX GETRANGE GETSET " +
    "HDEL HEXISTS HGET HGETALL HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET HRANDFIELD HSCAN HSET HSETNX HSTRLEN HVALS " +
    "INCR INCRBY INCRBYFLOAT LINDEX LINSERT LLEN LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET LTRIM PERSIST PEXPIRE PEXPIREAT " +
    "PEXPIRETIME PFADD PSETEX PTTL RESTORE RPOP RPUSH RPUSHX SADD SCARD SET SETBIT SETEX SETNX SETRANGE SISMEMBER SMEMBERS " +
    "SMISMEMBER SPOP SRANDMEMBER SREM SSCAN STRLEN SUBSTR TTL TYPE XACK XADD XAUTOCLAIM XCLAIM XDEL XLEN XPENDING XRANGE " +
    "XREVRANGE XSETID XTRIM ZADD ZCARD ZCOUNT ZINCRBY ZLEXCOUNT ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGE ZRANGEBYLEX " +
    "ZRANGEBYSCORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE " +
    "ZREVRANK ZSCAN ZSCORE SORT SORT_RO",
);
// PUBLISH goes where SUBSCRIBE of the same channel goes: the channel is hashed like a key.
SPECS.push(spec("PUBLISH", Kind.Keys, 3, 1, 1, 1));
for (const n of "RENAME RENAMENX SMOVE RPOPLPUSH LMOVE COPY LCS ZRANGESTORE GEOSEARCHSTORE".split(" ")) SPECS.push(spec(n, Kind.Keys, 3, 1, 2, 1));
for (const n of "SDIFF SDIFFSTORE SINTER SINTERSTORE SUNION SUNIONSTORE PFCOUNT PFMERGE".split(" ")) SPECS.push(spec(n, Kind.Keys, 2, 1, -1, 1));
SPECS.push(spec("MSETNX", Kind.Keys, 3, 1, -1, 2));
SPECS.push(spec("BITOP", Kind.Keys, 4, 2, -1, 1));
SPECS.push(spec("OBJECT", Kind.Keys, 2, 2, 2, 1));
SPECS.push(spec("XGROUP", Kind.Keys, 2, 2, 2, 1));
SPECS.push(spec("XINFO", Kind.Keys, 2, 2, 2, 1));
for (const n of "BLPOP BRPOP BZPOPMIN BZPOPMAX".split(" ")) SPECS.push(spec(n, Kind.Keys, 3, 1, -2, 1, 0, BlockTimeout.LastArgSeconds));
SPECS.push(spec("BLMOVE", Kind.Keys, 6, 1, 2, 1, 0, BlockTimeout.LastArgSeconds));
SPECS.push(spec("BRPOPLPUSH", Kind.Keys, 4, 1, 2, 1, 0, BlockTimeout.LastArgSeconds));
for (const n of "EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO".split(" ")) SPECS.push(spec(n, Kind.NumKeys, 3, 0, 0, 1, 2));
for (const n of "ZUNIONSTORE ZINTERSTORE ZDIFFSTORE".split(" ")) SPECS.push(spec(n, Kind.NumKeys, 4, 1, 0, 1, 2));
for (const n of "ZUNION ZINTER ZDIFF ZINTERCARD SINTERCARD LMPOP ZMPOP".split(" ")) SPECS.push(spec(n, Kind.NumKeys, 3, 0, 0, 1, 1));
for (const n of "BLMPOP BZMPOP".split(" ")) SPECS.push(spec(n, Kind.NumKeys, 5, 0, 0, 1, 2, BlockTimeout.FirstArgSeconds));
SPECS.push(spec("XREAD", Kind.Streams, 4, 0, 0, 1, 0, BlockTimeout.BlockOptionMs));
SPECS.push(spec("XREADGROUP", Kind.Streams, 7, 0, 0, 1, 0, BlockTimeout.BlockOptionMs));
SPECS.push(spec("MGET", Kind.SplitMget, 2, 1, -1, 1));
for (const n of "DEL UNLINK EXISTS TOUCH".split(" ")) SPECS.push(spec(n, Kind.SplitSum, 2, 1, -1, 1));
SPECS.push(spec("MSET", Kind.SplitMset, 3, 1, -1, 2));
for (const n of "PING ECHO QUIT SELECT AUTH INFO HELLO RESET".split(" ")) SPECS.push(spec(n, Kind.Local, 1));
for (const n of "MULTI EXEC DISCARD UNWATCH".split(" ")) SPECS.push(spec(n, Kind.Transaction, 1));
SPECS.push(spec("WATCH", Kind.Transaction, 2, 1, -1, 1));
for (const n of "SUBSCRIBE PSUBSCRIBE".split(" ")) SPECS.push(spec(n, Kind.PubSub, 2));
for (const n of "UNSUBSCRIBE PUNSUBSCRIBE".split(" ")) SPECS.push(spec(n, Kind.PubSub, 1));
const refuse = (names: string, reason: string) => {
  for (const n of names.split(" ")) SPECS.push(spec(n, Kind.Refused, 1, 0, 0, 1, 0, BlockTimeout.None, reason));
};
refuse("KEYS SCAN RANDOMKEY DBSIZE FLUSHDB FLUSHALL", KEYSPACE);
refuse(
  "CONFIG SAVE BGSAVE BGREWRITEAOF LASTSAVE SHUTDOWN DEBUG MONITOR SYNC PSYNC REPLICAOF SLAVEOF FAILOVER CLUSTER ACL MODULE SLOWLOG LATENCY MEMORY MIGRATE",
  ADMIN,
);
refuse("CLIENT READONLY READWRITE ASKING", CONNECTION_STATE);
refuse("COMMAND TIME LOLWUT ROLE PUBSUB", ONE_SERVER);
refuse("SCRIPT FUNCTION", SCRIPTS);
refuse("SSUBSCRIBE SUNSUBSCRIBE SPUBLISH", SHARDED);
refuse("MOVE SWAPDB", DATABASES);
refuse("WAIT WAITAOF", WAITS);

/** Every command the proxy knows (upper case). */
export const COMMANDS: readonly CommandSpec[] = SPECS;

// The lookup table: FNV-1a of the upper-cased name, open addressing, 4x the entries.
const TABLE_BITS = 10;
const TABLE_MASK = (1 << TABLE_BITS) - 1;
const table: (CommandSpec | undefined)[] = new Array(1 << TABLE_BITS).fill(undefined);
const tableNames: Uint8Array[] = new Array(1 << TABLE_BITS);

function hashUpper(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) {
    let c = buf[i] as number;
    if (c >= 97 && c <= 122) c -= 32;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h >>> 0;
}

for (const s of SPECS) {
  const bytes = Buffer.from(s.name);
  let i = hashUpper(bytes, 0, bytes.length) & TABLE_MASK;
  while (table[i] !== undefined) {
    if (table[i]!.name === s.name) throw new Error(`proxy command table: ${s.name} twice`);
    i = (i + 1) & TABLE_MASK;
  }
  table[i] = s;
  tableNames[i] = bytes;
}

/** The rule for the command named by buf[start, end) (any case), or undefined for an unknown command. */
export function lookupCommand(buf: Uint8Array, start: number, end: number): CommandSpec | undefined {
  const len = end - start;
  if (len === 0 || len > 24) return undefined;
  let i = hashUpper(buf, start, end) & TABLE_MASK;
  for (;;) {
    const s = table[i];
    if (s === undefined) return undefined;
    const name = tableNames[i]!;
    if (name.length === len) {
      let k = 0;
      for (; k < len; k++) {
        let c = buf[start + k] as number;
        if (c >= 97 && c <= 122) c -= 32;
        if (c !== name[k]) break;
      }
      if (k === len) return s;
    }
    i = (i + 1) & TABLE_MASK;
  }
}
