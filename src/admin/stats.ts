import { sumServerStats } from "../reactor/index.ts";
import type { AdminSnapshot, AdminStatsBody } from "./types.ts";

/**
 * Returns the GET /stats body for a snapshot taken at `timeMs`: the workers as reported, and
 * their totals added up the reactor's way (sumServerStats, as the cluster supervisor does).
 */
export function statsBody(snap: AdminSnapshot, timeMs: number): AdminStatsBody {
  const body: AdminStatsBody = { timeMs, workers: snap.workers, totals: sumServerStats(snap.workers.map((w) => w.stats)), pools: snap.pools };
  if (snap.bus !== undefined) body.bus = snap.bus;
  if (snap.proxy !== undefined) body.proxy = snap.proxy;
  return body;
}
