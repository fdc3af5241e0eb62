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
  /** The protocol's ping: echo bytes, "PING\n", RESP PING. Confirm probes are pings too. */
  readonly ping: Uint8Array;
  private readonly echo: Uint8Array;
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
    if (o.protocol === "resp" && o.mode === "rr") {
      const value = "v".repeat(o.payloadBytes);
      const keys = Math.min(o.keyspace, MAX_PREBUILT_KEYS);
      for (let k = 0; k < keys; k++) {
        this.gets.push(resp!.encode(["GET", `key:${k}`]));
        this.sets.push(resp!.encode(["SET", `key:${k}`, value]));
      }
    }
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
