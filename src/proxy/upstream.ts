/**
 * One upstream server of a pool: the `server_connections` shared pipelined connections every
 * client's requests go down (src/pool's pooled client, which also refuses self-connects),
 * a pool of dedicated connections for blocking commands and transactions, its counters, and
 * the failure count that ejects it (auto_eject_hosts).
 */
import { type Codec, respReplyCodec } from "../codec/index.ts";
import { FixedHistogram, type HistogramBuckets } from "../histogram.ts";
import { ClientRequestError, createTcpClient, Pool, type PoolStats, type TcpClient } from "../pool/index.ts";
import type { ProxyPoolConfig, ProxyServerConfig } from "./config.ts";
import { DedicatedConnection } from "./dedicated.ts";
import { errorReply } from "./replies.ts";
import { encodeArgs } from "./request.ts";

/**
 * Replies pass through as the server's bytes: measured by the RESP reply codec and copied out
 * (the copy waits in a client's reply order). Requests are handed over as bytes the proxy
 * owns (copied out of the read buffer when queued), so encode keeps them as they are.
 */
const passthroughCodec: Codec<Uint8Array, Uint8Array> = {
  name: "resp-passthrough",
  measure: respReplyCodec.measure,
  decode: (buf, start, length) => buf.slice(start, start + length),
  encode: (bytes) => bytes,
};

/**
 * Where a request's reply goes: sink.reply(tag, bytes) with the reply, or the error reply the
 * proxy made when none came. The tag says which request (a client's sequence number, a split
 * command's part): a sink and a number rather than a closure per request.
 */
export interface ReplySink {
  reply(tag: number, bytes: Uint8Array): void;
}

/** Most tickets kept for reuse per server (one per request in flight at the peak). */
const MAX_FREE_TICKETS = 4096;

/**
 * A request in flight on the shared connections: its sink and tag, and the reply and failure
 * callbacks the pooled client calls (sendWith: no Promise per request), made once per ticket;
 * tickets are reused, so a request allocates no closures. The callbacks run inside the shared
 * connection's read, sweep or close handling: nothing they reach sends on it at once (sends
 * wait for the turn's end, see send()).
 */
class Ticket {
  sink: ReplySink | null = null;
  tag = 0;
  /** When its batch was sent (performance.now()), for the latency histogram. */
  t0 = 0;

  constructor(private readonly up: Upstream) {}

  readonly ok = (reply: Uint8Array): void => {
    const sink = this.sink!;
    const tag = this.tag;
    this.up.replied(performance.now() - this.t0);
    this.up.release(this);
    sink.reply(tag, reply);
  };

  readonly fail = (err: unknown): void => {
    const sink = this.sink!;
    const tag = this.tag;
    this.up.release(this);
    sink.reply(tag, this.up.failed(err));
  };
}

/** Request latency bounds in ms (upstream round trips are sub-millisecond on a LAN). */
const UPSTREAM_LATENCY_BOUNDS_MS: readonly number[] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Counters of one upstream server (a snapshot). */
export interface UpstreamStats {
  name: string;
  address: string;
  /** False while ejected from the continuum. */
  live: boolean;
  /** Requests sent to it (parts of split commands count one each). */
  requests: number;
  /** Replies received (error replies of the server included). */
  replies: number;
  /** Requests that got no reply within `timeout`. */
  timeouts: number;
  /** Requests failed by the connection (closed, refused, no connection to be had). */
  errors: number;
  /** Times it was taken off the continuum. */
  ejections: number;
  /** Open shared (pipelined) connections. */
  connections: number;
  /** Open dedicated connections (blocking commands, transactions, subscriptions). */
  dedicatedConnections: number;
  /** Requests waiting for a reply now. */
  inFlight: number;
  /** Round trip of requests on the shared connections. */
  latencyMs: HistogramBuckets;
  /** Estimated from latencyMs. */
  p50Ms: number;
  p99Ms: number;
  /** The shared connections' pool. */
  pool: PoolStats;
}

/** What an upstream tells its pool. */
export interface UpstreamOwner {
  /** The server failed server_failure_limit times in a row: take it off the continuum. */
  eject(index: number): void;
}

