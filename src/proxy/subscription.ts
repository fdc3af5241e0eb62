/**
 * A subscribed client's channels and patterns, and its dedicated connection to each server
 * that holds some of them. A channel is placed like a key (PUBLISH of that channel goes to
 * the same server), so SUBSCRIBE goes to that one server; a pattern may match channels of
 * any server, so PSUBSCRIBE goes to every server. Each publish then reaches the client once.
 */
import type { DedicatedConnection, ReplyCallback } from "./dedicated.ts";
import type { Upstream } from "./upstream.ts";

/** One server's dedicated connection for a subscriber; requests wait here while it connects. */
export class SubLink {
  conn: DedicatedConnection | null = null;
  failed: Error | null = null;
  private queue: Array<{ bytes: Uint8Array; cb: ReplyCallback }> | null = [];

  constructor(readonly up: Upstream) {}

  /** Sends now, or once connected; fails at once if connecting failed. */
  send(bytes: Uint8Array, cb: ReplyCallback): void {
    if (this.failed !== null) cb(null, this.failed);
    else if (this.conn !== null) this.conn.send(bytes, cb);
    else this.queue!.push({ bytes: bytes.slice(), cb });
  }

  /** The connection is up: sends what waited. */
  opened(conn: DedicatedConnection): void {
    this.conn = conn;
    const q = this.queue!;
    this.queue = null;
    for (const { bytes, cb } of q) conn.send(bytes, cb);
  }

  /** Connecting failed: what waited fails with err. */
  openFailed(err: Error): void {
    this.failed = err;
    const q = this.queue ?? [];
    this.queue = null;
    for (const { cb } of q) cb(null, err);
  }

  close(): void {
    this.failed ??= new Error("closed");
    this.conn?.close();
  }
}

/** What a subscribed client is subscribed to, and its connections (see the file comment). */
export class Subscription {
  /** Channel and pattern names as latin1 strings (binary-safe keys). */
  readonly channels = new Set<string>();
  readonly patterns = new Set<string>();
  readonly links = new Map<number, SubLink>();

  /** Subscriptions in all, as redis counts them in its replies. */
  get count(): number {
    return this.channels.size + this.patterns.size;
  }
}
