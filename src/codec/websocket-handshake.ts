/**
 * The WebSocket opening handshake (RFC 6455 section 4.2): the client's HTTP/1.1 upgrade
 * request, measured and parsed out of the bytes a connection sent first, and the server's
 * answers: 101 Switching Protocols with Sec-WebSocket-Accept, or an HTTP error that says
 * what was wrong (400, 405, 426 with Sec-WebSocket-Version: 13, or a status the
 * application's upgrade hook chose).
 *
 * This runs once per connection, so it may allocate (the parsed request lives only until the
 * handshake is answered); nothing here is kept per connection.
 */
import { MyriadError } from "../errors.ts";

/** RFC 6455's fixed GUID appended to Sec-WebSocket-Key before hashing. */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Default most bytes of an upgrade request (request line and headers). */
export const DEFAULT_MAX_HANDSHAKE_BYTES = 8192;

/** measureRequest: the request is longer than allowed. */
export const REQUEST_TOO_LARGE = -1;

/**
 * Length of the HTTP request head at buf[start, end) through its blank line ("\r\n\r\n", or
 * "\n\n" from lenient clients), 0 while incomplete, REQUEST_TOO_LARGE once maxBytes have
 * arrived without a blank line. Allocates nothing.
 */
export function measureRequest(buf: Uint8Array, start: number, end: number, maxBytes: number): number {
  const limit = end - start > maxBytes ? start + maxBytes : end;
  // The blank line is the first "\n\r\n" or "\n\n" (the first of each is the only candidate
  // for it), searched natively: byte loops run for every upgrade are what the JIT tiers up
  // first, and its compilations stay in the server's memory (see UpgradeScan).
  const crlf = indexOf.call(buf, LF_CRLF, start);
  const lf = indexOf.call(buf, LF_LF, start);
  let at = -1;
  let n = 0;
  if (crlf >= 0 && crlf + 3 <= end) {
    at = crlf;
    n = 3;
  }
  if (lf >= 0 && lf + 2 <= end && (at < 0 || lf < at)) {
    at = lf;
    n = 2;
  }
  if (at >= 0 && at < limit) return at + n - start;
  return end - start >= maxBytes ? REQUEST_TOO_LARGE : 0;
}

/** Buffer's native byte search (memchr / memmem), callable on any Uint8Array; allocates nothing. */
const indexOf = Buffer.prototype.indexOf as unknown as (this: Uint8Array, value: number | Uint8Array, byteOffset: number) => number;
/** Buffer's native comparison of this with target[targetStart, targetEnd) (0: equal); allocates nothing. */
const compare = Buffer.prototype.compare as unknown as (this: Uint8Array, target: Uint8Array, targetStart: number, targetEnd: number) => number;
/** Buffer's native copy of this[sourceStart, sourceEnd) to target at targetStart; allocates nothing. */
const copy = Buffer.prototype.copy as unknown as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number;
const LF_CRLF = new Uint8Array([10, 13, 10]);
const CRLF_CRLF = new Uint8Array([13, 10, 13, 10]);
const LF_LF = new Uint8Array([10, 10]);

/** A parsed upgrade request, as the application's upgrade hook sees it. */
export interface UpgradeRequest {
  /** "GET" for any request that gets this far. */
  readonly method: string;
  /** The request target as sent: path and query, e.g. "/chat?room=1". */
  readonly url: string;
  /** The path part of url, before any "?". */
  readonly path: string;
  /** Header fields by lower-case name; repeated fields joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  /** The subprotocols the client offered (Sec-WebSocket-Protocol), in its order; [] when none. */
  readonly protocols: readonly string[];
  /** The peer's IP address ("" for unix sockets). */
  readonly remoteAddress: string;
}

/** A request that is not an acceptable upgrade: the status and text to answer with. */
export interface HandshakeRefusal {
  readonly status: number;
  readonly message: string;
}

/** What parseUpgradeRequest found: a request and the key to answer, or a refusal. */
export type ParsedUpgrade =
  | { ok: true; request: UpgradeRequest; key: string; extensions: string }
  | ({ ok: false } & HandshakeRefusal);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/**
 * A Sec-WebSocket-Protocol value as the subprotocol names it offers, in order, or null when
 * it is not a list of distinct HTTP tokens (a request the server answers 400). The one rule
 * for both the full parse and the upgrade's scanned path.
 */
