/**
 * Frames split over many reads and coalesced many to a read, for every codec, over real
 * sockets: the server echoes each decoded frame re-encoded, so the client must read back
 * exactly what it sent, frame for frame. Partial input lives in the server's segment pool
 * only while a frame is incomplete, and a frame trickling in is not rescanned per read.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { codecByName, lengthU16Codec, lengthU32Codec, linesCodec, resp, respCodec, type Codec } from "../src/codec/index.ts";
import type { SegmentPool } from "../src/conn-table/index.ts";
import { createServer, type CloseReason, type Server, type ProtocolName } from "../src/reactor/index.ts";
import { concat, connect, pseudoRandomBytes, type TestClient } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";
import { expectSame } from "./helpers/assert.ts";

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

/**
 * The server's SegmentPool (a private field: the pool is an implementation detail that
 * ServerStats does not show, but what it holds is exactly what these tests are about).
 */
function poolOf(server: Server): SegmentPool {
  const pool = (server as unknown as { pool?: SegmentPool }).pool;
  if (pool === undefined || typeof pool.stats !== "function") {
    throw new Error("reactor internals changed: the server's SegmentPool is no longer its `pool` field; update poolOf()");
  }
  return pool;
}

/** Refs the server holds in its pool: partial input and queued output, pooled or fallback. */
function refsHeld(server: Server): number {
  const st = poolOf(server).stats();
  return st.segmentsInUse + st.fallbackBuffers;
}

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
      expect(refsHeld(server)).toBe(0);
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
      expect(refsHeld(server)).toBe(0); // every partial frame's segment went back to the pool
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
      expect(refsHeld(server)).toBe(0); // including the fallback buffers of 5000-byte frames
      client.close();
    });
  });
}

test("partial input is held in the pool only while its frame is incomplete, one segment per connection", async () => {
  const server = await startEcho(cases[1]!); // lines
  const clients: TestClient[] = [];
  for (let i = 0; i < 40; i++) clients.push(await connect({ port: server.port }));
  // Each connection sends one whole line and the start of another.
  for (let i = 0; i < clients.length; i++) await clients[i]!.send(`line ${i}\nhalf of ${i}`);
  await until("one held partial line per connection", () => refsHeld(server) === clients.length, 5000);
  expect(poolOf(server).stats().segmentsInUse).toBe(clients.length); // pooled segments, no fallback arrays
  const halves = clients.reduce((n, _c, i) => n + `half of ${i}`.length, 0);
  expect(server.stats().inputBufferBytes).toBe(halves);
  await until("the whole lines' echoes", () => clients.every((c, i) => c.receivedBytes === `line ${i}\n`.length), 5000);
  // The rest of each line, itself split: the held segment grows past 256 bytes, then completes.
  for (let i = 0; i < clients.length; i++) await clients[i]!.send("x".repeat(300));
  await until("300 more bytes held per connection", () => server.stats().inputBufferBytes === halves + 300 * clients.length, 5000);
  for (let i = 0; i < clients.length; i++) await clients[i]!.send(" end\n");
  for (let i = 0; i < clients.length; i++) {
    const want = `line ${i}\nhalf of ${i}${"x".repeat(300)} end\n`;
    await clients[i]!.waitBytes(want.length);
    expect(clients[i]!.text()).toBe(want);
  }
  expect(refsHeld(server)).toBe(0);
  expect(poolOf(server).stats().bytesInUse).toBe(0);
  expect(server.stats().inputBufferBytes).toBe(0);
  for (const c of clients) c.close();
});

test("a line over maxFrameBytes trickling in is refused once past the limit; the held bytes go back", async () => {
  const reasons: CloseReason[] = [];
  let maxHeld = 0;
  const server = await createServer({
    protocol: "lines",
    maxFrameBytes: 4096,
    segmentBytes: 256,
    handler: {
      message(conn, line: Uint8Array) {
        conn.write(`${line.length}\n`);
      },
      close(_c, r) {
        reasons.push(r);
      },
    },
  });
  servers.push(server);
  const c = await connect({ port: server.port });
  let sent = 0;
  while (!c.closed && sent < 20_000) {
    await c.send("y".repeat(500)).catch(() => {}); // the server may close between two sends
    sent += 500;
    maxHeld = Math.max(maxHeld, poolOf(server).stats().bytesInUse);
    await Bun.sleep(1);
  }
  await c.waitClosed(5000);
  expect(reasons).toEqual(["protocol"]);
  expect(sent).toBeLessThan(20_000); // refused near 4096 bytes, long before the client gave up
  expect(maxHeld).toBeLessThanOrEqual(2 * 4096 + 2 * 500); // a doubling segment around the limit, no more
  expect(refsHeld(server)).toBe(0);
  expect(server.stats().inputBufferBytes).toBe(0);
});

/**
 * Swaps codec.measure for a counting wrapper (same object, so the server still sees the
 * codec it knows) and returns the counter; restore() puts the original back.
 */
