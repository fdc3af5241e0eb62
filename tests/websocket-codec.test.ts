/**
 * The WebSocket codec pieces on their own: frame headers, unmasking, encoding, UTF-8
 * validation, the upgrade request and its answers, permessage-deflate negotiation and
 * (de)compression, and the framer (frames to messages) fed as the reactor feeds it, split
 * at arbitrary points (fast-check).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import zlib from "node:zlib";
import { SegmentPool } from "../src/conn-table/index.ts";
import {
  CLOSE_INVALID_PAYLOAD,
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_PROTOCOL_ERROR,
  FrameHeader,
  MEASURE_PROTOCOL_ERROR,
  MEASURE_TOO_BIG,
  RSV1,
  closePayload,
  encodeClientFrame,
  encodeFrame,
  isValidCloseCode,
  measureFrame,
  unmask,
  writeFrameHeader,
} from "../src/codec/websocket-frame.ts";
import { UTF8_ACCEPT, UTF8_REJECT, isValidUtf8, utf8Validate } from "../src/codec/websocket-utf8.ts";
import {
  REQUEST_TOO_LARGE,
  acceptKey,
  errorResponse,
  headerLines,
  PLAIN_101_BYTES,
  UpgradeScan,
  measureRequest,
  parseUpgradeRequest,
  switchingProtocolsResponse,
} from "../src/codec/websocket-handshake.ts";
import {
  INFLATE_CORRUPT,
  INFLATE_TOO_BIG,
  MessageDeflater,
  MessageInflater,
  negotiateDeflate,
  resolveDeflateOptions,
} from "../src/codec/websocket-deflate.ts";
import { CONSUME_FAILED, EXT_CLIENT_TAKEOVER, EXT_DEFLATE, STREAM_MIN_BYTES, WebSocketFramer, type FrameSink } from "../src/websocket/framer.ts";
import { Topics } from "../src/websocket/index.ts";
import { MyriadError } from "../src/errors.ts";
import { concat, cutFractions, cutsOf, splitAt } from "./helpers/reassemble.ts";

const enc = new TextEncoder();
const MASK = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);

describe("frame headers", () => {
  const h = new FrameHeader();
  test("7-, 16- and 64-bit payload lengths, measured only once complete", () => {
    for (const n of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
      const f = encodeClientFrame(0x82, new Uint8Array(n), MASK);
      const hb = n < 126 ? 6 : n < 65536 ? 8 : 14;
      expect(f.length).toBe(hb + n);
      for (let cut = 0; cut < Math.min(f.length, 20); cut++) expect(measureFrame(f, 0, cut, 1 << 20, 0, true, h)).toBe(0);
      expect(measureFrame(f, 0, f.length - 1, 1 << 20, 0, true, h)).toBe(0);
      expect(measureFrame(f, 0, f.length, 1 << 20, 0, true, h)).toBe(f.length);
      expect([h.headerBytes, h.payloadBytes, h.opcode, h.masked]).toEqual([hb, n, 2, true]);
    }
  });

  test("protocol errors are known from the header's first bytes", () => {
    const bad = (bytes: number[], allowedRsv = 0) => measureFrame(Uint8Array.from(bytes), 0, bytes.length, 1 << 20, allowedRsv, true, h);
    expect(bad([0xc1])).toBe(MEASURE_PROTOCOL_ERROR); // RSV1 without an extension
    expect(bad([0xa1])).toBe(MEASURE_PROTOCOL_ERROR); // RSV2
    expect(bad([0x91])).toBe(MEASURE_PROTOCOL_ERROR); // RSV3
    expect(bad([0xc1, 0x80], RSV1)).toBe(0); // RSV1 allowed once negotiated
    expect(bad([0xe1], RSV1)).toBe(MEASURE_PROTOCOL_ERROR);
    for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) expect(bad([0x80 | op])).toBe(MEASURE_PROTOCOL_ERROR);
    expect(bad([0x09])).toBe(MEASURE_PROTOCOL_ERROR); // fragmented ping
    expect(bad([0xc9], RSV1)).toBe(MEASURE_PROTOCOL_ERROR); // compressed ping
    expect(bad([0x89, 0x80 | 126])).toBe(MEASURE_PROTOCOL_ERROR); // control frame over 125
    expect(bad([0x81, 0x05])).toBe(MEASURE_PROTOCOL_ERROR); // unmasked client frame
    expect(bad([0x82, 0xff, 0x80])).toBe(MEASURE_PROTOCOL_ERROR); // 64-bit length, top bit set
    expect(measureFrame(Uint8Array.from([0x81, 0x85]), 0, 2, 100, 0, false, h)).toBe(MEASURE_PROTOCOL_ERROR); // masked server frame
  });

  test("a payload over the limit is refused as soon as its length is known", () => {
    const f = encodeClientFrame(0x82, new Uint8Array(300), MASK);
    expect(measureFrame(f, 0, 3, 299, 0, true, h)).toBe(0);
    expect(measureFrame(f, 0, 4, 299, 0, true, h)).toBe(MEASURE_TOO_BIG);
    expect(measureFrame(f, 0, 4, 300, 0, true, h)).toBe(0);
    // A 64-bit length of 2^40 is over any limit from its third byte on.
    expect(measureFrame(Uint8Array.from([0x82, 0xff, 0, 0, 1]), 0, 5, 1 << 30, 0, true, h)).toBe(MEASURE_TOO_BIG);
  });

  test("server frames: header sizes and bytes", () => {
    const dst = new Uint8Array(10);
    expect(writeFrameHeader(dst, 0, 0x81, 5)).toBe(2);
    expect([...dst.subarray(0, 2)]).toEqual([0x81, 5]);
    expect(writeFrameHeader(dst, 0, 0x82, 300)).toBe(4);
    expect([...dst.subarray(0, 4)]).toEqual([0x82, 126, 1, 44]);
    expect(writeFrameHeader(dst, 0, 0x82, 2 ** 32 + 5)).toBe(10);
    expect([...dst]).toEqual([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 5]);
    const f = encodeFrame(0x81, enc.encode("hi"));
    expect([...f]).toEqual([0x81, 2, 104, 105]);
    expect(measureFrame(f, 0, f.length, 100, 0, false, h)).toBe(4);
  });

  test("unmask: byte path and word path agree at every alignment", () => {
    for (const n of [0, 1, 2, 3, 5, 63, 64, 65, 200, 1001]) {
      for (let lead = 0; lead < 4; lead++) {
        const payload = Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
        const f = encodeClientFrame(0x82, payload, MASK);
        const buf = new Uint8Array(lead + f.length);
        buf.set(f, lead);
        const hb = f.length - n;
        unmask(buf, lead + hb - 4, lead + hb, n);
        expect(buf.subarray(lead + hb)).toEqual(payload);
      }
    }
  });

  test("close codes: valid, invalid, reserved", () => {
    for (const c of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) expect(isValidCloseCode(c)).toBe(true);
    for (const c of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) expect(isValidCloseCode(c)).toBe(false);
  });

  test("close payloads cut long reasons at a character boundary", () => {
    expect([...closePayload(1000, "")]).toEqual([3, 232]);
    expect(closePayload(0, "ignored").length).toBe(0);
    const p = closePayload(4000, "é".repeat(100)); // 200 bytes of 2-byte characters
    expect(p.length).toBe(2 + 122);
    expect(isValidUtf8(p, 2, p.length)).toBe(true);
  });
});

describe("UTF-8 validation", () => {
  const fatal = new TextDecoder("utf-8", { fatal: true });
  const strictlyValid = (b: Uint8Array) => {
    try {
      fatal.decode(b);
      return true;
    } catch {
      return false;
    }
  };
  const samples: [string, number[], boolean][] = [
    ["ascii", [0x48, 0x69], true],
    ["2-byte", [0xc3, 0xa9], true],
    ["3-byte", [0xe2, 0x82, 0xac], true],
    ["4-byte", [0xf0, 0x9f, 0x98, 0x80], true],
    ["max code point", [0xf4, 0x8f, 0xbf, 0xbf], true],
    ["past U+10FFFF", [0xf4, 0x90, 0x80, 0x80], false],
    ["overlong 2-byte", [0xc0, 0xaf], false],
    ["overlong 3-byte", [0xe0, 0x80, 0xaf], false],
    ["overlong 4-byte", [0xf0, 0x80, 0x80, 0xaf], false],
    ["surrogate", [0xed, 0xa0, 0x80], false],
    ["stray continuation", [0x80], false],
    ["F5", [0xf5, 0x80, 0x80, 0x80], false],
    ["truncated", [0xe2, 0x82], false],
    ["Autobahn 6.4.1 (invalid code point in the middle)", [0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xf4, 0x90, 0x80, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64], false],
  ];
  test.each(samples)("%s, split at every position", (_name, bytes, valid) => {
    const b = Uint8Array.from(bytes);
    expect(isValidUtf8(b, 0, b.length)).toBe(valid);
    for (let cut = 0; cut <= b.length; cut++) {
      const s = utf8Validate(b, 0, cut, UTF8_ACCEPT);
      const end = s === UTF8_REJECT ? s : utf8Validate(b, cut, b.length, s);
      expect(end === UTF8_ACCEPT).toBe(valid);
    }
  });

  test("property: agrees with a fatal TextDecoder over arbitrary bytes and splits", () => {
    const chars = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((b) => [b]),
      fc.string({ unit: "grapheme", maxLength: 3 }).map((s) => [...enc.encode(s)]),
      fc.constantFrom([0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80], [0xc0], [0xe0, 0x9f], [0xf0, 0x8f]),
    );
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 80 }), cutFractions, (parts, cuts) => {
        const b = Uint8Array.from(parts.flat());
        const chunks = splitAt(b, cutsOf(b.length, cuts));
        let s = UTF8_ACCEPT;
        for (const c of chunks) if (s !== UTF8_REJECT) s = utf8Validate(c, 0, c.length, s);
        expect(s === UTF8_ACCEPT).toBe(strictlyValid(b));
      }),
      { numRuns: 500 },
    );
  });

  test("long chunks take the native path and still catch errors near the edges", () => {
    const text = enc.encode("héllo wörld ".repeat(20));
    expect(isValidUtf8(text, 0, text.length)).toBe(true);
    for (const at of [0, 1, 40, text.length - 2, text.length - 1]) {
      const bad = text.slice();
      bad[at] = 0xff;
      expect(isValidUtf8(bad, 0, bad.length)).toBe(false);
    }
    const open = Uint8Array.from([...text, 0xf0, 0x9f]);
    const s = utf8Validate(open, 0, open.length, UTF8_ACCEPT);
    expect(s).not.toBe(UTF8_ACCEPT);
    expect(s).not.toBe(UTF8_REJECT);
    expect(utf8Validate(Uint8Array.from([0x98, 0x80]), 0, 2, s)).toBe(UTF8_ACCEPT);
  });
});

describe("upgrade request", () => {
  const request = (lines: string[]) => enc.encode(`${lines.join("\r\n")}\r\n\r\n`);
  const good = [
    "GET /chat?room=1 HTTP/1.1",
    "Host: example.com",
    "Upgrade: websocket",
    "Connection: keep-alive, Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Protocol: chat, superchat",
    "Origin: http://example.com",
  ];

  test("RFC 6455's example key gives its example accept", () => {
    expect(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  test("measured through the blank line, bounded", () => {
    const r = request(good);
    expect(measureRequest(r, 0, r.length - 1, 8192)).toBe(0);
    expect(measureRequest(r, 0, r.length, 8192)).toBe(r.length);
    const withFrame = concat([r, Uint8Array.from([0x81, 0x80])]);
    expect(measureRequest(withFrame, 0, withFrame.length, 8192)).toBe(r.length);
    expect(measureRequest(r, 0, r.length, 64)).toBe(REQUEST_TOO_LARGE);
    const lf = enc.encode("GET / HTTP/1.1\nHost: x\n\n");
    expect(measureRequest(lf, 0, lf.length, 8192)).toBe(lf.length);
  });

  test("a good request parses: path, query, headers, protocols", () => {
    const r = request(good);
    const p = parseUpgradeRequest(r, 0, r.length, "127.0.0.1");
    if (!p.ok) throw new Error(p.message);
    expect(p.request.path).toBe("/chat");
    expect(p.request.url).toBe("/chat?room=1");
    expect(p.request.protocols).toEqual(["chat", "superchat"]);
    expect(p.request.headers.get("origin")).toBe("http://example.com");
    expect(p.key).toBe("dGhlIHNhbXBsZSBub25jZQ==");
    const resp = switchingProtocolsResponse(p.key, "chat", "", { "X-Node": "a" });
    expect(resp).toBe(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\nX-Node: a\r\n\r\n",
    );
  });

  const without = (name: string) => good.filter((l) => !l.toLowerCase().startsWith(name));
  test.each([
    ["no Upgrade header: 426", without("upgrade:"), 426],
    ["Sec-WebSocket-Version 8: 426", [...without("sec-websocket-version"), "Sec-WebSocket-Version: 8"], 426],
    ["no Connection: Upgrade: 400", [...without("connection"), "Connection: keep-alive"], 400],
    ["no key: 400", without("sec-websocket-key"), 400],
    ["a key of 15 bytes: 400", [...without("sec-websocket-key"), "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"], 400],
    ["two keys: 400", [...good, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="], 400],
    ["no Host: 400", without("host"), 400],
    ["POST: 405", ["POST /chat HTTP/1.1", ...good.slice(1)], 405],
    ["HTTP/1.0: 505", ["GET /chat HTTP/1.0", ...good.slice(1)], 505],
    ["garbage request line: 400", ["\x16\x03\x01 hello", ...good.slice(1)], 400],
    ["folded header: 400", [...good, " folded"], 400],
    ["bad subprotocol list: 400", [...without("sec-websocket-protocol"), "Sec-WebSocket-Protocol: a b"], 400],
  ])("%s", (_name, lines, status) => {
    const r = request(lines as string[]);
    const p = parseUpgradeRequest(r, 0, r.length, "");
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.status).toBe(status as number);
  });

  test("measureRequest finds what a byte-by-byte reading finds, for any bytes and bounds (fast-check)", () => {
    // The blank line read one byte at a time: "\n" then "\n" or "\r\n", starting before the limit.
    const reference = (buf: Uint8Array, start: number, end: number, max: number): number => {
      const limit = end - start > max ? start + max : end;
      for (let i = start; i < limit; i++) {
        if (buf[i] !== 10) continue;
        if (i + 1 < end && buf[i + 1] === 10) return i + 2 - start;
        if (i + 2 < end && buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3 - start;
      }
      return end - start >= max ? REQUEST_TOO_LARGE : 0;
    };
    const bytes = fc.array(fc.constantFrom(10, 13, 65, 58, 32), { maxLength: 40 }).map((a) => Uint8Array.from(a));
    fc.assert(
      fc.property(bytes, fc.nat(40), fc.nat(40), fc.integer({ min: 1, max: 40 }), (buf, a, b, max) => {
        const start = Math.min(a, b, buf.length);
        const end = Math.min(Math.max(a, b), buf.length);
        expect(measureRequest(buf, start, end, max)).toBe(reference(buf, start, end, max));
      }),
      { numRuns: 2000 },
    );
  });

  test("the allocation-free scan passes only what the full parser accepts, and answers as it would (fast-check)", () => {
    const cased = (name: string) => fc.constantFrom(name, name.toLowerCase(), name.toUpperCase(), name.replace(/[a-z]/g, (c, i) => (i % 2 ? c.toUpperCase() : c)));
    const ows = fc.constantFrom("", " ", "  ", "\t", " \t");
    // The first value listed is a good one and comes up as often as the others together.
    const value = (values: string[]) => (values.length === 1 ? fc.constant(values[0]!) : fc.oneof({ arbitrary: fc.constant(values[0]!), weight: values.length - 1 }, fc.constantFrom(...values.slice(1))));
    const field = (name: string, values: string[]) => fc.tuple(cased(name), ows, value(values), ows).map(([n, a, v, b]) => `${n}:${a}${v}${b}`);
    const host = field("Host", ["example.com", "127.0.0.1:80", ""]);
    const upgrade = field("Upgrade", ["websocket", "WebSocket", "h2c, websocket", "h2c", "websocket2"]);
    const connection = field("Connection", ["Upgrade", "upgrade", "keep-alive, Upgrade", "keep-alive", "Upgrades"]);
    const key = field("Sec-WebSocket-Key", ["dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAA==", "dGhlIHNhbXBsZSBub25jZQ=", "dGhl*HNhbXBsZSBub25jZQ=="]);
    const version = field("Sec-WebSocket-Version", ["13", "8", "13 "]);
    // (A malformed protocol list is the negotiation's to judge: the scan only notes the field.)
    const other = fc.oneof(field("Sec-WebSocket-Protocol", ["chat", "chat, superchat"]), field("Origin", ["http://example.com"]), fc.constantFrom("X-Odd", " folded", "NoColon"));
    // Each needed field mostly once (sometimes twice or missing), in any order, among others.
    const some = (arb: fc.Arbitrary<string>) => fc.oneof({ arbitrary: arb.map((l) => [l]), weight: 6 }, fc.constant([] as string[]), fc.tuple(arb, arb));
    const fieldsOf = fc
      .tuple(some(host), some(upgrade), some(connection), some(key), some(version), fc.array(other, { maxLength: 3 }))
      .chain((groups) => fc.shuffledSubarray(groups.flat(), { minLength: groups.flat().length }));
    const head = value(["GET / HTTP/1.1", "GET /chat?x=1 HTTP/1.1", "GET /a b HTTP/1.1", "GET / HTTP/1.0", "POST / HTTP/1.1", "GET / HTTP/1.1 "]);
    const scan = new UpgradeScan();
    let passed = 0;
    fc.assert(
      fc.property(head, fieldsOf, fc.constantFrom("\r\n", "\n"), (first, lines, eol) => {
        const all = [first, ...lines];
        const r = enc.encode(`${all.join(eol)}${eol}${eol}`);
        const n = measureRequest(r, 0, r.length, 8192);
        expect(n).toBe(r.length);
        if (!scan.scan(r, 0, n)) return;
        passed++;
        const p = parseUpgradeRequest(r, 0, n, "");
        if (!p.ok) throw new Error(`the scan passed what the parser refuses (${p.status} ${p.message}): ${JSON.stringify(all)}`);
        expect(scan.key(r)).toBe(p.key);
        const out = new Uint8Array(PLAIN_101_BYTES);
        expect(scan.write101(r, out, 0)).toBe(PLAIN_101_BYTES);
        expect(new TextDecoder().decode(out)).toBe(switchingProtocolsResponse(p.key, "", ""));
      }),
      { numRuns: 1500 },
    );
    expect(passed).toBeGreaterThan(10);
    const plain = ["Host: example.com", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"];
    // The usual request (and its lower-case and LF-only forms) takes the fast path.
    for (const r of [request(["GET / HTTP/1.1", ...plain]), request(["GET / HTTP/1.1", ...plain.map((l) => l.toLowerCase())]), enc.encode(`${["GET / HTTP/1.1", ...plain].join("\n")}\n\n`)]) {
      expect(scan.scan(r, 0, r.length)).toBe(true);
    }
  });

  test("error responses: 426 names the version, bodies are counted", () => {
    const r = errorResponse(426, "use WebSocket");
    expect(r).toContain("HTTP/1.1 426 Upgrade Required\r\n");
    expect(r).toContain("Sec-WebSocket-Version: 13\r\n");
    expect(r).toContain("Content-Length: 14\r\n");
    expect(r).toEndWith("\r\n\r\nuse WebSocket\n");
    expect(() => headerLines({ "X-A": "1\r\nSet-Cookie: x" })).toThrow(MyriadError);
    expect(() => headerLines({ "Bad Name": "1" })).toThrow(MyriadError);
  });
});

describe("permessage-deflate", () => {
  const defaults = resolveDeflateOptions(true)!;
  test.each([
    ["plain offer: both no-context-takeover by default", "permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
    [
      "client_max_window_bits without value",
      "permessage-deflate; client_max_window_bits",
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    ],
    [
      "server_max_window_bits=10 honoured",
      "permessage-deflate; server_max_window_bits=10",
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
    ],
    [
      "quoted value",
      'permessage-deflate; client_max_window_bits="12"',
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=12",
    ],
    [
      "first offer declined (window 8), second taken",
      "permessage-deflate; server_max_window_bits=8, permessage-deflate",
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    ],
    ["unknown parameter: declined", "permessage-deflate; foo=1", null],
    ["repeated parameter: declined", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", null],
    ["bad window value: declined", "permessage-deflate; server_max_window_bits=16", null],
    ["missing window value: declined", "permessage-deflate; server_max_window_bits", null],
    ["value on a flag: declined", "permessage-deflate; client_no_context_takeover=1", null],
    ["another extension only", "x-webkit-deflate-frame", null],
    ["unparsable header", "permessage-deflate; =", null],
  ])("%s", (_name, offer, response) => {
    const r = negotiateDeflate(offer as string, defaults);
    expect(r === null ? null : r.response).toBe(response as string | null);
  });

  test("context takeover only when the server allows it and the client does not refuse it", () => {
    const loose = resolveDeflateOptions({ serverNoContextTakeover: false, clientNoContextTakeover: false })!;
    const r = negotiateDeflate("permessage-deflate; client_max_window_bits", loose)!;
    expect(r.response).toBe("permessage-deflate"); // a window of 15 needs no saying
    expect(r.params).toMatchObject({ serverNoContextTakeover: false, clientNoContextTakeover: false });
    const asked = negotiateDeflate("permessage-deflate; server_no_context_takeover", loose)!;
    expect(asked.params.serverNoContextTakeover).toBe(true);
    expect(asked.response).toBe("permessage-deflate; server_no_context_takeover");
    const limited = resolveDeflateOptions({ serverMaxWindowBits: 11, clientMaxWindowBits: 9 })!;
    expect(negotiateDeflate("permessage-deflate; client_max_window_bits", limited)!.response).toBe(
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=9",
    );
    expect(() => resolveDeflateOptions({ serverMaxWindowBits: 8 })).toThrow(MyriadError);
    expect(() => resolveDeflateOptions({ nope: 1 } as never)).toThrow(/perMessageDeflate\.nope/);
  });

  test("round trip, with and without context takeover; what zlib itself can read", () => {
    const msg = enc.encode("hello hello hello hello, websocket world ".repeat(50));
    const shared = new MessageDeflater(15, -1, 8, false);
    const inflater = new MessageInflater(false);
    const a = shared.compress(msg, 0, msg.length).slice();
    const b = shared.compress(msg, 0, msg.length).slice();
    expect(b).toEqual(a); // no context: the same message compresses the same way
    expect(a.length).toBeLessThan(msg.length / 10);
    const viaZlib = zlib.inflateRawSync(concat([a, Uint8Array.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(new Uint8Array(viaZlib)).toEqual(msg);
    expect(inflater.inflate(a, 0, a.length, 1 << 20)).toBe(msg.length);
    expect(inflater.output()).toEqual(msg);

    const own = new MessageDeflater(15, -1, 8, true);
    const first = own.compress(msg, 0, msg.length).slice();
    const second = own.compress(msg, 0, msg.length).slice();
    expect(second.length).toBeLessThan(first.length); // the window carried over
    const ownInflater = new MessageInflater(true);
    expect(ownInflater.inflate(first, 0, first.length, 1 << 20)).toBe(msg.length);
    expect(ownInflater.inflate(second, 0, second.length, 1 << 20)).toBe(msg.length);
    expect(ownInflater.output()).toEqual(msg);
    own.close();
    ownInflater.close();

    const small = new MessageDeflater(9, 1, 1, false);
    const z = small.compress(msg, 0, msg.length).slice();
    expect(inflater.inflate(z, 0, z.length, 1 << 20)).toBe(msg.length);
  });

  test("a decompression bomb stops at the limit; corrupt data is reported", () => {
    const zeros = new Uint8Array(2 << 20);
    const bomb = new MessageDeflater(15, 9, 8, false).compress(zeros, 0, zeros.length).slice();
    expect(bomb.length).toBeLessThan(16 * 1024);
    const inflater = new MessageInflater(false);
    expect(inflater.inflate(bomb, 0, bomb.length, 1 << 20)).toBe(INFLATE_TOO_BIG);
    expect(inflater.inflate(bomb, 0, bomb.length, 2 << 20)).toBe(2 << 20);
    expect(inflater.inflate(Uint8Array.from([0xff, 0xff, 0xff]), 0, 3, 1 << 20)).toBe(INFLATE_CORRUPT);
    // Usable again after a failure.
    const ok = new MessageDeflater(15, -1, 8, false).compress(enc.encode("after"), 0, 5).slice();
    expect(inflater.inflate(ok, 0, ok.length, 100)).toBe(5);
  });
});

// ---- the framer, fed like the reactor feeds it ---------------------------------------------

type Event = ["message", string | number[]] | ["ping", number[]] | ["pong"] | ["close", number, string] | ["fail", number];

class Recorder implements FrameSink {
  events: Event[] = [];
  failed = false;
  canContinue() {
    return !this.failed;
  }
  onMessage(_h: number, data: string | Uint8Array) {
    this.events.push(["message", typeof data === "string" ? data : [...data]]);
  }
  onPing(_h: number, buf: Uint8Array, start: number, length: number) {
    this.events.push(["ping", [...buf.subarray(start, start + length)]]);
  }
  onPong() {
    this.events.push(["pong"]);
  }
  onCloseFrame(_h: number, code: number, reason: string) {
    this.events.push(["close", code, reason]);
  }
  onFail(_h: number, code: number) {
    this.events.push(["fail", code]);
    this.failed = true;
  }
}

function newFramer(max = 1 << 16, ext = 0, streamMinBytes = STREAM_MIN_BYTES) {
  const framer = new WebSocketFramer({ capacity: 4, maxMessageBytes: max, pool: new SegmentPool({ segmentBytes: 64, maxSegments: 16 }), streamMinBytes });
  const sink = new Recorder();
  framer.sink = sink;
  framer.ext[1] = ext;
  return { framer, sink };
}

/**
 * Feeds chunks to connection 1 as the server stage does: consume() what it can of what is
 * held plus the new chunk, hold the rest; stops once it failed (a measure error or onFail).
 * Returns the most bytes ever held between chunks.
 */
