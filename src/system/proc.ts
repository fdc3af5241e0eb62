/**
 * Readers of single /proc files: the numbers doctor, the planners and the c1m experiment
 * take from the kernel (descriptor limits, sockets, slab caches, memory, TCP counters,
 * processes), read straight from /proc: no child process, no `sysctl` binary.
 *
 * Every reader takes a `read(path)` function so tests can feed it fixed text; the default
 * reads the file and answers undefined when it is missing or unreadable.
 */
import { readFileSync } from "node:fs";

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
