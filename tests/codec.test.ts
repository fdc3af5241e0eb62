import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  CODEC_NAMES,
  CodecEncodeError,
  FRAME_INCOMPLETE,
  FRAME_MALFORMED,
  FRAME_TOO_LARGE,
  codecByName,
  isCodecName,
  lengthU16Codec,
  lengthU32Codec,
  linesCodec,
  rawCodec,
  respCodec,
  respReplyBufferCodec,
  respReplyCodec,
  UnknownCodecError,
} from "../src/codec/index.ts";
import { MyriadError } from "../src/errors.ts";
import { concat, cutFractions, cutsOf, reassemble, splitAt } from "./helpers/reassemble.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);

describe("rawCodec", () => {
  test("hands over what arrived, capped at maxFrameBytes, as a view", () => {
    const buf = bytes("xxhello worldyy");
    expect(rawCodec.measure(buf, 2, 13, 1024)).toBe(11);
    expect(rawCodec.measure(buf, 2, 13, 4)).toBe(4);
    expect(rawCodec.measure(buf, 5, 5, 4)).toBe(FRAME_INCOMPLETE);
    const frame = rawCodec.decode(buf, 2, 11);
    expect(new TextDecoder().decode(frame)).toBe("hello world");
    expect(frame.buffer).toBe(buf.buffer);
    const msg = bytes("abc");
    expect(rawCodec.encode(msg)).toBe(msg);
  });

  test("property: the stream comes back byte for byte, no frame over the cap", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), cutFractions, fc.integer({ min: 1, max: 300 }), (data, cuts, max) => {
        const r = reassemble(rawCodec, splitAt(data, cutsOf(data.length, cuts)), max);
        expect(r.error).toBeNull();
        expect(r.pendingBytes).toBe(0);
        for (const f of r.frames) expect(f.length).toBeLessThanOrEqual(max);
        expect(concat(r.frames)).toEqual(data);
      }),
    );
  });
});

describe("linesCodec", () => {
  test("\\n and \\r\\n terminators, frame without them", () => {
    const buf = bytes("a\r\nbc\n\n\r\nlast");
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const n = linesCodec.measure(buf, start, buf.length, 100);
      if (n <= 0) {
        expect(n).toBe(FRAME_INCOMPLETE);
        break;
      }
      out.push(new TextDecoder().decode(linesCodec.decode(buf, start, n)));
      start += n;
    }
    expect(out).toEqual(["a", "bc", "", ""]);
    expect(start).toBe(buf.length - 4);
  });

  test("a lone \\r inside a line is content", () => {
    const buf = bytes("a\rb\r\n");
    expect(linesCodec.measure(buf, 0, buf.length, 10)).toBe(5);
    expect(linesCodec.decode(buf, 0, 5)).toEqual(bytes("a\rb"));
  });

  test("encode appends \\n to strings (UTF-8) and bytes; refuses an embedded \\n", () => {
    expect(linesCodec.encode("héllo")).toEqual(bytes("héllo\n"));
    expect(linesCodec.encode(bytes("x"))).toEqual(bytes("x\n"));
    expect(linesCodec.encode("")).toEqual(bytes("\n"));
    expect(() => linesCodec.encode("a\nb")).toThrow(CodecEncodeError);
    expect(() => linesCodec.encode(bytes("a\nb"))).toThrow(/two lines/);
  });

  test("too large: detected once more than maxFrameBytes arrived without \\n", () => {
    const max = 8;
    expect(linesCodec.measure(bytes("12345678"), 0, 8, max)).toBe(FRAME_INCOMPLETE);
    expect(linesCodec.measure(bytes("12345678\r"), 0, 9, max)).toBe(FRAME_INCOMPLETE);
    expect(linesCodec.measure(bytes("12345678\r\n"), 0, 10, max)).toBe(10);
    expect(linesCodec.measure(bytes("12345678\n"), 0, 9, max)).toBe(9);
    expect(linesCodec.measure(bytes("123456789"), 0, 9, max)).toBe(FRAME_TOO_LARGE);
    expect(linesCodec.measure(bytes("123456789\n"), 0, 10, max)).toBe(FRAME_TOO_LARGE);
    // a "\n" far beyond the limit is not searched for
    expect(linesCodec.measure(bytes("1234567890123\n"), 0, 14, max)).toBe(FRAME_TOO_LARGE);
  });

  test("measure never reads past end (a \\n after end does not count)", () => {
    const buf = bytes("abc\ndef");
    expect(linesCodec.measure(buf, 0, 3, 100)).toBe(FRAME_INCOMPLETE);
    expect(linesCodec.measure(buf, 0, 4, 100)).toBe(4);
  });

  const lineContent = fc.uint8Array({ maxLength: 60 }).map((a) => {
    const b = a.map((x) => (x === 10 ? 32 : x));
    if (b.length > 0 && b[b.length - 1] === 13) b[b.length - 1] = 65;
    return b;
  });

  test("property: encoded lines split anywhere come back exactly", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(lineContent, fc.boolean()), { maxLength: 40 }), cutFractions, (lines, cuts) => {
        // encode() for "\n" lines, hand-built "\r\n" for the others
        const wire = concat(lines.map(([l, crlf]) => (crlf ? concat([l, bytes("\r\n")]) : linesCodec.encode(l))));
        const r = reassemble(linesCodec, splitAt(wire, cutsOf(wire.length, cuts)), 60);
        expect(r.error).toBeNull();
        expect(r.pendingBytes).toBe(0);
        expect(r.frames).toEqual(lines.map(([l]) => l));
      }),
    );
  });

  test("property: a line over the limit is refused before its end, with bounded buffering", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 300 }), cutFractions, (max, extra, cuts) => {
        const line = new Uint8Array(max + extra).fill(120);
        const wire = linesCodec.encode(line);
        const r = reassemble(linesCodec, splitAt(wire, cutsOf(wire.length, cuts)), max);
        expect(r.error).toBe("too-large");
        expect(r.frames).toEqual([]);
        expect(r.maxPendingBytes).toBeLessThanOrEqual(max + 2);
      }),
    );
  });
});