function feed(framer: WebSocketFramer, sink: Recorder, chunks: Uint8Array[]): number {
  let pending = new Uint8Array(0);
  let most = 0;
  for (const chunk of chunks) {
    const buf = pending.length === 0 ? chunk.slice() : concat([pending, chunk]);
    const used = framer.consume(1, buf, 0, buf.length);
    if (used === CONSUME_FAILED) return most;
    pending = buf.slice(used);
    most = Math.max(most, pending.length);
  }
  return most;
}

const frame = (b0: number, payload: Uint8Array | string) => encodeClientFrame(b0, typeof payload === "string" ? enc.encode(payload) : payload, MASK);

describe("framer", () => {
  test("property: messages, fragments and interleaved control frames survive any split", () => {
    const message = fc.record({
      text: fc.boolean(),
      body: fc.oneof(fc.string({ unit: "grapheme", maxLength: 200 }), fc.uint8Array({ maxLength: 300 })),
      fragments: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
      ping: fc.option(fc.uint8Array({ maxLength: 125 })),
    });
    fc.assert(
      // Streaming from 1 byte in hand up to never: every path through consume().
      fc.property(fc.array(message, { maxLength: 12 }), cutFractions, fc.integer({ min: 1, max: 400 }), (messages, cuts, streamMin) => {
        const { framer, sink } = newFramer(1 << 16, 0, streamMin);
        const wire: Uint8Array[] = [];
        const expected: Event[] = [];
        for (const m of messages) {
          const body = m.text ? (typeof m.body === "string" ? enc.encode(m.body) : enc.encode([...m.body].map((b) => String.fromCharCode(b)).join(""))) : typeof m.body === "string" ? enc.encode(m.body) : m.body;
          // Cut the payload anywhere (even inside a character): each piece one frame.
          const pieces = splitAt(body, cutsOf(body.length, m.fragments));
          pieces.forEach((piece, i) => {
            const op = i === 0 ? (m.text ? 1 : 2) : 0;
            wire.push(frame((i === pieces.length - 1 ? 0x80 : 0) | op, piece));
            if (m.ping !== null && i === 0 && pieces.length > 1) {
              wire.push(frame(0x89, m.ping));
              expected.push(["ping", [...m.ping]]);
            }
          });
          expected.push(["message", m.text ? new TextDecoder().decode(body) : [...body]]);
        }
        wire.push(frame(0x88, closePayload(1000, "bye")));
        expected.push(["close", 1000, "bye"]);
        const stream = concat(wire);
        feed(framer, sink, splitAt(stream, cutsOf(stream.length, cuts)));
        expect(sink.events).toEqual(expected);
        expect(framer.heldBytes).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  test("large frames are streamed: held input stays under STREAM_MIN_BYTES + a header, text fails mid-frame", () => {
    const { framer, sink } = newFramer(1 << 20);
    const text = "κόσμε ".repeat(20_000); // 220,000 bytes
    const wire = concat([frame(0x01, text.slice(0, 50_000)), frame(0x80, text.slice(50_000)), frame(0x82, new Uint8Array(70_000).fill(7))]);
    const chunks = splitAt(wire, Array.from({ length: 120 }, (_, i) => i * 3001 + (i % 7)));
    const most = feed(framer, sink, chunks);
    expect(most).toBeLessThan(STREAM_MIN_BYTES + 14);
    expect(sink.events).toEqual([
      ["message", text],
      ["message", [...new Uint8Array(70_000).fill(7)]],
    ]);
    expect(framer.heldBytes).toBe(0);
    // An invalid byte 30,000 bytes into a 200,000-byte text frame fails before the frame ends.
    const bad = enc.encode("a".repeat(200_000));
    bad[30_000] = 0xff;
    const f = frame(0x81, bad);
    const t = newFramer(1 << 20);
    feed(t.framer, t.sink, [f.subarray(0, 40_000)]);
    expect(t.sink.events).toEqual([["fail", CLOSE_INVALID_PAYLOAD]]);
    // A frame whose length already passes the limit with what is held: 1009 at its header.
    const u = newFramer(100_000);
    feed(u.framer, u.sink, [frame(0x02, new Uint8Array(60_000)), frame(0x80, new Uint8Array(50_000)).subarray(0, 20_000)]);
    expect(u.sink.events).toEqual([["fail", CLOSE_MESSAGE_TOO_BIG]]);
  });

  test("fragmentation errors: continuation without a message, a new message inside one", () => {
    let { framer, sink } = newFramer();
    feed(framer, sink, [frame(0x80, "x")]);
    expect(sink.events).toEqual([["fail", CLOSE_PROTOCOL_ERROR]]);
    ({ framer, sink } = newFramer());
    feed(framer, sink, [frame(0x01, "a"), frame(0x81, "b")]);
    expect(sink.events).toEqual([["fail", CLOSE_PROTOCOL_ERROR]]);
    framer.release(1);
    expect(framer.heldBytes).toBe(0);
  });

  test("UTF-8 split across fragments: valid joins, invalid fails at the fragment that breaks it", () => {
    const euro = [0xe2, 0x82, 0xac];
    for (let cut = 0; cut <= 3; cut++) {
      const { framer, sink } = newFramer();
      feed(framer, sink, [frame(0x01, Uint8Array.from(euro.slice(0, cut))), frame(0x80, Uint8Array.from(euro.slice(cut)))]);
      expect(sink.events).toEqual([["message", "€"]]);
    }
    const { framer, sink } = newFramer();
    // Second fragment breaks the text: fail before the third arrives.
    feed(framer, sink, [frame(0x01, "κόσμε"), frame(0x00, Uint8Array.from([0xf4, 0x90])), frame(0x80, "edited")]);
    expect(sink.events).toEqual([["fail", CLOSE_INVALID_PAYLOAD]]);
    const t = newFramer();
    feed(t.framer, t.sink, [frame(0x01, Uint8Array.from([0xce])), frame(0x80, "")]); // truncated at the end
    expect(t.sink.events).toEqual([["fail", CLOSE_INVALID_PAYLOAD]]);
  });

  test("message size: fragments joined past the limit fail 1009", () => {
    const { framer, sink } = newFramer(100);
    feed(framer, sink, [frame(0x02, new Uint8Array(60)), frame(0x80, new Uint8Array(41))]);
    expect(sink.events).toEqual([["fail", CLOSE_MESSAGE_TOO_BIG]]);
    const big = newFramer(100);
    feed(big.framer, big.sink, [frame(0x82, new Uint8Array(101))]);
    expect(big.sink.events).toEqual([["fail", CLOSE_MESSAGE_TOO_BIG]]);
  });

  test("close frames: 1-byte payload, invalid code, invalid reason, no status", () => {
    const cases: [Uint8Array, Event][] = [
      [new Uint8Array(0), ["close", 1005, ""]],
      [Uint8Array.from([3]), ["fail", CLOSE_PROTOCOL_ERROR]],
      [Uint8Array.from([0x03, 0xec]), ["fail", CLOSE_PROTOCOL_ERROR]], // 1004
      [Uint8Array.from([0x0b, 0xb8]), ["close", 3000, ""]],
      [Uint8Array.from([0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd]), ["fail", CLOSE_INVALID_PAYLOAD]],
    ];
    for (const [payload, event] of cases) {
      const { framer, sink } = newFramer();
      feed(framer, sink, [frame(0x88, payload)]);
      expect(sink.events).toEqual([event]);
    }
  });

  test("compressed messages: single frame, fragmented, RSV1 rules, bomb, context takeover", () => {
    const deflater = new MessageDeflater(15, -1, 8, false);
    const text = "compress me ".repeat(40);
    const z = deflater.compress(enc.encode(text), 0, text.length).slice();
    let { framer, sink } = newFramer(1 << 16, EXT_DEFLATE);
    feed(framer, sink, [frame(0xc1, z)]);
    feed(framer, sink, [frame(0x41, z.subarray(0, 5)), frame(0x00, z.subarray(5, 9)), frame(0x80, z.subarray(9))]);
    expect(sink.events).toEqual([
      ["message", text],
      ["message", text],
    ]);
    ({ framer, sink } = newFramer(1 << 16, EXT_DEFLATE));
    feed(framer, sink, [frame(0x01, "a"), frame(0xc0, "b")]);
    expect(sink.events).toEqual([["fail", CLOSE_PROTOCOL_ERROR]]); // RSV1 on a continuation
    ({ framer, sink } = newFramer(1 << 16, 0));
    feed(framer, sink, [frame(0xc1, z)]);
    expect(sink.events).toEqual([["fail", CLOSE_PROTOCOL_ERROR]]); // not negotiated
    ({ framer, sink } = newFramer(1000, EXT_DEFLATE));
    const bomb = deflater.compress(new Uint8Array(100_000), 0, 100_000).slice();
    feed(framer, sink, [frame(0xc2, bomb)]);
    expect(sink.events).toEqual([["fail", CLOSE_MESSAGE_TOO_BIG]]);
    ({ framer, sink } = newFramer(1 << 16, EXT_DEFLATE));
    feed(framer, sink, [frame(0xc1, Uint8Array.from([0xff, 0xfe, 0x00]))]);
    expect(sink.events).toEqual([["fail", CLOSE_INVALID_PAYLOAD]]);
    // The client keeps its window: this connection's inflater must too.
    ({ framer, sink } = newFramer(1 << 16, EXT_DEFLATE | EXT_CLIENT_TAKEOVER));
    const client = new MessageDeflater(15, -1, 8, true);
    const m1 = client.compress(enc.encode(text), 0, text.length).slice();
    const m2 = client.compress(enc.encode(text), 0, text.length).slice();
    feed(framer, sink, [frame(0xc1, m1), frame(0xc1, m2)]);
    expect(sink.events).toEqual([
      ["message", text],
      ["message", text],
    ]);
    framer.release(1);
    client.close();
  });
});

describe("topics", () => {
  const members = (t: Topics, name: string) => {
    const topic = t.get(name);
    return topic === undefined ? [] : [...topic.handles.subarray(0, topic.size)].sort((a, b) => a - b);
  };
  test("subscribe, unsubscribe, close: members stay exact, empty topics go away", () => {
    const t = new Topics(1 << 10);
    const gen = (slot: number, g: number) => g * 2 ** 20 + slot;
    expect(t.subscribe(gen(1, 1), "a")).toBe(true);
    expect(t.subscribe(gen(1, 1), "a")).toBe(false);
    for (let s = 2; s < 200; s++) t.subscribe(gen(s, 3), "a");
    t.subscribe(gen(1, 1), "b");
    t.subscribe(gen(5, 3), "b");
    expect(t.topicCount).toBe(2);
    expect(t.subscriptions).toBe(201);
    expect(t.isSubscribed(gen(5, 3), "b")).toBe(true);
    expect(t.topicsOf(gen(1, 1)).sort()).toEqual(["a", "b"]);
    expect(t.unsubscribe(gen(1, 1), "a")).toBe(true);
    expect(t.unsubscribe(gen(1, 1), "a")).toBe(false);
    expect(t.unsubscribe(gen(1, 1), "zzz")).toBe(false);
    for (let s = 2; s < 150; s++) t.removeAll(s);
    expect(members(t, "a")).toEqual(Array.from({ length: 50 }, (_, i) => gen(150 + i, 3)));
    expect(members(t, "b")).toEqual([gen(1, 1)]); // slot 5's "b" went with removeAll(5)
    t.removeAll(1);
    expect(t.get("b")).toBeUndefined();
    expect(t.topicCount).toBe(1);
    for (let s = 150; s < 200; s++) t.removeAll(s);
    expect(t.topicCount).toBe(0);
    expect(t.subscriptions).toBe(0);
  });

  test("property: agrees with a Map of Sets under random operations", () => {
    const op = fc.tuple(fc.constantFrom("sub", "unsub", "close"), fc.integer({ min: 0, max: 15 }), fc.constantFrom("x", "y", "z"));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const t = new Topics(16);
        const model = new Map<string, Set<number>>();
        for (const [what, slot, name] of ops) {
          if (what === "sub") {
            const had = model.get(name)?.has(slot) ?? false;
            expect(t.subscribe(slot, name)).toBe(!had);
            (model.get(name) ?? model.set(name, new Set()).get(name)!).add(slot);
          } else if (what === "unsub") {
            expect(t.unsubscribe(slot, name)).toBe(model.get(name)?.delete(slot) ?? false);
          } else {
            t.removeAll(slot);
            for (const s of model.values()) s.delete(slot);
          }
          for (const [n, s] of model) if (s.size === 0) model.delete(n);
        }
        for (const name of ["x", "y", "z"]) expect(members(t, name)).toEqual([...(model.get(name) ?? [])].sort((a, b) => a - b));
      }),
    );
  });
});
