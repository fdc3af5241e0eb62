import { CR, LF, digitCount, indexOfByte, readUtf8, utf8Length, writeRespHeader, writeUint, writeUtf8 } from "./bytes.ts";
import { MyriadTypeError } from "../errors.ts";
import { CodecEncodeError, RespError } from "./errors.ts";
import {
  NUM_INCOMPLETE,
  NUM_MALFORMED,
  NUM_OK,
  parseLength,
  parsedEnd,
  parsedValue,
  readTrustedNumber,
} from "./resp-parse.ts";
import { FRAME_INCOMPLETE, FRAME_MALFORMED, FRAME_TOO_LARGE, type Codec } from "./types.ts";

/**
 * A decoded RESP2 reply: simple string / bulk string → string (Uint8Array for bulk strings
 * with respReplyBufferCodec), integer → number, null bulk / null array → null, array →
 * RespValue[], error → RespError (a value, never thrown by the codec).
 */
export type RespValue = string | number | null | Uint8Array | RespValue[] | RespError;

/** A command to send: each word a string (sent as UTF-8), bytes, or a number (decimal). */
export type RespCommand = ReadonlyArray<string | Uint8Array | number>;

/** The smallest RESP2 value on the wire, "+\r\n": bounds a reply's size from its counts. */
const MIN_VALUE_BYTES = 3;

/**
 * Length of the RESP2 reply at buf[start], or FRAME_INCOMPLETE / FRAME_TOO_LARGE /
 * FRAME_MALFORMED. One pass, no recursion and no allocation: nested arrays only add to a
 * count of values still to read.
 */
