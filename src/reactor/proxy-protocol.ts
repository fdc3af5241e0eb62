/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2) that an L4 balancer puts in
 * front of a connection's bytes to say who the client really is. Only the parsing lives here;
 * the reactor decides when a header is required and what a bad one costs the connection.
 *
 * Version 1 is one text line: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" (TCP6 alike, or
 * "PROXY UNKNOWN ...\r\n"), at most 107 bytes with its CRLF. Version 2 is binary: a 12-byte
 * signature, a version/command byte, a family/transport byte, a 16-bit big-endian length,
 * then the addresses and any TLVs (which we skip: nothing here needs them).
 */
import type * as Net from "node:net";

/** node:net, loaded at first use (for its address checks): a TCP worker that never needs them does not pay for the module. */
let netModule: typeof Net | null = null;
function net(): typeof Net {
  return (netModule ??= require("node:net") as typeof Net);
}

/** 4 or 6 for an IPv4 or IPv6 address in text form, 0 for anything else (node:net's isIP, loaded at first use). */
export function ipVersion(address: string): number {
  return net().isIP(address);
}

/** parseProxyHeader: the bytes so far are a valid prefix of a header; wait for more. */
export const PROXY_INCOMPLETE = 0;
/** parseProxyHeader: the bytes are not a PROXY header (or a header we refuse: too long). */
export const PROXY_MALFORMED = -1;

/** The longest version-1 header the spec allows, CRLF included. */
export const PROXY_V1_MAX_BYTES = 107;
/**
 * The longest version-2 header we accept: 16 fixed bytes, 216 of UNIX addresses, and room for
 * TLVs (HAProxy's SSL and unique-id TLVs fit well within it). The wire format allows 64 KiB;
 * a balancer never sends that, and bounding it bounds what a bad peer makes us buffer.
 */
export const PROXY_V2_MAX_BYTES = 16 + 1024;

/** What a header said. Reused between calls (no object per connection): copy what you keep. */
export interface ProxyHeader {
  /**
   * "proxy": the header carries the client's address (TCP4/TCP6, v2 PROXY over INET/INET6).
   * "local": the balancer speaks for itself (v2 LOCAL, a health check) or the family is not
   * one we can use (v1 UNKNOWN, v2 UNSPEC/UNIX): keep the socket's own address.
   */
  kind: "proxy" | "local";
  /** 4 or 6 when kind is "proxy", else 0. */
  family: 0 | 4 | 6;
  /** The client's address as text ("203.0.113.7", "2001:db8::1"); "" when kind is "local". */
  sourceAddress: string;
  /** The client's port; 0 when kind is "local". */
  sourcePort: number;
  /** The address the client connected to (the balancer's frontend); "" when kind is "local". */
  destinationAddress: string;
  /** The port the client connected to; 0 when kind is "local". */
  destinationPort: number;
}

/** A fresh ProxyHeader to hand to parseProxyHeader. */
export function newProxyHeader(): ProxyHeader {
  return { kind: "local", family: 0, sourceAddress: "", sourcePort: 0, destinationAddress: "", destinationPort: 0 };
}

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "

/**
 * Parses the header at buf[start, end). Returns its length in bytes (consume that many; the
 * application's bytes follow), PROXY_INCOMPLETE while the bytes are a valid prefix, or
 * PROXY_MALFORMED for anything else (no signature, bad syntax, bad addresses or ports, longer
 * than PROXY_V1_MAX_BYTES / PROXY_V2_MAX_BYTES). On success `out` holds what it said.
 */
export function parseProxyHeader(buf: Uint8Array, start: number, end: number, out: ProxyHeader): number {
  const n = end - start;
  if (n <= 0) return PROXY_INCOMPLETE;
  // The first byte tells the versions apart: "\r" starts v2's signature, "P" starts v1.
  if (buf[start] === 0x0d) return parseV2(buf, start, end, out);
  if (buf[start] === 0x50) return parseV1(buf, start, end, out);
  return PROXY_MALFORMED;
}

