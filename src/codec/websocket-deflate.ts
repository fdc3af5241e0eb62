/**
 * permessage-deflate (RFC 7692): negotiating it from the client's Sec-WebSocket-Extensions
 * offers, and compressing / decompressing message payloads.
 *
 * By default both directions run without context takeover: each message is compressed and
 * decompressed on its own, through zlib streams shared by every connection of a server
 * (reset between messages), so an idle connection keeps no zlib state at all. A server may
 * allow context takeover (better ratios for streams of similar messages); each connection
 * that negotiates it then owns its own zlib stream (~300 KiB for deflate at level 6 and
 * windowBits 15, ~44 KiB for inflate) for as long as it is open.
 *
 * Zlib is driven through the zlib handle's synchronous writeSync (what node:zlib's own *Sync
 * functions use), with Z_SYNC_FLUSH: RFC 7692 strips the flush's trailing 00 00 ff ff from
 * each message and the receiver puts it back.
 */
import type * as Zlib from "node:zlib";
import { MyriadError } from "../errors.ts";

/**
 * node:zlib, loaded at first use: every process that imports the codecs (each of a TCP
 * cluster's workers) would otherwise load zlib and its threads for nothing (measured, a c1m
 * echo worker: about 3 MiB and 30 ms of start-up each).
 */
let zlibModule: typeof Zlib | null = null;
function zlib(): typeof Zlib {
  return (zlibModule ??= require("node:zlib") as typeof Zlib);
}

/** Extension parameters of permessage-deflate (RFC 7692 section 7.1). */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** 9..15: the server's LZ77 window (8 is refused: zlib's raw deflate cannot produce it). */
  serverMaxWindowBits: number;
  /** 8..15: the client's LZ77 window, as the response told it (15 when not limited). */
  clientMaxWindowBits: number;
}

/** Server settings for permessage-deflate; every field optional. */
export interface PerMessageDeflateOptions {
  /**
   * Compress every message on its own (default true): no zlib state per connection. false
   * keeps a compressor per connection that negotiates it, unless the client asks otherwise.
   */
  serverNoContextTakeover?: boolean;
  /**
   * Ask clients to compress every message on its own (default true): no decompressor per
   * connection. false lets a client keep its context, and the server then keeps a
   * decompressor per such connection.
   */
  clientNoContextTakeover?: boolean;
  /** Largest window the server compresses with: 9..15, default 15. */
  serverMaxWindowBits?: number;
  /** Window to ask of clients that offer client_max_window_bits: 8..15, default 15. */
  clientMaxWindowBits?: number;
  /** Messages shorter than this many bytes are sent uncompressed (default 64). */
  thresholdBytes?: number;
  /** zlib compression level -1..9 (default -1: zlib's default, 6); lower is faster. */
  level?: number;
  /** zlib memLevel 1..9 (default 8): memory of each compressor. */
  memLevel?: number;
}

/** PerMessageDeflateOptions with defaults filled in. */
export type ResolvedDeflateOptions = Required<PerMessageDeflateOptions>;

/** The options as given (true for the defaults), checked; throws DeflateOptionError naming the field. */
export function resolveDeflateOptions(value: boolean | PerMessageDeflateOptions): ResolvedDeflateOptions | null {
  if (value === false) return null;
  const o = value === true ? {} : value;
  if (o === null || typeof o !== "object") throw new DeflateOptionError("perMessageDeflate", "expected true, false or an object");
  const known = ["serverNoContextTakeover", "clientNoContextTakeover", "serverMaxWindowBits", "clientMaxWindowBits", "thresholdBytes", "level", "memLevel"];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new DeflateOptionError(`perMessageDeflate.${k}`, `unknown field; known: ${known.join(", ")}`);
  const bool = (k: "serverNoContextTakeover" | "clientNoContextTakeover") => {
    const v = o[k];
    if (v === undefined) return true;
    if (typeof v !== "boolean") throw new DeflateOptionError(`perMessageDeflate.${k}`, "expected true or false");
    return v;
  };
  const int = (k: keyof PerMessageDeflateOptions, dflt: number, min: number, max: number) => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw new DeflateOptionError(`perMessageDeflate.${k}`, `expected an integer ${min}..${max}, got ${String(v)}`);
    }
    return v;
  };
  return {
    serverNoContextTakeover: bool("serverNoContextTakeover"),
    clientNoContextTakeover: bool("clientNoContextTakeover"),
    serverMaxWindowBits: int("serverMaxWindowBits", 15, 9, 15),
    clientMaxWindowBits: int("clientMaxWindowBits", 15, 8, 15),
    thresholdBytes: int("thresholdBytes", 64, 0, 2 ** 30),
    level: int("level", zlib().constants.Z_DEFAULT_COMPRESSION, -1, 9),
    memLevel: int("memLevel", 8, 1, 9),
  };
}

