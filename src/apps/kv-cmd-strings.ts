/**
 * The KV app's string commands: GET, SET (with NX/XX/GET/KEEPTTL/EX/PX/EXAT/PXAT), MGET,
 * MSET, INCR, DECR, INCRBY, DECRBY, with redis 7's replies and error texts.
 */
import type { CommandTable } from "./commands.ts";
import { isWord } from "./commands.ts";
import { int64AsBig, int64Big, int64Bytes, int64IsBig, int64Small, parseInt64, INT64_MAX, INT64_MIN } from "./int64.ts";
import {
  arityErrorReply,
  ERR_NOT_INT_REPLY,
  ERR_OOM_REPLY,
  ERR_SYNTAX_REPLY,
  expireTimeErrorReply,
  keyOf,
  owned,
  type KvContext,
  type Run,
} from "./kv-context.ts";
import { SetCondition } from "./kv-store.ts";
import { NIL, OK, arrayHeader, bulk, error as errorReply, integer, integerText } from "./replies.ts";

const ERR_OVERFLOW_REPLY = errorReply("ERR increment or decrement would overflow");
const ERR_DECR_OVERFLOW_REPLY = errorReply("ERR decrement would overflow");

// SET's options as bits, in the order redis's parseExtendedStringArgumentsOrReply checks them.
const SET_NX = 1,
  SET_XX = 2,
  SET_GET = 4,
  SET_KEEPTTL = 8,
  SET_EX = 16,
  SET_PX = 32,
  SET_EXAT = 64,
  SET_PXAT = 128;

/** Adds the string commands to table. */
export function addStringCommands(table: CommandTable<Run>, ctx: Pick<KvContext, "store" | "send">): void {
  const { store, send } = ctx;

  function cmdGet(args: Uint8Array[]): void {
    const v = store.get(keyOf(args[1]!));
    if (v === undefined) send(NIL);
    else send(bulk(v));
  }

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
          send(expireTimeErrorReply("set"));
          return;
        }
        when = seconds ? int64Small * 1000 : int64Small;
      } else {
        // Past 2^53: check redis's overflow rules exactly, in bigint.
        let w = int64Big;
        if (w <= 0n || (seconds && w > INT64_MAX / 1000n)) {
          send(expireTimeErrorReply("set"));
          return;
        }
        if (seconds) w *= 1000n;
        if (!absolute && w > INT64_MAX - BigInt(Date.now())) {
          send(expireTimeErrorReply("set"));
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

  /** Adds byBig (when not null) or by to the integer at keyBytes and answers the result. */
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
      send(ERR_DECR_OVERFLOW_REPLY);
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
      send(arityErrorReply("mset"));
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

  table
    .add("get", 2, cmdGet)
    .add("set", -3, cmdSet)
    .add("incr", 2, cmdIncr)
    .add("decr", 2, cmdDecr)
    .add("incrby", 3, cmdIncrBy)
    .add("decrby", 3, cmdDecrBy)
    .add("mget", -2, cmdMget)
    .add("mset", -3, cmdMset);
}