function parseV2(buf: Uint8Array, start: number, end: number, out: ProxyHeader): number {
  const n = end - start;
  const sig = Math.min(n, 12);
  for (let i = 0; i < sig; i++) if (buf[start + i] !== V2_SIGNATURE[i]) return PROXY_MALFORMED;
  if (n < 16) return PROXY_INCOMPLETE;
  const verCmd = buf[start + 12]!;
  if (verCmd >> 4 !== 2) return PROXY_MALFORMED;
  const command = verCmd & 0x0f;
  if (command > 1) return PROXY_MALFORMED;
  const famProto = buf[start + 13]!;
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (family > 3 || transport > 2) return PROXY_MALFORMED;
  const bodyBytes = (buf[start + 14]! << 8) | buf[start + 15]!;
  const total = 16 + bodyBytes;
  if (total > PROXY_V2_MAX_BYTES) return PROXY_MALFORMED;
  // Address blocks must fit in the length the header declares.
  const need = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  if (command === 1 && bodyBytes < need) return PROXY_MALFORMED;
  if (n < total) return PROXY_INCOMPLETE;
  setLocal(out);
  // LOCAL (a health check from the balancer itself) and UNSPEC/UNIX/DGRAM keep the socket's
  // own address: there is no TCP client behind them whose address we could use.
  if (command === 0 || transport !== 1 || (family !== 1 && family !== 2)) return total;
  const a = start + 16;
  if (family === 1) {
    out.kind = "proxy";
    out.family = 4;
    out.sourceAddress = ipv4Text(buf, a);
    out.destinationAddress = ipv4Text(buf, a + 4);
    out.sourcePort = (buf[a + 8]! << 8) | buf[a + 9]!;
    out.destinationPort = (buf[a + 10]! << 8) | buf[a + 11]!;
  } else {
    out.kind = "proxy";
    out.family = 6;
    out.sourceAddress = ipv6Text(buf, a);
    out.destinationAddress = ipv6Text(buf, a + 16);
    out.sourcePort = (buf[a + 32]! << 8) | buf[a + 33]!;
    out.destinationPort = (buf[a + 34]! << 8) | buf[a + 35]!;
  }
  return total;
}

function parseV1(buf: Uint8Array, start: number, end: number, out: ProxyHeader): number {
  const n = end - start;
  const pre = Math.min(n, V1_PREFIX.length);
  for (let i = 0; i < pre; i++) if (buf[start + i] !== V1_PREFIX[i]) return PROXY_MALFORMED;
  // Find the CRLF within the first 107 bytes; until then only printable ASCII may appear.
  const limit = Math.min(n, PROXY_V1_MAX_BYTES);
  let lf = -1;
  for (let i = 0; i < limit; i++) {
    const c = buf[start + i]!;
    if (c === 0x0a) {
      lf = i;
      break;
    }
    if (c === 0x0d) {
      if (i + 1 < limit && buf[start + i + 1] !== 0x0a) return PROXY_MALFORMED;
      continue;
    }
    if (c < 0x20 || c > 0x7e) return PROXY_MALFORMED;
  }
  if (lf < 0) return n >= PROXY_V1_MAX_BYTES ? PROXY_MALFORMED : PROXY_INCOMPLETE;
  if (lf < 1 || buf[start + lf - 1] !== 0x0d) return PROXY_MALFORMED;
  const line = latin1(buf, start + V1_PREFIX.length, start + lf - 1);
  const total = lf + 1;
  setLocal(out);
  // "UNKNOWN" may be followed by anything (the spec says receivers ignore the rest).
  if (line === "UNKNOWN" || line.startsWith("UNKNOWN ")) return total;
  const parts = line.split(" ");
  if (parts.length !== 5) return PROXY_MALFORMED;
  const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string];
  let family: 4 | 6;
  if (proto === "TCP4") {
    if (!net().isIPv4(src) || !net().isIPv4(dst)) return PROXY_MALFORMED;
    family = 4;
  } else if (proto === "TCP6") {
    if (!net().isIPv6(src) || !net().isIPv6(dst)) return PROXY_MALFORMED;
    family = 6;
  } else return PROXY_MALFORMED;
  const sp = portOf(sport);
  const dp = portOf(dport);
  if (sp < 0 || dp < 0) return PROXY_MALFORMED;
  out.kind = "proxy";
  out.family = family;
  out.sourceAddress = src;
  out.destinationAddress = dst;
  out.sourcePort = sp;
  out.destinationPort = dp;
  return total;
}

function setLocal(out: ProxyHeader): void {
  out.kind = "local";
  out.family = 0;
  out.sourceAddress = "";
  out.sourcePort = 0;
  out.destinationAddress = "";
  out.destinationPort = 0;
}

function latin1(buf: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

/** A decimal port 0..65535 without a sign or leading zeros (the spec's form), else -1. */
function portOf(s: string): number {
  if (s.length === 0 || s.length > 5 || (s.length > 1 && s.charCodeAt(0) === 0x30)) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v <= 65535 ? v : -1;
}

function ipv4Text(buf: Uint8Array, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** RFC 5952 text: lower case, leading zeros dropped, the longest run of 2+ zero groups as "::". */
function ipv6Text(buf: Uint8Array, at: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((buf[at + 2 * i]! << 8) | buf[at + 2 * i + 1]!);
  // An IPv4-mapped address reads as ::ffff:a.b.c.d, as the kernel and Bun print it.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${ipv4Text(buf, at + 12)}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => g.slice(from, to).map((x) => x.toString(16)).join(":");
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/** The version-1 header line for a TCP connection from src:sport to dst:dport (for tests and clients). */
export function encodeProxyV1(src: string, sport: number, dst: string, dport: number): Uint8Array {
  const proto = src.includes(":") ? "TCP6" : "TCP4";
  return new TextEncoder().encode(`PROXY ${proto} ${src} ${dst} ${sport} ${dport}\r\n`);
}