describe.each([
  ["length-u16", lengthU16Codec, 2],
  ["length-u32", lengthU32Codec, 4],
] as const)("%s", (_name, codec, header) => {
  test("header is big-endian, frame is the payload view", () => {
    const wire = codec.encode(bytes("hello"));
    expect(wire.length).toBe(header + 5);
    expect(wire[header - 1]).toBe(5);
    expect([...wire.subarray(0, header - 1)]).toEqual(new Array(header - 1).fill(0));
    expect(codec.measure(wire, 0, wire.length, 100)).toBe(header + 5);
    expect(codec.decode(wire, 0, header + 5)).toEqual(bytes("hello"));
    for (let k = 0; k < wire.length; k++) expect(codec.measure(wire, 0, k, 100)).toBe(FRAME_INCOMPLETE);
    const big = codec.encode(new Uint8Array(300).fill(7));
    expect(big[header - 2]).toBe(1);
    expect(big[header - 1]).toBe(44);
  });

  test("empty payload is a frame", () => {
    const wire = codec.encode(new Uint8Array(0));
    expect(codec.measure(wire, 0, wire.length, 10)).toBe(header);
    expect(codec.decode(wire, 0, header).length).toBe(0);
  });

  test("too large is known from the header alone (even a partial one)", () => {
    const wire = codec.encode(new Uint8Array(1000));
    expect(codec.measure(wire, 0, header, 999)).toBe(FRAME_TOO_LARGE);
    expect(codec.measure(wire, 0, header, 1000)).toBe(FRAME_INCOMPLETE);
    // first header byte alone: 0x01 << 8 (u16) or 0x01 << 24 (u32) is already over 255
    const hi = new Uint8Array([1]);
    expect(codec.measure(hi, 0, 1, 255)).toBe(FRAME_TOO_LARGE);
    expect(codec.measure(hi, 0, 1, 1 << (8 * (header - 1)))).toBe(FRAME_INCOMPLETE);
  });

  test("property: payloads split anywhere, many per chunk, come back exactly", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 30 }), cutFractions, (payloads, cuts) => {
        const wire = concat(payloads.map((p) => codec.encode(p)));
        const r = reassemble(codec, splitAt(wire, cutsOf(wire.length, cuts)), 300);
        expect(r.error).toBeNull();
        expect(r.pendingBytes).toBe(0);
        expect(r.frames).toEqual(payloads);
      }),
    );
  });

  test("property: a frame over the limit is refused before its payload arrives", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 500 }), cutFractions, (max, extra, cuts) => {
        const wire = concat([codec.encode(bytes("ok")), codec.encode(new Uint8Array(max + extra))]);
        const r = reassemble(codec, splitAt(wire, cutsOf(wire.length, cuts)), Math.max(max, 2));
        if (max + extra <= Math.max(max, 2)) return; // not actually over
        expect(r.error).toBe("too-large");
        expect(r.frames).toEqual([bytes("ok")]);
        // at most an incomplete "ok" frame is ever kept: the big one is refused from its header
        expect(r.maxPendingBytes).toBeLessThanOrEqual(header + 1);
      }),
    );
  });
});

