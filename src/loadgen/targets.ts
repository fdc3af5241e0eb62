/**
 * Where connections go and where they come from.
 *
 * A connection is identified by the kernel by (source IP, source port, destination IP,
 * destination port); the source port comes from ip_local_port_range (~28,000 ports), so one
 * (source IP, destination IP, destination port) tuple holds at most that many connections,
 * and the kernel's port search slows down long before. Every address in 127.0.0.0/8 is
 * loopback, so the load generator spreads connections over many of them:
 *
 * - sources: it binds each connection to a source address (Bun.connect's localAddress).
 *   bind() picks the port per address without knowing the destination, and on Linux it
 *   slows down sharply past a few thousand ports per address, so the default keeps
 *   DEFAULT_CONNECTIONS_PER_SOURCE (src/system) connections per source address;
 * - targets: host:port ranges; a server on 0.0.0.0 answers on every 127.x.y.z.
 */
import { MyriadError, MyriadTypeError } from "../errors.ts";
import { DEFAULT_CONNECTIONS_PER_SOURCE } from "../system/index.ts";

/** A destination. */
export interface Target {
  host: string;
  port: number;
}

/** First source address of `--sources auto`: clear of 127.0.0.1 and of the usual 127.0.0.x servers. */
const AUTO_SOURCE_BASE = "127.1.0.1";

/** An error in --targets / --sources, saying what is accepted. */
export class TargetSpecError extends MyriadError {
  constructor(message: string) {
    super("ERR_LOADGEN_ADDRESS", message);
  }
}

/** "127.0.0.1" -> 2130706433; undefined for anything that is not a dotted IPv4 address. */
export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s.trim());
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return undefined;
    n = n * 256 + b;
  }
  return n;
}

/** 2130706433 -> "127.0.0.1". */
export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const LOOPBACK_LOW = 127 * 2 ** 24;
const LOOPBACK_HIGH = LOOPBACK_LOW + 2 ** 24 - 1;

function isLoopbackV4(n: number): boolean {
  return n >= LOOPBACK_LOW && n <= LOOPBACK_HIGH;
}

/**
 * Expands an address list: "127.0.0.1", "127.0.0.1-127.0.0.20", "127.1.0.0/24" (network and
 * broadcast addresses skipped), comma-separated; "::1" and "localhost" are kept as they are.
 * Only loopback (127.0.0.0/8, ::1): this tool never targets another machine. At most `limit` addresses.
 */
export function parseAddresses(spec: string, what: string, limit = 1 << 20): string[] {
  if (typeof spec !== "string") throw new MyriadTypeError("ERR_LOADGEN_ADDRESS", `${what} must be a string of addresses, got ${typeof spec}`);
  const out: string[] = [];
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (part === "::1" || part === "localhost") {
      out.push(part);
      continue;
    }
    let from: number | undefined;
    let to: number | undefined;
    const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(part);
    if (cidr) {
      const base = parseIPv4(cidr[1]!);
      const bits = Number(cidr[2]);
      if (base !== undefined && bits >= 8 && bits <= 32) {
        const size = 2 ** (32 - bits);
        const net = base - (base % size);
        from = size > 2 ? net + 1 : net;
        to = size > 2 ? net + size - 2 : net + size - 1;
      }
    } else {
      const [a, b] = part.split("-");
      from = parseIPv4(a ?? "");
      to = b === undefined ? from : parseIPv4(b);
    }
    if (from === undefined || to === undefined || to < from) {
      throw new TargetSpecError(
        `${what} must be loopback IPv4 addresses like 127.0.0.1, 127.0.0.1-127.0.0.20 or 127.1.0.0/16 (or ::1), got "${part}"`,
      );
    }
    if (!isLoopbackV4(from) || !isLoopbackV4(to)) {
      throw new TargetSpecError(`${what} must stay inside 127.0.0.0/8 (loopback only), got "${part}"`);
    }
    if (out.length + (to - from + 1) > limit) {
      throw new TargetSpecError(`${what}: at most ${limit} addresses, "${spec}" names more`);
    }
    for (let n = from; n <= to; n++) out.push(formatIPv4(n));
  }
  if (out.length === 0) throw new TargetSpecError(`${what} must name at least one address, got "${spec}"`);
  return out;
}

/**
 * Parses targets: items "HOSTS:PORTS" separated by commas or spaces, where HOSTS is one
 * address or a range (127.0.0.1-127.0.0.4) and PORTS one port or a range (7000-7003); a
 * bare port means 127.0.0.1. "[::1]:7000" for IPv6 loopback. Every host × port pair is one target.
 */
