/**
 * Listening: Bun.listen with the server's socket callbacks, and the ListenError a failed
 * bind becomes (ERR_ADDRESS_IN_USE, ERR_ACCESS_DENIED, ERR_LISTEN, each saying what to do).
 */
import type { SocketHandler, TCPSocketListenOptions } from "bun";
import { ListenError } from "./errors.ts";
import type { ResolvedOptions } from "./options.ts";
import type { Listener } from "./state.ts";

/** "host:port" (IPv6 in brackets) or the unix path o listens on. */
function listenAddress(o: ResolvedOptions): string {
  return o.unix !== "" ? o.unix : `${o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname}:${o.port}`;
}

/**
 * Binds o's address with `handlers` (half-open sockets, socket.data -1 until open sets the
 * handle); returns the listener or throws ListenError.
 */
export function bindListener(o: ResolvedOptions, handlers: SocketHandler<number, "uint8array">): Listener {
  const socket = handlers as unknown as SocketHandler<number>;
  try {
    if (o.unix !== "") {
      return Bun.listen<number>({ unix: o.unix, tls: o.tls, data: -1, allowHalfOpen: true, socket });
    }
    return Bun.listen<number>({
      hostname: o.hostname,
      port: o.port,
      tls: o.tls,
      data: -1,
      allowHalfOpen: true,
      socket,
      ...(o.reusePort ? { reusePort: true } : {}),
    } as unknown as TCPSocketListenOptions<number>);
  } catch (err) {
    throw listenError(err, listenAddress(o), o);
  }
}

function listenError(err: unknown, address: string, o: ResolvedOptions): ListenError {
  const code = (err as { code?: string } | null)?.code;
  if (code === "EADDRINUSE") {
    return new ListenError(
      "ERR_ADDRESS_IN_USE",
      address,
      o.unix !== ""
        ? `cannot listen on unix socket ${address}: the path is in use; remove the stale socket file or choose another path`
        : `cannot listen on ${address}: the port is in use (EADDRINUSE); stop the process that holds it, choose another port, or pass port: 0 for a free one${o.reusePort ? "" : " (several processes may share a port only when every one passes reusePort: true)"}`,
      err,
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new ListenError(
      "ERR_ACCESS_DENIED",
      address,
      o.unix !== ""
        ? `cannot listen on unix socket ${address}: permission denied; choose a path in a directory this user may write`
        : `cannot listen on ${address}: permission denied; ports below 1024 need privileges, choose a port >= 1024`,
      err,
    );
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new ListenError(
    "ERR_LISTEN",
    address,
    `cannot listen on ${address}: ${detail}${code ? ` (${code})` : ""}; check the ${o.unix !== "" ? "unix path (its directory must exist)" : "hostname resolves to a local address and the port"}`,
    err,
  );
}
