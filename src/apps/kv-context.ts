/**
 * What the KV app's command families (kv-cmd-*.ts) share: the context each one is built
 * over, and the helpers and fixed replies more than one family needs.
 *
 * A family is a function `addXxxCommands(table, ctx)` that adds its commands to the app's
 * CommandTable. Each takes only the part of KvContext it uses, so a family's dependencies
 * are read off its signature.
 */
import { COPY_MAX_BYTES } from "../codec/index.ts";
import type { NodeBus } from "../bus/index.ts";
import type { Conn } from "../reactor/index.ts";
import type { KvStore } from "./kv-store.ts";
import type { PubSub } from "./pubsub.ts";
import { error as errorReply } from "./replies.ts";

/** A command's implementation: args[0] is its name; replies go out through KvContext.send. */
export type Run = (args: Uint8Array[], conn: Conn) => void;

/** The app state a command family may use. */
export interface KvContext {
  readonly store: KvStore;
  /** Channels of SUBSCRIBE / PUBLISH. */
  readonly pubsub: PubSub;
  /** The node bus that carries PUBLISH to the other nodes of a fleet, or null (one node). */
  readonly bus: NodeBus | null;
  /**
   * Writes one reply to the connection whose request is being answered (replies are sent
   * only while a request is being handled).
   */
  readonly send: (reply: Uint8Array) => void;
}

/** The app's counters, as INFO reports them. */
export interface KvStats {
  /** Connections open now (as seen by the handler). */
  connected: number;
  /** Commands processed since start. */
  readonly commands: number;
  /** Date.now() when the app was created. */
  readonly startedAtMs: number;
  /** AUTH and HELLO ... AUTH answered WRONGPASS (INFO: acl_access_denied_auth). */
  authFailures: number;
  /** Connections closed by protected mode (INFO: rejected_connections). */
  deniedConnections: number;
}

/** "-ERR syntax error" (shared). */
export const ERR_SYNTAX_REPLY: Uint8Array = errorReply("ERR syntax error");
/** "-ERR value is not an integer or out of range" (shared). */
export const ERR_NOT_INT_REPLY: Uint8Array = errorReply("ERR value is not an integer or out of range");
/** redis's answer to a write past maxmemory, which the app gives past maxKeys (shared). */
export const ERR_OOM_REPLY: Uint8Array = errorReply("OOM command not allowed when used memory > 'maxmemory'.");

const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string })
  .latin1Slice;

/** A key's bytes as a latin1 string (one char per byte): any byte string is a distinct key. */
export function keyOf(b: Uint8Array): string {
  return latin1Slice.call(b, 0, b.length);
}

/**
 * A value the store may keep: the argument itself when respCodec made it a fresh array (at
 * most COPY_MAX_BYTES, the codec's contract), else a copy of the view into the read buffer.
 */
export function owned(arg: Uint8Array): Uint8Array {
  const n = arg.length;
  if (n <= COPY_MAX_BYTES) return arg;
  const copy = new Uint8Array(n);
  copy.set(arg);
  return copy;
}

/** An argument as redis prints it in "%s" (C string: up to the first NUL byte), latin1, at most maxBytes. */
export function cString(b: Uint8Array, maxBytes: number): string {
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  return latin1Slice.call(b, 0, Math.min(end, maxBytes));
}

/** redis's "wrong number of arguments" error for command `name` (lower case, "client|setname" for a subcommand). */
export function arityErrorReply(name: string): Uint8Array {
  return errorReply(`ERR wrong number of arguments for '${name}' command`);
}

/** redis's "invalid expire time" error for command `name` (SET, EXPIRE, PEXPIRE). */
export function expireTimeErrorReply(name: string): Uint8Array {
  return errorReply(`ERR invalid expire time in '${name}' command`);
}