export function parseTargets(spec: string | readonly string[], limit = 1 << 16): Target[] {
  if (typeof spec !== "string" && !(Array.isArray(spec) && spec.every((s) => typeof s === "string"))) {
    throw new MyriadTypeError("ERR_LOADGEN_ADDRESS", `targets must be a string like "127.0.0.1:7000" or an array of them, got ${typeof spec}`);
  }
  const items = (typeof spec === "string" ? [spec] : spec).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
  const out: Target[] = [];
  for (const item of items) {
    let hostPart = "127.0.0.1";
    let portPart = item;
    const v6 = /^\[(.+)\]:(.+)$/.exec(item);
    if (v6) {
      hostPart = v6[1]!;
      portPart = v6[2]!;
    } else if (item.includes(":")) {
      const i = item.lastIndexOf(":");
      hostPart = item.slice(0, i);
      portPart = item.slice(i + 1);
    }
    const pm = /^(\d+)(?:-(\d+))?$/.exec(portPart);
    const p1 = pm ? Number(pm[1]) : NaN;
    const p2 = pm && pm[2] !== undefined ? Number(pm[2]) : p1;
    if (!pm || p1 < 1 || p2 > 65535 || p2 < p1) {
      throw new TargetSpecError(`targets must look like 127.0.0.1:7000, 127.0.0.1-127.0.0.4:7000-7003 or [::1]:7000 (ports 1..65535), got "${item}"`);
    }
    const hosts = parseAddresses(hostPart, "target hosts", limit);
    for (const host of hosts) {
      for (let port = p1; port <= p2; port++) {
        out.push({ host, port });
        if (out.length > limit) throw new TargetSpecError(`targets: at most ${limit} host:port pairs`);
      }
    }
  }
  if (out.length === 0) throw new TargetSpecError(`targets must name at least one host:port, got "${String(spec)}"`);
  return out;
}

/**
 * Resolves `--sources`: "none" (no bind: the kernel picks 127.0.0.1 for 127.x targets),
 * "auto" (ceil(connections / perSource) addresses from 127.1.0.1 up, skipping .0 and .255),
 * or an address list as parseAddresses accepts.
 */
export function resolveSources(spec: string, connections: number, perSource = DEFAULT_CONNECTIONS_PER_SOURCE): string[] {
  if (typeof spec !== "string") throw new MyriadTypeError("ERR_LOADGEN_ADDRESS", `sources must be "auto", "none" or a string of addresses, got ${typeof spec}`);
  const s = spec.trim();
  if (s === "none" || s === "") return [];
  if (s === "auto") return autoSources(Math.max(1, Math.ceil(connections / Math.max(1, perSource))));
  return parseAddresses(s, "sources");
}

/**
 * `count` loopback addresses from `base` (default 127.1.0.1) up, skipping those ending in .0
 * and .255. Throws TargetSpecError past 127.255.255.254.
 */
export function autoSources(count: number, base = AUTO_SOURCE_BASE): string[] {
  const out: string[] = [];
  let a = parseIPv4(base);
  if (a === undefined || !isLoopbackV4(a)) throw new TargetSpecError(`sources: base must be an address in 127.0.0.0/8, got "${base}"`);
  while (out.length < count) {
    const last = a & 255;
    if (last !== 0 && last !== 255) out.push(formatIPv4(a));
    a++;
    if (a > LOOPBACK_HIGH) throw new TargetSpecError(`sources: ${count} addresses from ${base} do not fit in 127.0.0.0/8`);
  }
  return out;
}

/**
 * The tuple of global connection `index`: source sources[index % S] (undefined when not
 * binding), target targets[floor(index / S) % T]. Over consecutive indices every source and
 * every target gets an equal share (±1 per source, ±S per target), and every (source, target)
 * pair appears about equally often (at most maxPerTuple + 1 times).
 */
export function tupleOf(index: number, sources: readonly string[], targets: readonly Target[]): { source: string | undefined; target: Target } {
  const S = sources.length;
  if (S === 0) return { source: undefined, target: targets[index % targets.length]! };
  return { source: sources[index % S], target: targets[Math.floor(index / S) % targets.length]! };
}

/**
 * Most connections that land on one (source, destination IP, destination port) tuple when
 * `connections` are spread by tupleOf — what must stay well under the ephemeral port range.
 */
export function maxPerTuple(connections: number, sourceCount: number, targetCount: number): number {
  return Math.ceil(connections / (Math.max(1, sourceCount) * targetCount));
}

/** Splits `total` into `parts` shares differing by at most one, larger first. */
export function splitEvenly(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}
