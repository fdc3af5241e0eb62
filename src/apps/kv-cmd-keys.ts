/**
 * The KV app's key and expiry commands: DEL, EXISTS, EXPIRE and PEXPIRE (with NX/XX/GT/LT),
 * TTL, PTTL, PERSIST, DBSIZE, FLUSHALL and FLUSHDB, with redis 7's replies and error texts.
 */
import type { CommandTable } from "./commands.ts";
import { isWord } from "./commands.ts";
import { int64Big, int64IsBig, int64Small, parseInt64, INT64_MAX, INT64_MIN } from "./int64.ts";
import { ERR_NOT_INT_REPLY, ERR_SYNTAX_REPLY, cString, expireTimeErrorReply, keyOf, type KvContext, type Run } from "./kv-context.ts";
import { OK, error as errorReply, integer } from "./replies.ts";

// EXPIRE's options as bits.
const EXP_NX = 1,
  EXP_XX = 2,
  EXP_GT = 4,
  EXP_LT = 8;

/** Adds the key and expiry commands to table. */
export function addKeyCommands(table: CommandTable<Run>, ctx: Pick<KvContext, "store" | "send">): void {
  const { store, send } = ctx;

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

  /** EXPIRE (seconds) or PEXPIRE: args[2] is relative to now; name is the command's, for errors. */
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
          send(expireTimeErrorReply(name));
          return;
        }
        w *= 1000n;
      }
      if (w > INT64_MAX - BigInt(Date.now())) {
        send(expireTimeErrorReply(name));
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

  function cmdDbsize(): void {
    send(integer(store.size));
  }

  function cmdFlushall(args: Uint8Array[]): void {
    if (args.length > 2 || (args.length === 2 && !isWord(args[1]!, "sync") && !isWord(args[1]!, "async"))) {
      send(ERR_SYNTAX_REPLY);
      return;
    }
    store.flush();
    send(OK);
  }

  table
    .add("del", -2, cmdDel)
    .add("exists", -2, cmdExists)
    .add("expire", -3, cmdExpire)
    .add("pexpire", -3, cmdPexpire)
    .add("ttl", 2, cmdTtl)
    .add("pttl", 2, cmdPttl)
    .add("persist", 2, cmdPersist)
    .add("dbsize", 1, cmdDbsize)
    .add("flushall", -1, cmdFlushall)
    .add("flushdb", -1, cmdFlushall);
}
