/**
 * What c1m reads of the machine around a phase: memory, the socket slab caches, TCP sockets
 * in use, processes' RSS; and the waits that make a phase's "before" picture clean (the
 * previous phase's sockets and processes gone).
 */
import {
  isProcessAlive,
  readMeminfo,
  readRssBytes,
  readSlabinfo,
  readSockstat,
  SOCKET_GROWTH_CACHES,
  type ProcReader,
  type SlabCache,
  type Sockstat,
} from "../system/index.ts";

/** The machine at one instant, as a phase's figures need it. */
interface MachineState {
  /** MemTotal − MemAvailable (what the issue asks for; MemAvailable counts reclaimable slab — dentry, sock_inode_cache — as free). */
  memUsedBytes: number;
  /** MemTotal − MemFree − Buffers − Cached: every slab byte counted as used. */
  memUsedAllSlabBytes: number;
  memAvailableBytes: number;
  slabBytes: number;
  sockstat: Sockstat;
  slabs: Record<string, { activeObjects: number; bytes: number; objectBytes: number }>;
}


/** Sockets in use by TCP over the whole machine (the TCP slab's objects): a TUN phase's sockets are in a namespace whose sockstat the root namespace does not see. */
export function tcpSlabObjects(pageBytes: number): number {
  return readSlabinfo(undefined, pageBytes).get("TCP")?.activeObjects ?? 0;
}

/** Reads the machine now; `netRead` reads the phase's namespace's /proc/net (sockstat). */
export function machineState(pageBytes: number, netRead: ProcReader): MachineState {
  const mem = readMeminfo();
  const slabs = readSlabinfo(undefined, pageBytes);
  const pick: MachineState["slabs"] = {};
  for (const name of SOCKET_GROWTH_CACHES) {
    const c: SlabCache | undefined = slabs.get(name);
    if (c) pick[name] = { activeObjects: c.activeObjects, bytes: c.bytes, objectBytes: c.objectBytes };
  }
  const total = mem.MemTotal ?? 0;
  const avail = mem.MemAvailable ?? 0;
  const allSlab = total - (mem.MemFree ?? 0) - (mem.Buffers ?? 0) - (mem.Cached ?? 0);
  return { memUsedBytes: total - avail, memUsedAllSlabBytes: allSlab, memAvailableBytes: avail, slabBytes: mem.Slab ?? 0, sockstat: readSockstat(netRead), slabs: pick };
}

/** Σ VmRSS of `pids` (a gone process counts 0). */
export function sumRss(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) sum += readRssBytes(pid) ?? 0;
  return sum;
}

/** Waits until every pid is gone (up to timeoutMs); returns those still alive. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = performance.now() + timeoutMs;
  let alive = pids.filter((p) => isProcessAlive(p));
  while (alive.length > 0 && performance.now() < deadline) {
    await Bun.sleep(50);
    alive = alive.filter((p) => isProcessAlive(p));
  }
  return alive;
}

/** Waits (up to timeoutMs) until the TCP slab holds at most `ceiling` sockets: a destroyed namespace's sockets are gone. */
export async function settleSlab(ceiling: number, pageBytes: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (tcpSlabObjects(pageBytes) > ceiling) {
    if (performance.now() >= deadline) return false;
    await Bun.sleep(250);
  }
  return true;
}

/** Waits (up to timeoutMs) until TCP sockets in use are at most `ceiling`: the previous phase's sockets are gone. */
export async function settleSockets(ceiling: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (readSockstat().tcpInuse > ceiling) {
    if (performance.now() >= deadline) return false;
    await Bun.sleep(200);
  }
  return true;
}
