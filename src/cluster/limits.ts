/**
 * What this Linux machine allows: file-descriptor limits, ephemeral ports, listen queues,
 * TCP memory, conntrack, RAM — read straight from /proc (no child process, no `sysctl`
 * binary), so doctor, `--workers auto` and the c1m experiment all see the same numbers.
 *
 * Every reader takes a `read(path)` function so tests can feed it fixed text; the default
 * reads the file and answers undefined when it is missing or unreadable.
 */
import { readFileSync } from "node:fs";
import { cpus } from "node:os";

/** Reads a /proc or /sys file; undefined when it does not exist or cannot be read. */
export type ProcReader = (path: string) => string | undefined;

/** The default ProcReader: the file's text, or undefined. */
export const readProcFile: ProcReader = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

/** A sysctl triple such as tcp_mem (pages) or tcp_rmem (bytes). */
export interface Triple {
  min: number;
  mid: number;
  max: number;
}

/** conntrack state, when the nf_conntrack module is loaded. */
export interface ConntrackInfo {
  /** net.netfilter.nf_conntrack_max: most tracked flows; more are dropped ("table full"). */
  max: number;
  /** Flows tracked now. */
  count: number;
  /** Hash buckets (sized at module load). */
  buckets: number;
}

/** Everything doctor and the planners read. Counts are plain numbers; Infinity = "unlimited". */
export interface SystemLimits {
  /** RLIMIT_NOFILE of this process: soft (what applies) and hard (what the soft limit may be raised to). */
  nofileSoft: number;
  nofileHard: number;
  /** fs.nr_open: the largest RLIMIT_NOFILE any process may get. */
  nrOpen: number;
  /** fs.file-max: open files the whole system may hold. */
  fileMax: number;
  /** fs.file-nr first field: file handles allocated now, system-wide. */
  filesAllocated: number;
  /** net.ipv4.ip_local_port_range, inclusive; `count` ephemeral ports per address tuple. */
  portRange: { low: number; high: number; count: number };
  /** net.core.somaxconn: cap of every listen backlog (accept queue). */
  somaxconn: number;
  /** net.ipv4.tcp_max_syn_backlog: half-open connections per listener. */
  tcpMaxSynBacklog: number;
  /** net.ipv4.tcp_mem in pages: below min no pressure; above mid pressure; max is a hard cap. */
  tcpMemPages: Triple;
  /** net.ipv4.tcp_rmem / tcp_wmem in bytes: min, default, max per socket buffer. */
  tcpRmem: Triple;
  tcpWmem: Triple;
  /** net.ipv4.tcp_tw_reuse (0 off, 1 on, 2 loopback only). */
  tcpTwReuse: number;
  /** conntrack, or null when the module is not loaded. */
  conntrack: ConntrackInfo | null;
  /** /proc/meminfo MemTotal and MemAvailable, bytes. */
  memTotalBytes: number;
  memAvailableBytes: number;
  /** Bytes per page (KernelPageSize; 4096 when unknown). */
  pageBytes: number;
  /** Logical CPUs. */
  cpus: number;
  /** /proc/net/sockstat now: sockets in use and TCP memory in pages. */
  sockstat: Sockstat;
}

/** /proc/net/sockstat, the TCP part. */
export interface Sockstat {
  /** "sockets: used" — every socket of every kind. */
  socketsUsed: number;
  tcpInuse: number;
  tcpOrphan: number;
  tcpTimeWait: number;
  tcpAlloc: number;
  /** Pages charged to TCP buffers (the number tcp_mem is compared against). */
  tcpMemPages: number;
}

/** One /proc/slabinfo line. */
export interface SlabCache {
  name: string;
  activeObjects: number;
  objects: number;
  objectBytes: number;
  objectsPerSlab: number;
  pagesPerSlab: number;
  /** Bytes held by the cache's slabs: slabs × pagesPerSlab × pageBytes. */
  bytes: number;
}

function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

function triple(text: string | undefined): Triple | undefined {
  if (text === undefined) return undefined;
  const parts = text.trim().split(/\s+/).map(Number);
  if (parts.length < 3 || parts.some((p) => !Number.isFinite(p))) return undefined;
  return { min: parts[0]!, mid: parts[1]!, max: parts[2]! };
}

