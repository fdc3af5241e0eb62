/**
 * BusStats of several buses (a worker's servers, a cluster's workers) as one: up only while
 * every one is up; counters summed; the last error of any.
 */
import type { BusStats } from "./redis-bus.ts";

/** The buses' stats as one (up while all are up; counters summed). */
export function mergeBusStats(all: readonly BusStats[]): BusStats {
  const out: BusStats = { up: all.length > 0, channels: 0, published: 0, publishErrors: 0, lastPublishError: "", received: 0, ownDropped: 0, connects: 0, disconnects: 0 };
  for (const b of all) {
    out.up &&= b.up;
    out.channels += b.channels;
    out.published += b.published;
    out.publishErrors += b.publishErrors;
    if (b.lastPublishError !== "") out.lastPublishError = b.lastPublishError;
    out.received += b.received;
    out.ownDropped += b.ownDropped;
    out.connects += b.connects;
    out.disconnects += b.disconnects;
  }
  return out;
}
