/**
 * Signed 64-bit integers as redis reads them (string2ll): an optional "-", then digits with
 * no leading zero (except "0" itself), no "+", no spaces, no "-0", within [-2^63, 2^63 - 1].
 *
 * parseInt64 leaves its result in module variables so the common case allocates nothing:
 * `int64Small` when the value is a safe JS integer, else `int64Big` (a bigint).
 */

/** 2^63 - 1, the largest redis integer. */
export const INT64_MAX = 9223372036854775807n;
/** -2^63, the smallest redis integer. */
export const INT64_MIN = -9223372036854775808n;

/** The last parse's value when int64IsBig is false. */
export let int64Small = 0;
/** The last parse's value when int64IsBig is true. */
export let int64Big = 0n;
/** Whether the last parse's value lies outside the safe-integer range. */
export let int64IsBig = false;

const MAX_DIGITS = 19;

/**
 * Parses b as redis's string2ll does. Returns false (and leaves the result variables
 * unspecified) for anything string2ll rejects. Allocates only for values past 2^53.
 */
export function parseInt64(b: Uint8Array): boolean {
  const n = b.length;
  if (n === 0 || n > 20) return false;
  let p = 0;
  let neg = false;
  if (b[0] === 45) {
    if (n === 1) return false;
    neg = true;
    p = 1;
  }
  const first = b[p]!;
  if (first === 48) {
    // "0" alone; "-0" and leading zeros are rejected as in redis.
    if (n === 1) {
      int64Small = 0;
      int64IsBig = false;
      return true;
    }
    return false;
  }
  if (first < 49 || first > 57) return false;
  if (n - p > MAX_DIGITS) return false;
  let v = 0;
  for (let i = p; i < n; i++) {
    const c = b[i]!;
    if (c < 48 || c > 57) return false;
    v = v * 10 + (c - 48);
  }
  if (n - p <= 15) {
    int64Small = neg ? -v : v;
    int64IsBig = false;
    return true;
  }
  let big = 0n;
  for (let i = p; i < n; i++) big = big * 10n + BigInt(b[i]! - 48);
  if (neg) big = -big;
  if (big > INT64_MAX || big < INT64_MIN) return false;
  if (big >= -9007199254740991n && big <= 9007199254740991n) {
    int64Small = Number(big);
    int64IsBig = false;
  } else {
    int64Big = big;
    int64IsBig = true;
  }
  return true;
}

/** The last parse's value as a bigint. */
export function int64AsBig(): bigint {
  return int64IsBig ? int64Big : BigInt(int64Small);
}

/** The decimal bytes of a safe integer or a bigint. */
export function int64Bytes(v: number | bigint): Uint8Array {
  const s = String(v);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
