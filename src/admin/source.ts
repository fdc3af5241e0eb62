import type { BusStats } from "../bus/index.ts";
import { MyriadTypeError } from "../errors.ts";
import type { StatsPool } from "../pool/index.ts";
import type { AdminSnapshot, AdminStatsSource, ServerStats } from "./types.ts";

/** What serverSource needs of a src/reactor Server. */
export interface StatsServer {
  stats(): ServerStats;
  readonly accepting: boolean;
  stop(opts?: { graceful?: boolean; timeoutMs?: number }): Promise<unknown>;
}

/** Options of serverSource. */
export interface ServerSourceOptions {
  /** The `worker` label of this process's stats. Default "0". */
  worker?: string;
  /** Pools to show, read at every snapshot (add to a Map later and they appear). */
  pools?: Map<string, StatsPool> | Record<string, StatsPool>;
  /** Passed to server.stop({ graceful: true, timeoutMs }) by POST /admin/stop. */
  stopTimeoutMs?: number;
  /** Called after the server stopped through POST /admin/stop (to exit the process, say). */
  onStopped?: () => void | Promise<void>;
  /** True while the process drains before a stop (serve --drain-delay-ms): /readyz answers 503 then. */
  draining?: () => boolean;
  /** The node bus, shown in /stats and /metrics and said in /readyz. */
  bus?: { stats(): BusStats };
}

/**
 * Returns an AdminStatsSource over one server in this process: one worker (this pid), the
 * given pools (labelled with the same worker), readiness from `server.accepting`, and a
 * graceful `server.stop()`. Throws MyriadTypeError ERR_ADMIN_OPTION for a server without
 * stats() and stop(), so a wrong argument fails here and not at the first /stats request.
 */
export function serverSource(server: StatsServer, opts: ServerSourceOptions = {}): AdminStatsSource {
  if (server === null || typeof server !== "object" || typeof server.stats !== "function" || typeof server.stop !== "function") {
    throw new MyriadTypeError("ERR_ADMIN_OPTION", "serverSource(server): server must be a myriad Server (with stats() and stop())");
  }
  const worker = opts?.worker ?? "0";
  const pools = opts?.pools;
  const bus = opts?.bus;
  return {
    snapshot(): AdminSnapshot {
      const entries: Array<[string, StatsPool]> = pools === undefined ? [] : pools instanceof Map ? [...pools] : Object.entries(pools);
      const snap: AdminSnapshot = {
        workers: [{ worker, pid: process.pid, stats: server.stats() }],
        pools: entries.map(([name, pool]) => ({ worker, name, stats: pool.stats() })),
      };
      if (bus !== undefined) snap.bus = bus.stats();
      return snap;
    },
    isAccepting: () => server.accepting && !(opts?.draining?.() ?? false),
    ...(bus === undefined ? {} : { busUp: () => bus.stats().up }),
    async stop() {
      await server.stop({ graceful: true, timeoutMs: opts.stopTimeoutMs });
      await opts.onStopped?.();
    },
  };
}
