/**
 * Frames split over many reads and coalesced many to a read, for every codec, over real
 * sockets: the server echoes each decoded frame re-encoded, so the client must read back
 * exactly what it sent, frame for frame.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { codecByName, lengthU16Codec, lengthU32Codec, resp, type Codec } from "../src/codec/index.ts";
import { createServer, type Server, type ProtocolName } from "../src/reactor/index.ts";
import { concat, connect, pseudoRandomBytes } from "./helpers/net.ts";

const enc = new TextEncoder();

interface Case {
  protocol: ProtocolName;
  /** Frames on the wire as the client sends them. */
  wire(i: number): Uint8Array;
  /** What the server's echo of wire(i) looks like. */
  echo(i: number): Uint8Array;
  /** The server's reply to one decoded frame. */
  reply(codec: Codec<any, any>, frame: any): Uint8Array;
  framed: boolean;
}

function payload(i: number): Uint8Array {
  // Lengths 0..~300 with a few big ones; never contains "\n" (lines) — bytes 32..126.
  const n = i % 17 === 0 ? 5000 + i : (i * 37) % 300;
  const b = pseudoRandomBytes(n, i + 7);
  for (let k = 0; k < n; k++) b[k] = 32 + (b[k]! % 95);
  return b;
}

function respArray(args: Uint8Array[]): Uint8Array {
  return resp.array(args.map((a) => resp.bulk(a)));
}

const cases: Case[] = [
  {
    protocol: "raw",
    wire: (i) => payload(i),
    echo: (i) => payload(i),
    reply: (_c, f: Uint8Array) => f,
    framed: false,
  },
  {
    protocol: "lines",
    // Alternate "\n" and "\r\n" endings; the echo always ends with "\n".
    wire: (i) => concat([payload(i), enc.encode(i % 2 ? "\r\n" : "\n")]),
    echo: (i) => concat([payload(i), enc.encode("\n")]),
    reply: (c, f) => c.encode(f),
    framed: true,
  },
  {
    protocol: "length-u16",
    wire: (i) => lengthU16Codec.encode(payload(i)),
    echo: (i) => lengthU16Codec.encode(payload(i)),
    reply: (c, f) => c.encode(f),
    framed: true,
  },
  {
    protocol: "length-u32",
    wire: (i) => lengthU32Codec.encode(payload(i)),
    echo: (i) => lengthU32Codec.encode(payload(i)),
    reply: (c, f) => c.encode(f),
    framed: true,
  },
  {
    protocol: "resp",
    // Every third request inline (as redis-cli pipes send), the rest arrays of bulk strings.
    wire: (i) =>
      i % 3 === 0
        ? enc.encode(`SET key:${i} value-${i}\r\n`)
        : respArray([enc.encode("ECHO"), payload(i), enc.encode(String(i))]),
    echo: (i) =>
      i % 3 === 0
        ? respArray([enc.encode("SET"), enc.encode(`key:${i}`), enc.encode(`value-${i}`)])
        : respArray([enc.encode("ECHO"), payload(i), enc.encode(String(i))]),
    reply: (_c, args: Uint8Array[]) => respArray(args),
    framed: true,
  },
];

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop({ graceful: false });
});

async function startEcho(c: Case): Promise<Server> {
  const codec = codecByName(c.protocol);
  const server = await createServer({
    port: 0,
    protocol: c.protocol,
    segmentBytes: 256, // small segments: partial frames cross segment sizes and grow
    handler: {
      message(conn, frame) {
        conn.write(c.reply(codec, frame));
      },
    },
  });
  servers.push(server);
  return server;
}

for (const c of cases) {
  describe(`codec ${c.protocol}`, () => {
    test("many frames coalesced into one write come back in order", async () => {
      const server = await startEcho(c);
      const n = 300;
      const wire = concat(Array.from({ length: n }, (_, i) => c.wire(i)));
      const expected = concat(Array.from({ length: n }, (_, i) => c.echo(i)));
      const client = await connect({ port: server.port });
      await client.send(wire);
      await client.waitBytes(expected.length, 10_000);
      expect(client.received()).toEqual(expected);
      if (c.framed) expect(server.stats().framesIn).toBe(n);
      client.close();
    });

    test("frames written one byte at a time", async () => {
      const server = await startEcho(c);
      const ids = [1, 2, 3, 5, 6];
      const wire = concat(ids.map((i) => c.wire(i)));
      const expected = concat(ids.map((i) => c.echo(i)));
      const client = await connect({ port: server.port });
      // Bytes 1 ms apart with TCP_NODELAY: each is its own segment and, almost always, its own read.
      await client.sendSlowly(wire.subarray(0, 400), 1, 1);
      await client.sendSlowly(wire.subarray(400), 0, 97);
      await client.waitBytes(expected.length, 10_000);
      expect(client.received()).toEqual(expected);
      if (c.framed) expect(server.stats().framesIn).toBe(ids.length);
      client.close();
    });

    test("random splits, including frames far larger than a segment", async () => {
      const server = await startEcho(c);
      const n = 120; // includes payloads of 5000+ bytes (i % 17 === 0)
      const wire = concat(Array.from({ length: n }, (_, i) => c.wire(i)));
      const expected = concat(Array.from({ length: n }, (_, i) => c.echo(i)));
      const sizes = pseudoRandomBytes(4096, 99);
      const client = await connect({ port: server.port });
      let pos = 0;
      let k = 0;
      while (pos < wire.length) {
        const size = 1 + (sizes[k++ % sizes.length]! % 700);
        await client.send(wire.subarray(pos, pos + size));
        pos += size;
        if (k % 4 === 0) await Bun.sleep(0);
      }
      await client.waitBytes(expected.length, 10_000);
      expect(client.received()).toEqual(expected);
      if (c.framed) expect(server.stats().framesIn).toBe(n);
      client.close();
    });
  });
}
