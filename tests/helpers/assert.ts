/**
 * Equality of big byte streams and strings that says where they differ. `expect(a === b)
 * .toBe(true)` says only "false"; `expect(a).toEqual(b)` on megabytes prints megabytes. On a
 * mismatch this fails with both lengths, the offset of the first difference, and the bytes
 * around it on each side.
 */
import { expect } from "bun:test";

/** Bytes or text compared; a string is compared by UTF-16 code unit. */
type Sequence = Uint8Array | string;

const CONTEXT = 24;

function at(s: Sequence, i: number): number {
  return typeof s === "string" ? s.charCodeAt(i) : s[i]!;
}

/** The elements around offset i, printable: text escaped as JSON, bytes as hex. */
function around(s: Sequence, i: number): string {
  const from = Math.max(0, i - CONTEXT);
  const to = Math.min(s.length, i + CONTEXT);
  if (typeof s === "string") return `[${from}..${to}) ${JSON.stringify(s.slice(from, to))}`;
  return `[${from}..${to}) ${Buffer.from(s.subarray(from, to)).toString("hex")}`;
}

/** Asserts that `actual` holds exactly `expected`'s elements; on failure, shows where they part. */
export function expectSame(actual: Sequence, expected: Sequence, what = "the data"): void {
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && at(actual, i) === at(expected, i)) i++;
  if (i === actual.length && i === expected.length) {
    expect(actual.length).toBe(expected.length);
    return;
  }
  expect({ what, length: actual.length, firstDifferenceAt: i, around: around(actual, i) }).toEqual({
    what,
    length: expected.length,
    firstDifferenceAt: i,
    around: around(expected, i),
  });
}