export function parseProtocolList(value: string): string[] | null {
  const protocols: string[] = [];
  for (const p of value.split(",")) {
    const name = p.trim();
    if (!TOKEN.test(name) || protocols.includes(name)) return null;
    protocols.push(name);
  }
  return protocols;
}

function refuse(status: number, message: string): ParsedUpgrade {
  return { ok: false, status, message };
}

/** True when the comma-separated header value lists `token` (case-insensitive). */
function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  for (const part of value.split(",")) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/**
 * Parses the request head buf[start, start + length) (as measured by measureRequest) and
 * checks it is a WebSocket upgrade (remoteAddress: the peer's address, or a function that
 * reads it when the request's remoteAddress is read). Refusals: 400 for a malformed request or a missing or
 * bad Host, Connection, Sec-WebSocket-Key or Sec-WebSocket-Protocol; 405 for a method other
 * than GET; 426 (answer with Sec-WebSocket-Version: 13) for a request without
 * `Upgrade: websocket` or with another Sec-WebSocket-Version; 505 for HTTP before 1.1.
 */
export function parseUpgradeRequest(buf: Uint8Array, start: number, length: number, remoteAddress: string | (() => string)): ParsedUpgrade {
  // latin1: header bytes outside ASCII pass through one to one and fail the checks below.
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, length).toString("latin1");
  const lines = text.split("\n");
  const requestLine = lines[0]!.endsWith("\r") ? lines[0]!.slice(0, -1) : lines[0]!;
  const parts = requestLine.split(" ");
  if (parts.length !== 3 || parts[0] === "" || parts[1] === "") return refuse(400, "malformed request line");
  const [method, url, version] = parts as [string, string, string];
  const v = /^HTTP\/(\d)\.(\d)$/.exec(version);
  if (v === null) return refuse(400, "malformed request line: expected HTTP/1.1");
  if (Number(v[1]) * 10 + Number(v[2]) < 11) return refuse(505, "WebSocket needs HTTP/1.1");
  if (!TOKEN.test(method)) return refuse(400, "malformed request line");
  if (url[0] !== "/" && !/^[a-z]+:\/\//i.test(url)) return refuse(400, "malformed request target");
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line === "") continue;
    if (line[0] === " " || line[0] === "\t") return refuse(400, "folded header lines are not allowed");
    const colon = line.indexOf(":");
    if (colon <= 0) return refuse(400, "malformed header line");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return refuse(400, "malformed header name");
    const lower = name.toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(lower);
    headers.set(lower, prev === undefined ? value : `${prev}, ${value}`);
  }
  if (method !== "GET") return refuse(405, "a WebSocket upgrade must be a GET request");
  if (!hasToken(headers.get("upgrade"), "websocket")) return refuse(426, "this is a WebSocket endpoint: send Upgrade: websocket");
  if (headers.get("sec-websocket-version") !== "13") return refuse(426, "unsupported Sec-WebSocket-Version: this server speaks 13");
  if (!hasToken(headers.get("connection"), "upgrade")) return refuse(400, "missing Connection: Upgrade");
  const host = headers.get("host");
  if (host === undefined || host === "" || host.includes(",")) return refuse(400, "missing or repeated Host header");
  const key = headers.get("sec-websocket-key");
  if (key === undefined || !KEY.test(key)) return refuse(400, "missing or invalid Sec-WebSocket-Key (24 base64 characters of 16 bytes)");
  const offered = headers.get("sec-websocket-protocol");
  const protocols = offered === undefined ? [] : parseProtocolList(offered);
  if (protocols === null) return refuse(400, "invalid Sec-WebSocket-Protocol");
  const q = url.indexOf("?");
  const request: UpgradeRequest = {
    method,
    url,
    path: q < 0 ? url : url.slice(0, q),
    headers,
    protocols,
    // Read only when asked: Bun keeps the address string on the socket once read.
    get remoteAddress() {
      return typeof remoteAddress === "function" ? remoteAddress() : remoteAddress;
    },
  };
  return { ok: true, request, key, extensions: headers.get("sec-websocket-extensions") ?? "" };
}

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)). */
export function acceptKey(key: string): string {
  return Bun.CryptoHasher.hash("sha1", key + WEBSOCKET_GUID, "base64") as string;
}

