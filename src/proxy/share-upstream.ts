/**
 * `bun run proxy --workers N --share-upstream`: N front processes share one hub's upstream
 * connections. A front is the proxy with one server, the hub's unix socket: it accepts
 * clients (reusePort), answers what the proxy answers itself (PING, ECHO, QUIT, SELECT 0,
 * AUTH, INFO, refused commands) and sends everything else down one pipelined connection to
 * the hub (and a dedicated one per client while it blocks, subscribes or runs a transaction).
 * The hub is the proxy with the user's configuration listening on that socket: placement,
 * split and merge, timeouts, ejection, and exactly `server_connections` shared connections
 * per redis server, whatever N is.
 *
 *   const dir = mkdtempSync(join(tmpdir(), "myriad-hub-"));
 *   const hub = await createProxy(hubConfigOf(cfg, dir));
 *   const front = await createProxy(frontConfigOf(cfg, dir), { reusePort: true }); // in each worker
 */
import { join } from "node:path";
import type { ProxyConfig, ProxyPoolConfig } from "./config.ts";

/**
 * How much longer a front waits than the hub: the hub may wait `timeout` for a dedicated
 * connection and `timeout` again for the reply, and answers with its own error after that;
 * the front's bound only catches a hub that stopped answering.
 */
export function frontTimeoutMs(hubTimeoutMs: number): number {
  return 2 * hubTimeoutMs + 1000;
}

/** The hub's socket for pool i of a configuration, in the private directory `dir`. */
export function hubSocketPath(dir: string, i: number): string {
  return join(dir, `pool-${i}.sock`);
}

/**
 * The hub's configuration: `cfg` with every pool listening on its socket in `dir` (mode
 * 0600: only this user's fronts reach it) and no client limit (the fronts hold that).
 */
export function hubConfigOf(cfg: ProxyConfig, dir: string): ProxyConfig {
  return {
    pools: cfg.pools.map((p, i): ProxyPoolConfig => ({ ...p, listen: { path: hubSocketPath(dir, i), mode: 0o600 }, clientConnections: 0 })),
  };
}

/**
 * A front's configuration: each pool of `cfg` on its own listen address with one server, the
 * hub's socket for that pool, over one connection (made at start), never ejected, with a
 * timeout longer than the hub's (frontTimeoutMs). It keeps redis_auth (clients AUTH with the
 * proxy password; the front AUTHs to the hub with it) and redis_db (for SELECT's error text;
 * the hub, not the front, selects it upstream).
 */
export function frontConfigOf(cfg: ProxyConfig, dir: string): ProxyConfig {
  return {
    pools: cfg.pools.map((p, i): ProxyPoolConfig => {
      const path = hubSocketPath(dir, i);
      return {
        ...p,
        distribution: "modula",
        hashTag: "",
        timeoutMs: frontTimeoutMs(p.timeoutMs),
        preconnect: true,
        autoEjectHosts: false,
        serverConnections: 1,
        servers: [{ host: path, port: 0, weight: 1, name: "hub", givenName: "", address: `unix:${path}`, line: 0 }],
      };
    }),
  };
}
