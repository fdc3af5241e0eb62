import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  CodecEncodeError,
  FRAME_INCOMPLETE,
  FRAME_MALFORMED,
  FRAME_TOO_LARGE,
  RespError,
  type RespValue,
  encodeRespCommand,
  encodeRespCommands,
  resp,
  respCodec,
  respReplyBufferCodec,
  respReplyCodec,
} from "../src/codec/index.ts";
import { MyriadError } from "../src/errors.ts";
import { concat, cutFractions, cutsOf, reassemble, splitAt } from "./helpers/reassemble.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const MiB = 1024 * 1024;

/** RespError → a plain object, so that toEqual compares messages. */
function plain(v: RespValue): unknown {
  if (v instanceof RespError) return { error: v.message, prefix: v.prefix };
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

function reply(wire: string | Uint8Array, codec = respReplyCodec): RespValue {
  const buf = typeof wire === "string" ? bytes(wire) : wire;
  const n = codec.measure(buf, 0, buf.length, MiB);
  expect(n).toBe(buf.length);
  return codec.decode(buf, 0, n);
}

describe("respReplyCodec.decode", () => {
  test("simple strings, integers, bulk strings, nulls", () => {
    expect(reply("+OK\r\n")).toBe("OK");
    expect(reply("+\r\n")).toBe("");
    expect(reply(":0\r\n")).toBe(0);
    expect(reply(":-42\r\n")).toBe(-42);
    expect(reply(":9007199254740991\r\n")).toBe(9007199254740991);
    expect(reply(":-9223372036854775808\r\n")).toBe(-9223372036854775808);
    expect(reply("$5\r\nhello\r\n")).toBe("hello");
    expect(reply("$0\r\n\r\n")).toBe("");
    expect(reply("$6\r\nhéllo\r\n")).toBe("héllo");
    expect(reply("$-1\r\n")).toBeNull();
    expect(reply("*-1\r\n")).toBeNull();
    expect(reply("*0\r\n")).toEqual([]);
  });

  test("errors are RespError values, not throws", () => {
    const v = reply("-ERR unknown command 'FOO'\r\n");
    expect(v).toBeInstanceOf(RespError);
    expect(v).toBeInstanceOf(MyriadError);
    const e = v as RespError;
    expect(e.message).toBe("ERR unknown command 'FOO'");
    expect(e.prefix).toBe("ERR");
    expect(e.code).toBe("ERR_RESP_REPLY");
    expect((reply("-WRONGTYPE Operation against a key\r\n") as RespError).prefix).toBe("WRONGTYPE");
    expect((reply("-\r\n") as RespError).message).toBe("");
    expect(Error.stackTraceLimit).toBeGreaterThan(0); // restored after building the error
  });

  test("nested arrays with every type inside", () => {
    const wire = "*5\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n*0\r\n$-1\r\n-ERR x\r\n*3\r\n+s\r\n*-1\r\n:-7\r\n";
    expect(plain(reply(wire))).toEqual([1, ["a", [[]]], null, { error: "ERR x", prefix: "ERR" }, ["s", null, -7]]);
  });

  test("deep nesting does not use the call stack", () => {
    const depth = 100_000;
    const wire = "*1\r\n".repeat(depth) + ":5\r\n";
    let v = reply(wire);
    for (let i = 0; i < depth; i++) {
      expect(Array.isArray(v)).toBe(true);
      v = (v as RespValue[])[0] as RespValue;
    }
    expect(v).toBe(5);
  });

  test("binary bulk: strings get U+FFFD, respReplyBufferCodec keeps the bytes", () => {
    const payload = new Uint8Array([0xff, 0, 13, 10, 0x80]);
    const wire = concat([bytes("*2\r\n$5\r\n"), payload, bytes("\r\n+OK\r\n")]);
    expect(reply(wire)).toEqual(["\ufffd\u0000\r\n\ufffd", "OK"]);
    const v = reply(wire, respReplyBufferCodec) as RespValue[];
    expect(v[0]).toEqual(payload);
    expect(v[1]).toBe("OK"); // simple strings stay strings
    // owned copy, not a view
    expect((v[0] as Uint8Array).buffer).not.toBe(wire.buffer);
  });

  test("values are owned: reusing the buffer does not change them", () => {
    const buf = bytes("$5\r\nhello\r\n");
    const v = respReplyBufferCodec.decode(buf, 0, buf.length) as Uint8Array;
    buf.fill(0);
    expect(dec.decode(v)).toBe("hello");
  });
});

describe("respReplyCodec.measure", () => {
  const m = (s: string, max = MiB) => respReplyCodec.measure(bytes(s), 0, bytes(s).length, max);

  test("every proper prefix of a reply is incomplete", () => {
    const wire = bytes("*3\r\n$3\r\nabc\r\n:-12\r\n*2\r\n+OK\r\n-ERR e\r\n");
    for (let k = 0; k < wire.length; k++) expect(respReplyCodec.measure(wire, 0, k, MiB)).toBe(FRAME_INCOMPLETE);
    expect(respReplyCodec.measure(wire, 0, wire.length, MiB)).toBe(wire.length);
  });

  test("malformed replies", () => {
    for (const bad of [
      "?x\r\n",
      "#t\r\n",
      "$-2\r\n",
      "*-2\r\n",
      "$abc\r\n",
      "$3\r\nabcd\r\n",
      "$3\r\nab",
      ":12a\r\n",
      ":\r\n",
      ":-\r\n",
      ":1\rx",
      "+OK\rX",
      "*1\r\n?\r\n",
      ":123456789012345678901\r\n",
    ]) {
      const n = m(bad);
      // "$3\r\nab" is merely incomplete
      if (bad === "$3\r\nab") expect(n).toBe(FRAME_INCOMPLETE);
      else expect([bad, n]).toEqual([bad, FRAME_MALFORMED]);
    }
  });

  test("too large: from a bulk length, an array count, or a long simple string", () => {
    expect(m("$2000\r\n", 1000)).toBe(FRAME_TOO_LARGE);
    expect(m("$99999", 1000)).toBe(FRAME_TOO_LARGE);
    expect(m("*400\r\n", 1000)).toBe(FRAME_TOO_LARGE); // each element takes at least 3 bytes
    expect(m("*300\r\n", 1000)).toBe(FRAME_INCOMPLETE);
    expect(m("+" + "x".repeat(1000), 1000)).toBe(FRAME_TOO_LARGE);
    expect(m("+" + "x".repeat(990), 1000)).toBe(FRAME_INCOMPLETE);
    // Complete at once (one chunk), yet over the limit: still refused.
    expect(m(`+${"x".repeat(998)}\r\n`, 1000)).toBe(FRAME_TOO_LARGE);
    expect(m(`+${"x".repeat(998)}\r\n`, 1001)).toBe(1001);
    expect(m(`-ERR ${"x".repeat(100)}\r\n`, 50)).toBe(FRAME_TOO_LARGE);
    expect(m(":12345678901234\r\n", 10)).toBe(FRAME_TOO_LARGE);
    expect(m("*2\r\n+abcdef\r\n+abcdef\r\n", 20)).toBe(FRAME_TOO_LARGE);
    expect(m("*2\r\n+abcdef\r\n+abcdef\r\n", 22)).toBe(22);
  });
});

// A random reply tree: its wire form (built with the server-side `resp` encoders) and the
// value each reply codec must decode it to.
interface Gen {
  wire: Uint8Array;
  str: unknown; // respReplyCodec's value, RespError as { error, prefix }
  buf: unknown; // respReplyBufferCodec's value
}
const noCrLf = fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));
const prefixOf = (s: string) => (s.indexOf(" ") < 0 ? s : s.slice(0, s.indexOf(" ")));
const { tree } = fc.letrec<{ tree: Gen; leaf: Gen }>((tie) => ({
  leaf: fc.oneof(
    noCrLf.map((s) => ({ wire: resp.simple(s), str: s, buf: s })),
    noCrLf.map((s) => ({ wire: resp.error(s), str: { error: s, prefix: prefixOf(s) }, buf: { error: s, prefix: prefixOf(s) } })),
    fc.maxSafeInteger().map((n) => ({ wire: resp.integer(n), str: n, buf: n })),
    fc.string({ unit: "grapheme", maxLength: 30 }).map((s) => ({ wire: resp.bulk(s), str: s, buf: bytes(s) })),
    fc.uint8Array({ maxLength: 30 }).map((b) => ({ wire: resp.bulk(b), str: dec.decode(b), buf: b })),
    fc.constant({ wire: resp.nullBulk, str: null, buf: null }),
    fc.constant({ wire: resp.nullArray, str: null, buf: null }),
  ),
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tie("leaf"),
    fc.array(tie("tree"), { maxLength: 5 }).map((items) => ({
      wire: resp.array(items.map((i) => i.wire)),
      str: items.map((i) => i.str),
      buf: items.map((i) => i.buf),
    })),
  ),
}));