function countMeasure(codec: Codec<any, any>) {
  const original = codec.measure;
  const counter = {
    calls: 0,
    bytes: 0,
    restore() {
      codec.measure = original;
    },
  };
  codec.measure = function (buf, start, end, max) {
    counter.calls++;
    counter.bytes += end - start;
    return original.call(this, buf, start, end, max);
  };
  return counter;
}

for (const [name, protocol, codec, tail] of [
  ["lines", "lines", linesCodec, "\n"],
  ["RESP inline", "resp", respCodec, "\r\n"],
] as const) {
  test(`${name}: a long line trickling in over many reads is measured in O(n), not rescanned per read`, async () => {
    const pieces = 128;
    const pieceBytes = 512;
    const lineBytes = pieces * pieceBytes; // 64 KiB
    let got = -1;
    const server = await createServer({
      protocol,
      segmentBytes: 256,
      handler: {
        message(conn, frame: Uint8Array | Uint8Array[]) {
          got = Array.isArray(frame) ? frame.reduce((n, a) => n + a.length, 0) : frame.length;
          conn.write("+OK\r\n");
        },
      },
    });
    servers.push(server);
    const c = await connect({ port: server.port });
    const counter = countMeasure(codec);
    // Pieces the server had read exactly up to their end before the next one was sent: each
    // such piece came in a read (or more) of its own, so the line took at least that many + 1.
    let separate = 0;
    try {
      const piece = "k".repeat(pieceBytes);
      for (let i = 0; i < pieces; i++) {
        await c.send(piece);
        // One read per piece: the next goes out only once the server has read this one.
        await until(`piece ${i} to be read`, () => server.stats().bytesIn >= (i + 1) * pieceBytes, 5000);
        if (server.stats().bytesIn === (i + 1) * pieceBytes) separate++;
      }
      await c.send(tail);
      await c.waitBytes(5);
    } finally {
      counter.restore();
    }
    expect(got).toBe(lineBytes);
    expect(separate).toBe(pieces); // the line really came in at least pieces + 1 reads
    // Rescanning the held bytes per read would measure ~pieces/2 x lineBytes (64x here);
    // measuring at each power of two and at the "\n" stays within a few times lineBytes.
    console.log(`${name}: ${counter.calls} measure calls over ${counter.bytes} bytes for a ${lineBytes}-byte line in ${pieces + 1}+ reads`);
    expect(counter.bytes).toBeLessThan(4 * lineBytes);
    expect(refsHeld(server)).toBe(0);
    c.close();
  });
}

test("property: RESP and lines frames split at any points, one read per piece, come back whole and in order", async () => {
  // Binary bulk strings hold "\r\n" and "\n" bytes: a "\n" in a read does not mean a
  // frame ended, so the server must measure again and keep going.
  const respServer = await startEcho(cases[4]!);
  const linesServer = await startEcho(cases[1]!);
  const arg = fc.uint8Array({ minLength: 0, maxLength: 300 });
  const respFrame = fc.oneof(
    fc.array(arg, { minLength: 1, maxLength: 4 }).map((args) => ({ wire: respArray(args), echo: respArray(args) })),
    fc.array(fc.stringMatching(/^[a-z0-9]{1,20}$/), { minLength: 1, maxLength: 4 }).map((words) => ({
      wire: enc.encode(`${words.join(" ")}\r\n`),
      echo: respArray(words.map((w) => enc.encode(w))),
    })),
  );
  const line = fc
    .uint8Array({ minLength: 0, maxLength: 700 })
    .map((b) => b.map((x) => (x === 10 || x === 13 ? 32 : x)))
    .chain((b) => fc.constantFrom("\n", "\r\n").map((end) => ({ wire: concat([b, enc.encode(end)]), echo: concat([b, enc.encode("\n")]) })));
  const scenario = fc.oneof(
    fc.record({ server: fc.constant(respServer), frames: fc.array(respFrame, { minLength: 1, maxLength: 4 }) }),
    fc.record({ server: fc.constant(linesServer), frames: fc.array(line, { minLength: 1, maxLength: 4 }) }),
  );
  await fc.assert(
    fc.asyncProperty(scenario, fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }), async ({ server, frames }, sizes) => {
      const wire = concat(frames.map((f) => f.wire));
      const expected = concat(frames.map((f) => f.echo));
      const c = await connect({ port: server.port });
      try {
        const in0 = server.stats().bytesIn;
        let pos = 0;
        for (let k = 0; pos < wire.length; k++) {
          const next = Math.min(wire.length, pos + sizes[k % sizes.length]!);
          await c.send(wire.subarray(pos, next));
          pos = next;
          await until(`byte ${pos} to be read`, () => server.stats().bytesIn - in0 >= pos, 5000);
        }
        await c.waitBytes(expected.length, 5000);
        expectSame(c.received(), expected);
        expect(refsHeld(server)).toBe(0);
      } finally {
        c.close();
      }
    }),
    { numRuns: 40 },
  );
}, 30_000);
