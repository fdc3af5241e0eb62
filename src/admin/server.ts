import { MyriadError, MyriadTypeError } from "../errors.ts";
import { createAdminApp } from "./app.ts";
import { isLoopbackHost } from "./auth.ts";
import type { AdminStatsSource } from "./types.ts";

/** Default admin port (`--admin-port`). */
export const DEFAULT_ADMIN_PORT = 9180;
/** Default admin bind address (`--admin-host`): loopback only. */
export const DEFAULT_ADMIN_HOST = "127.0.0.1";

/** Options of startAdminServer. */
export interface AdminServerOptions {
  /** TCP port; 0 lets the OS choose (read it back from `.port`). Default 9180. */
  port?: number;
  /** Address to bind. Default 127.0.0.1. Anything but loopback needs a token. */
  host?: string;
  /** Bearer token; when omitted, MYRIAD_ADMIN_TOKEN from the environment is used. An empty
   *  string means no token. */
  token?: string;
  source: AdminStatsSource;
}

/** A running admin server. */
export interface AdminServer {
  /** The bound port (the OS's choice when started with port 0). */
  readonly port: number;
  readonly host: string;
  /** `http://host:port/`, the dashboard's address. */
  readonly url: string;
  /** Closes the listener and every open admin connection; resolves when closed. */
  stop(): Promise<void>;
}

/**
 * Serves createAdminApp with Bun.serve on `host:port` and resolves once it listens.
 * Rejects with MyriadError ERR_ADMIN_TOKEN_REQUIRED for a non-loopback host without a token,
 * ERR_ADMIN_BAD_PORT for a port outside 0..65535, ERR_ADMIN_LISTEN when the address
 * cannot be bound (for instance, the port is taken), and ERR_ADMIN_OPTION for options of the
 * wrong shape (no source with snapshot/isAccepting/stop, a host or token that is not a string).
 */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  if (typeof opts !== "object" || opts === null) {
    throw new MyriadTypeError("ERR_ADMIN_OPTION", `startAdminServer(options): options must be an object like { source, port?, host?, token? }, got ${String(opts)}`);
  }
  if (opts.host !== undefined && typeof opts.host !== "string") {
    throw new MyriadTypeError("ERR_ADMIN_OPTION", `admin option host must be a string such as "127.0.0.1", got ${typeof opts.host}`);
  }
  const port = opts.port ?? DEFAULT_ADMIN_PORT;
  const host = opts.host ?? DEFAULT_ADMIN_HOST;
  const token = opts.token ?? process.env.MYRIAD_ADMIN_TOKEN ?? "";
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MyriadError("ERR_ADMIN_BAD_PORT", `--admin-port accepts an integer from 0 to 65535, got ${port}`);
  }
  if (token === "" && !isLoopbackHost(host)) {
    throw new MyriadError(
      "ERR_ADMIN_TOKEN_REQUIRED",
      `The admin server would listen on ${host}, reachable from other machines, without a token: pass --admin-token <secret> or set MYRIAD_ADMIN_TOKEN, or keep --admin-host on loopback (127.0.0.1).`,
    );
  }
  const app = createAdminApp({ source: opts.source, token: token === "" ? undefined : token });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      port,
      hostname: host,
      development: false,
      // Explicit: with development: false, Bun 1.4 otherwise sets SO_REUSEPORT, and a second
      // admin server on a taken port would silently share it instead of failing.
      reusePort: false,
      fetch(req) {
        return app.fetch(req);
      },
    });
  } catch (cause) {
    throw new MyriadError(
      "ERR_ADMIN_LISTEN",
      `The admin server could not listen on ${host}:${port} (${cause instanceof Error ? cause.message : String(cause)}): choose another --admin-port or --admin-host.`,
      { cause },
    );
  }
  const boundPort = server.port as number;
  const urlHost = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return {
    port: boundPort,
    host,
    url: `http://${urlHost}:${boundPort}/`,
    async stop() {
      await server.stop(true);
    },
  };
}