describe("respReplyCodec properties", () => {
  test("property: replies split anywhere, many per chunk, decode to the values sent", () => {
    fc.assert(
      fc.property(fc.array(tree, { maxLength: 20 }), cutFractions, (replies, cuts) => {
        const wire = concat(replies.map((r) => r.wire));
        const chunks = splitAt(wire, cutsOf(wire.length, cuts));
        const r = reassemble(respReplyCodec, chunks, 1 << 16);
        expect(r.error).toBeNull();
        expect(r.pendingBytes).toBe(0);
        expect(r.frames.map(plain)).toEqual(replies.map((x) => x.str));
        const b = reassemble(respReplyBufferCodec, chunks, 1 << 16);
        expect(b.error).toBeNull();
        expect(b.frames.map(plain)).toEqual(replies.map((x) => x.buf));
      }),
    );
  });

  test("property: a reply over the limit is refused before it completes", () => {
    fc.assert(
      fc.property(tree, fc.integer({ min: 8, max: 200 }), (t, max) => {
        const wire = resp.array([t.wire, resp.bulk(new Uint8Array(max))]);
        for (let k = max + 1; k < wire.length; k += 7) {
          expect(respReplyCodec.measure(wire, 0, k, max)).toBe(FRAME_TOO_LARGE);
        }
        expect(respReplyCodec.measure(wire, 0, wire.length - 1, max)).toBe(FRAME_TOO_LARGE);
      }),
    );
  });
});

