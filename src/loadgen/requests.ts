/**
 * The bytes a load engine sends, built once per engine so that sending picks a prebuilt
 * frame and allocates nothing: the ping (also the confirm probe) and the request of each
 * protocol, RESP GETs and SETs prebuilt per key.
 */
import type { EngineOptions } from "./options.ts";
import type { RespSupport } from "./resp-support.ts";

/** Most RESP keys prebuilt: a larger keyspace reuses them. */
const MAX_PREBUILT_KEYS = 10_000;

/** One engine's frames. */
export class RequestFrames {
  /** The protocol's ping: echo bytes, "PING\n", RESP PING, a WebSocket ping. Confirm probes are pings too (WebSocket: a message). */
  readonly ping: Uint8Array;
  /** websocket: the upgrade request every connection sends first (empty for other protocols). */
  readonly upgrade: Uint8Array;
  /** websocket: the confirm probe, a message the server must echo. */
  readonly probe: Uint8Array;
  private echo: Uint8Array;
  private readonly line: Uint8Array;
  private readonly gets: Uint8Array[] = [];
  private readonly sets: Uint8Array[] = [];
  private readonly protocol: Required<EngineOptions>["protocol"];
  private readonly getRatio: number;

  /** Frames for `o` (payloadBytes, protocol, mode, keyspace, getRatio); `resp` is required with protocol resp. */
  constructor(o: Required<EngineOptions>, resp: RespSupport | undefined) {
    this.protocol = o.protocol;
    this.getRatio = o.getRatio;
    this.echo = new Uint8Array(o.payloadBytes).fill(120); // "xxxx..."
    this.line = new Uint8Array(o.payloadBytes).fill(120);
    this.line[this.line.length - 1] = 10;
    this.ping = o.protocol === "resp" ? resp!.encode(["PING"]) : o.protocol === "lines" ? new TextEncoder().encode("PING\n") : this.echo;
    this.upgrade = new Uint8Array(0);
    this.probe = this.ping;
    if (o.protocol === "websocket") {
      // Masked client frames (RFC 6455 5.3); the key and mask need not be secret for load.
      const raw = this.echo;
      this.echo = wsClientFrame(0x82, raw);
      this.ping = wsClientFrame(0x89, raw.subarray(0, Math.min(125, raw.length)));
      this.probe = this.echo;
      this.upgrade = new TextEncoder().encode(
        "GET / HTTP/1.1\r\nHost: myriad-load\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: bXlyaWFkLWxvYWQtZ2VuIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
    }
    if (o.protocol === "resp" && o.mode === "rr") {
      const value = "v".repeat(o.payloadBytes);
      const keys = Math.min(o.keyspace, MAX_PREBUILT_KEYS);
      for (let k = 0; k < keys; k++) {
        this.gets.push(resp!.encode(["GET", `key:${k}`]));
        this.sets.push(resp!.encode(["SET", `key:${k}`, value]));
      }
    }
  }

  /** Bytes the server answers `frame` with, when that is known: websocket: the frame unmasked (4 bytes less); echo: the frame; else 0. */
  replyBytes(frame: Uint8Array): number {
    return this.protocol === "websocket" ? frame.length - 4 : this.protocol === "echo" ? frame.length : 0;
  }

  /** The next request of rr traffic: an echo frame, a line, or a GET (getRatio of them) or SET of a random key. */
  request(): Uint8Array {
    if (this.protocol === "resp") {
      const k = (Math.random() * this.gets.length) | 0;
      return Math.random() < this.getRatio ? this.gets[k]! : this.sets[k]!;
    }
    return this.protocol === "lines" ? this.line : this.echo;
  }
}

/** A masked client frame (first byte b0) of payload; mask key 37 fa 21 3d. */
function wsClientFrame(b0: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const hb = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = new Uint8Array(hb + 4 + n);
  out[0] = b0;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 0x10000) {
    out[1] = 0x80 | 126;
    out[2] = n >>> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    for (let i = 0; i < 8; i++) out[2 + i] = Math.floor(n / 2 ** (8 * (7 - i))) & 0xff;
  }
  const mask = [0x37, 0xfa, 0x21, 0x3d];
  for (let i = 0; i < 4; i++) out[hb + i] = mask[i]!;
  for (let i = 0; i < n; i++) out[hb + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}
