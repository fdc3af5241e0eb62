/**
 * The node bus: Redis pub/sub between the nodes of a fleet, so that a broadcast or a topic
 * publish made on one node reaches the clients of every node.
 *
 * Two kinds of connection to the bus server, as Redis requires: publishes go pipelined down
 * myriad's pooled RESP client; receiving takes one dedicated connection in subscribe mode
 * (a connection that has subscribed can send nothing but (P)(UN)SUBSCRIBE and PING).
 *
 * Every message carries the id of the node that published it. The publishing node delivers
 * to its own clients at once (no round trip through Redis), so it drops its own messages
 * when Redis echoes them back: each client gets each message once.
 *
 * Channels are subscribed lazily and counted: the node sends SUBSCRIBE when the first local
 * listener of a channel appears and UNSUBSCRIBE when the last one goes, so a node receives
 * only the topics its connections want. When the subscriber connection drops, the bus reports
 * itself down, reconnects with exponential backoff and full jitter, and subscribes again to
 * every channel that still has listeners; it is up again once Redis confirmed them all.
 *
 * One file a little past 500 lines on purpose: "up" is a state of both connections at once
 * (the publisher proven by a PING, the subscriber confirmed on every channel), and the
 * reconnect, resubscribe and liveness paths each read and move that shared state; split by
 * connection, the rule for "up" would be written in two places.
 */
import type { Socket } from "bun";
import { RespError, respReplyBufferCodec, type RespValue } from "../codec/index.ts";
import { MyriadError, MyriadTypeError } from "../errors.ts";
import { createRespClient, fullJitterDelayMs, isSelfConnect, type RespClient } from "../pool/index.ts";

/** Options of createRedisBus. */
export interface RedisBusOptions {
  /** "redis://[:password@]host:port[/db]" (db is ignored: pub/sub spans every db). */
  url?: string;
  /** Bus server host (default 127.0.0.1) when no url is given. */
  host?: string;
  /** Bus server port (default 6379) when no url is given. */
  port?: number;
  /** AUTH password of the bus server. */
  password?: string;
  /** Prefix of every Redis channel the bus uses (default "myriad:"): several fleets can share one Redis. */
  channelPrefix?: string;
  /** This node's id in message envelopes; default a random 16-hex-digit id. */
  nodeId?: string;
  /** A publish that Redis has not answered in this many ms fails (default 10,000). */
  publishTimeoutMs?: number;
  /** First reconnect delay ceiling of the subscriber connection, ms (default 100). */
  reconnectInitialMs?: number;
  /** Largest reconnect delay ceiling, ms (default 5,000). */
  reconnectMaxMs?: number;
  /** Called when the bus goes up (subscriber connected, subscriptions confirmed) or down. */
  onStatus?: (up: boolean) => void;
}

/** Counters of a bus. */
export interface BusStats {
  /**
   * True while the subscriber connection is up with every subscription confirmed and the
   * publish connection is not failing (a publish failed: false until one, or a PING, succeeds).
   */
  up: boolean;
  /** Channels this node is subscribed to (those with at least one local listener). */
  channels: number;
  /** Messages published by this node. */
  published: number;
  /** Publishes that failed (bus down, timeout, error reply). */
  publishErrors: number;
  /** Why the last publish failed ("" when none has): the pooled client's error. */
  lastPublishError: string;
  /** Messages received from other nodes and handed to listeners. */
  received: number;
  /** Own messages echoed back by Redis and dropped. */
  ownDropped: number;
  /** Times the subscriber connection was (re)established. */
  connects: number;
  /** Times it was lost. */
  disconnects: number;
}

/** A listener of a bus channel: the payload as published on the other node. */
export type BusListener = (payload: Uint8Array, channel: string) => void;

/** The node bus: publish to every other node, listen to what they publish. */
export interface NodeBus {
  /** This node's id (in every envelope it publishes). */
  readonly nodeId: string;
  /** True while the bus is up: messages of other nodes are being received. */
  readonly up: boolean;
  /**
   * Sends payload to the other nodes' listeners of channel. Resolves with the number of nodes
   * subscribed to it (Redis's count, this node included if it listens); rejects with BusError
   * ERR_BUS_DOWN when the publish could not be made.
   */
  publish(channel: string, payload: Uint8Array | string): Promise<number>;
  /** Adds a listener of channel (SUBSCRIBE on the first); returns the function that removes it. */
  subscribe(channel: string, listener: BusListener): () => void;
  /** Counters, and whether the bus is up. */
  stats(): BusStats;
  /** Unsubscribes, closes both connections; later publishes reject ERR_BUS_CLOSED. */
  close(): Promise<void>;
}