/** One upstream server of a pool (see the file comment). */
export class Upstream {
  readonly shared: TcpClient<Uint8Array, Uint8Array>;
  readonly dedicated: Pool<DedicatedConnection>;
  /** Sub connections (pub/sub) are not pooled; counted here. */
  subscriberConnections = 0;
  private readonly latency = new FixedHistogram(UPSTREAM_LATENCY_BOUNDS_MS);
  requests = 0;
  replies = 0;
  timeouts = 0;
  errors = 0;
  ejections = 0;
  /** Consecutive failures (reset by any reply). */
  private failures = 0;
  /** The last failure counted: one dropped connection fails many requests with one error. */
  private lastFailure: Error | null = null;
  live = true;
  /**
   * Requests of this turn of the event loop, sent together once the turn's I/O callbacks ran
   * (setImmediate): the pooled client then writes them all in one socket write, however many
   * clients they came from, where sending each at once would cost a write per client read.
   */
  private queued: Uint8Array[] = [];
  private queuedSinks: ReplySink[] = [];
  private queuedTags: number[] = [];
  private spare: Uint8Array[] = [];
  private spareSinks: ReplySink[] = [];
  private spareTags: number[] = [];
  private readonly freeTickets: Ticket[] = [];
  /** The callbacks of the batch being sent (sendQueued), beside its bytes. */
  private readonly batchOk: ((reply: Uint8Array) => void)[] = [];
  private readonly batchFail: ((err: Error) => void)[] = [];
  private scheduled = false;
  private readonly sendQueuedFn = () => this.sendQueued();

  constructor(
    readonly index: number,
    readonly cfg: ProxyServerConfig,
    readonly pool: ProxyPoolConfig,
    private readonly owner: UpstreamOwner,
    maxDedicated: number,
  ) {
    const handshake: Uint8Array[] = [];
    if (pool.redisAuth !== "") handshake.push(encodeArgs([Buffer.from("AUTH"), Buffer.from(pool.redisAuth)]));
    // A unix-socket server is the hub of `--share-upstream`: it selects redis_db on its own connections and serves database 0.
    const hub = cfg.host.startsWith("/");
    if (pool.redisDb !== 0 && !hub) handshake.push(encodeArgs([Buffer.from("SELECT"), Buffer.from(String(pool.redisDb))]));
    // A server whose host is a path is a unix socket (the hub of `--share-upstream`; the file format has none).
    const where = hub ? { unix: cfg.host } : { host: cfg.host, port: cfg.port };
    this.shared = createTcpClient<Uint8Array, Uint8Array>({
      ...where,
      codec: passthroughCodec,
      requestTimeoutMs: pool.timeoutMs,
      connectTimeoutMs: Math.min(pool.timeoutMs, 5_000),
      // Every client's requests share these connections: a deep pipeline, as nutcracker's.
      maxInFlightPerConnection: 1 << 16,
      maxWriteBufferBytes: 16 << 20,
      pingMessage: encodeArgs([Buffer.from("PING")]),
      pool: {
        name: `${pool.name}/${cfg.address}`,
        max: pool.serverConnections,
        min: pool.preconnect ? pool.serverConnections : 0,
        idleTimeoutMs: 60_000,
      },
      ...(handshake.length === 0
        ? {}
        : {
            onConnect: async (conn) => {
              for (const h of handshake) {
                const reply = await conn.request(h);
                if (reply[0] === 45) throw new ClientRequestError("ERR_CONNECT", `${cfg.address} refused the handshake: ${Buffer.from(reply).toString().trim()}`);
              }
            },
          }),
    });
    const dedicatedOptions = {
      host: cfg.host,
      port: cfg.port,
      ...("unix" in where ? { unix: where.unix } : {}),
      address: cfg.address,
      password: pool.redisAuth,
      db: hub ? 0 : pool.redisDb,
      connectTimeoutMs: Math.min(pool.timeoutMs, 5_000),
      maxFrameBytes: 64 << 20,
    };
    this.dedicated = new Pool<DedicatedConnection>({
      name: `${pool.name}/${cfg.address} dedicated`,
      max: maxDedicated,
      acquireTimeoutMs: pool.timeoutMs,
      idleTimeoutMs: 30_000,
      create: () => DedicatedConnection.open(dedicatedOptions),
      destroy: (c) => c.close(),
      isBroken: (c) => c.closed,
    });
  }

  /** Options for a dedicated connection outside the pool (subscriptions). */
  openDedicated(): Promise<DedicatedConnection> {
    return DedicatedConnection.open({
      host: this.cfg.host,
      port: this.cfg.port,
      ...(this.cfg.host.startsWith("/") ? { unix: this.cfg.host } : {}),
      address: this.cfg.address,
      password: this.pool.redisAuth,
      db: this.cfg.host.startsWith("/") ? 0 : this.pool.redisDb,
      connectTimeoutMs: Math.min(this.pool.timeoutMs, 5_000),
      maxFrameBytes: 64 << 20,
    });
  }

