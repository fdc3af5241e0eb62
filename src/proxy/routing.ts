/**
 * Which server a request goes to: the one server holding every key of a command (by the
 * command's key rule: fixed positions, numkeys, STREAMS), the error text when the keys are on
 * several servers or none is live, and how long a blocking command may wait.
 */
import { BlockTimeout, type CommandSpec, Kind } from "./commands.ts";
import type { ProxyPoolConfig } from "./config.ts";
import type { Placement } from "./placement.ts";
import { showBytes } from "./replies.ts";
import type { Request } from "./request.ts";
import type { Upstream } from "./upstream.ts";

/** Routes a pool's requests by their keys (see the file comment); one per pool, reused for every request. */
export class KeyRouter {
  /** Why the last serverOfKeys failed with -2 or -3. */
  private crossError = "";
  /** serverOfKeys' scan: the server of the keys so far (-4 before the first) and the first key's index. */
  private scanServer = -4;
  private scanFirstKey = -1;

  constructor(
    private readonly cfg: ProxyPoolConfig,
    private readonly placement: Placement,
    private readonly upstreams: readonly Upstream[],
  ) {}

  /** The server of key buf[start, end), or -1 when none is live. */
  serverOf(buf: Uint8Array, start: number, end: number): number {
    return this.placement.serverOf(buf, start, end);
  }

  /**
   * The one server holding every key of req (by cmd's key rule): its index, -1 when no
   * server is live, -2 when the keys are on different servers, -3 for a bad key count
   * (routeError says what).
   */
  serverOfKeys(req: Request, cmd: CommandSpec): number {
    const argc = req.argc;
    if (cmd.kind === Kind.Keys && cmd.first === cmd.last) {
      // One key (GET, SET, ...): the hot path.
      const i = cmd.first;
      return i < argc ? this.placement.serverOf(req.buf, req.argStart[i]!, req.argEnd[i]!) : this.placement.serverOf(req.buf, 0, 0);
    }
    let first: number;
    let last: number;
    let step = 1;
    let fixed = -1;
    if (cmd.kind === Kind.NumKeys) {
      const n = intArg(req, cmd.numkeysAt);
      if (!Number.isInteger(n) || n < 0) {
        this.crossError = "numkeys must be an integer >= 0";
        return -3;
      }
      if (n > argc - cmd.numkeysAt - 1) {
        this.crossError = "Number of keys can't be greater than number of args";
        return -3;
      }
      fixed = cmd.first > 0 ? cmd.first : -1;
      first = cmd.numkeysAt + 1;
      last = cmd.numkeysAt + n;
    } else if (cmd.kind === Kind.Streams) {
      let streams = -1;
      for (let i = 1; i < argc; i++) {
        if (req.argIs(i, "STREAMS")) {
          streams = i;
          break;
        }
      }
      const rest = streams < 0 ? 0 : argc - streams - 1;
      if (streams < 0 || rest === 0 || rest % 2 !== 0) {
        // Malformed: any server answers with redis's own error.
        return this.placement.serverOf(req.buf, 0, 0);
      }
      first = streams + 1;
      last = streams + rest / 2;
    } else {
      first = cmd.first;
      last = cmd.last < 0 ? argc + cmd.last : cmd.last;
      step = cmd.step;
    }
    this.scanServer = -4;
    if (fixed >= 0) {
      const r = this.scanKey(req, fixed);
      if (r < 0) return r;
    }
    for (let i = first; i <= last && i < argc; i += step) {
      const r = this.scanKey(req, i);
      if (r < 0) return r;
    }
    // No key at all (EVAL with numkeys 0, OBJECT HELP): as nutcracker, the empty key.
    return this.scanServer === -4 ? this.placement.serverOf(req.buf, 0, 0) : this.scanServer;
  }

  private scanKey(req: Request, i: number): number {
    const s = this.placement.serverOf(req.buf, req.argStart[i]!, req.argEnd[i]!);
    if (s < 0) return -1;
    if (this.scanServer === -4) {
      this.scanServer = s;
      this.scanFirstKey = i;
    } else if (s !== this.scanServer) {
      this.crossError = `keys ${showBytes(req.arg(this.scanFirstKey))} and ${showBytes(req.arg(i))} are on different servers (${this.upstreams[this.scanServer]!.cfg.address} and ${this.upstreams[s]!.cfg.address})`;
      return -2;
    }
    return s;
  }

  /** The error text for serverOfKeys' negative result s (-1: none live, -2: keys across servers, -3: bad key count). */
  routeError(s: number, cmd: CommandSpec): string {
    if (s === -1) {
      return `ERR proxy: no server of pool ${this.cfg.name} is live (all ejected after failures; they are retried every ${this.cfg.serverRetryTimeoutMs} ms)`;
    }
    if (s === -2) return `ERR proxy: ${cmd.name} ${this.crossError}: the keys of one command must be on one server; give them a common hash tag ${this.cfg.hashTag !== "" ? `(${this.cfg.hashTag[0]}...${this.cfg.hashTag[1]})` : "(set hash_tag in the pool)"}`;
    return `ERR proxy: ${cmd.name}: ${this.crossError}`;
  }

  /** A blocking command's own timeout plus the pool's, in ms (Infinity for "forever"); -1 when it does not block. */
  blockTimeoutMs(req: Request, cmd: CommandSpec): number {
    let seconds: number;
    switch (cmd.block) {
      case BlockTimeout.None:
        return -1;
      case BlockTimeout.LastArgSeconds:
        seconds = Number(req.argText(req.argc - 1));
        break;
      case BlockTimeout.FirstArgSeconds:
        seconds = Number(req.argText(1));
        break;
      case BlockTimeout.BlockOptionMs: {
        let ms = -1;
        for (let i = 1; i < req.argc - 1; i++) {
          if (req.argIs(i, "STREAMS")) break;
          if (req.argIs(i, "BLOCK")) {
            ms = Number(req.argText(i + 1));
            break;
          }
        }
        if (ms < 0) return -1;
        if (!Number.isFinite(ms)) return this.cfg.timeoutMs; // redis answers the bad value
        return ms === 0 ? Infinity : ms + this.cfg.timeoutMs;
      }
    }
    if (!Number.isFinite(seconds) || seconds < 0) return this.cfg.timeoutMs; // redis answers the bad value
    return seconds === 0 ? Infinity : seconds * 1000 + this.cfg.timeoutMs;
  }
}

/** A split command's rule as a plain key range (inside a transaction nothing is split). */
export function asKeys(cmd: CommandSpec): CommandSpec {
  return { ...cmd, kind: Kind.Keys };
}

/** Whether cmd is a multi-key command the proxy splits by server (MGET, DEL, MSET...). */
export function isSplit(cmd: CommandSpec): boolean {
  return cmd.kind === Kind.SplitMget || cmd.kind === Kind.SplitSum || cmd.kind === Kind.SplitMset;
}

function intArg(req: Request, i: number): number {
  const t = req.argText(i);
  return /^-?[0-9]+$/.test(t) ? Number(t) : NaN;
}