/**
 * Parses the "Max open files" row of /proc/<pid>/limits; returns { soft, hard } with
 * Infinity for "unlimited", or undefined when the row is missing.
 */
export function parseNofile(limitsText: string): { soft: number; hard: number } | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limitsText);
  if (!m) return undefined;
  const v = (s: string) => (s === "unlimited" ? Infinity : Number(s));
  const soft = v(m[1]!);
  const hard = v(m[2]!);
  if (Number.isNaN(soft) || Number.isNaN(hard)) return undefined;
  return { soft, hard };
}

/** Parses /proc/meminfo into bytes per key (`MemTotal`, `MemAvailable`, `Slab`, ...). */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^(\S+):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * (line.includes("kB") ? 1024 : 1);
  }
  return out;
}

/** Parses /proc/net/sockstat (the "sockets:" and "TCP:" lines). Missing fields are 0. */
export function parseSockstat(text: string): Sockstat {
  const field = (line: string | undefined, key: string) => {
    if (!line) return 0;
    const m = new RegExp(`\\b${key} (\\d+)`).exec(line);
    return m ? Number(m[1]) : 0;
  };
  const lines = text.split("\n");
  const sockets = lines.find((l) => l.startsWith("sockets:"));
  const tcp = lines.find((l) => l.startsWith("TCP:"));
  return {
    socketsUsed: field(sockets, "used"),
    tcpInuse: field(tcp, "inuse"),
    tcpOrphan: field(tcp, "orphan"),
    tcpTimeWait: field(tcp, "tw"),
    tcpAlloc: field(tcp, "alloc"),
    tcpMemPages: field(tcp, "mem"),
  };
}

/**
 * Parses /proc/slabinfo (version 2.x) into caches by name. Bytes are counted per slab, so
 * they include each slab's unused objects: that is memory the caches really hold.
 */
export function parseSlabinfo(text: string, pageBytes = 4096): Map<string, SlabCache> {
  const out = new Map<string, SlabCache>();
  for (const line of text.split("\n")) {
    if (line.startsWith("slabinfo") || line.startsWith("#") || line.trim() === "") continue;
    const [head, , slabdata] = line.split(":");
    if (head === undefined || slabdata === undefined) continue;
    const f = head.trim().split(/\s+/);
    const s = slabdata.trim().split(/\s+/);
    if (f.length < 6 || s.length < 3) continue;
    const numSlabs = Number(s[2]);
    const pagesPerSlab = Number(f[5]);
    out.set(f[0]!, {
      name: f[0]!,
      activeObjects: Number(f[1]),
      objects: Number(f[2]),
      objectBytes: Number(f[3]),
      objectsPerSlab: Number(f[4]),
      pagesPerSlab,
      bytes: numSlabs * pagesPerSlab * pageBytes,
    });
  }
  return out;
}

/** VmRSS of a process in bytes (from /proc/<pid>/status), or undefined when it is gone. */
export function readRssBytes(pid: number, read: ProcReader = readProcFile): number | undefined {
  const text = read(`/proc/${pid}/status`);
  if (text === undefined) return undefined;
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** True while a process with this pid exists and is not a zombie. */
export function isProcessAlive(pid: number, read: ProcReader = readProcFile): boolean {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === undefined) return false;
  // The state letter follows the parenthesised command name, which may itself hold spaces.
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

/**
 * Parses /proc/net/netstat (and /proc/net/snmp: same layout): header line then value line per
 * section; returns "Section.Name" -> value, e.g. "TcpExt.ListenOverflows".
 */
export function parseNetstat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const lines = text.split("\n");
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const h = lines[i]!.trim().split(/\s+/);
    const v = lines[i + 1]!.trim().split(/\s+/);
    const section = h[0]?.replace(/:$/, "");
    if (!section || v[0] !== h[0]) continue;
    for (let k = 1; k < h.length && k < v.length; k++) out[`${section}.${h[k]}`] = Number(v[k]);
  }
  return out;
}

