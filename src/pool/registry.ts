/**
 * The pools an application shows in the admin server: it registers them by name (a module
 * app through its context's registerPool), and every stats report reads each one's stats.
 * Here, beside PoolStats, so that apps, the cluster and the admin server share one
 * definition without importing each other.
 */
import { MyriadTypeError } from "../errors.ts";
import type { PoolStats } from "./pool.ts";

/** Anything with pool stats: a src/pool Pool, or a client's `.pool`. */
export interface StatsPool {
  stats(): PoolStats;
}

/** One registered pool's stats at one instant. */
export interface PoolSnapshot {
  name: string;
  stats: PoolStats;
}

/**
 * The pools an app registered, in registration order; `snapshot()` reads each one's stats.
 * One per process: the context's registerPool writes here.
 */
export class PoolRegistry {
  /** Live map: serverSource({ pools }) reads it at every snapshot, so later registrations show. */
  readonly pools = new Map<string, StatsPool>();

  /** Adds (or replaces) `pool` under `name`. Throws MyriadTypeError (ERR_APP_ARGUMENT) for a bad name or pool. */
  register(name: string, pool: StatsPool): void {
    if (typeof name !== "string" || name === "") {
      throw new MyriadTypeError("ERR_APP_ARGUMENT", "registerPool(name, pool): name must be a non-empty string");
    }
    if (pool === null || typeof pool !== "object" || typeof (pool as StatsPool).stats !== "function") {
      throw new MyriadTypeError("ERR_APP_ARGUMENT", `registerPool(${JSON.stringify(name)}, pool): pool must have a stats() method (a Pool, or a client's .pool)`);
    }
    this.pools.set(name, pool);
  }

  /** Returns every registered pool's current stats (an empty array when there are none). */
  snapshot(): PoolSnapshot[] {
    const out: PoolSnapshot[] = [];
    for (const [name, pool] of this.pools) out.push({ name, stats: pool.stats() });
    return out;
  }
}
