import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  FRAME_INCOMPLETE,
  FRAME_MALFORMED,
  FRAME_TOO_LARGE,
  RESP_MAX_ARGS,
  encodeRespCommand,
  resp,
  respCodec,
} from "../src/codec/index.ts";
import { concat, cutFractions, cutsOf, reassemble, splitAt } from "./helpers/reassemble.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const MiB = 1024 * 1024;

/** Measures and decodes one frame that must be exactly the whole input. */
function one(input: string | Uint8Array, max = MiB): string[] {
  const buf = typeof input === "string" ? bytes(input) : input;
  const n = respCodec.measure(buf, 0, buf.length, max);
  expect(n).toBe(buf.length);
  return respCodec.decode(buf, 0, n).map((a) => dec.decode(a));
}
const measure = (s: string, max = MiB) => respCodec.measure(bytes(s), 0, bytes(s).length, max);

/** redis's sdscatrepr: how redis-cli prints (and users quote) arbitrary bytes. */
function repr(arg: Uint8Array): string {
  let s = '"';
  for (const b of arg) {
    if (b === 92) s += "\\\\";
    else if (b === 34) s += '\\"';
    else if (b === 10) s += "\\n";
    else if (b === 13) s += "\\r";
    else if (b === 9) s += "\\t";
    else if (b === 7) s += "\\a";
    else if (b === 8) s += "\\b";
    else if (b >= 32 && b <= 126) s += String.fromCharCode(b);
    else s += "\\x" + b.toString(16).padStart(2, "0");
  }
  return s + '"';
}

