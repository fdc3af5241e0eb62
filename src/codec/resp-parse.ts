/**
 * RESP length/integer line parsing shared by the request and reply codecs (internal).
 *
 * parseLength leaves its results in module variables instead of returning an object, so that
 * measure() allocates nothing; JS is single-threaded and the parsers never re-enter.
 */
import { CR, LF } from "./bytes.ts";

/** parseLength status: a complete, valid number; see parsedValue / parsedEnd. */
export const NUM_OK = 1;
/** parseLength status: the digits so far are valid; the line is not complete. */
export const NUM_INCOMPLETE = 0;
/** parseLength status: not a number RESP allows here. */
export const NUM_MALFORMED = -2;
/** parseLength status: the number (even its digits so far) exceeds the cap. */
export const NUM_OVER = -3;

/** Value of the last NUM_OK parse. */
export let parsedValue = 0;
/** Index just past the "\r\n" of the last NUM_OK parse. */
export let parsedEnd = 0;

/**
 * Parses the decimal number that starts at buf[p] and ends with "\r\n", as redis's string2ll
 * does: no sign but an optional "-", no leading zeros, no "-0", no spaces. A negative value
 * is allowed only when allowMinusOne and it is exactly -1. The result is in parsedValue /
 * parsedEnd. NUM_OVER as soon as the digits so far exceed cap (more digits only add).
 * Reads no further than buf[end - 1]; allocates nothing.
 */
export function parseLength(buf: Uint8Array, p: number, end: number, cap: number, allowMinusOne: boolean): number {
  if (p >= end) return NUM_INCOMPLETE;
  if (buf[p] === 45 /* - */) {
    if (!allowMinusOne) return NUM_MALFORMED;
    if (p + 1 >= end) return NUM_INCOMPLETE;
    if (buf[p + 1] !== 49 /* 1 */) return NUM_MALFORMED;
    const r = lineEnd(buf, p + 2, end);
    if (r !== NUM_OK) return r;
    parsedValue = -1;
    parsedEnd = p + 4;
    return NUM_OK;
  }
  let c = buf[p] as number;
  if (c === 48 /* 0 */) {
    const r = lineEnd(buf, p + 1, end);
    if (r !== NUM_OK) return r;
    parsedValue = 0;
    parsedEnd = p + 3;
    return NUM_OK;
  }
  let v = 0;
  let q = p;
  while (q < end) {
    c = buf[q] as number;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
    if (v > cap) return NUM_OVER;
    q++;
  }
  if (q === p) return NUM_MALFORMED; // "\r" or a non-digit where a number belongs
  const r = lineEnd(buf, q, end);
  if (r !== NUM_OK) return r;
  parsedValue = v;
  parsedEnd = q + 2;
  return NUM_OK;
}

/** NUM_OK when buf[q, q+2) is "\r\n", NUM_INCOMPLETE when it may still become so. */
function lineEnd(buf: Uint8Array, q: number, end: number): number {
  if (q >= end) return NUM_INCOMPLETE;
  if (buf[q] !== CR) return NUM_MALFORMED;
  if (q + 1 >= end) return NUM_INCOMPLETE;
  return buf[q + 1] === LF ? NUM_OK : NUM_MALFORMED;
}

/**
 * Reads a number that measure() already validated, from buf[p] up to its "\r". The value is
 * in parsedValue; returns the index just past "\r\n". -1 and other negatives parse as such.
 */
export function readTrustedNumber(buf: Uint8Array, p: number): number {
  let neg = false;
  if (buf[p] === 45) {
    neg = true;
    p++;
  }
  let v = 0;
  let c = buf[p] as number;
  while (c !== CR) {
    v = v * 10 + (c - 48);
    c = buf[++p] as number;
  }
  parsedValue = neg ? -v : v;
  return p + 2;
}