/**
 * The 101 response accepting an upgrade: `protocol` ("" for none) and `extensions` (the
 * negotiated Sec-WebSocket-Extensions value, "" for none) are included when set, then any
 * extra header lines.
 */
export function switchingProtocolsResponse(key: string, protocol: string, extensions: string, extraHeaders?: Record<string, string>): string {
  let s = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n`;
  if (protocol !== "") s += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  if (extensions !== "") s += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  if (extraHeaders !== undefined) s += headerLines(extraHeaders);
  return `${s}\r\n`;
}

const REASON_PHRASES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/**
 * An HTTP error response that ends the connection: status line, Connection: close, the
 * message as a text/plain body; 426 also carries Upgrade: websocket and
 * Sec-WebSocket-Version: 13, 405 Allow: GET.
 */
export function errorResponse(status: number, message: string, extraHeaders?: Record<string, string>): string {
  const body = `${message}\n`;
  let s = `HTTP/1.1 ${status} ${REASON_PHRASES[status] ?? "Error"}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  if (status === 426) s += "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  if (status === 405) s += "Allow: GET\r\n";
  if (extraHeaders !== undefined) s += headerLines(extraHeaders);
  return `${s}\r\n${body}`;
}

/**
 * "Name: value\r\n" per entry. Throws WebSocketHeaderError (code ERR_WEBSOCKET_HEADER) for a
 * name that is not an HTTP token or a value that is not a string free of CR, LF and NUL, so
 * that application data cannot inject header lines.
 */
export function headerLines(headers: Record<string, string>): string {
  let s = "";
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name)) throw new WebSocketHeaderError(`header name ${JSON.stringify(name)} is not an HTTP token`);
    if (typeof value !== "string" || /[\r\n\0]/.test(value)) {
      throw new WebSocketHeaderError(`header ${name}: expected a string without CR, LF or NUL`);
    }
    s += `${name}: ${value}\r\n`;
  }
  return s;
}

/** Headers an upgrade hook asked for cannot be sent. code: ERR_WEBSOCKET_HEADER. */
export class WebSocketHeaderError extends MyriadError {
  constructor(message: string) {
    super("ERR_WEBSOCKET_HEADER", message);
  }
}

// ---- the allocation-free path ----------------------------------------------------------------

const BASE64 = new TextEncoder().encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
const GUID_BYTES = new TextEncoder().encode(WEBSOCKET_GUID);
const RESPONSE_HEAD = new TextEncoder().encode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
/** Bytes of the 101 response without subprotocol or extensions: head, 28 bytes of accept, CRLF CRLF. */
export const PLAIN_101_BYTES = RESPONSE_HEAD.length + 28 + 4;

// Header names the scan looks for (lower case), and their indices in the scan's fields.
const H_HOST = 0;
const H_UPGRADE = 1;
const H_CONNECTION = 2;
const H_KEY = 3;
const H_VERSION = 4;
const H_PROTOCOL = 5;
const H_EXTENSIONS = 6;
const NAMES = ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol", "sec-websocket-extensions"].map((n) => new TextEncoder().encode(n));
/** NAMES as clients spell them (browsers, ws, python-websockets). */
const SPELLED = ["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"].map((n) => new TextEncoder().encode(n));
/** By name length: the index in NAMES of the one name that long, or -1 (no two have one length). */
const FIELD_BY_LENGTH = new Int8Array(25).fill(-1);
for (let f = 0; f < NAMES.length; f++) {
  if (FIELD_BY_LENGTH[NAMES[f]!.length] !== -1) throw new Error("two header names of one length");
  FIELD_BY_LENGTH[NAMES[f]!.length] = f;
}

/**
 * Reads an upgrade request's header fields in place, allocating nothing: one instance per
 * server, re-filled by each scan(). The handshake of a connection whose server has no
 * upgrade hook needs no string at all (the accept key is hashed from the request's bytes);
 * anything unusual (a repeated field, a refusal) goes to parseUpgradeRequest, which builds
 * the request and names what is wrong.
 *
 * Searches and comparisons are Buffer's native ones where they can be (indexOf, compare,
 * copy), and the usual spellings are tried before the loops that accept any case or token
 * list: this runs for every connection, so a burst of upgrades has the JIT compile it, and
 * what a compilation takes (JSC keeps it) is a one-time cost the server pays in memory:
 * 0.6-0.8 MB less at a burst of 10,000 upgrades than with byte loops (bench/RESULTS.md,
 * WebSocket idle memory).
 */
