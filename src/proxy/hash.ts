/**
 * The key hashes of twemproxy (nutcracker 0.5.0's hashkit), bit for bit, over a byte range of
 * a request buffer: a key lands on the same server as with nutcracker only if it hashes to
 * the same 32-bit value.
 *
 * nutcracker reads key bytes as C `char`, which is signed on x86-64 and arm64 Linux: where
 * its code widens a byte without a mask (the FNV family, one_at_a_time, one step of hsieh) a
 * byte >= 0x80 becomes 0xffffffxx. `sx` reproduces that; every function returns an unsigned
 * 32-bit integer and allocates nothing.
 */
import { md5Into } from "./md5.ts";

/** A key hash over buf[start, end): an unsigned 32-bit integer. */
export type KeyHash = (buf: Uint8Array, start: number, end: number) => number;

/** The hash names nutcracker accepts in `hash:`, in its own order. */
export const HASH_NAMES = [
  "one_at_a_time",
  "md5",
  "crc16",
  "crc32",
  "crc32a",
  "fnv1_64",
  "fnv1a_64",
  "fnv1_32",
  "fnv1a_32",
  "hsieh",
  "murmur",
  "jenkins",
] as const;

/** One of HASH_NAMES. */
export type HashName = (typeof HASH_NAMES)[number];

/** A byte as a signed C char widened to 32 bits. */
function sx(b: number): number {
  return (b << 24) >> 24;
}

/**
 * fnv1_64 as nutcracker computes it: 64-bit FNV-1 truncated to 32 bits at the end. The low 32
 * bits of a 64-bit product depend only on the low 32 bits of its factors, so 32-bit
 * arithmetic with the truncated basis (0x84222325) and prime (0x1b3) gives the same value.
 */
function fnv1_64(buf: Uint8Array, start: number, end: number): number {
  let h = 0x84222325 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h, 0x1b3) ^ sx(buf[i] as number);
  return h >>> 0;
}

/** fnv1a_64 as nutcracker computes it: in 32 bits throughout, with the 64-bit constants truncated. */
function fnv1a_64(buf: Uint8Array, start: number, end: number): number {
  let h = 0x84222325 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ sx(buf[i] as number), 0x1b3);
  return h >>> 0;
}

/** 32-bit FNV-1. */
function fnv1_32(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h, 0x01000193) ^ sx(buf[i] as number);
  return h >>> 0;
}

/** 32-bit FNV-1a. */
function fnv1a_32(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ sx(buf[i] as number), 0x01000193);
  return h >>> 0;
}

/** Bob Jenkins' one-at-a-time hash. */
function one_at_a_time(buf: Uint8Array, start: number, end: number): number {
  let v = 0;
  for (let i = start; i < end; i++) {
    v = (v + sx(buf[i] as number)) | 0;
    v = (v + (v << 10)) | 0;
    v ^= v >>> 6;
  }
  v = (v + (v << 3)) | 0;
  v ^= v >>> 11;
  v = (v + (v << 15)) | 0;
  return v >>> 0;
}

const digest = new Uint8Array(16);

/** The first little-endian word of the key's MD5 digest. */
function md5(buf: Uint8Array, start: number, end: number): number {
  md5Into(buf, start, end, digest);
  return ((digest[0] as number) | ((digest[1] as number) << 8) | ((digest[2] as number) << 16) | ((digest[3] as number) << 24)) >>> 0;
}

const CRC16_TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  CRC16_TABLE[i] = c;
}

/**
 * nutcracker's crc16 (CCITT/XMODEM table), which keeps its register in 32 bits without
 * masking it back to 16: the result carries the shifted-out bits too.
 */
function crc16(buf: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = (crc << 8) ^ (CRC16_TABLE[((crc >>> 8) ^ (buf[i] as number)) & 0xff] as number);
  return crc >>> 0;
}

const CRC32_TABLE = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC32_TABLE[i] = c;
}

