/**
 * Which slab caches a TCP socket costs the kernel, in the two senses the project uses:
 * the objects one idle socket holds (doctor's per-socket model, from object sizes), and every
 * cache whose growth a run of many connections is charged for (c1m's measurement). The
 * second list holds the first: it adds caches a socket draws from only sometimes or through
 * a general-purpose cache (a client's bind bucket, a request sock during the handshake,
 * socket buffers' heads, kmalloc'd per-socket state), whose object sizes cannot be summed
 * per socket but whose growth over a run is the sockets'.
 */
import type { SlabCache } from "./proc.ts";

/** Slab caches in which every idle TCP socket holds exactly one object: their object sizes add up to its kernel bytes. */
export const SOCKET_SLAB_CACHES = ["TCP", "sock_inode_cache", "filp", "eventpoll_epi", "dentry"] as const;

/** Every slab cache whose growth during a run is charged to the sockets (SOCKET_SLAB_CACHES and the ones a socket draws from besides). */
export const SOCKET_GROWTH_CACHES = [
  ...SOCKET_SLAB_CACHES,
  "eventpoll_pwq",
  "tcp_bind_bucket",
  "tcp_bind2_bucket",
  "request_sock_TCP",
  "skbuff_head_cache",
  "skbuff_small_head",
  "kmalloc-64",
  "kmalloc-128",
  "kmalloc-192",
  "kmalloc-256",
  "kmalloc-512",
  "kmalloc-1k",
  "kmalloc-cg-64",
  "kmalloc-cg-128",
  "kmalloc-cg-192",
  "kmalloc-cg-256",
  "kmalloc-cg-512",
  "kmalloc-cg-1k",
] as const;

/** Kernel bytes per idle socket from the object sizes of SOCKET_SLAB_CACHES, or undefined when slabinfo is unreadable. */
export function kernelBytesPerSocketFromSlabs(slabs: Map<string, SlabCache> | undefined): number | undefined {
  if (!slabs || !slabs.has("TCP")) return undefined;
  let sum = 0;
  for (const name of SOCKET_SLAB_CACHES) sum += slabs.get(name)?.objectBytes ?? 0;
  return sum;
}
