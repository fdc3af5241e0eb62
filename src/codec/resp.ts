import { CR, LF, bytesAt, indexOfByte } from "./bytes.ts";
import {
  NUM_INCOMPLETE,
  NUM_MALFORMED,
  NUM_OK,
  NUM_OVER,
  parseLength,
  parsedEnd,
  parsedValue,
  readTrustedNumber,
} from "./resp-parse.ts";
import { FRAME_INCOMPLETE, FRAME_MALFORMED, FRAME_TOO_LARGE, type Codec } from "./types.ts";

/** Most arguments one request may carry, as redis's multibulk limit (1024 * 1024). */
export const RESP_MAX_ARGS = 1024 * 1024;

/** The smallest bulk string on the wire, "$0\r\n\r\n": bounds a request's size from its count. */
const MIN_BULK_BYTES = 6;

/**
 * RESP2 requests, server side: what redis-cli, redis-benchmark and client libraries send.
 *
 * - Arrays of bulk strings, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", decode to the arguments:
 *   views into buf for arguments longer than COPY_MAX_BYTES (32), valid until the handler returns (copy
 *   to keep); an argument of at most COPY_MAX_BYTES is a fresh array of its own (cheaper than a
 *   view in JSC), which nothing else references: it may be kept as it is.
 * - Inline commands as telnet or `redis-cli` pipes send them: any line whose first byte is not
 *   "*", ended by "\n" or "\r\n", split as redis's sdssplitargs does: runs of spaces/tabs
 *   separate arguments; "double quotes" understand \n \r \t \b \a \\ \" and \xHH escapes;
 *   'single quotes' understand \' only; a closing quote must be followed by a space or the
 *   end of the line; empty arguments ("") are kept, as redis 7 does. A NUL byte in an inline
 *   line is FRAME_MALFORMED (redis never finds the line's end past it). Arguments are views or
 *   fresh arrays as above; an argument that had quotes is always a fresh array.
 * - Empty requests: an empty or all-blank inline line, "*0\r\n" and "*-1\r\n" measure as
 *   frames (their bytes are consumed) and decode to an empty array; redis skips them without
 *   a reply, and so should the app: `if (args.length === 0) return;`.
 *
 * maxFrameBytes bounds a request's bytes on the wire (for an inline line: without its
 * terminator). FRAME_TOO_LARGE is reported early: from a bulk length (even a partial one)
 * beyond the budget, or from an argument count whose smallest encoding already exceeds it.
 * FRAME_MALFORMED, after which the connection should be closed (redis answers
 * "-ERR Protocol error" and closes): a count that is not a number, is negative (other than
 * -1) or above RESP_MAX_ARGS; an element not starting with "$"; a negative or non-numeric
 * bulk length; a bulk not followed by "\r\n"; an inline line with unbalanced quotes, a
 * closing quote followed by a non-space, or a NUL byte.
 *
 * encode(bytes) returns bytes unchanged: replies are built with the `resp` encoders.
 */