export class UpgradeScan {
  /** Per field (H_*): value start and end in the scanned buffer; start -1 when absent. */
  readonly start = new Int32Array(NAMES.length);
  readonly end = new Int32Array(NAMES.length);
  private readonly sha1In = new Uint8Array(24 + GUID_BYTES.length);
  private readonly sha1Out = new Uint8Array(20);

  constructor() {
    this.sha1In.set(GUID_BYTES, 24);
  }

  /**
   * True when buf[start, start + length) (a request head as measureRequest measured it) is a
   * plain valid upgrade: "GET <target> HTTP/1.1", each needed field once and valid (Host,
   * Upgrade with websocket, Connection with upgrade, Sec-WebSocket-Version 13, a 16-byte
   * Sec-WebSocket-Key). False for anything else, including valid but unusual requests (a
   * field given twice, HTTP/1.2): parseUpgradeRequest then decides.
   */
  scan(buf: Uint8Array, start: number, length: number): boolean {
    const end = start + length;
    this.start.fill(-1);
    // "GET /... HTTP/1.1\r\n"
    if (length < 18 || buf[start] !== 71 || buf[start + 1] !== 69 || buf[start + 2] !== 84 || buf[start + 3] !== 32 || buf[start + 4] !== 47) return false;
    // The target runs to the first space, which must start " HTTP/1.1" ending the line.
    let p = indexOf.call(buf, 32, start + 5);
    let eol = indexOf.call(buf, 10, start + 5);
    if (p < 0 || eol < 0 || p > eol || end - p < 9 || compare.call(HTTP_11, buf, p, p + 9) !== 0) return false;
    p += 9;
    if (buf[p] === 13) p++;
    if (p !== eol) return false;
    p++;
    while (p < end) {
      eol = indexOf.call(buf, 10, p);
      if (eol < 0 || eol > end) eol = end;
      let lineEnd = eol > p && buf[eol - 1] === 13 ? eol - 1 : eol;
      if (lineEnd === p) break; // the blank line
      const colon = indexOf.call(buf, 58, p);
      if (colon < 0 || colon >= lineEnd || colon === p || buf[p] === 32 || buf[p] === 9) return false;
      // The field is known by its name's length (no two differ only there), then its spelling:
      // as clients send it (one native comparison), else any case.
      const len = colon - p;
      let field = len < FIELD_BY_LENGTH.length ? FIELD_BY_LENGTH[len]! : -1;
      if (field >= 0 && compare.call(SPELLED[field]!, buf, p, colon) !== 0 && !equalsLower(buf, p, NAMES[field]!)) field = -1;
      if (field >= 0) {
        if (this.start[field] !== -1) return false; // repeated
        let v = colon + 1;
        while (v < lineEnd && (buf[v] === 32 || buf[v] === 9)) v++;
        while (lineEnd > v && (buf[lineEnd - 1] === 32 || buf[lineEnd - 1] === 9)) lineEnd--;
        this.start[field] = v;
        this.end[field] = lineEnd;
      }
      p = eol + 1;
    }
    if (this.start[H_HOST] === -1 || this.end[H_HOST] === this.start[H_HOST]) return false;
    // "Upgrade: websocket" and "Connection: Upgrade" as most clients send them, else token lists.
    const us = this.start[H_UPGRADE]!;
    if (!isValue(buf, us, this.end[H_UPGRADE]!, WEBSOCKET) && !hasTokenBytes(buf, us, this.end[H_UPGRADE]!, "websocket")) return false;
    const cs = this.start[H_CONNECTION]!;
    if (!isValue(buf, cs, this.end[H_CONNECTION]!, UPGRADE) && !hasTokenBytes(buf, cs, this.end[H_CONNECTION]!, "upgrade")) return false;
    const vs = this.start[H_VERSION]!;
    if (vs === -1 || this.end[H_VERSION]! - vs !== 2 || buf[vs] !== 49 || buf[vs + 1] !== 51) return false;
    const ks = this.start[H_KEY]!;
    if (ks === -1 || this.end[H_KEY]! - ks !== 24 || buf[ks + 22] !== 61 || buf[ks + 23] !== 61) return false;
    for (let i = ks; i < ks + 22; i++) if (IS_BASE64[buf[i]!] === 0) return false;
    return true;
  }

