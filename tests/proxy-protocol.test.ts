import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  encodeProxyV1,
  newProxyHeader,
  parseProxyHeader,
  PROXY_INCOMPLETE,
  PROXY_MALFORMED,
  PROXY_V1_MAX_BYTES,
  PROXY_V2_MAX_BYTES,
} from "../src/reactor/proxy-protocol.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** A version-2 header built byte by byte from the spec's layout. */
function v2(cmd: number, fam: number, body: number[]): Uint8Array {
  return Uint8Array.from([...SIG, 0x20 | cmd, fam, body.length >> 8, body.length & 0xff, ...body]);
}
const v4body = (src: number[], dst: number[], sp: number, dp: number) => [...src, ...dst, sp >> 8, sp & 0xff, dp >> 8, dp & 0xff];

function parse(bytes: Uint8Array) {
  const out = newProxyHeader();
  const n = parseProxyHeader(bytes, 0, bytes.length, out);
  return { n, out };
}

describe("PROXY protocol v1", () => {
  test("TCP4 and TCP6 lines give the client's address and port", () => {
    const line = "PROXY TCP4 203.0.113.7 198.51.100.1 51234 6380\r\n";
    const { n, out } = parse(enc(line + "PING\r\n"));
    expect(n).toBe(line.length);
    expect(out).toEqual({
      kind: "proxy",
      family: 4,
      sourceAddress: "203.0.113.7",
      sourcePort: 51234,
      destinationAddress: "198.51.100.1",
      destinationPort: 6380,
    });
    const six = parse(enc("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n"));
    expect(six.out.family).toBe(6);
    expect(six.out.sourceAddress).toBe("2001:db8::7");
    expect(six.out.destinationPort).toBe(65535);
  });

  test("UNKNOWN keeps the socket's address", () => {
    const line = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    const { n, out } = parse(enc(line + "x"));
    expect(n).toBe(line.length);
    expect(out.kind).toBe("local");
    expect(parse(enc("PROXY UNKNOWN\r\n")).out.kind).toBe("local");
  });

  test.each([
    ["not PROXY at all", "GET / HTTP/1.1\r\n"],
    ["lower-case keyword", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"],
    ["bad family", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"],
    ["IPv6 text under TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n"],
    ["octet over 255", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"],
    ["port over 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"],
    ["port with a leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"],
    ["missing field", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"],
    ["two spaces", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"],
    ["LF without CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"],
    ["CR not followed by LF", "PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"],
    ["a control byte", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"],
  ])("malformed: %s", (_what, line) => {
    expect(parse(enc(line)).n).toBe(PROXY_MALFORMED);
  });

  test("a line without CRLF in 107 bytes is malformed; shorter is incomplete", () => {
    const long = "PROXY UNKNOWN " + "x".repeat(200);
    expect(parse(enc(long.slice(0, PROXY_V1_MAX_BYTES - 1))).n).toBe(PROXY_INCOMPLETE);
    expect(parse(enc(long.slice(0, PROXY_V1_MAX_BYTES)))).toMatchObject({ n: PROXY_MALFORMED });
  });

  test("encodeProxyV1 round-trips", () => {
    const { out } = parse(encodeProxyV1("10.1.2.3", 4444, "10.0.0.1", 80));
    expect(out.sourceAddress).toBe("10.1.2.3");
    expect(out.sourcePort).toBe(4444);
  });
});

describe("PROXY protocol v2", () => {
  test("PROXY over INET/STREAM gives the client's address and port; TLVs are skipped", () => {
    const tlv = [0x04, 0x00, 0x03, 1, 2, 3]; // a NOOP TLV
    const h = v2(1, 0x11, [...v4body([203, 0, 113, 7], [10, 0, 0, 1], 40000, 6380), ...tlv]);
    const { n, out } = parse(Uint8Array.from([...h, 0x2a]));
    expect(n).toBe(h.length);
    expect(out).toEqual({
      kind: "proxy",
      family: 4,
      sourceAddress: "203.0.113.7",
      sourcePort: 40000,
      destinationAddress: "10.0.0.1",
      destinationPort: 6380,
    });
  });

  test("INET6 addresses are printed as RFC 5952 text", () => {
    const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    const dst = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];
    const { out } = parse(v2(1, 0x21, [...src, ...dst, 0, 80, 1, 0]));
    expect(out.family).toBe(6);
    expect(out.sourceAddress).toBe("2001:db8::7");
    expect(out.destinationAddress).toBe("::ffff:192.0.2.1");
    expect(out.sourcePort).toBe(80);
    expect(out.destinationPort).toBe(256);
  });

  test("LOCAL (a balancer's health check), UNSPEC, UNIX and DGRAM keep the socket's address", () => {
    expect(parse(v2(0, 0x00, [])).out.kind).toBe("local");
    expect(parse(v2(0, 0x11, v4body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))).out.kind).toBe("local");
    expect(parse(v2(1, 0x31, new Array(216).fill(0))).out.kind).toBe("local");
    expect(parse(v2(1, 0x12, v4body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))).out.kind).toBe("local");
  });

  test.each([
    ["a wrong signature byte", Uint8Array.from([...SIG.slice(0, 11), 0x0b, 0x21, 0x11, 0, 12, ...new Array(12).fill(0)])],
    ["version 1 in the binary form", Uint8Array.from([...SIG, 0x11, 0x11, 0, 12, ...new Array(12).fill(0)])],
    ["an unknown command", Uint8Array.from([...SIG, 0x22, 0x11, 0, 12, ...new Array(12).fill(0)])],
    ["an unknown family", Uint8Array.from([...SIG, 0x21, 0x41, 0, 12, ...new Array(12).fill(0)])],
    ["INET with a body shorter than its addresses", v2(1, 0x11, [1, 2, 3, 4, 5, 6, 7, 8])],
  ])("malformed: %s", (_what, bytes) => {
    expect(parse(bytes).n).toBe(PROXY_MALFORMED);
  });

  test("a declared length over the bound is refused before its bytes arrive", () => {
    const body = PROXY_V2_MAX_BYTES - 16 + 1;
    const head = Uint8Array.from([...SIG, 0x21, 0x11, body >> 8, body & 0xff]);
    expect(parse(head).n).toBe(PROXY_MALFORMED);
  });
});

describe("PROXY protocol over arbitrary splits", () => {
  const samples = [
    enc("PROXY TCP4 203.0.113.7 198.51.100.1 51234 6380\r\n"),
    enc("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n"),
    v2(1, 0x11, v4body([203, 0, 113, 7], [10, 0, 0, 1], 40000, 6380)),
    v2(0, 0x00, []),
  ];
  test("every prefix of a header is incomplete, the whole one parses, extra bytes are not consumed", () => {
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.uint8Array({ maxLength: 20 }), (header, extra) => {
        const out = newProxyHeader();
        for (let k = 0; k < header.length; k++) expect(parseProxyHeader(header, 0, k, out)).toBe(PROXY_INCOMPLETE);
        const all = new Uint8Array(header.length + extra.length);
        all.set(header);
        all.set(extra, header.length);
        expect(parseProxyHeader(all, 0, all.length, out)).toBe(header.length);
      }),
    );
  });
  test("random bytes never throw and never claim more than they were given", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const n = parseProxyHeader(bytes, 0, bytes.length, newProxyHeader());
        expect(n).toBeGreaterThanOrEqual(PROXY_MALFORMED);
        expect(n).toBeLessThanOrEqual(bytes.length);
      }),
    );
  });
});