export const respCodec: Codec<Uint8Array[], Uint8Array> = {
  name: "resp",
  measure(buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number {
    if (start >= end) return FRAME_INCOMPLETE;
    if (buf[start] !== 42 /* * */) return measureInline(buf, start, end, maxFrameBytes);
    const n = measureMultibulk(buf, start, end, maxFrameBytes);
    // An incomplete request is longer than what arrived: past the limit, it is too large.
    return n === FRAME_INCOMPLETE && end - start > maxFrameBytes ? FRAME_TOO_LARGE : n;
  },
  decode(buf: Uint8Array, start: number, length: number): Uint8Array[] {
    if (buf[start] !== 42) return decodeInline(buf, start, length);
    let p = readTrustedNumber(buf, start + 1);
    const count = parsedValue;
    if (count <= 0) return [];
    const args = new Array<Uint8Array>(count);
    for (let i = 0; i < count; i++) {
      p = readTrustedNumber(buf, p + 1); // skips "$"
      const len = parsedValue;
      args[i] = bytesAt(buf, p, p + len);
      p += len + 2;
    }
    return args;
  },
  encode(reply: Uint8Array): Uint8Array {
    return reply;
  },
};

function measureMultibulk(buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number {
  let r = parseLength(buf, start + 1, end, RESP_MAX_ARGS, true);
  if (r !== NUM_OK) return r === NUM_OVER ? FRAME_MALFORMED : numStatus(r);
  let count = parsedValue;
  let p = parsedEnd;
  if (count <= 0) return p - start;
  if (p - start + count * MIN_BULK_BYTES > maxFrameBytes) return FRAME_TOO_LARGE;
  while (count > 0) {
    if (p >= end) return FRAME_INCOMPLETE;
    if (buf[p] !== 36 /* $ */) return FRAME_MALFORMED;
    // A length beyond the bytes left in the budget is too large, even half-received.
    r = parseLength(buf, p + 1, end, maxFrameBytes - (p - start), false);
    if (r !== NUM_OK) return r === NUM_OVER ? FRAME_TOO_LARGE : numStatus(r);
    const len = parsedValue;
    p = parsedEnd;
    count--;
    const next = p + len + 2;
    if (next - start + count * MIN_BULK_BYTES > maxFrameBytes) return FRAME_TOO_LARGE;
    if (next > end) {
      // Report a missing "\r\n" as soon as its first byte is visible.
      return p + len < end && buf[p + len] !== CR ? FRAME_MALFORMED : FRAME_INCOMPLETE;
    }
    if (buf[next - 2] !== CR || buf[next - 1] !== LF) return FRAME_MALFORMED;
    p = next;
  }
  return p - start;
}

function numStatus(r: number): number {
  return r === NUM_INCOMPLETE ? FRAME_INCOMPLETE : r === NUM_MALFORMED ? FRAME_MALFORMED : FRAME_TOO_LARGE;
}

// ---------------------------------------------------------------------------------------
// Inline commands

function measureInline(buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number {
  const limit = Math.min(end, start + maxFrameBytes + 2);
  const nl = indexOfByte(buf, LF, start, limit);
  // redis looks for the "\n" with strchr: past a NUL it never finds it and the connection
  // stalls until 64 KiB arrived. Refuse such a line as soon as the NUL is seen instead.
  if (indexOfByte(buf, 0, start, nl >= 0 ? nl : end) >= 0) return FRAME_MALFORMED;
  if (nl >= 0) {
    const stop = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
    if (stop - start > maxFrameBytes) return FRAME_TOO_LARGE;
    return splitArgs(buf, start, stop, null) < 0 ? FRAME_MALFORMED : nl + 1 - start;
  }
  const have = end - start;
  const least = buf[end - 1] === CR ? have - 1 : have;
  return least > maxFrameBytes ? FRAME_TOO_LARGE : FRAME_INCOMPLETE;
}

function decodeInline(buf: Uint8Array, start: number, length: number): Uint8Array[] {
  const nl = start + length - 1;
  const stop = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
  const args: Uint8Array[] = [];
  splitArgs(buf, start, stop, args);
  return args;
}

/** Scratch for quoted arguments, grown to the longest inline line seen. */
let scratch = new Uint8Array(256);

/** C's isspace in the "C" locale. */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * redis's sdssplitargs over buf[s, e). With out === null it only validates (no allocation);
 * otherwise it appends each argument to out. Returns the argument count, or -1 for
 * unbalanced quotes / a closing quote followed by something other than a space.
 */
function splitArgs(buf: Uint8Array, s: number, e: number, out: Uint8Array[] | null): number {
  if (out !== null && scratch.length < e - s) scratch = new Uint8Array(Math.max(e - s, scratch.length * 2));
  let p = s;
  let argc = 0;
  for (;;) {
    while (p < e && isSpace(buf[p] as number)) p++;
    if (p >= e) return argc;
    const tokenStart = p;
    let quoted = false; // the token has (had) quotes: its bytes are built in scratch
    let inDouble = false;
    let inSingle = false;
    let w = 0;
    for (;;) {
      if (p >= e) {
        if (inDouble || inSingle) return -1; // unterminated quotes
        break;
      }
      const c = buf[p] as number;
      if (inDouble) {
        if (c === 92 /* \ */ && p + 3 < e && buf[p + 1] === 120 /* x */ && hexValue(buf[p + 2] as number) >= 0 && hexValue(buf[p + 3] as number) >= 0) {
          if (out !== null) scratch[w++] = hexValue(buf[p + 2] as number) * 16 + hexValue(buf[p + 3] as number);
          p += 4;
        } else if (c === 92 && p + 1 < e) {
          p++;
          if (out !== null) {
            const d = buf[p] as number;
            scratch[w++] = d === 110 ? 10 : d === 114 ? 13 : d === 116 ? 9 : d === 98 ? 8 : d === 97 ? 7 : d;
          }
          p++;
        } else if (c === 34 /* " */) {
          p++;
          if (p < e && !isSpace(buf[p] as number)) return -1;
          inDouble = false;
          break;
        } else {
          if (out !== null) scratch[w++] = c;
          p++;
        }
      } else if (inSingle) {
        if (c === 92 && p + 1 < e && buf[p + 1] === 39 /* ' */) {
          if (out !== null) scratch[w++] = 39;
          p += 2;
        } else if (c === 39) {
          p++;
          if (p < e && !isSpace(buf[p] as number)) return -1;
          inSingle = false;
          break;
        } else {
          if (out !== null) scratch[w++] = c;
          p++;
        }
      } else if (c === 32 || c === 10 || c === 13 || c === 9) {
        break; // sdssplitargs ends a bare token on these four only (not \v or \f)
      } else if (c === 34 || c === 39) {
        if (!quoted) {
          quoted = true;
          if (out !== null) {
            for (let i = tokenStart; i < p; i++) scratch[w++] = buf[i] as number;
          }
        }
        if (c === 34) inDouble = true;
        else inSingle = true;
        p++;
      } else {
        if (quoted && out !== null) scratch[w++] = c;
        p++;
      }
    }
    argc++;
    if (out !== null) out.push(quoted ? scratch.slice(0, w) : bytesAt(buf, tokenStart, p));
  }
}