function crc32Register(buf: Uint8Array, start: number, end: number): number {
  let crc = -1;
  for (let i = start; i < end; i++) crc = (CRC32_TABLE[(crc ^ (buf[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return crc;
}

/** libmemcached's crc32: bits 16..30 of the standard CRC-32 (a 15-bit value). */
function crc32(buf: Uint8Array, start: number, end: number): number {
  return (~crc32Register(buf, start, end) >>> 16) & 0x7fff;
}

/** The standard CRC-32 (IEEE 802.3). */
function crc32a(buf: Uint8Array, start: number, end: number): number {
  return ~crc32Register(buf, start, end) >>> 0;
}

/** Paul Hsieh's SuperFastHash, with nutcracker's signed read of the third byte of a 3-byte tail. */
function hsieh(buf: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len <= 0) return 0;
  let hash = 0;
  let p = start;
  const rem = len & 3;
  for (let n = len >>> 2; n > 0; n--) {
    hash = (hash + ((buf[p] as number) | ((buf[p + 1] as number) << 8))) | 0;
    const tmp = (((buf[p + 2] as number) | ((buf[p + 3] as number) << 8)) << 11) ^ hash;
    hash = (hash << 16) ^ tmp;
    p += 4;
    hash = (hash + (hash >>> 11)) | 0;
  }
  switch (rem) {
    case 3:
      hash = (hash + ((buf[p] as number) | ((buf[p + 1] as number) << 8))) | 0;
      hash ^= hash << 16;
      hash ^= sx(buf[p + 2] as number) << 18;
      hash = (hash + (hash >>> 11)) | 0;
      break;
    case 2:
      hash = (hash + ((buf[p] as number) | ((buf[p + 1] as number) << 8))) | 0;
      hash ^= hash << 11;
      hash = (hash + (hash >>> 17)) | 0;
      break;
    case 1:
      hash = (hash + (buf[p] as number)) | 0;
      hash ^= hash << 10;
      hash = (hash + (hash >>> 1)) | 0;
      break;
  }
  hash ^= hash << 3;
  hash = (hash + (hash >>> 5)) | 0;
  hash ^= hash << 4;
  hash = (hash + (hash >>> 17)) | 0;
  hash ^= hash << 25;
  hash = (hash + (hash >>> 6)) | 0;
  return hash >>> 0;
}

/** MurmurHash2 with nutcracker's seed (0xdeadbeef * length). */
function murmur(buf: Uint8Array, start: number, end: number): number {
  const m = 0x5bd1e995;
  let len = end - start;
  let h = Math.imul(0xdeadbeef | 0, len) ^ len;
  let p = start;
  while (len >= 4) {
    let k = (buf[p] as number) | ((buf[p + 1] as number) << 8) | ((buf[p + 2] as number) << 16) | ((buf[p + 3] as number) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
    p += 4;
    len -= 4;
  }
  // The last 1-3 bytes (C's fall-through switch).
  if (len >= 3) h ^= (buf[p + 2] as number) << 16;
  if (len >= 2) h ^= (buf[p + 1] as number) << 8;
  if (len >= 1) {
    h ^= buf[p] as number;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h >>> 0;
}

/** The little-endian word at buf[p]. */
function le32(buf: Uint8Array, p: number): number {
  return (buf[p] as number) | ((buf[p + 1] as number) << 8) | ((buf[p + 2] as number) << 16) | ((buf[p + 3] as number) << 24);
}

/** The little-endian word at buf[p] with only its first `n` bytes (n may be <= 0 or > 4). */
function tailWord(buf: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = 0; i < 4 && i < n; i++) v |= (buf[p + i] as number) << (8 * i);
  return v;
}

function rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Bob Jenkins' lookup3 hashlittle with initval 13 (a little-endian machine reads any alignment alike). */
function jenkins(buf: Uint8Array, start: number, end: number): number {
  let length = end - start;
  let a = (0xdeadbeef + length + 13) | 0;
  let b = a;
  let c = a;
  let p = start;
  while (length > 12) {
    a = (a + le32(buf, p)) | 0;
    b = (b + le32(buf, p + 4)) | 0;
    c = (c + le32(buf, p + 8)) | 0;
    // mix(a, b, c)
    a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
    length -= 12;
    p += 12;
  }
  if (length === 0) return c >>> 0;
  // The last block: bytes beyond the key count as zero.
  a = (a + tailWord(buf, p, length)) | 0;
  b = (b + tailWord(buf, p + 4, length - 4)) | 0;
  c = (c + tailWord(buf, p + 8, length - 8)) | 0;
  // final(a, b, c)
  c ^= b; c = (c - rot(b, 14)) | 0;
  a ^= c; a = (a - rot(c, 11)) | 0;
  b ^= a; b = (b - rot(a, 25)) | 0;
  c ^= b; c = (c - rot(b, 16)) | 0;
  a ^= c; a = (a - rot(c, 4)) | 0;
  b ^= a; b = (b - rot(a, 14)) | 0;
  c ^= b; c = (c - rot(b, 24)) | 0;
  return c >>> 0;
}

const BY_NAME: Record<HashName, KeyHash> = {
  one_at_a_time,
  md5,
  crc16,
  crc32,
  crc32a,
  fnv1_64,
  fnv1a_64,
  fnv1_32,
  fnv1a_32,
  hsieh,
  murmur,
  jenkins,
};

/** True when `name` is one of HASH_NAMES. */
export function isHashName(name: string): name is HashName {
  return Object.hasOwn(BY_NAME, name);
}

/** The hash function called `name` (one of HASH_NAMES). */
export function keyHash(name: HashName): KeyHash {
  return BY_NAME[name];
}