/** A perMessageDeflate option is wrong. code: ERR_SERVER_OPTION (as the reactor's option errors). */
export class DeflateOptionError extends MyriadError {
  readonly option: string;
  constructor(option: string, message: string) {
    super("ERR_SERVER_OPTION", `createServer: option ${option}: ${message}`);
    this.option = option;
  }
}

/** One parsed extension offer: its name and parameters in order (value null when absent). */
interface Offer {
  name: string;
  params: [string, string | null][];
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The offers of a Sec-WebSocket-Extensions value (RFC 6455 section 9.1 grammar, quoted
 * values allowed); null when it does not parse.
 */
function parseOffers(header: string): Offer[] | null {
  const offers: Offer[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const token = (): string | null => {
    const s = i;
    while (i < n && !" \t,;=\"".includes(header[i]!)) i++;
    const t = header.slice(s, i);
    return TOKEN.test(t) ? t : null;
  };
  for (;;) {
    skipSpace();
    if (i >= n) break;
    if (header[i] === ",") {
      i++;
      continue;
    }
    const name = token();
    if (name === null) return null;
    const offer: Offer = { name: name.toLowerCase(), params: [] };
    skipSpace();
    while (i < n && header[i] === ";") {
      i++;
      skipSpace();
      const p = token();
      if (p === null) return null;
      skipSpace();
      let value: string | null = null;
      if (header[i] === "=") {
        i++;
        skipSpace();
        if (header[i] === '"') {
          const close = header.indexOf('"', i + 1);
          if (close < 0) return null;
          value = header.slice(i + 1, close);
          i = close + 1;
          if (!TOKEN.test(value)) return null;
        } else {
          value = token();
          if (value === null) return null;
        }
        skipSpace();
      }
      offer.params.push([p.toLowerCase(), value]);
    }
    if (i < n && header[i] !== ",") return null;
    offers.push(offer);
  }
  return offers;
}

/** A window-bits value: "8".."15" without leading zeros or signs, else -1. */
function windowBits(v: string): number {
  return /^(8|9|1[0-5])$/.test(v) ? Number(v) : -1;
}

/**
 * Picks the first permessage-deflate offer in `header` that `opts` can accept and returns
 * the parameters agreed and the response value for Sec-WebSocket-Extensions; null when
 * there is none (or the header does not parse: the handshake then goes on uncompressed).
 * An offer with an unknown, repeated or ill-valued parameter is declined, as RFC 7692
 * section 5 asks, and so is one that limits the server's window to 8 bits.
 */
export function negotiateDeflate(header: string, opts: ResolvedDeflateOptions): { params: DeflateParams; response: string } | null {
  if (header === "") return null;
  const offers = parseOffers(header);
  if (offers === null) return null;
  for (const offer of offers) {
    if (offer.name !== "permessage-deflate") continue;
    const seen = new Set<string>();
    let serverNoCtx = false;
    let clientNoCtx = false;
    let serverBits = -1; // -1: not offered
    let clientBits = -1; // -1: not offered; 0: offered without a value
    let ok = true;
    for (const [name, value] of offer.params) {
      if (seen.has(name)) {
        ok = false;
        break;
      }
      seen.add(name);
      if (name === "server_no_context_takeover" && value === null) serverNoCtx = true;
      else if (name === "client_no_context_takeover" && value === null) clientNoCtx = true;
      else if (name === "server_max_window_bits" && value !== null && windowBits(value) > 0) serverBits = windowBits(value);
      else if (name === "client_max_window_bits" && value === null) clientBits = 0;
      else if (name === "client_max_window_bits" && value !== null && windowBits(value) > 0) clientBits = windowBits(value);
      else {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    const serverWindow = Math.min(serverBits < 0 ? 15 : serverBits, opts.serverMaxWindowBits);
    if (serverWindow < 9) continue;
    const params: DeflateParams = {
      serverNoContextTakeover: serverNoCtx || opts.serverNoContextTakeover,
      clientNoContextTakeover: clientNoCtx || opts.clientNoContextTakeover,
      serverMaxWindowBits: serverWindow,
      clientMaxWindowBits: 15,
    };
    let response = "permessage-deflate";
    if (params.serverNoContextTakeover) response += "; server_no_context_takeover";
    if (params.clientNoContextTakeover) response += "; client_no_context_takeover";
    if (serverBits >= 0 || serverWindow < 15) response += `; server_max_window_bits=${serverWindow}`;
    if (clientBits >= 0) {
      // Only a client that offered the parameter may be told a window (section 7.1.2.2).
      const bits = Math.min(clientBits === 0 ? 15 : clientBits, opts.clientMaxWindowBits);
      params.clientMaxWindowBits = bits;
      if (bits < 15 || clientBits > 0) response += `; client_max_window_bits=${bits}`;
    }
    return { params, response };
  }
  return null;
}

/** The 4 bytes a Z_SYNC_FLUSH ends with: stripped by the sender, appended by the receiver. */
const SYNC_TRAILER = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  reset(): void;
  close(): void;
  onerror: (message: string, errno: number) => void;
}

/** The handle and its [availOutAfter, availInAfter] array behind a node:zlib stream. */
function openHandle(stream: unknown): { handle: ZlibHandle; state: Uint32Array } {
  const s = stream as { _handle?: ZlibHandle; _writeState?: Uint32Array };
  if (typeof s._handle?.writeSync !== "function" || !(s._writeState instanceof Uint32Array)) {
    throw new MyriadError("ERR_WEBSOCKET_DEFLATE", "node:zlib streams do not expose the synchronous handle permessage-deflate uses; run on Bun >= 1.4 or turn perMessageDeflate off");
  }
  return { handle: s._handle, state: s._writeState };
}

/**
 * Output buffers shared by every compressor / decompressor of the process: one message is
 * (de)compressed at a time, synchronously, and its bytes are copied or delivered before the
 * next. They grow to the largest message seen (inflate: at most maxFrameBytes + 1).
 */
let deflateOut = new Uint8Array(16 * 1024);
let inflateOut = new Uint8Array(16 * 1024);

/** inflate result: the message exceeds the byte limit it was given. */
export const INFLATE_TOO_BIG = -1;
/** inflate result: the compressed data is corrupt. */
export const INFLATE_CORRUPT = -2;

/**
 * A raw-deflate compressor for message payloads. Without context takeover (`takeover`
 * false) every message starts from an empty window (one shared instance serves all
 * connections); with it the window carries over (one instance per connection).
 * compress() returns a view into a buffer shared by all instances, valid until the next
 * compress() of any of them.
 */
export class MessageDeflater {
  private readonly handle: ZlibHandle;
  private readonly state: Uint32Array;
  private readonly takeover: boolean;
  private failed: string | null = null;

  /** windowBits 9..15; level and memLevel as zlib's. */
  constructor(windowBits: number, level: number, memLevel: number, takeover: boolean) {
    const z = openHandle(zlib().createDeflateRaw({ windowBits, level, memLevel }));
    this.handle = z.handle;
    this.state = z.state;
    this.takeover = takeover;
    this.handle.onerror = (message) => {
      this.failed = message;
    };
  }

  /**
   * The compressed form of data[off, off + len) as a permessage-deflate payload (the sync
   * flush's trailing 00 00 ff ff removed). Throws MyriadError ERR_WEBSOCKET_DEFLATE on a zlib failure.
   */
  compress(data: Uint8Array, off: number, len: number): Uint8Array {
    const h = this.handle;
    let produced = 0;
    let inOff = off;
    let inLen = len;
    for (;;) {
      const room = deflateOut.length - produced;
      h.writeSync(zlib().constants.Z_SYNC_FLUSH, data, inOff, inLen, deflateOut, produced, room);
      if (this.failed !== null) return this.fail();
      const availOut = this.state[0]!;
      const availIn = this.state[1]!;
      produced += room - availOut;
      if (availOut !== 0) break;
      // Output full: there may be more; grow and go on with what input is left.
      inOff += inLen - availIn;
      inLen = availIn;
      const bigger = new Uint8Array(deflateOut.length * 2);
      bigger.set(deflateOut.subarray(0, produced));
      deflateOut = bigger;
    }
    if (!this.takeover) h.reset();
    // Z_SYNC_FLUSH always ends with the empty stored block 00 00 ff ff.
    return deflateOut.subarray(0, produced - 4);
  }

  private fail(): never {
    const message = this.failed!;
    this.failed = null;
    this.handle.reset();
    throw new MyriadError("ERR_WEBSOCKET_DEFLATE", `deflate failed: ${message}`);
  }

  /** Frees the zlib state. */
  close(): void {
    this.handle.close();
  }
}

/**
 * A raw-inflate decompressor for message payloads, with or without context takeover as
 * MessageDeflater. The output is bounded: a message inflating past maxBytes is refused as
 * soon as it does (a decompression bomb costs at most maxBytes plus one output chunk).
 */
export class MessageInflater {
  private readonly handle: ZlibHandle;
  private readonly state: Uint32Array;
  private readonly takeover: boolean;
  private failed: string | null = null;
  /** Bytes of the last successful inflate, in output(). */
  length = 0;

  constructor(takeover: boolean) {
    // 15 bits reads any window a client may use (8..15).
    const z = openHandle(zlib().createInflateRaw({ windowBits: 15 }));
    this.handle = z.handle;
    this.state = z.state;
    this.takeover = takeover;
    this.handle.onerror = (message) => {
      this.failed = message;
    };
  }

  /**
   * Inflates the message whose compressed payload is data[off, off + len) (the trailer is
   * appended here). Returns its length (> = 0; the bytes are output()[0, length)),
   * INFLATE_TOO_BIG past maxBytes or INFLATE_CORRUPT for bad data; after either failure a
   * context-takeover inflater is unusable (the connection must be closed).
   */
  inflate(data: Uint8Array, off: number, len: number, maxBytes: number): number {
    let produced = this.feed(data, off, len, 0, maxBytes);
    if (produced >= 0) produced = this.feed(SYNC_TRAILER, 0, 4, produced, maxBytes);
    if (produced < 0 || !this.takeover) this.handle.reset();
    this.length = produced < 0 ? 0 : produced;
    return produced;
  }

  /** The inflated bytes of the last inflate(): valid until the next inflate() of any instance. */
  output(): Uint8Array {
    return inflateOut.subarray(0, this.length);
  }

  private feed(data: Uint8Array, off: number, len: number, produced: number, maxBytes: number): number {
    const h = this.handle;
    let inOff = off;
    let inLen = len;
    for (;;) {
      if (produced === inflateOut.length) {
        if (produced > maxBytes) return INFLATE_TOO_BIG;
        // produced <= maxBytes here, so the new size is > produced; stopping at maxBytes + 1
        // is enough to see that a message passes maxBytes.
        const bigger = new Uint8Array(Math.min(produced * 2, maxBytes + 1));
        bigger.set(inflateOut.subarray(0, produced));
        inflateOut = bigger;
      }
      const room = inflateOut.length - produced;
      h.writeSync(zlib().constants.Z_SYNC_FLUSH, data, inOff, inLen, inflateOut, produced, room);
      if (this.failed !== null) {
        this.failed = null;
        return INFLATE_CORRUPT;
      }
      const availOut = this.state[0]!;
      const availIn = this.state[1]!;
      produced += room - availOut;
      if (produced > maxBytes) return INFLATE_TOO_BIG;
      inOff += inLen - availIn;
      inLen = availIn;
      // Done when zlib left output room (it has nothing more to give for this input).
      if (availOut !== 0) return produced;
    }
  }

  /** Frees the zlib state. */
  close(): void {
    this.handle.close();
  }
}