test("length-u16 encode refuses payloads over 65535 bytes, u32 takes them", () => {
  expect(lengthU16Codec.encode(new Uint8Array(65535)).length).toBe(65537);
  expect(() => lengthU16Codec.encode(new Uint8Array(65536))).toThrow(CodecEncodeError);
  expect(() => lengthU16Codec.encode(new Uint8Array(65536))).toThrow(/length-u32/);
  const w = lengthU32Codec.encode(new Uint8Array(65536));
  expect(Array.from(w.subarray(0, 4))).toEqual([0, 1, 0, 0]);
});

describe("codecByName", () => {
  test("knows every name and returns the singleton", () => {
    expect(CODEC_NAMES).toEqual(["raw", "lines", "length-u16", "length-u32", "resp"]);
    expect(codecByName("raw")).toBe(rawCodec);
    expect(codecByName("lines")).toBe(linesCodec);
    expect(codecByName("length-u16")).toBe(lengthU16Codec);
    expect(codecByName("length-u32")).toBe(lengthU32Codec);
    expect(codecByName("resp")).toBe(respCodec);
    for (const n of CODEC_NAMES) {
      expect(codecByName(n).name).toBe(n);
      expect(isCodecName(n)).toBe(true);
    }
  });

  test("an unknown name throws ERR_UNKNOWN_CODEC naming the choices", () => {
    for (const bad of ["json", "", "toString", "__proto__", "RESP"]) {
      expect(isCodecName(bad)).toBe(false);
      let err: unknown;
      try {
        codecByName(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnknownCodecError);
      expect(err).toBeInstanceOf(MyriadError);
      expect((err as UnknownCodecError).code).toBe("ERR_UNKNOWN_CODEC");
      for (const n of CODEC_NAMES) expect((err as Error).message).toContain(n);
    }
  });
});

describe("every codec on arbitrary bytes", () => {
  const codecs = [rawCodec, linesCodec, lengthU16Codec, lengthU32Codec, respCodec, respReplyCodec, respReplyBufferCodec];
  // Bytes biased toward protocol characters, so that deep parses happen, not just early errors.
  const protoByte = fc.oneof(
    fc.integer({ min: 0, max: 255 }),
    fc.constantFrom(13, 10, 42, 36, 43, 45, 58, 48, 49, 50, 51, 57, 34, 39, 92, 32, 0),
  );
  const stream = fc.array(protoByte, { maxLength: 300 }).map((a) => Uint8Array.from(a));

  test("property: measure answers a frame within [start, end) or a FRAME_* code; decode never throws; buffering stays within maxFrameBytes + 4", () => {
    fc.assert(
      fc.property(fc.constantFrom(...codecs), stream, cutFractions, fc.integer({ min: 1, max: 120 }), (codec, data, cuts, max) => {
        const r = reassemble(codec, splitAt(data, cutsOf(data.length, cuts)), max);
        expect(r.maxPendingBytes).toBeLessThanOrEqual(max + 4);
        if (r.error === null) expect(r.pendingBytes).toBeLessThanOrEqual(max + 4);
      }),
      { numRuns: 500 },
    );
  });

  test("property: the verdict does not depend on how the bytes were split", () => {
    fc.assert(
      fc.property(fc.constantFrom(...codecs), stream, cutFractions, fc.integer({ min: 1, max: 120 }), (codec, data, cuts, max) => {
        if (codec === rawCodec) return; // raw frames are the reads themselves
        const whole = reassemble(codec, [data], max);
        const split = reassemble(codec, splitAt(data, cutsOf(data.length, cuts)), max);
        expect(split.frames).toEqual(whole.frames);
        expect(split.error).toBe(whole.error);
      }),
      { numRuns: 500 },
    );
  });
});

test("FRAME_* constants are distinct and non-positive", () => {
  expect(new Set([FRAME_INCOMPLETE, FRAME_TOO_LARGE, FRAME_MALFORMED]).size).toBe(3);
  expect(Math.max(FRAME_INCOMPLETE, FRAME_TOO_LARGE, FRAME_MALFORMED)).toBeLessThanOrEqual(0);
});