  /**
   * Sends a request (bytes the caller gives up) on the shared connections at the end of this
   * turn of the event loop; sink.reply(tag, ...) gets the reply bytes, or an error reply when
   * none came (never nothing): a client always gets an answer in its order.
   */
  send(bytes: Uint8Array, sink: ReplySink, tag: number): void {
    this.requests++;
    this.queued.push(bytes);
    this.queuedSinks.push(sink);
    this.queuedTags.push(tag);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.sendQueuedFn);
    }
  }

  private sendQueued(): void {
    this.scheduled = false;
    const bytes = this.queued;
    const sinks = this.queuedSinks;
    const tags = this.queuedTags;
    // Double buffers: sends made while these go out (none, today) land in the other set.
    this.queued = this.spare;
    this.queuedSinks = this.spareSinks;
    this.queuedTags = this.spareTags;
    // One clock reading for the batch: the latency's start and the requests' deadline.
    const t0 = performance.now();
    const free = this.freeTickets;
    const oks = this.batchOk;
    const fails = this.batchFail;
    const n = bytes.length;
    for (let i = 0; i < n; i++) {
      const t = free.pop() ?? new Ticket(this);
      t.sink = sinks[i]!;
      t.tag = tags[i]!;
      t.t0 = t0;
      oks[i] = t.ok;
      fails[i] = t.fail;
    }
    // The whole batch at once: a connection is borrowed from the pool once for all it takes.
    this.shared.sendManyWith(bytes, oks, fails, n, t0);
    oks.length = 0;
    fails.length = 0;
    bytes.length = 0;
    sinks.length = 0;
    tags.length = 0;
    this.spare = bytes;
    this.spareSinks = sinks;
    this.spareTags = tags;
  }

  /** A ticket's request settled: the ticket is kept for another. */
  release(t: Ticket): void {
    t.sink = null;
    if (this.freeTickets.length < MAX_FREE_TICKETS) this.freeTickets.push(t);
  }

  /** A reply came back (after ms): the server is alive. */
  replied(ms: number): void {
    this.replies++;
    this.failures = 0;
    this.lastFailure = null;
    if (ms >= 0) this.latency.record(ms);
  }

  /** A request failed with err: counts it, maybe ejects the server; returns the error reply for the client. */
  failed(err: unknown): Uint8Array {
    const code = (err as { code?: string } | null)?.code ?? "";
    if (code === "ERR_REQUEST_TIMEOUT") this.timeouts++;
    else this.errors++;
    if (err instanceof Error && err !== this.lastFailure) {
      this.lastFailure = err;
      this.failures++;
      if (this.pool.autoEjectHosts && this.live && this.failures >= this.pool.serverFailureLimit) {
        this.failures = 0;
        this.owner.eject(this.index);
      }
    }
    return errorReply(this.describe(err));
  }

  /** The client's error text for a failed request. */
  describe(err: unknown): string {
    const code = (err as { code?: string } | null)?.code ?? "";
    const where = `server ${this.cfg.address}${this.cfg.givenName !== "" ? ` (${this.cfg.givenName})` : ""} of pool ${this.pool.name}`;
    if (code === "ERR_REQUEST_TIMEOUT") return `ERR proxy: no reply from ${where} within timeout ${this.pool.timeoutMs} ms; the command may still be applied`;
    if (code === "ERR_CONNECTION_CLOSED") return `ERR proxy: the connection to ${where} closed before the reply; the command may or may not have been applied`;
    const why = err instanceof Error ? err.message : String(err);
    return `ERR proxy: ${where} is unavailable: ${why}`;
  }

  /** A snapshot of the counters. */
  stats(): UpstreamStats {
    const dedicated = this.dedicated.stats();
    return {
      name: this.cfg.name,
      address: this.cfg.address,
      live: this.live,
      requests: this.requests,
      replies: this.replies,
      timeouts: this.timeouts,
      errors: this.errors,
      ejections: this.ejections,
      connections: this.shared.connections,
      dedicatedConnections: dedicated.size + this.subscriberConnections,
      inFlight: this.shared.inFlight + dedicated.borrowed,
      latencyMs: this.latency.buckets(),
      p50Ms: this.latency.quantile(0.5),
      p99Ms: this.latency.quantile(0.99),
      pool: this.shared.stats().pool,
    };
  }

  /** Closes every connection (in-flight requests get their replies first, up to timeoutMs). */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all([this.shared.close({ timeoutMs }), this.dedicated.drain({ timeoutMs }).catch(() => {})]);
  }
}