/** A bus failure. Codes: ERR_BUS_OPTION (bad option), ERR_BUS_DOWN (publish failed), ERR_BUS_CLOSED. */
export class BusError extends MyriadError {
  constructor(code: "ERR_BUS_OPTION" | "ERR_BUS_DOWN" | "ERR_BUS_CLOSED", message: string, cause?: unknown) {
    super(code, message, cause === undefined ? undefined : { cause });
  }
}

/** How often the subscriber connection is PINGed, and how long a PING may go unanswered. */
const LIVENESS_MS = 5_000;
const PING_COMMAND = respReplyBufferCodec.encode(["PING"]);

/** Envelope: one magic byte, the node id's length, the id, then the payload. */
const ENVELOPE_MAGIC = 0x4d; // "M"
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Parses "redis://[user:password@]host:port" into its parts; BusError ERR_BUS_OPTION when it is not one. */
export function parseBusUrl(url: string): { host: string; port: number; password?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BusError("ERR_BUS_OPTION", `bus url ${JSON.stringify(url)} is not a URL: give redis://host:port`);
  }
  if (u.protocol !== "redis:") throw new BusError("ERR_BUS_OPTION", `bus url ${JSON.stringify(url)}: the scheme must be redis://`);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (host === "") throw new BusError("ERR_BUS_OPTION", `bus url ${JSON.stringify(url)} has no host: give redis://host:port`);
  const port = u.port === "" ? 6379 : Number(u.port);
  const password = u.password === "" ? undefined : decodeURIComponent(u.password);
  return password === undefined ? { host, port } : { host, port, password };
}

/**
 * Creates a node bus over the Redis server at options.url (or host/port) and starts
 * connecting its subscriber connection; it is up once connected. Throws BusError
 * ERR_BUS_OPTION for bad options.
 */
export function createRedisBus(options: RedisBusOptions = {}): NodeBus {
  return new RedisBus(options);
}

class RedisBus implements NodeBus {
  readonly nodeId: string;
  private readonly host: string;
  private readonly port: number;
  private readonly password: string | undefined;
  private readonly prefix: string;
  private readonly idBytes: Uint8Array;
  private readonly publisher: RespClient;
  private readonly publishTimeoutMs: number;
  private readonly reconnectInitialMs: number;
  private readonly reconnectMaxMs: number;
  private readonly onStatus: ((up: boolean) => void) | undefined;
  /** Listeners by channel (without prefix). One Set per channel, not per connection. */
  private readonly listeners = new Map<string, Set<BusListener>>();
  private socket: Socket<undefined> | null = null;
  private connecting = false;
  private closed = false;
  private isUp = false;
  /** SUBSCRIBE confirmations still awaited after a (re)connect before the bus counts as up. */
  private pendingConfirms = 0;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** Unparsed bytes of the subscriber connection (a reply split across reads). */
  private inbuf: Uint8Array = new Uint8Array(0);
  private readonly counters = { published: 0, publishErrors: 0, lastPublishError: "", received: 0, ownDropped: 0, connects: 0, disconnects: 0 };

