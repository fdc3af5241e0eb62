/**
 * What this Linux machine allows: file-descriptor limits, ephemeral ports, listen queues,
 * TCP memory, conntrack, RAM, all read in one go (readSystemLimits), so doctor,
 * `--workers auto` and the c1m experiment all see the same numbers.
 */
import { cpus } from "node:os";
import { parseNofile, readMeminfo, readPageBytes, readProcFile, readSockstat, type ProcReader, type Sockstat } from "./proc.ts";

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