describe("respReplyCodec.encode (commands)", () => {
  test("RESP array of bulk strings; numbers as decimal; bytes as is; UTF-8", () => {
    const s = (c: Parameters<typeof encodeRespCommand>[0]) => dec.decode(respReplyCodec.encode(c));
    expect(s(["PING"])).toBe("*1\r\n$4\r\nPING\r\n");
    expect(s(["SET", "k", "v"])).toBe("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    expect(s(["EXPIRE", "k", 10, -5, 1.5, 0])).toBe(
      "*6\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n10\r\n$2\r\n-5\r\n$3\r\n1.5\r\n$1\r\n0\r\n",
    );
    expect(s(["SET", "é", bytes("xy"), ""])).toBe("*4\r\n$3\r\nSET\r\n$2\r\né\r\n$2\r\nxy\r\n$0\r\n\r\n");
    const long = "x".repeat(100) + "€";
    expect(s(["ECHO", long])).toBe(`*2\r\n$4\r\nECHO\r\n$103\r\n${long}\r\n`);
  });

  test("property: encodeRespCommands is the concatenation of encodeRespCommand", () => {
    const word = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.uint8Array({ maxLength: 40 }));
    const command = fc.array(word, { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(fc.array(command, { maxLength: 12 }), (commands) => {
        expect(encodeRespCommands(commands)).toEqual(concat(commands.map((c) => encodeRespCommand(c))));
      }),
    );
    expect(() => encodeRespCommands([["PING"], []])).toThrow(CodecEncodeError);
  });

  test("an empty command or a word of another type throws CodecEncodeError", () => {
    expect(() => respReplyCodec.encode([])).toThrow(CodecEncodeError);
    expect(() => respReplyCodec.encode(["SET", null as unknown as string])).toThrow(/word 1 is null/);
    expect(() => respReplyCodec.encode(["SET", {} as unknown as string])).toThrow(CodecEncodeError);
  });

  test("property: the server codec decodes what the client encodes (strings, numbers, bytes)", () => {
    const word = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 40 }),
      fc.string({ maxLength: 80 }),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double({ noNaN: true }),
      fc.uint8Array({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 10 }), (cmd) => {
        const wire = respReplyCodec.encode(cmd);
        const n = respCodec.measure(wire, 0, wire.length, MiB);
        expect(n).toBe(wire.length);
        const got = respCodec.decode(wire, 0, n);
        expect(got).toEqual(cmd.map((w) => (typeof w === "string" ? bytes(w) : typeof w === "number" ? bytes(String(w)) : w)));
      }),
    );
  });
});