  /** True when the scanned request has a Sec-WebSocket-Protocol / Sec-WebSocket-Extensions field. */
  get hasProtocols(): boolean {
    return this.start[H_PROTOCOL] !== -1;
  }

  get hasExtensions(): boolean {
    return this.start[H_EXTENSIONS] !== -1;
  }

  /** The scanned field's value as text (for the rare fields that need it). */
  text(buf: Uint8Array, field: "protocol" | "extensions"): string {
    const i = field === "protocol" ? H_PROTOCOL : H_EXTENSIONS;
    const s = this.start[i]!;
    return s === -1 ? "" : Buffer.from(buf.buffer, buf.byteOffset + s, this.end[i]! - s).toString("latin1");
  }

  /** The scanned key as text. */
  key(buf: Uint8Array): string {
    const s = this.start[H_KEY]!;
    return Buffer.from(buf.buffer, buf.byteOffset + s, 24).toString("latin1");
  }

  /**
   * Writes the 101 response for the scanned request (no subprotocol, no extensions) at
   * dst[pos]; returns PLAIN_101_BYTES. dst must have that much room. Allocates nothing.
   */
  write101(buf: Uint8Array, dst: Uint8Array, pos: number): number {
    const ks = this.start[H_KEY]!;
    copy.call(buf, this.sha1In, 0, ks, ks + 24);
    Bun.SHA1.hash(this.sha1In, this.sha1Out);
    dst.set(RESPONSE_HEAD, pos);
    let o = pos + RESPONSE_HEAD.length;
    const d = this.sha1Out;
    // base64 of 20 bytes: seven groups of 3, the last one short (2 bytes: 3 digits and "=").
    for (let i = 0; i < 21; i += 3) {
      const n = (d[i]! << 16) | (d[i + 1]! << 8) | (i < 18 ? d[i + 2]! : 0);
      dst[o] = BASE64[n >> 18]!;
      dst[o + 1] = BASE64[(n >> 12) & 63]!;
      dst[o + 2] = BASE64[(n >> 6) & 63]!;
      dst[o + 3] = BASE64[n & 63]!;
      o += 4;
    }
    dst[o - 1] = 61;
    dst.set(CRLF_CRLF, o);
    o += 4;
    return o - pos;
  }
}

const HTTP_11 = new TextEncoder().encode(" HTTP/1.1");

/** True when buf[p, p + name.length) is name (lower case) in any case. */
function equalsLower(buf: Uint8Array, p: number, name: Uint8Array): boolean {
  for (let i = 0; i < name.length; i++) if ((buf[p + i]! | 0x20) !== name[i]) return false;
  return true;
}

/** True when buf[s, e) is exactly value (s -1: absent). */
function isValue(buf: Uint8Array, s: number, e: number, value: Uint8Array): boolean {
  return s !== -1 && e - s === value.length && compare.call(value, buf, s, e) === 0;
}

const WEBSOCKET = new TextEncoder().encode("websocket");
const UPGRADE = new TextEncoder().encode("Upgrade");

/** True when the comma-separated list in buf[s, e) has `token` (case-insensitive). */
function hasTokenBytes(buf: Uint8Array, s: number, e: number, token: string): boolean {
  if (s === -1) return false;
  let p = s;
  while (p < e) {
    while (p < e && (buf[p] === 32 || buf[p] === 9 || buf[p] === 44)) p++;
    let q = p;
    while (q < e && buf[q] !== 44) q++;
    let t = q;
    while (t > p && (buf[t - 1] === 32 || buf[t - 1] === 9)) t--;
    if (t - p === token.length) {
      let i = 0;
      for (; i < token.length; i++) if ((buf[p + i]! | 0x20) !== token.charCodeAt(i)) break;
      if (i === token.length) return true;
    }
    p = q + 1;
  }
  return false;
}

/** 1 for the bytes of the base64 alphabet (A-Z a-z 0-9 + /), else 0. */
const IS_BASE64 = new Uint8Array(256);
for (let i = 0; i < BASE64.length; i++) IS_BASE64[BASE64[i]!] = 1;