  constructor(o: RedisBusOptions) {
    let host = o.host ?? "127.0.0.1";
    let port = o.port ?? 6379;
    let password = o.password;
    if (o.url !== undefined) {
      const p = parseBusUrl(o.url);
      host = p.host;
      port = p.port;
      password = password ?? p.password;
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new BusError("ERR_BUS_OPTION", `bus port ${port} is invalid: give an integer in 1..65535`);
    }
    this.host = host;
    this.port = port;
    this.password = password;
    this.prefix = o.channelPrefix ?? "myriad:";
    this.nodeId = o.nodeId ?? randomId();
    this.idBytes = encoder.encode(this.nodeId);
    if (this.idBytes.length === 0 || this.idBytes.length > 255) {
      throw new BusError("ERR_BUS_OPTION", `bus nodeId must be 1..255 bytes of UTF-8, got ${this.idBytes.length}`);
    }
    this.publishTimeoutMs = o.publishTimeoutMs ?? 10_000;
    this.reconnectInitialMs = o.reconnectInitialMs ?? 100;
    this.reconnectMaxMs = o.reconnectMaxMs ?? 5_000;
    this.onStatus = o.onStatus;
    this.publisher = createRespClient({
      host,
      port,
      ...(password === undefined ? {} : { password }),
      binary: true,
      requestTimeoutMs: this.publishTimeoutMs,
      connectTimeoutMs: Math.min(this.publishTimeoutMs, 5_000),
      // One publish connection, made at once: Redis relays a channel's messages in the order
      // it reads them, so one pipelined connection keeps a node's publishes in order on every
      // other node (two could interleave); and a node busy fanning out (its loop held for
      // seconds) never has to open one in the middle of a burst.
      pool: { min: 1, max: 1 },
    });
    this.connect();
  }

  get up(): boolean {
    return this.isUp && this.publisherOk;
  }

  publish(channel: string, payload: Uint8Array | string): Promise<number> {
    if (typeof payload !== "string" && !(payload instanceof Uint8Array)) {
      return Promise.reject(new MyriadTypeError("ERR_WRITE_TYPE", `bus publish: payload must be a string or a Uint8Array, got ${payload === null ? "null" : typeof payload}`));
    }
    if (this.closed) return Promise.reject(new BusError("ERR_BUS_CLOSED", "publish on a closed bus: the message was not sent"));
    const body = typeof payload === "string" ? encoder.encode(payload) : payload;
    const envelope = new Uint8Array(2 + this.idBytes.length + body.length);
    envelope[0] = ENVELOPE_MAGIC;
    envelope[1] = this.idBytes.length;
    envelope.set(this.idBytes, 2);
    envelope.set(body, 2 + this.idBytes.length);
    return this.publisher.send(["PUBLISH", this.prefix + channel, envelope]).then(
      (n) => {
        this.counters.published++;
        this.setPublisherOk(true);
        return typeof n === "number" ? n : 0;
      },
      (err: unknown) => {
        this.counters.publishErrors++;
        this.counters.lastPublishError = errText(err);
        this.setPublisherOk(false);
        throw new BusError("ERR_BUS_DOWN", `bus publish to ${channel} failed (${errText(err)}): the other nodes did not get it`, err);
      },
    );
  }