describe("respCodec: arrays of bulk strings", () => {
  test("decodes arguments; large ones are views into the buffer, not copies", () => {
    const big = "v".repeat(1000);
    const buf = bytes(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n${big}\r\n`);
    const n = respCodec.measure(buf, 0, buf.length, MiB);
    expect(n).toBe(buf.length);
    const args = respCodec.decode(buf, 0, n);
    expect(args.map((a) => dec.decode(a))).toEqual(["SET", "k", big]);
    expect(args[2]?.buffer).toBe(buf.buffer);
  });

  test("binary-safe: CR, LF and NUL inside a bulk", () => {
    const payload = new Uint8Array([0, 13, 10, 42, 36, 255]);
    const wire = encodeRespCommand(["SET", "k", payload]);
    const n = respCodec.measure(wire, 0, wire.length, MiB);
    expect(n).toBe(wire.length);
    expect(respCodec.decode(wire, 0, n)[2]).toEqual(payload);
  });

  test("every proper prefix is incomplete", () => {
    const wire = bytes("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
    for (let k = 0; k < wire.length; k++) expect(respCodec.measure(wire, 0, k, MiB)).toBe(FRAME_INCOMPLETE);
    expect(one(wire)).toEqual(["ECHO", ""]);
  });

  test("*0 and *-1 are empty requests: consumed, decoded to []", () => {
    expect(one("*0\r\n")).toEqual([]);
    expect(one("*-1\r\n")).toEqual([]);
  });

  test("malformed requests", () => {
    for (const bad of [
      "*abc\r\n",
      "*\r\n",
      "*-5\r\n",
      "*-0\r\n",
      "*01\r\n",
      "*+1\r\n",
      "* 1\r\n",
      "*1\rX",
      "*1x",
      "*1\r\n:3\r\n",
      "*1\r\n+OK\r\n",
      "*1\r\n$-1\r\n",
      "*1\r\n$-5\r\n",
      "*1\r\n$x\r\n",
      "*1\r\n$3\r\nabcX\r\n",
      "*1\r\n$3\r\nabc\rX",
      "*1\r\n$3\r\nabcd",
      `*${RESP_MAX_ARGS + 1}\r\n`,
      "*99999999999999999999999\r\n",
    ]) {
      expect([bad, measure(bad)]).toEqual([bad, FRAME_MALFORMED]);
    }
  });

  test("RESP_MAX_ARGS arguments are allowed when maxFrameBytes allows them", () => {
    expect(measure(`*${RESP_MAX_ARGS}\r\n`, 64 * MiB)).toBe(FRAME_INCOMPLETE);
  });

  test("too large: known from the bulk length, even partial, before the payload", () => {
    expect(measure("*1\r\n$1001\r\n", 1000)).toBe(FRAME_TOO_LARGE);
    expect(measure("*1\r\n$99999", 1000)).toBe(FRAME_TOO_LARGE);
    // header 4 + "$990\r\n" 6 + 990 + 2 = 1002 bytes on the wire
    expect(measure("*1\r\n$990\r\n", 1000)).toBe(FRAME_TOO_LARGE);
    expect(measure("*1\r\n$988\r\n", 1000)).toBe(FRAME_INCOMPLETE);
    // 4 + 6 + 988 + 2 = 1000: exactly the limit is fine
    expect(measure("*1\r\n$988\r\n" + "x".repeat(988) + "\r\n", 1000)).toBe(1000);
  });

  test("too large: known from an argument count whose smallest encoding exceeds the limit", () => {
    // each argument takes at least 6 bytes ("$0\r\n\r\n")
    expect(measure("*200000\r\n", MiB)).toBe(FRAME_TOO_LARGE);
    expect(measure("*166\r\n", 1000)).toBe(FRAME_TOO_LARGE);
    expect(measure("*165\r\n", 1000)).toBe(FRAME_INCOMPLETE);
    // an earlier long argument leaves less room for the rest
    expect(measure("*100\r\n$500\r\n", 1000)).toBe(FRAME_TOO_LARGE);
  });

  const args = fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 6 });

  test("property: commands from encodeRespCommand split anywhere come back exactly", () => {
    fc.assert(
      fc.property(fc.array(args, { maxLength: 30 }), cutFractions, (commands, cuts) => {
        const wire = concat(commands.map((c) => encodeRespCommand(c)));
        const r = reassemble(respCodec, splitAt(wire, cutsOf(wire.length, cuts)), 4096);
        expect(r.error).toBeNull();
        expect(r.pendingBytes).toBe(0);
        expect(r.frames).toEqual(commands);
      }),
    );
  });

  test("property: byte-by-byte feeding (the worst split) works too", () => {
    fc.assert(
      fc.property(fc.array(args, { maxLength: 5 }), (commands) => {
        const wire = concat(commands.map((c) => encodeRespCommand(c)));
        const chunks = Array.from(wire, (b) => new Uint8Array([b]));
        const r = reassemble(respCodec, chunks, 4096);
        expect(r.error).toBeNull();
        expect(r.frames).toEqual(commands);
      }),
      { numRuns: 50 },
    );
  });

  test("property: an oversized request is refused before it completes; buffering stays under the limit", () => {
    fc.assert(
      fc.property(args, fc.integer({ min: 16, max: 200 }), cutFractions, (prefixArgs, max, cuts) => {
        const big = encodeRespCommand([...prefixArgs, new Uint8Array(max)]);
        const small = encodeRespCommand(["PING"]);
        const wire = concat([small, big, small]);
        const r = reassemble(respCodec, splitAt(wire, cutsOf(wire.length, cuts)), max);
        expect(r.error).toBe("too-large");
        expect(r.frames).toEqual([bytes("PING")].map((p) => [p]));
        // refused before the oversized request's last byte arrived
        expect(respCodec.measure(big, 0, big.length - 1, max)).toBe(FRAME_TOO_LARGE);
        expect(r.maxPendingBytes).toBeLessThanOrEqual(max);
      }),
    );
  });

  test("property: a corrupted request is refused, or parses to exactly the bytes it measured", () => {
    fc.assert(
      fc.property(args, fc.nat(), fc.integer({ min: 0, max: 255 }), (a, at, byte) => {
        const wire = encodeRespCommand(a);
        const bad = wire.slice();
        bad[at % wire.length] = byte;
        if (bad[0] !== 42) return; // no longer a multibulk request: it is an inline line
        const n = respCodec.measure(bad, 0, bad.length, 4096);
        if (n > 0) {
          const got = respCodec.decode(bad, 0, n);
          if (got.length > 0) expect(encodeRespCommand(got)).toEqual(bad.subarray(0, n));
        } else {
          expect([FRAME_INCOMPLETE, FRAME_MALFORMED, FRAME_TOO_LARGE]).toContain(n);
        }
      }),
    );
  });
});

describe("respCodec: inline commands", () => {
  test("plain words, \\n or \\r\\n, runs of spaces and tabs", () => {
    expect(one("PING\r\n")).toEqual(["PING"]);
    expect(one("SET k v\n")).toEqual(["SET", "k", "v"]);
    expect(one("  SET \t k   v  \r\n")).toEqual(["SET", "k", "v"]);
  });

  test("empty and blank lines are empty requests (consumed, decoded to [])", () => {
    expect(one("\r\n")).toEqual([]);
    expect(one("\n")).toEqual([]);
    expect(one("   \t \r\n")).toEqual([]);
  });

  test("double quotes with escapes as sdssplitargs", () => {
    expect(one('SET "hello world" "a\\"b"\r\n')).toEqual(["SET", "hello world", 'a"b']);
    expect(one('ECHO "\\x41\\x62\\x7a"\r\n')).toEqual(["ECHO", "Abz"]);
    expect(one('ECHO "\\n\\r\\t\\\\"\n')).toEqual(["ECHO", "\n\r\t\\"]);
    expect(one('ECHO "\\b\\a\\q"\n')).toEqual(["ECHO", "\b\x07q"]);
    // not a hex escape: "\x4" followed by a non-hex digit is "x4g"
    expect(one('ECHO "\\x4g"\n')).toEqual(["ECHO", "x4g"]);
    expect(one('ECHO ""\n')).toEqual(["ECHO", ""]);
    const raw = bytes('ECHO "\\xff\\x00"\n');
    const n = respCodec.measure(raw, 0, raw.length, MiB);
    expect(Array.from(respCodec.decode(raw, 0, n)[1] as Uint8Array)).toEqual([255, 0]);
  });

  test("single quotes: only \\' is an escape", () => {
    expect(one("SET 'it''s' x\n".replace("''", "\\'"))).toEqual(["SET", "it's", "x"]);
    expect(one("ECHO 'a\\nb \"c\"'\n")).toEqual(["ECHO", 'a\\nb "c"']);
  });

  test("a quote inside a word starts a quoted part of that word", () => {
    expect(one('SET foo"bar baz" x\n')).toEqual(["SET", "foobar baz", "x"]);
    expect(one("SET a'b c'\n")).toEqual(["SET", "ab c"]);
  });

  test("unbalanced or badly closed quotes are malformed", () => {
    for (const bad of ['SET "abc\r\n', "SET 'abc\n", 'SET "a"b\n', "SET 'a'b\n", 'ECHO "abc\\"\n']) {
      expect([bad, measure(bad)]).toEqual([bad, FRAME_MALFORMED]);
    }
  });

  test("a NUL byte makes an inline line malformed, as soon as it is seen", () => {
    const buf = concat([bytes("SET k"), new Uint8Array([0]), bytes(" v\r\n")]);
    expect(respCodec.measure(buf, 0, buf.length, MiB)).toBe(FRAME_MALFORMED);
    expect(respCodec.measure(buf, 0, 6, MiB)).toBe(FRAME_MALFORMED);
    expect(respCodec.measure(buf, 0, 5, MiB)).toBe(FRAME_INCOMPLETE);
    // a NUL after the line's end belongs to the next request
    const next = concat([bytes("PING\n"), new Uint8Array([0])]);
    expect(respCodec.measure(next, 0, next.length, MiB)).toBe(5);
  });

  test("empty quoted arguments are kept (redis 7)", () => {
    expect(one('RPUSH k "" \'\' a\n')).toEqual(["RPUSH", "k", "", "", "a"]);
  });

  test("long unquoted words are views; quoted ones are copies that survive scratch reuse", () => {
    const long = "k".repeat(100);
    const buf = bytes(`SET ${long} "v v"\n`);
    const n = respCodec.measure(buf, 0, buf.length, MiB);
    const args = respCodec.decode(buf, 0, n);
    expect(args[1]?.buffer).toBe(buf.buffer);
    expect(dec.decode(args[1])).toBe(long);
    const again = bytes('SET q "w w"\n');
    respCodec.decode(again, 0, respCodec.measure(again, 0, again.length, MiB));
    expect(dec.decode(args[2])).toBe("v v");
  });

  test("inline too large: more than maxFrameBytes without a newline", () => {
    expect(measure("PING 123456", 10)).toBe(FRAME_TOO_LARGE);
    expect(measure("PING 12345", 10)).toBe(FRAME_INCOMPLETE);
    expect(measure("PING 12345\r", 10)).toBe(FRAME_INCOMPLETE);
    expect(measure("PING 12345\r\n", 10)).toBe(12);
  });

  test("inline and multibulk requests mixed in one stream", () => {
    const wire = concat([bytes("PING\r\n"), encodeRespCommand(["GET", "k"]), bytes("\r\n"), bytes('ECHO "x y"\n')]);
    const r = reassemble(respCodec, splitAt(wire, [3, 7, 20]), 100);
    expect(r.error).toBeNull();
    expect(r.frames.map((f) => f.map((a) => dec.decode(a)))).toEqual([["PING"], ["GET", "k"], [], ["ECHO", "x y"]]);
  });

  const inlineArg = fc.uint8Array({ maxLength: 30 });
  // The first word must not start with "*" (that would be a multibulk request): quote it.
  test("property: words quoted like redis-cli (sdscatrepr) split anywhere come back exactly", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(inlineArg, { minLength: 1, maxLength: 5 }), { maxLength: 20 }),
        fc.array(fc.boolean(), { maxLength: 20 }),
        cutFractions,
        (commands, crlf, cuts) => {
          const wire = concat(commands.map((c, i) => bytes(c.map(repr).join(" ") + (crlf[i] ? "\r\n" : "\n"))));
          const r = reassemble(respCodec, splitAt(wire, cutsOf(wire.length, cuts)), 4096);
          expect(r.error).toBeNull();
          expect(r.pendingBytes).toBe(0);
          expect(r.frames).toEqual(commands);
        },
      ),
    );
  });

  test("property: bare words (no quotes, no spaces) come back as views", () => {
    const word = fc.stringMatching(/^[A-Za-z0-9:_.\-]{1,12}$/);
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 6 }), (words) => {
        const got = one(words.join(" ") + "\r\n");
        expect(got).toEqual(words);
      }),
    );
  });
});

describe("respCodec.encode and resp encoders", () => {
  test("respCodec.encode passes reply bytes through", () => {
    expect(respCodec.encode(resp.ok)).toBe(resp.ok);
  });

  test("constant replies", () => {
    const s = (b: Uint8Array) => dec.decode(b);
    expect(s(resp.ok)).toBe("+OK\r\n");
    expect(s(resp.pong)).toBe("+PONG\r\n");
    expect(s(resp.nullBulk)).toBe("$-1\r\n");
    expect(s(resp.nullArray)).toBe("*-1\r\n");
    expect(s(resp.emptyArray)).toBe("*0\r\n");
    expect(s(resp.emptyBulk)).toBe("$0\r\n\r\n");
    expect(s(resp.queued)).toBe("+QUEUED\r\n");
  });

  test("simple, error, integer, bulk, array", () => {
    const s = (b: Uint8Array) => dec.decode(b);
    expect(s(resp.simple("OK"))).toBe("+OK\r\n");
    expect(s(resp.simple("a\r\nb"))).toBe("+a  b\r\n");
    expect(s(resp.error("ERR unknown command 'x'"))).toBe("-ERR unknown command 'x'\r\n");
    expect(s(resp.error("ERR two\nlines"))).toBe("-ERR two lines\r\n");
    for (const n of [0, 1, -1, 7, 1023, 1024, -2, -1000000, 123456789, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]) {
      expect(s(resp.integer(n))).toBe(`:${n}\r\n`);
    }
    expect(() => resp.integer(1.5)).toThrow(RangeError);
    expect(() => resp.integer(Number.NaN)).toThrow(RangeError);
    expect(s(resp.bulk("héllo"))).toBe("$6\r\nhéllo\r\n");
    expect(s(resp.bulk(new Uint8Array(0)))).toBe("$0\r\n\r\n");
    expect(s(resp.bulkOrNull(null))).toBe("$-1\r\n");
    expect(s(resp.bulkOrNull("x"))).toBe("$1\r\nx\r\n");
    expect(s(resp.array([resp.integer(1), resp.bulk("a"), resp.nullBulk, resp.array([])]))).toBe(
      "*4\r\n:1\r\n$1\r\na\r\n$-1\r\n*0\r\n",
    );
    expect(s(resp.bulkArray(["a", null, bytes("bc"), undefined, ""]))).toBe("*5\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n$-1\r\n$0\r\n\r\n");
  });

  test("property: bulkArray equals array of bulkOrNull", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.uint8Array({ maxLength: 20 }), fc.constant(null))), (vals) => {
        expect(resp.bulkArray(vals)).toEqual(resp.array(vals.map((v) => resp.bulkOrNull(v))));
      }),
    );
  });

  test("property: integer replies print like String(n)", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(dec.decode(resp.integer(n))).toBe(`:${n}\r\n`);
      }),
    );
  });
});
