/**
 * Where a key's hash lands: nutcracker 0.5.0's three distributions, rebuilt whenever the set
 * of live servers changes (auto_eject_hosts).
 *
 * - ketama: each live server gets floorf(weight / total live weight * 160 / 4 * live servers)
 *   * 4 points (float32 arithmetic, as nutcracker's C does), 160 for equal weights; point
 *   i/4's key is "<name>-<i>" (name: the server's name when given, else "host:port", or
 *   "host" for port 11211) and its MD5 digest gives four points, one per little-endian word.
 *   A hash goes to the first point at or above it, wrapping to the first point.
 * - modula: every live server appears `weight` times, in the pool's server order; a hash goes
 *   to entry hash % entries.
 * - random: every live server once; a request goes to any of them.
 *
 * The pool's server order is nutcracker's: servers sorted by name (shorter names first, then
 * bytewise), which decides modula's entries (and ketama's order among equal points).
 */
import { md5Into } from "./md5.ts";

/** The distribution names nutcracker accepts in `distribution:`. */
export const DISTRIBUTION_NAMES = ["ketama", "modula", "random"] as const;
/** One of DISTRIBUTION_NAMES. */
export type DistributionName = (typeof DISTRIBUTION_NAMES)[number];

/** What the continuum needs of a server. */
export interface ContinuumServer {
  /** The name hashed into ketama points. */
  readonly name: string;
  readonly weight: number;
}

const KETAMA_POINTS_PER_SERVER = 160;
const POINTS_PER_HASH = 4;

/**
 * Compares two server names as nutcracker's string_compare does: the shorter one first, and
 * names of one length bytewise (UTF-8).
 */
export function compareServerNames(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  if (x.length !== y.length) return x.length - y.length;
  return Buffer.compare(x, y);
}

/**
 * A built distribution over a pool's servers: `lookup(hash)` answers a server index (into
 * the array given to build). Build again when a server is ejected or comes back.
 */
export class Continuum {
  /** Point values, ascending (ketama), or zeros (modula/random). */
  private values: Uint32Array = new Uint32Array(0);
  /** Server index of each point. */
  private owners: Int32Array = new Int32Array(0);
  private size = 0;
  /** Live servers in this build. */
  liveServers = 0;

  constructor(readonly distribution: DistributionName) {}

  /**
   * Rebuilds over the servers whose `live[i]` is true (all when omitted). `servers` must be
   * in the pool's order (sorted by name, see compareServerNames).
   */
  build(servers: readonly ContinuumServer[], live?: readonly boolean[]): void {
    const isLive = (i: number) => live === undefined || live[i] === true;
    let nlive = 0;
    let totalWeight = 0;
    for (let i = 0; i < servers.length; i++) {
      if (!isLive(i)) continue;
      nlive++;
      totalWeight += servers[i]!.weight;
    }
    this.liveServers = nlive;
    if (this.distribution === "ketama") this.buildKetama(servers, isLive, nlive, totalWeight);
    else if (this.distribution === "modula") {
      const owners: number[] = [];
      for (let i = 0; i < servers.length; i++) if (isLive(i)) for (let w = 0; w < servers[i]!.weight; w++) owners.push(i);
      this.owners = Int32Array.from(owners);
      this.values = new Uint32Array(owners.length);
      this.size = owners.length;
    } else {
      const owners: number[] = [];
      for (let i = 0; i < servers.length; i++) if (isLive(i)) owners.push(i);
      this.owners = Int32Array.from(owners);
      this.values = new Uint32Array(owners.length);
      this.size = owners.length;
    }
  }

  private buildKetama(servers: readonly ContinuumServer[], isLive: (i: number) => boolean, nlive: number, totalWeight: number): void {
    const f = Math.fround;
    const points: Array<{ value: number; owner: number }> = [];
    const digest = new Uint8Array(16);
    for (let i = 0; i < servers.length; i++) {
      if (!isLive(i)) continue;
      const s = servers[i]!;
      // floorf((float)(pct * 160 / 4 * (float)nlive) + 1e-10) * 4, each step in float32 as in C.
      const pct = f(f(s.weight) / f(totalWeight));
      const scaled = f(f(f(pct * KETAMA_POINTS_PER_SERVER) / 4) * f(nlive));
      const perServer = Math.floor(f(scaled + 0.0000000001)) * 4;
      for (let k = 0; k < perServer / POINTS_PER_HASH; k++) {
        const key = Buffer.from(`${s.name}-${k}`);
        md5Into(key, 0, key.length, digest);
        for (let x = 0; x < POINTS_PER_HASH; x++) {
          const b = x * 4;
          const value = ((digest[b] as number) | ((digest[b + 1] as number) << 8) | ((digest[b + 2] as number) << 16) | ((digest[b + 3] as number) << 24)) >>> 0;
          points.push({ value, owner: i });
        }
      }
    }
    // A stable sort, as glibc's qsort (a merge sort) is for these sizes: equal points keep server order.
    points.sort((a, b) => a.value - b.value);
    this.values = Uint32Array.from(points, (p) => p.value);
    this.owners = Int32Array.from(points, (p) => p.owner);
    this.size = points.length;
  }

  /** The server index for `hash` (an unsigned 32-bit value); -1 when no server is live. */
  lookup(hash: number): number {
    const n = this.size;
    if (n === 0) return -1;
    if (this.distribution === "ketama") {
      // The first point at or above hash; past the last one, the first.
      const values = this.values;
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((values[mid] as number) < hash) lo = mid + 1;
        else hi = mid;
      }
      return this.owners[lo === n ? 0 : lo] as number;
    }
    if (this.distribution === "modula") return this.owners[hash % n] as number;
    return this.owners[Math.floor(Math.random() * n)] as number;
  }
}