  subscribe(channel: string, listener: BusListener): () => void {
    let set = this.listeners.get(channel);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
      this.sendSubscribe("SUBSCRIBE", channel);
    }
    set.add(listener);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const s = this.listeners.get(channel);
      if (s === undefined) return;
      s.delete(listener);
      if (s.size === 0) {
        this.listeners.delete(channel);
        this.sendSubscribe("UNSUBSCRIBE", channel);
      }
    };
  }

  stats(): BusStats {
    return { up: this.up, channels: this.listeners.size, ...this.counters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    clearInterval(this.livenessTimer);
    this.listeners.clear();
    const s = this.socket;
    this.socket = null;
    s?.end();
    this.setUp(false);
    await this.publisher.close();
  }

  /** Sends (UN)SUBSCRIBE now if connected; a reconnect subscribes from `listeners` anyway. */
  private sendSubscribe(verb: "SUBSCRIBE" | "UNSUBSCRIBE", channel: string): void {
    const s = this.socket;
    if (s === null || this.closed) return;
    if (verb === "SUBSCRIBE" && !this.isUp) this.pendingConfirms++;
    this.send(respReplyBufferCodec.encode([verb, this.prefix + channel]));
  }

  private connect(): void {
    if (this.closed || this.connecting || this.socket !== null) return;
    this.connecting = true;
    this.inbuf = new Uint8Array(0);
    const bus = this;
    Bun.connect<undefined>({
      hostname: this.host,
      port: this.port,
      socket: {
        open(socket) {
          // TCP self-connect (a local port equal to the bus's, when Redis is down on a local
          // port inside the ephemeral range): a connection to ourselves, not to Redis.
          if (isSelfConnect(socket)) {
            socket.terminate();
            return;
          }
          bus.onOpen(socket);
        },
        data(_socket, bytes) {
          bus.onData(bytes);
        },
        close(socket) {
          bus.onClose(socket);
        },
        drain() {
          bus.flush();
        },
        error() {},
        connectError() {
          bus.connecting = false;
          bus.scheduleReconnect();
        },
      },
    }).catch(() => {
      this.connecting = false;
      this.scheduleReconnect();
    });
  }

  private onOpen(socket: Socket<undefined>): void {
    this.connecting = false;
    if (this.closed) {
      socket.end();
      return;
    }
    this.socket = socket;
    this.outq = [];
    this.counters.connects++;
    const commands: (string | Uint8Array)[][] = [];
    if (this.password !== undefined) commands.push(["AUTH", this.password]);
    this.pendingConfirms = this.listeners.size;
    // Every channel still listened to, in SUBSCRIBE commands of up to 1,000 channels each.
    const channels = [...this.listeners.keys()].map((c) => this.prefix + c);
    for (let i = 0; i < channels.length; i += 1_000) commands.push(["SUBSCRIBE", ...channels.slice(i, i + 1_000)]);
    // A PING answers even with no channel: it proves the connection (and AUTH) work.
    commands.push(["PING"]);
    this.pingSentAt = performance.now();
    this.send(Buffer.concat(commands.map((c) => respReplyBufferCodec.encode(c))));
    // The publisher may have failed while the bus was down: prove it before counting as up.
    if (!this.publisherOk) this.probePublisher();
  }

  /** performance.now() of the PING awaiting its PONG, 0 when none. */
  private pingSentAt = 0;
  private get awaitingPing(): boolean {
    return this.pingSentAt !== 0;
  }
  private set awaitingPing(v: boolean) {
    this.pingSentAt = v ? performance.now() : 0;
  }
  /** Bytes the kernel did not take yet (Bun's socket.write does not buffer). */
  private outq: Uint8Array[] = [];
  /** False after a publish failed, until one succeeds or a PING through the publisher does. */
  private publisherOk = true;
  private probeTimer: ReturnType<typeof setTimeout> | null = null;
  private probeFailures = 0;
  /**
   * Liveness of the subscriber connection: a PING every LIVENESS_MS; one unanswered for as
   * long ends the connection (a silent partition would otherwise leave the bus "up" and
   * deaf), and the usual reconnect follows.
   */
  private readonly livenessTimer = unrefd(setInterval(() => this.checkLiveness(), LIVENESS_MS));

  private checkLiveness(): void {
    const s = this.socket;
    if (s === null || this.closed) return;
    if (this.pingSentAt !== 0) {
      if (performance.now() - this.pingSentAt > LIVENESS_MS) s.terminate();
      return;
    }
    this.awaitingPing = true;
    this.send(PING_COMMAND);
  }

  /** Writes to the subscriber connection, keeping what the kernel does not take for drain. */
  private send(bytes: Uint8Array): void {
    const s = this.socket;
    if (s === null) return;
    if (this.outq.length !== 0) {
      this.outq.push(bytes);
      return;
    }
    const n = s.write(bytes);
    if (n >= 0 && n < bytes.length) this.outq.push(bytes.subarray(n));
  }

  private flush(): void {
    const s = this.socket;
    while (s !== null && this.outq.length !== 0) {
      const head = this.outq[0]!;
      const n = s.write(head);
      if (n < 0) return;
      if (n < head.length) {
        this.outq[0] = head.subarray(n);
        return;
      }
      this.outq.shift();
    }
  }

  private setPublisherOk(ok: boolean): void {
    if (this.publisherOk === ok) return;
    const before = this.up;
    this.publisherOk = ok;
    if (ok) this.probeFailures = 0;
    else this.probePublisher();
    if (this.up !== before) this.notify();
  }

  /** PINGs through the publisher, with backoff, until it answers (then the bus can be up again). */
  private probePublisher(): void {
    if (this.probeTimer !== null || this.closed) return;
    const delay = this.probeFailures === 0 ? 0 : fullJitterDelayMs(this.probeFailures, this.reconnectInitialMs, this.reconnectMaxMs);
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      this.publisher.send(["PING"]).then(
        () => this.setPublisherOk(true),
        () => {
          this.probeFailures++;
          this.probePublisher();
        },
      );
    }, delay);
  }

  private onData(bytes: Uint8Array): void {
    let buf: Uint8Array;
    if (this.inbuf.length === 0) buf = bytes;
    else {
      buf = new Uint8Array(this.inbuf.length + bytes.length);
      buf.set(this.inbuf);
      buf.set(bytes, this.inbuf.length);
    }
    let at = 0;
    while (at < buf.length) {
      const n = respReplyBufferCodec.measure(buf, at, buf.length, 64 * 1024 * 1024);
      if (n === 0) break;
      if (n < 0) {
        // Redis never sends this; drop the connection and start over rather than guess.
        this.socket?.terminate();
        return;
      }
      this.onReply(respReplyBufferCodec.decode(buf, at, n));
      at += n;
    }
    this.inbuf = at === buf.length ? new Uint8Array(0) : buf.slice(at);
  }

  private onReply(reply: RespValue): void {
    if (reply instanceof RespError) {
      // AUTH refused or a command refused: the bus cannot work; say so by staying down.
      this.socket?.terminate();
      return;
    }
    if (Array.isArray(reply)) {
      const kind = text(reply[0]);
      if (kind === "message" && reply.length === 3) return this.onMessage(text(reply[1]), reply[2]!);
      if (kind === "subscribe") {
        if (!this.isUp && this.pendingConfirms > 0) this.pendingConfirms--;
        this.maybeUp();
        return;
      }
      if (kind === "pong") {
        this.awaitingPing = false;
        this.maybeUp();
        return;
      }
      return; // unsubscribe confirmations
    }
    if (reply === "PONG") {
      this.awaitingPing = false;
      this.maybeUp();
    }
  }

  private maybeUp(): void {
    if (!this.isUp && !this.awaitingPing && this.pendingConfirms === 0 && this.socket !== null) {
      this.failures = 0;
      this.setUp(true);
    }
  }

  private onMessage(fullChannel: string, payload: RespValue): void {
    if (!(payload instanceof Uint8Array) || payload.length < 2 || payload[0] !== ENVELOPE_MAGIC) return;
    const idLen = payload[1]!;
    if (payload.length < 2 + idLen) return;
    if (idLen === this.idBytes.length && sameBytes(payload, 2, this.idBytes)) {
      this.counters.ownDropped++;
      return;
    }
    if (!fullChannel.startsWith(this.prefix)) return;
    const channel = fullChannel.slice(this.prefix.length);
    const set = this.listeners.get(channel);
    if (set === undefined) return;
    this.counters.received++;
    const body = payload.subarray(2 + idLen);
    for (const listener of set) {
      try {
        listener(body, channel);
      } catch {
        // A listener's bug must not stop the others from getting the message.
      }
    }
  }

  private onClose(socket: Socket<undefined>): void {
    if (this.socket !== socket) {
      this.connecting = false;
      this.scheduleReconnect();
      return;
    }
    this.socket = null;
    this.counters.disconnects++;
    // Redis went away for the subscriber: the publish connection most likely too, and its pool
    // may be failing fast for a while after Redis is back. Up again only once a PING through
    // the publisher succeeds (setPublisherOk starts probing), not on the subscriber alone.
    this.setPublisherOk(false);
    this.setUp(false);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer !== null || this.socket !== null || this.connecting) return;
    this.failures++;
    const delay = fullJitterDelayMs(this.failures, this.reconnectInitialMs, this.reconnectMaxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private setUp(up: boolean): void {
    if (this.isUp === up) return;
    const before = this.up;
    this.isUp = up;
    if (this.up !== before) this.notify();
  }

  private notify(): void {
    try {
      this.onStatus?.(this.up);
    } catch {
      // The status hook is advisory.
    }
  }
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function text(v: RespValue | undefined): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return decoder.decode(v);
  return "";
}

function sameBytes(a: Uint8Array, at: number, b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (a[at + i] !== b[i]) return false;
  return true;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A timer that does not keep the process alive by itself (a bus nobody closed must not). */
function unrefd<T extends { unref(): unknown }>(t: T): T {
  t.unref();
  return t;
}

