/**
 * MD5 (RFC 1321) over a byte range, without allocating: the proxy hashes a key per request
 * with `hash: md5`, and a Bun.CryptoHasher per key would cost an object and a native call
 * each. The digest goes into a caller's 16-byte array (ketama reads all four words of it).
 */

/** Per-round shift amounts. */
const S = new Uint8Array([
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
]);

/** K[i] = floor(abs(sin(i + 1)) * 2^32). */
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

/** The message block being processed, as 16 little-endian words. */
const M = new Int32Array(16);
/** The padded tail of the message (at most two blocks). */
const tail = new Uint8Array(128);
const state = new Int32Array(4);

function block(src: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++) {
    const p = at + i * 4;
    M[i] = (src[p] as number) | ((src[p + 1] as number) << 8) | ((src[p + 2] as number) << 16) | ((src[p + 3] as number) << 24);
  }
  let a = state[0] as number;
  let b = state[1] as number;
  let c = state[2] as number;
  let d = state[3] as number;
  for (let i = 0; i < 64; i++) {
    let f: number;
    let g: number;
    if (i < 16) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (i < 32) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (i < 48) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    const x = (a + f + (K[i] as number) + (M[g] as number)) | 0;
    const s = S[i] as number;
    a = d;
    d = c;
    c = b;
    b = (b + ((x << s) | (x >>> (32 - s)))) | 0;
  }
  state[0] = ((state[0] as number) + a) | 0;
  state[1] = ((state[1] as number) + b) | 0;
  state[2] = ((state[2] as number) + c) | 0;
  state[3] = ((state[3] as number) + d) | 0;
}

/** Writes the MD5 digest of buf[start, end) into out[0..16); allocates nothing. */
export function md5Into(buf: Uint8Array, start: number, end: number, out: Uint8Array): void {
  state[0] = 0x67452301;
  state[1] = 0xefcdab89 | 0;
  state[2] = 0x98badcfe | 0;
  state[3] = 0x10325476;
  const len = end - start;
  let p = start;
  while (end - p >= 64) {
    block(buf, p);
    p += 64;
  }
  const rest = end - p;
  for (let i = 0; i < rest; i++) tail[i] = buf[p + i] as number;
  tail[rest] = 0x80;
  const blocks = rest < 56 ? 1 : 2;
  const stop = blocks * 64 - 8;
  for (let i = rest + 1; i < stop; i++) tail[i] = 0;
  // Length in bits, little-endian, 64 bits (keys are far below 2^53 bits).
  const bitsLo = (len * 8) >>> 0;
  const bitsHi = Math.floor((len * 8) / 2 ** 32) >>> 0;
  for (let i = 0; i < 4; i++) {
    tail[stop + i] = (bitsLo >>> (8 * i)) & 0xff;
    tail[stop + 4 + i] = (bitsHi >>> (8 * i)) & 0xff;
  }
  block(tail, 0);
  if (blocks === 2) block(tail, 64);
  for (let i = 0; i < 4; i++) {
    const w = state[i] as number;
    out[i * 4] = w & 0xff;
    out[i * 4 + 1] = (w >>> 8) & 0xff;
    out[i * 4 + 2] = (w >>> 16) & 0xff;
    out[i * 4 + 3] = (w >>> 24) & 0xff;
  }
}
