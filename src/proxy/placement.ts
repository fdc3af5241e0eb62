/**
 * Which server of a pool holds a key: nutcracker 0.5.0's server_pool_idx. The hash_tag rule:
 * with a two-byte tag "ab", the part of the key between its first "a" and the next "b" after
 * it is hashed instead of the whole key, when that part is not empty. A pool of one server
 * needs no hash; an empty key hashes to 0.
 */
import { Continuum, type ContinuumServer, type DistributionName } from "./continuum.ts";
import { keyHash, type HashName, type KeyHash } from "./hash.ts";

/** What Placement needs of a pool's configuration. */
export interface PlacementConfig {
  hash: HashName;
  /** Two characters, or "". */
  hashTag: string;
  distribution: DistributionName;
  /** In the pool's order (sorted by name). */
  servers: readonly ContinuumServer[];
}

/** A pool's key → server map; rebuilt when servers are ejected or come back. */
export class Placement {
  private readonly hash: KeyHash;
  private readonly tagOpen: number;
  private readonly tagClose: number;
  private readonly continuum: Continuum;
  private readonly servers: readonly ContinuumServer[];
  private readonly live: boolean[];

  constructor(cfg: PlacementConfig) {
    this.hash = keyHash(cfg.hash);
    const tag = Buffer.from(cfg.hashTag);
    this.tagOpen = tag.length === 2 ? (tag[0] as number) : -1;
    this.tagClose = tag.length === 2 ? (tag[1] as number) : -1;
    this.servers = cfg.servers;
    this.live = cfg.servers.map(() => true);
    this.continuum = new Continuum(cfg.distribution);
    this.continuum.build(this.servers, this.live);
  }

  /** Servers on the continuum now. */
  get liveServers(): number {
    return this.continuum.liveServers;
  }

  /** True when server `i` is on the continuum. */
  isLive(i: number): boolean {
    return this.live[i] === true;
  }

  /** Takes server `i` off the continuum (live = false) or puts it back; rebuilds when that changes anything. */
  setLive(i: number, live: boolean): void {
    if (this.live[i] === live) return;
    this.live[i] = live;
    this.continuum.build(this.servers, this.live);
  }

  /** The server index for the key buf[start, end), or -1 when no server is live. */
  serverOf(buf: Uint8Array, start: number, end: number): number {
    if (this.servers.length === 1) return this.live[0] ? 0 : -1;
    if (this.tagOpen >= 0) {
      const open = indexIn(buf, this.tagOpen, start, end);
      if (open >= 0) {
        const close = indexIn(buf, this.tagClose, open + 1, end);
        if (close - open > 1) {
          start = open + 1;
          end = close;
        }
      }
    }
    return this.continuum.lookup(end === start ? 0 : this.hash(buf, start, end));
  }
}

/** The index of the first `byte` in buf[start, end), or -1. */
function indexIn(buf: Uint8Array, byte: number, start: number, end: number): number {
  for (let i = start; i < end; i++) if (buf[i] === byte) return i;
  return -1;
}
