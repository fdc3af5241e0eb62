/**
 * Incremental UTF-8 validation (RFC 3629, as RFC 6455 requires of text messages and close
 * reasons): a byte-at-a-time DFA whose whole state is one small integer, so a message split
 * across fragments and reads is validated as it arrives, with one byte of state per
 * connection. Long runs go to the native validator (buffer.isUtf8, simdutf in Bun); the DFA
 * handles only the sequence a previous chunk left open and the last few bytes of a chunk.
 *
 * Rejected, as the standard says: overlong forms (C0, C1, E0 80..9F, F0 80..8F), surrogates
 * (ED A0..BF), code points over U+10FFFF (F4 90.., F5..FF), stray continuation bytes,
 * truncated sequences (a message must end in UTF8_ACCEPT).
 */
import { isUtf8 } from "node:buffer";
import { readUtf8 } from "./bytes.ts";

/** The state between complete characters (also the initial state). */
export const UTF8_ACCEPT = 0;
/** The state after an invalid byte; it never leaves it. */
export const UTF8_REJECT = 1;

// Byte classes.
const C_ASCII = 0;
const C_CONT_80_8F = 1;
const C_CONT_90_9F = 2;
const C_CONT_A0_BF = 3;
const C_INVALID = 4; // C0, C1, F5..FF
const C_LEAD2 = 5; // C2..DF
const C_E0 = 6;
const C_LEAD3 = 7; // E1..EC, EE, EF
const C_ED = 8;
const C_F0 = 9;
const C_LEAD4 = 10; // F1..F3
const C_F4 = 11;
const CLASSES = 12;

// States beyond ACCEPT and REJECT: how many continuation bytes are still due, and for the
// first of them which range is allowed.
const S_NEED1 = 2;
const S_NEED2 = 3;
const S_NEED3 = 4;
const S_E0 = 5; // then A0..BF, then one more
const S_ED = 6; // then 80..9F, then one more
const S_F0 = 7; // then 90..BF, then two more
const S_F4 = 8; // then 80..8F, then two more
const STATES = 9;

const byteClass = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  byteClass[b] =
    b < 0x80
      ? C_ASCII
      : b < 0x90
        ? C_CONT_80_8F
        : b < 0xa0
          ? C_CONT_90_9F
          : b < 0xc0
            ? C_CONT_A0_BF
            : b < 0xc2
              ? C_INVALID
              : b < 0xe0
                ? C_LEAD2
                : b === 0xe0
                  ? C_E0
                  : b === 0xed
                    ? C_ED
                    : b < 0xf0
                      ? C_LEAD3
                      : b === 0xf0
                        ? C_F0
                        : b < 0xf4
                          ? C_LEAD4
                          : b === 0xf4
                            ? C_F4
                            : C_INVALID;
}

const transition = new Uint8Array(STATES * CLASSES).fill(UTF8_REJECT);
{
  const set = (state: number, classes: number[], next: number) => {
    for (const c of classes) transition[state * CLASSES + c] = next;
  };
  const anyCont = [C_CONT_80_8F, C_CONT_90_9F, C_CONT_A0_BF];
  set(UTF8_ACCEPT, [C_ASCII], UTF8_ACCEPT);
  set(UTF8_ACCEPT, [C_LEAD2], S_NEED1);
  set(UTF8_ACCEPT, [C_E0], S_E0);
  set(UTF8_ACCEPT, [C_LEAD3], S_NEED2);
  set(UTF8_ACCEPT, [C_ED], S_ED);
  set(UTF8_ACCEPT, [C_F0], S_F0);
  set(UTF8_ACCEPT, [C_LEAD4], S_NEED3);
  set(UTF8_ACCEPT, [C_F4], S_F4);
  set(S_NEED1, anyCont, UTF8_ACCEPT);
  set(S_NEED2, anyCont, S_NEED1);
  set(S_NEED3, anyCont, S_NEED2);
  set(S_E0, [C_CONT_A0_BF], S_NEED1);
  set(S_ED, [C_CONT_80_8F, C_CONT_90_9F], S_NEED1);
  set(S_F0, [C_CONT_90_9F, C_CONT_A0_BF], S_NEED2);
  set(S_F4, [C_CONT_80_8F], S_NEED2);
}

/** Chunks at least this long send their middle to the native validator. */
const NATIVE_MIN_BYTES = 32;

/** The DFA over buf[start, end) from state; stops at UTF8_REJECT. */
function dfa(buf: Uint8Array, start: number, end: number, state: number): number {
  for (let i = start; i < end; i++) {
    state = transition[state * CLASSES + byteClass[buf[i]!]!]!;
    if (state === UTF8_REJECT) return UTF8_REJECT;
  }
  return state;
}

/**
 * Validates buf[start, end) as the continuation of text whose state so far is `state`
 * (UTF8_ACCEPT at the start of a message); returns the new state: UTF8_ACCEPT when it ends
 * between characters, UTF8_REJECT as soon as a byte is invalid, another value (2..8) inside
 * a character. A message is valid when its last chunk returns UTF8_ACCEPT (utf8Complete).
 * Allocates at most one subarray view per call (for the native validator, chunks of 32
 * bytes or more).
 */
export function utf8Validate(buf: Uint8Array, start: number, end: number, state: number): number {
  let i = start;
  // Finish the character a previous chunk left open.
  while (state > UTF8_REJECT && i < end) {
    state = transition[state * CLASSES + byteClass[buf[i++]!]!]!;
  }
  if (state === UTF8_REJECT || i === end) return state;
  if (end - i < NATIVE_MIN_BYTES) return dfa(buf, i, end, state);
  // The middle, up to a byte that is not a continuation byte among the last four, is
  // complete characters or invalid; the tail from there goes through the DFA.
  let t = end - 1;
  const stop = end - 4 > i ? end - 4 : i;
  while (t > stop && (buf[t]! & 0xc0) === 0x80) t--;
  if (t > i && !isUtf8(buf.subarray(i, t))) return UTF8_REJECT;
  return dfa(buf, t, end, UTF8_ACCEPT);
}

/** True when buf[start, end) is, on its own, complete valid UTF-8. */
export function isValidUtf8(buf: Uint8Array, start: number, end: number): boolean {
  return utf8Validate(buf, start, end, UTF8_ACCEPT) === UTF8_ACCEPT;
}

/**
 * The text of buf[start, end) when it is valid UTF-8, else null. Decoding replaces invalid
 * bytes with U+FFFD, so text without one was valid (checked natively while decoding); only
 * text that contains one is validated again, to tell a real U+FFFD from a replaced byte.
 */
export function utf8Text(buf: Uint8Array, start: number, end: number): string | null {
  const s = readUtf8(buf, start, end);
  if (s.indexOf("\uFFFD") < 0 || isValidUtf8(buf, start, end)) return s;
  return null;
}
