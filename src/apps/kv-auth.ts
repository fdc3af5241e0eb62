/**
 * The KV app's access rules, as redis has them: a password for the `default` user
 * (`requirepass`, checked by AUTH and HELLO ... AUTH), and protected mode: with no password
 * set, clients from other than loopback are answered with an error saying how to fix it and
 * closed. The texts of the errors are redis 7's where redis has one.
 */
import { timingSafeEqual } from "node:crypto";
import { error as errorReply } from "./replies.ts";

/** What AUTH and HELLO answer to a wrong user or password (redis 7's text). */
export const WRONGPASS_REPLY: Uint8Array = errorReply("WRONGPASS invalid username-password pair or user is disabled.");
/** What a command other than AUTH, HELLO and QUIT gets before the connection has authenticated. */
export const NOAUTH_REPLY: Uint8Array = errorReply("NOAUTH Authentication required.");

/**
 * What a client from other than loopback gets in protected mode, before it is closed: redis's
 * DENIED error, naming this server's flags instead of redis.conf's.
 */
export const DENIED_REPLY: Uint8Array = errorReply(
  "DENIED myriad's KV server is running in protected mode because no password is set for the default user " +
    "(--requirepass). In this mode connections are only accepted from the loopback interface. " +
    "To serve clients on other machines, either 1) restart it with --requirepass <password> " +
    "(or MYRIAD_REQUIREPASS=<password>) and have clients send AUTH <password>, or 2) if every network that " +
    "can reach this port is trusted, restart it with --protected-mode no.",
);

/** The one user name there is (redis's default user). */
const DEFAULT_USER = new TextEncoder().encode("default");

function sha256(data: Uint8Array | string): Uint8Array {
  return new Bun.CryptoHasher("sha256").update(data).digest() as Uint8Array;
}

/**
 * The password of the default user. matches() compares SHA-256 digests with
 * crypto.timingSafeEqual: its time depends on neither the password nor where a guess differs
 * (only hashing the guess depends on the guess's length, which tells nothing about the password).
 */
export class Password {
  private readonly digest: Uint8Array;

  /** password: the configured one, compared as its UTF-8 bytes. */
  constructor(password: string) {
    this.digest = sha256(password);
  }

  /** True when `pass` is the password and `user` (when given) is "default". */
  matches(user: Uint8Array | null, pass: Uint8Array): boolean {
    const passOk = timingSafeEqual(sha256(pass), this.digest);
    return passOk && (user === null || isDefaultUser(user));
  }
}

/** True when user is "default" (byte for byte, as redis compares user names). */
export function isDefaultUser(user: Uint8Array): boolean {
  if (user.length !== DEFAULT_USER.length) return false;
  for (let i = 0; i < user.length; i++) if (user[i] !== DEFAULT_USER[i]) return false;
  return true;
}

/**
 * True when a connection's remote address is on this machine's loopback: 127.0.0.0/8, ::1,
 * 127.x.x.x mapped into IPv6 (a dual-stack listener's view of an IPv4 peer), or "" (a unix
 * socket, which redis also counts as local).
 */
export function isLoopbackAddress(ip: string): boolean {
  if (ip === "" || ip === "::1") return true;
  if (ip.startsWith("127.")) return true;
  const lower = ip.toLowerCase();
  return lower.startsWith("::ffff:127.") || lower === "0:0:0:0:0:0:0:1";
}
