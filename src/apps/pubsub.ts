/**
 * Channels for the KV app's SUBSCRIBE / UNSUBSCRIBE / PUBLISH (redis pub/sub, exact
 * channel names; no patterns). A published message is encoded once and the same bytes are
 * written to every subscriber; the reactor copies only what a socket does not take at once.
 *
 * Subscribers are known by an id the caller gives (unique among its live connections: the
 * KV app's ids span all its listeners) and reached through a Conn bound to their connection.
 * Only connections that subscribe cost anything: a Map entry and a Set of channel names.
 */
import type { Conn } from "../reactor/index.ts";

const MESSAGE_HEADER = latin1Bytes("*3\r\n$7\r\nmessage\r\n");

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Exact-name channels: who is subscribed to what, and PUBLISH to every subscriber of a channel. */
export class PubSub {
  /**
   * Called with (channel, true) when a channel gets its first subscriber on this node and
   * (channel, false) when it loses its last: the node bus subscribes to exactly those.
   */
  onChannelActive: ((channelKey: string, active: boolean) => void) | null = null;
  /** channel -> subscribers (id -> bound Conn). */
  private readonly channels = new Map<string, Map<number, Conn>>();
  /** id -> its channels, for subscribed connections only. */
  private readonly byConn = new Map<number, Set<string>>();

  /** Number of connections in subscribed mode. */
  get subscribers(): number {
    return this.byConn.size;
  }

  /** Number of channels with at least one subscriber. */
  get channelCount(): number {
    return this.channels.size;
  }

  /** True when the connection has at least one subscription (redis's subscribed mode). */
  isSubscribed(id: number): boolean {
    return this.byConn.size !== 0 && this.byConn.has(id);
  }

  /** The connection's subscription count. */
  countOf(id: number): number {
    return this.byConn.size === 0 ? 0 : (this.byConn.get(id)?.size ?? 0);
  }

  /**
   * Subscribes connection `id` to channel; `conn` must stay bound to that connection (a
   * conn.ref()). Returns the connection's subscription count after it.
   */
  subscribe(id: number, conn: Conn, channel: string): number {
    let mine = this.byConn.get(id);
    if (mine === undefined) {
      mine = new Set();
      this.byConn.set(id, mine);
    }
    if (!mine.has(channel)) {
      mine.add(channel);
      let subs = this.channels.get(channel);
      if (subs === undefined) {
        subs = new Map();
        this.channels.set(channel, subs);
        this.onChannelActive?.(channel, true);
      }
      subs.set(id, conn);
    }
    return mine.size;
  }

  /** Unsubscribes; returns the connection's subscription count after it. */
  unsubscribe(id: number, channel: string): number {
    const mine = this.byConn.get(id);
    if (mine === undefined) return 0;
    if (mine.delete(channel)) {
      const subs = this.channels.get(channel);
      if (subs !== undefined) {
        subs.delete(id);
        if (subs.size === 0) {
          this.channels.delete(channel);
          this.onChannelActive?.(channel, false);
        }
      }
    }
    const n = mine.size;
    if (n === 0) this.byConn.delete(id);
    return n;
  }

  /** The connection's channels (a snapshot, in subscription order). */
  channelsOf(id: number): string[] {
    const mine = this.byConn.get(id);
    return mine === undefined ? [] : [...mine];
  }

  /** Drops every subscription of a closed connection. */
  forget(id: number): void {
    const mine = this.byConn.get(id);
    if (mine === undefined) return;
    for (const ch of [...mine]) this.unsubscribe(id, ch);
  }

  /** Sends message to every subscriber of channel; returns how many were reached. */
  publish(channel: Uint8Array, message: Uint8Array, channelKey: string): number {
    const subs = this.channels.get(channelKey);
    if (subs === undefined) return 0;
    const bytes = encodeMessage(channel, message);
    let n = 0;
    for (const c of subs.values()) {
      if (c.isOpen) {
        c.write(bytes);
        n++;
      }
    }
    return n;
  }
}

/** *3 $7 message $<channel> $<message>, in one array. */
function encodeMessage(channel: Uint8Array, message: Uint8Array): Uint8Array {
  const ch = `$${channel.length}\r\n`;
  const ms = `$${message.length}\r\n`;
  const out = new Uint8Array(MESSAGE_HEADER.length + ch.length + channel.length + 2 + ms.length + message.length + 2);
  let p = 0;
  out.set(MESSAGE_HEADER, p);
  p += MESSAGE_HEADER.length;
  for (let i = 0; i < ch.length; i++) out[p++] = ch.charCodeAt(i);
  out.set(channel, p);
  p += channel.length;
  out[p++] = 13;
  out[p++] = 10;
  for (let i = 0; i < ms.length; i++) out[p++] = ms.charCodeAt(i);
  out.set(message, p);
  p += message.length;
  out[p++] = 13;
  out[p++] = 10;
  return out;
}