/** TcpExt counters from /proc/net/netstat ("TcpExt.ListenOverflows", ...). */
export function readNetstat(read: ProcReader = readProcFile): Record<string, number> {
  return parseNetstat(read("/proc/net/netstat") ?? "");
}

/** The system's page size in bytes (from /proc/self/smaps), 4096 when unknown. */
export function readPageBytes(read: ProcReader = readProcFile): number {
  const smaps = read("/proc/self/smaps_rollup") ?? read("/proc/self/smaps");
  const m = smaps ? /KernelPageSize:\s+(\d+) kB/.exec(smaps) : null;
  if (m) return Number(m[1]) * 1024;
  return 4096;
}

/** Reads /proc/net/sockstat now. */
export function readSockstat(read: ProcReader = readProcFile): Sockstat {
  return parseSockstat(read("/proc/net/sockstat") ?? "");
}

/** Reads /proc/slabinfo (root only); an empty map when it cannot be read. */
export function readSlabinfo(read: ProcReader = readProcFile, pageBytes = 4096): Map<string, SlabCache> {
  const text = read("/proc/slabinfo");
  return text === undefined ? new Map() : parseSlabinfo(text, pageBytes);
}

/** Reads /proc/meminfo (bytes per key). */
export function readMeminfo(read: ProcReader = readProcFile): Record<string, number> {
  return parseMeminfo(read("/proc/meminfo") ?? "");
}

/**
 * Reads every limit. Values the machine does not expose come back as conservative
 * stand-ins (documented per field): a file that cannot be read never throws.
 */
export function readSystemLimits(read: ProcReader = readProcFile): SystemLimits {
  const nofile = parseNofile(read("/proc/self/limits") ?? "") ?? { soft: 1024, hard: 1024 };
  const range = (read("/proc/sys/net/ipv4/ip_local_port_range") ?? "32768 60999").trim().split(/\s+/).map(Number);
  const low = range[0] ?? 32768;
  const high = range[1] ?? 60999;
  const fileNr = (read("/proc/sys/fs/file-nr") ?? "0").trim().split(/\s+/).map(Number);
  const ctMax = num(read("/proc/sys/net/netfilter/nf_conntrack_max")) ?? num(read("/proc/sys/net/nf_conntrack_max"));
  const mem = readMeminfo(read);
  const pageBytes = readPageBytes(read);
  return {
    nofileSoft: nofile.soft,
    nofileHard: nofile.hard,
    nrOpen: num(read("/proc/sys/fs/nr_open")) ?? 1048576,
    fileMax: num(read("/proc/sys/fs/file-max")) ?? Infinity,
    filesAllocated: fileNr[0] ?? 0,
    portRange: { low, high, count: Math.max(0, high - low + 1) },
    somaxconn: num(read("/proc/sys/net/core/somaxconn")) ?? 4096,
    tcpMaxSynBacklog: num(read("/proc/sys/net/ipv4/tcp_max_syn_backlog")) ?? 1024,
    tcpMemPages: triple(read("/proc/sys/net/ipv4/tcp_mem")) ?? { min: 0, mid: 0, max: 0 },
    tcpRmem: triple(read("/proc/sys/net/ipv4/tcp_rmem")) ?? { min: 4096, mid: 131072, max: 6291456 },
    tcpWmem: triple(read("/proc/sys/net/ipv4/tcp_wmem")) ?? { min: 4096, mid: 16384, max: 4194304 },
    tcpTwReuse: num(read("/proc/sys/net/ipv4/tcp_tw_reuse")) ?? 0,
    conntrack:
      ctMax === undefined
        ? null
        : {
            max: ctMax,
            count: num(read("/proc/sys/net/netfilter/nf_conntrack_count")) ?? 0,
            buckets: num(read("/proc/sys/net/netfilter/nf_conntrack_buckets")) ?? 0,
          },
    memTotalBytes: mem.MemTotal ?? 0,
    memAvailableBytes: mem.MemAvailable ?? mem.MemFree ?? 0,
    pageBytes,
    cpus: Math.max(1, cpus().length),
    sockstat: readSockstat(read),
  };
}