function measureReply(buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number {
  // Only the first maxFrameBytes bytes are read: a verdict on later bytes (a lone CR past the
  // limit: malformed) would differ from the one given when the bytes stop at the limit (too
  // large), so it would depend on how the stream was split into reads.
  const n = measureValues(buf, start, Math.min(end, start + maxFrameBytes), maxFrameBytes);
  // An incomplete reply is longer than what arrived: past the limit, it is too large.
  return n === FRAME_INCOMPLETE && end - start > maxFrameBytes ? FRAME_TOO_LARGE : n;
}

function measureValues(buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number {
  let pending = 1;
  let p = start;
  while (pending > 0) {
    if (p - start + pending * MIN_VALUE_BYTES > maxFrameBytes) return FRAME_TOO_LARGE;
    if (p >= end) return FRAME_INCOMPLETE;
    const type = buf[p] as number;
    switch (type) {
      case 43: // + simple string
      case 45: {
        // - error
        const cr = indexOfByte(buf, CR, p + 1, end);
        if (cr < 0) return FRAME_INCOMPLETE;
        if (cr + 1 >= end) return FRAME_INCOMPLETE;
        if (buf[cr + 1] !== LF) return FRAME_MALFORMED;
        p = cr + 2;
        break;
      }
      case 58: {
        // : integer (signed 64-bit in redis)
        let q = p + 1;
        if (q < end && buf[q] === 45) q++;
        const first = q;
        while (q < end) {
          const c = buf[q] as number;
          if (c < 48 || c > 57) break;
          q++;
        }
        if (q - first > 20) return FRAME_MALFORMED;
        if (q >= end) return FRAME_INCOMPLETE;
        if (q === first || buf[q] !== CR) return FRAME_MALFORMED;
        if (q + 1 >= end) return FRAME_INCOMPLETE;
        if (buf[q + 1] !== LF) return FRAME_MALFORMED;
        p = q + 2;
        break;
      }
      case 36: {
        // $ bulk string, $-1 null
        // A length beyond the bytes left in the budget is too large, even half-received.
        const r = parseLength(buf, p + 1, end, maxFrameBytes - (p - start), true);
        if (r !== NUM_OK) return numStatus(r);
        p = parsedEnd;
        const len = parsedValue;
        if (len >= 0) {
          const next = p + len + 2;
          if (next - start > maxFrameBytes) return FRAME_TOO_LARGE;
          if (next > end) return p + len < end && buf[p + len] !== CR ? FRAME_MALFORMED : FRAME_INCOMPLETE;
          if (buf[next - 2] !== CR || buf[next - 1] !== LF) return FRAME_MALFORMED;
          p = next;
        }
        break;
      }
      case 42: {
        // * array, *-1 null
        const r = parseLength(buf, p + 1, end, maxFrameBytes, true);
        if (r !== NUM_OK) return numStatus(r);
        p = parsedEnd;
        if (parsedValue > 0) pending += parsedValue;
        break;
      }
      default:
        return FRAME_MALFORMED;
    }
    pending--;
  }
  return p - start > maxFrameBytes ? FRAME_TOO_LARGE : p - start;
}

/** FRAME_* for a parseLength status other than NUM_OK (NUM_OVER: too large). */
function numStatus(r: number): number {
  return r === NUM_INCOMPLETE ? FRAME_INCOMPLETE : r === NUM_MALFORMED ? FRAME_MALFORMED : FRAME_TOO_LARGE;
}

// Decode keeps its cursor here so that the helpers can return values, not (value, position).
let pos = 0;
// Arrays being filled while decoding nested replies: decode iterates, so depth costs no stack.
const openArrays: RespValue[][] = [];
const openIndex: number[] = [];

function errorValue(message: string): RespError {
  // The decoder's stack says nothing about the command that failed: skip capturing it.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const e = new RespError(message);
  Error.stackTraceLimit = limit;
  return e;
}

function decodeReply(buf: Uint8Array, start: number, bulkAsBytes: boolean): RespValue {
  pos = start;
  const base = openArrays.length; // decode does not re-enter, but stay correct if it did
  let root: RespValue = null;
  for (;;) {
    const type = buf[pos] as number;
    let value: RespValue;
    switch (type) {
      case 43:
      case 45: {
        const cr = buf.indexOf(CR, pos + 1);
        // "+OK" answers most writes: skip building the same string again and again.
        const text = cr === pos + 3 && buf[pos + 1] === 79 && buf[pos + 2] === 75 ? "OK" : readUtf8(buf, pos + 1, cr);
        value = type === 43 ? text : errorValue(text);
        pos = cr + 2;
        break;
      }
      case 58: {
        const cr = buf.indexOf(CR, pos + 1);
        // Above 15 digits the digit loop could round differently from Number(): let it parse.
        value = cr - pos - 1 > 15 ? Number(readUtf8(buf, pos + 1, cr)) : (readTrustedNumber(buf, pos + 1), parsedValue);
        pos = cr + 2;
        break;
      }
      case 36: {
        pos = readTrustedNumber(buf, pos + 1);
        const len = parsedValue;
        if (len < 0) value = null;
        else {
          value = bulkAsBytes ? buf.slice(pos, pos + len) : readUtf8(buf, pos, pos + len);
          pos += len + 2;
        }
        break;
      }
      default: {
        // 42: * (measure admitted nothing else)
        pos = readTrustedNumber(buf, pos + 1);
        const count = parsedValue;
        if (count < 0) value = null;
        else {
          const arr = new Array<RespValue>(count);
          if (count > 0) {
            place(arr, base);
            if (openArrays.length === base) root = arr;
            openArrays.push(arr);
            openIndex.push(0);
            continue;
          }
          value = arr;
        }
      }
    }
    if (openArrays.length === base) return value;
    place(value, base);
    // Close every array this value completed.
    while (openArrays.length > base) {
      const top = openArrays.length - 1;
      if ((openIndex[top] as number) < (openArrays[top] as RespValue[]).length) break;
      openArrays.pop();
      openIndex.pop();
    }
    if (openArrays.length === base) return root;
  }
}

function place(value: RespValue, base: number): void {
  const top = openArrays.length - 1;
  if (top < base) return;
  const i = openIndex[top] as number;
  (openArrays[top] as RespValue[])[i] = value;
  openIndex[top] = i + 1;
}

// Word lengths of the command(s) being encoded, so each is computed once.
let wordBytes = new Int32Array(64);
const ASTERISK = 42;
const DOLLAR = 36;

/**
 * Bytes of command on the wire; records each word's length in wordBytes from index `first`
 * (which must have room). Throws CodecEncodeError for an empty command or a bad word.
 */
function sizeCommand(command: RespCommand, first: number): number {
  const n = command.length;
  if (n === 0) throw new CodecEncodeError('RESP command is empty: give at least the command name, e.g. ["PING"]');
  let size = 1 + digitCount(n) + 2;
  for (let i = 0; i < n; i++) {
    const w = command[i];
    let len: number;
    if (typeof w === "string") len = utf8Length(w);
    else if (typeof w === "number") len = numberBytes(w);
    else if (w instanceof Uint8Array) len = w.length;
    else throw badWord(w, i);
    wordBytes[first + i] = len;
    size += 1 + digitCount(len) + 2 + len + 2;
  }
  return size;
}

/** Writes command at out[p] with the word lengths sizeCommand left at `first`; returns the end. */
function writeCommand(command: RespCommand, first: number, out: Uint8Array, p: number): number {
  const n = command.length;
  p = writeRespHeader(ASTERISK, n, out, p);
  for (let i = 0; i < n; i++) {
    const w = command[i] as string | Uint8Array | number;
    const len = wordBytes[first + i] as number;
    p = writeRespHeader(DOLLAR, len, out, p);
    if (typeof w === "string") writeUtf8(w, out, p);
    else if (typeof w === "number") writeNumber(w, out, p);
    else out.set(w, p);
    p += len;
    out[p++] = CR;
    out[p++] = LF;
  }
  return p;
}

/**
 * The RESP array of bulk strings for command; throws CodecEncodeError for an empty command
 * (redis would never answer it) or a word of another type.
 */
function encodeCommand(command: RespCommand): Uint8Array {
  if (!Array.isArray(command)) throw notACommand(command);
  if (wordBytes.length < command.length) wordBytes = new Int32Array(Math.max(command.length, wordBytes.length * 2));
  const out = new Uint8Array(sizeCommand(command, 0));
  writeCommand(command, 0, out, 0);
  return out;
}

/**
 * Several commands back to back in one array, for one write of a pipelined batch. Throws
 * CodecEncodeError (and encodes nothing) for an empty or badly typed command.
 */
export function encodeRespCommands(commands: ReadonlyArray<RespCommand>): Uint8Array {
  if (!Array.isArray(commands)) {
    throw new MyriadTypeError("ERR_CODEC_ENCODE", `encodeRespCommands takes an array of commands, got ${typeof commands}`);
  }
  let words = 0;
  for (let c = 0; c < commands.length; c++) {
    const command = commands[c];
    if (!Array.isArray(command)) throw notACommand(command);
    words += command.length;
  }
  if (wordBytes.length < words) wordBytes = new Int32Array(Math.max(words, wordBytes.length * 2));
  let size = 0;
  let first = 0;
  for (let c = 0; c < commands.length; c++) {
    const command = commands[c] as RespCommand;
    size += sizeCommand(command, first);
    first += command.length;
  }
  const out = new Uint8Array(size);
  let p = 0;
  first = 0;
  for (let c = 0; c < commands.length; c++) {
    const command = commands[c] as RespCommand;
    p = writeCommand(command, first, out, p);
    first += command.length;
  }
  return out;
}

function numberBytes(n: number): number {
  if (Number.isSafeInteger(n)) return n < 0 ? 1 + digitCount(-n) : digitCount(n);
  return String(n).length; // ASCII: digits, ".", "e", "-", "Infinity", "NaN"
}

function writeNumber(n: number, out: Uint8Array, p: number): void {
  if (Number.isSafeInteger(n)) {
    if (n < 0) {
      out[p++] = 45;
      n = -n;
    }
    writeUint(n, out, p);
    return;
  }
  const s = String(n);
  for (let i = 0; i < s.length; i++) out[p + i] = s.charCodeAt(i);
}

function notACommand(command: unknown): MyriadTypeError {
  return new MyriadTypeError(
    "ERR_CODEC_ENCODE",
    `a RESP command is an array of words like ["SET", "k", "v"], got ${command === null ? "null" : typeof command}`,
  );
}

function badWord(w: unknown, i: number): CodecEncodeError {
  return new CodecEncodeError(
    `RESP command word ${i} is ${w === null ? "null" : typeof w}: give strings, numbers or Uint8Array (convert it with String())`,
  );
}

/**
 * RESP2 replies, client side. measure: one reply (nested arrays included) or FRAME_*;
 * maxFrameBytes bounds the reply's bytes on the wire. decode: "+OK" → "OK", "-ERR x" →
 * RespError("ERR x"), ":-3" → -3 (beyond 2^53 precision is lost), "$3\r\nabc" → "abc"
 * (UTF-8 decoded; invalid sequences become U+FFFD — use respReplyBufferCodec for binary
 * values), "$-1" / "*-1" → null, "*2..." → [..] nested to any depth. Every decoded value is
 * owned (no views into buf): safe to keep after the handler returns, e.g. to settle a
 * promise. RESP3 types (HELLO 3) are FRAME_MALFORMED.
 *
 * encode(["SET", "k", "v"]) → the command as a RESP array of bulk strings; numbers are sent
 * as decimal text, strings as UTF-8, Uint8Array as is.
 */
export const respReplyCodec: Codec<RespValue, RespCommand> = {
  name: "resp-reply",
  measure: measureReply,
  decode(buf: Uint8Array, start: number, _length: number): RespValue {
    return decodeReply(buf, start, false);
  },
  encode: encodeCommand,
};

/**
 * respReplyCodec, but bulk strings decode to Uint8Array (owned copies, not views) instead of
 * strings: for binary values. Simple strings and errors are still strings.
 */
export const respReplyBufferCodec: Codec<RespValue, RespCommand> = {
  name: "resp-reply-buffer",
  measure: measureReply,
  decode(buf: Uint8Array, start: number, _length: number): RespValue {
    return decodeReply(buf, start, true);
  },
  encode: encodeCommand,
};

/** Encodes one command as a RESP array of bulk strings (respReplyCodec.encode). */
export const encodeRespCommand: (command: RespCommand) => Uint8Array = encodeCommand;
