/**
 * WebSocket servers over real sockets, frames built byte by byte: the upgrade and its
 * refusals, and Autobahn's case families (framing and payload lengths, pings and pongs,
 * reserved bits, opcodes, fragmentation, UTF-8, limits, close codes, permessage-deflate),
 * then timeouts, backpressure, topics and stop.
 */
import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { createServer, type WebSocketConn, type WebSocketServer, type WebSocketServerOptions } from "../src/reactor/index.ts";
import { concat, pseudoRandomBytes } from "./helpers/net.ts";
import { until } from "./helpers/until.ts";
import { TEST_ACCEPT, clientClose, clientFrame, rawWs, upgradeRequest, type RawWs } from "./helpers/ws.ts";

const enc = new TextEncoder();
const servers: WebSocketServer[] = [];
const clients: RawWs[] = [];

interface Recorded {
  server: WebSocketServer;
  opened: number[];
  messages: (string | number[])[];
  closes: [number, string][];
  errors: Error[];
}

/** An echo server that records what its handler saw. */
async function echoServer(opts: Partial<WebSocketServerOptions> = {}, onMessage?: (conn: WebSocketConn, data: string | Uint8Array) => void): Promise<Recorded> {
  const r: Recorded = { server: null as unknown as WebSocketServer, opened: [], messages: [], closes: [], errors: [] };
  r.server = await createServer({
    protocol: "websocket",
    maxFrameBytes: 1 << 20,
    ...opts,
    handler: {
      open(conn) {
        r.opened.push(conn.id);
      },
      message(conn, data) {
        r.messages.push(typeof data === "string" ? data : [...data]);
        if (onMessage) onMessage(conn, data);
        else conn.send(data);
      },
      close(_conn, code, reason) {
        r.closes.push([code, reason]);
      },
      error(_conn, err) {
        r.errors.push(err);
      },
      ...opts.handler,
    },
  } as WebSocketServerOptions);
  servers.push(r.server);
  return r;
}

async function open(server: WebSocketServer, request?: string): Promise<RawWs> {
  const ws = await rawWs({ port: server.port }, request);
  clients.push(ws);
  return ws;
}

/** Opens, checks the 101, and returns the connection. */
async function upgraded(server: WebSocketServer, request?: string): Promise<RawWs> {
  const ws = await open(server, request);
  const a = await ws.answer();
  expect(a.status).toBe(101);
  expect(a.headers.get("sec-websocket-accept")).toBe(TEST_ACCEPT);
  return ws;
}

/** Sends frames, expects the server to fail the connection with `code`: its close frame, then the TCP close. */
async function expectFail(ws: RawWs, frames: Uint8Array[], code: number): Promise<void> {
  await ws.send(concat(frames));
  const got = await ws.untilClose();
  expect(got.at(-1)!.closeCode).toBe(code);
}

describe("upgrade", () => {
  test("101 with the accept key, subprotocol agreed, open called; request and frames split byte by byte", async () => {
    const r = await echoServer({ subprotocols: ["chat", "superchat"] });
    const request = upgradeRequest("/", { "Sec-WebSocket-Protocol": "v2, superchat, chat" });
    const ws = await rawWs({ port: r.server.port }, "");
    clients.push(ws);
    // The request, then a text frame, one byte per write.
    await ws.tcp.sendSlowly(concat([enc.encode(request), clientFrame(0x81, "hi")]), 0);
    const a = await ws.answer();
    expect(a.status).toBe(101);
    expect(a.headers.get("sec-websocket-accept")).toBe(TEST_ACCEPT);
    expect(a.headers.get("sec-websocket-protocol")).toBe("chat");
    expect(a.headers.get("upgrade")).toBe("websocket");
    expect((await ws.frame()).text).toBe("hi");
    expect(r.opened.length).toBe(1);
  });

  test("refusals: 426 naming the version, 400, 405, 431; the hook's 404, 403 and async accept", async () => {
    const r = await echoServer({
      maxHandshakeBytes: 1024,
      handler: {
        message() {},
        upgrade(req) {
          if (req.path === "/missing") return { status: 404, message: "no such room" };
          if (req.path === "/private") return false;
          if (req.path === "/token") {
            const ok = req.headers.get("authorization") === "Bearer good";
            return Bun.sleep(5).then(() => (ok ? { headers: { "X-Room": "token" } } : { status: 401, message: "bad token" }));
          }
          return undefined;
        },
      },
    });
    const cases: [string, number][] = [
      ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", 426],
      [upgradeRequest("/", { "Sec-WebSocket-Version": "8" }), 426],
      [upgradeRequest("/", { "Sec-WebSocket-Key": "short" }), 400],
      [upgradeRequest("/").replace("GET", "PUT"), 405],
      [upgradeRequest("/", { "X-Big": "y".repeat(2000) }), 431],
      [upgradeRequest("/missing"), 404],
      [upgradeRequest("/private"), 403],
      [upgradeRequest("/token", { Authorization: "Bearer bad" }), 401],
    ];
    for (const [request, status] of cases) {
      const ws = await open(r.server, request);
      const a = await ws.answer();
      expect(a.status).toBe(status);
      if (status === 426) expect(a.headers.get("sec-websocket-version")).toBe("13");
      expect(ws.tcp.closed).toBe(true);
    }
    expect((await open(r.server, upgradeRequest("/missing")).then((w) => w.answer())).body).toBe("no such room\n");
    const ok = await upgraded(r.server, upgradeRequest("/token", { Authorization: "Bearer good" }));
    await ok.send(clientFrame(0x81, "after an async accept"));
    expect(r.opened.length).toBe(1);
    const stats = r.server.stats().websocket!;
    expect(stats.refused).toMatchObject({ "400": 1, "401": 1, "403": 1, "404": 2, "405": 1, "426": 2, "431": 1 });
  });

  test("without a hook, a malformed Sec-WebSocket-Protocol is refused 400 whether or not the server speaks subprotocols; a valid offer it does not speak upgrades without one", async () => {
    for (const subprotocols of [[], ["chat"]]) {
      const r = await echoServer({ subprotocols });
      for (const offer of ["chat, chat", "chat, , v2", "two words", "chat;v=1", ","]) {
        const ws = await open(r.server, upgradeRequest("/", { "Sec-WebSocket-Protocol": offer }));
        const a = await ws.answer();
        expect({ subprotocols, offer, status: a.status }).toEqual({ subprotocols, offer, status: 400 });
        expect(ws.tcp.closed).toBe(true);
      }
      const ok = await open(r.server, upgradeRequest("/", { "Sec-WebSocket-Protocol": "v2, v3" }));
      const a = await ok.answer();
      expect(a.status).toBe(101);
      expect(a.headers.get("sec-websocket-protocol")).toBeUndefined();
      expect(r.server.stats().websocket!.refused).toEqual({ "400": 5 });
    }
  });

  test("handshakeTimeoutMs closes a connection that never finishes its upgrade", async () => {
    const r = await echoServer({ handshakeTimeoutMs: 100, tickMs: 10 });
    const ws = await open(r.server, "GET / HTTP/1.1\r\n");
    await ws.tcp.waitClosed(5000);
    expect(r.server.stats().closed.handshake).toBe(1);
    // An upgraded connection is past it.
    const ok = await upgraded(r.server);
    await Bun.sleep(250);
    await ok.send(clientFrame(0x81, "still here"));
    expect((await ok.frame()).text).toBe("still here");
  });
});

describe("framing (Autobahn 1.x, 2.x, 3.x, 4.x)", () => {
  test("text and binary of 7-, 16- and 64-bit lengths echo; many frames in one read; every split", async () => {
    const r = await echoServer();
    const ws = await upgraded(r.server);
    const sizes = [0, 1, 125, 126, 127, 128, 65535, 65536, 300_000];
    const payloads = sizes.map((n, i) => pseudoRandomBytes(n, i + 1));
    // All in one write: many frames per read, and large ones over many reads.
    await ws.send(concat(payloads.map((p) => clientFrame(0x82, p))));
    for (const p of payloads) {
      const f = await ws.frame();
      expect(f.opcode).toBe(2);
      expect(f.payload).toEqual(p);
    }
    // Three frames, one byte per write: every split point of header and payload.
    const small = [clientFrame(0x81, "héllo"), clientFrame(0x82, new Uint8Array([0, 255])), clientFrame(0x81, "z".repeat(130))];
    await ws.tcp.sendSlowly(concat(small), 0);
    expect((await ws.frame()).text).toBe("héllo");
    expect([...(await ws.frame()).payload]).toEqual([0, 255]);
    expect((await ws.frame()).text).toBe("z".repeat(130));
  });

  test("pings answered with their payload, unsolicited pongs ignored, control frames rules", async () => {
    const r = await echoServer();
    const ws = await upgraded(r.server);
    await ws.send(concat([clientFrame(0x8a, "unsolicited"), clientFrame(0x89, "abc"), clientFrame(0x89, new Uint8Array(125).fill(7))]));
    const pong = await ws.frame();
    expect([pong.opcode, pong.text]).toEqual([0xa, "abc"]);
    expect((await ws.frame()).payload).toEqual(new Uint8Array(125).fill(7));
    const big = await upgraded(r.server);
    await expectFail(big, [clientFrame(0x89, new Uint8Array(126))], 1002);
    const fragmented = await upgraded(r.server);
    await expectFail(fragmented, [clientFrame(0x09, "x")], 1002);
  });

  test("reserved bits and reserved opcodes fail with 1002; what came before is answered", async () => {
    const r = await echoServer();
    for (const b0 of [0xc1, 0xa1, 0x91, 0x83, 0x84, 0x87, 0x8b, 0x8f]) {
      const ws = await upgraded(r.server);
      await ws.send(concat([clientFrame(0x81, "first"), clientFrame(b0, "bad")]));
      const frames = await ws.untilClose();
      expect(frames.map((f) => f.opcode === 8 ? f.closeCode : f.text)).toEqual(["first", 1002]);
    }
    const unmasked = await upgraded(r.server);
    await expectFail(unmasked, [Uint8Array.from([0x81, 0x02, 0x68, 0x69])], 1002);
  });
});

describe("fragmentation and UTF-8 (Autobahn 5.x, 6.x)", () => {
  test("fragments join, with pings between them; fragment errors fail with 1002", async () => {
    const r = await echoServer();
    const ws = await upgraded(r.server);
    await ws.send(concat([clientFrame(0x01, "frag"), clientFrame(0x89, "p"), clientFrame(0x00, "men"), clientFrame(0x80, "ted")]));
    expect((await ws.frame()).opcode).toBe(0xa);
    expect((await ws.frame()).text).toBe("fragmented");
    const bad: Uint8Array[][] = [
      [clientFrame(0x80, "no start")],
      [clientFrame(0x01, "a"), clientFrame(0x81, "new message inside")],
      [clientFrame(0x02, "a"), clientFrame(0x02, "b")],
    ];
    for (const frames of bad) await expectFail(await upgraded(r.server), frames, 1002);
  });

  test("valid text split inside its characters at every position; invalid fails 1007, also at the fragment that breaks it", async () => {
    const r = await echoServer();
    const text = "κόσμε€𝄞";
    const bytes = enc.encode(text);
    const ws = await upgraded(r.server);
    for (let cut = 0; cut <= bytes.length; cut++) {
      await ws.send(concat([clientFrame(0x01, bytes.subarray(0, cut)), clientFrame(0x80, bytes.subarray(cut))]));
      expect((await ws.frame()).text).toBe(text);
    }
    const invalid = [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xce, 0xba, 0xe1], [0x80]];
    for (const seq of invalid) await expectFail(await upgraded(r.server), [clientFrame(0x81, Uint8Array.from(seq))], 1007);
    // The second fragment breaks the text: the server fails without waiting for the third.
    const early = await upgraded(r.server);
    await early.send(concat([clientFrame(0x01, "κόσμε"), clientFrame(0x00, Uint8Array.from([0xf4, 0x90, 0x80, 0x80]))]));
    expect((await early.untilClose()).at(-1)!.closeCode).toBe(1007);
    expect(r.messages).not.toContain("κόσμεedited");
  });
});

describe("close handshake and limits (Autobahn 7.x, 9.x)", () => {
  test("valid codes are echoed and reach handler.close; invalid and reserved ones fail 1002; bad reasons 1007", async () => {
    const r = await echoServer();
    for (const code of [1000, 1001, 1003, 1011, 3000, 4999]) {
      const ws = await upgraded(r.server);
      await ws.send(clientClose(code, "bye"));
      const frames = await ws.untilClose();
      expect(frames.at(-1)!.closeCode).toBe(code);
    }
    const empty = await upgraded(r.server);
    await empty.send(clientFrame(0x88));
    expect((await empty.untilClose()).at(-1)!.payload.length).toBe(0);
    await until("close callbacks", () => r.closes.length === 7);
    expect(r.closes).toContainEqual([4999, "bye"]);
    expect(r.closes).toContainEqual([1005, ""]);
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]) {
      await expectFail(await upgraded(r.server), [clientFrame(0x88, Uint8Array.from([code >> 8, code & 0xff]))], 1002);
    }
    await expectFail(await upgraded(r.server), [clientFrame(0x88, Uint8Array.from([3]))], 1002);
    await expectFail(await upgraded(r.server), [clientFrame(0x88, Uint8Array.from([0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd]))], 1007);
    // Frames after the close are not answered.
    const after = await upgraded(r.server);
    await after.send(concat([clientClose(1000), clientFrame(0x81, "late")]));
    expect((await after.untilClose()).map((f) => f.opcode)).toEqual([8]);
  });

  test("conn.close(code, reason) waits for the peer's close; a silent peer is cut after closeTimeoutMs", async () => {
    const r = await echoServer({ closeTimeoutMs: 150, tickMs: 10 }, (conn, data) => conn.close(4000, `closing after ${String(data)}`));
    const ws = await upgraded(r.server);
    await ws.send(clientFrame(0x81, "one"));
    const f = await ws.frame();
    expect([f.closeCode, f.text]).toEqual([4000, "closing after one"]);
    expect(ws.tcp.closed).toBe(false); // waiting for our close
    await ws.send(clientClose(4000));
    await ws.tcp.waitClosed();
    const silent = await upgraded(r.server);
    await silent.send(clientFrame(0x81, "two"));
    expect((await silent.frame()).closeCode).toBe(4000);
    await silent.tcp.waitClosed(5000);
    await until("both closes", () => r.closes.length === 2);
    expect(r.closes).toEqual([
      [4000, ""],
      [4000, "closing after two"],
    ]);
  });

  test("messages over maxFrameBytes fail 1009: one frame, fragments, after inflating", async () => {
    const r = await echoServer({ maxFrameBytes: 1000, perMessageDeflate: true });
    await expectFail(await upgraded(r.server), [clientFrame(0x82, new Uint8Array(1001))], 1009);
    await expectFail(await upgraded(r.server), [clientFrame(0x02, new Uint8Array(600)), clientFrame(0x80, new Uint8Array(401))], 1009);
    const ws = await upgraded(r.server, upgradeRequest("/", { "Sec-WebSocket-Extensions": "permessage-deflate" }));
    const bomb = zlib.deflateRawSync(new Uint8Array(100_000), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    await expectFail(ws, [clientFrame(0xc2, bomb.subarray(0, bomb.length - 4))], 1009);
    expect(r.messages.length).toBe(0);
  });
});

describe("permessage-deflate (Autobahn 12.x, 13.x)", () => {
  test("negotiated parameters; compressed messages both ways; uncompressed ones still fine", async () => {
    const r = await echoServer({ perMessageDeflate: { thresholdBytes: 16 } });
    const ws = await upgraded(r.server, upgradeRequest("/", { "Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=10; client_max_window_bits" }));
    const text = "compress this text, compress this text, compress this text";
    const z = zlib.deflateRawSync(enc.encode(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    await ws.send(concat([clientFrame(0xc1, z.subarray(0, z.length - 4)), clientFrame(0x81, "plain")]));
    const back = await ws.frame();
    expect(back.rsv).toBe(4); // RSV1
    const inflated = zlib.inflateRawSync(concat([back.payload, Uint8Array.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH, windowBits: 10 });
    expect(new TextDecoder().decode(inflated)).toBe(text);
    const plain = await ws.frame();
    expect([plain.rsv, plain.text]).toEqual([0, "plain"]); // under the threshold
    expect(r.messages).toEqual([text, "plain"]);
    const offers: [string, string | undefined][] = [
      ["permessage-deflate; server_max_window_bits=10; client_max_window_bits", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"],
      ["permessage-deflate; server_max_window_bits=8", undefined],
      ["permessage-deflate; unknown=1, permessage-deflate; client_no_context_takeover", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
      ["x-webkit-deflate-frame", undefined],
    ];
    for (const [offer, answer] of offers) {
      const c = await open(r.server, upgradeRequest("/", { "Sec-WebSocket-Extensions": offer }));
      expect((await c.answer()).headers.get("sec-websocket-extensions")).toBe(answer);
    }
    // Without negotiation, RSV1 is a protocol error.
    await expectFail(await upgraded(r.server), [clientFrame(0xc1, z)], 1002);
  });
});

describe("timeouts, backpressure, topics, stop", () => {
  test("pingIntervalMs pings a silent peer; idleTimeoutMs closes one that never answers, not one that does", async () => {
    const r = await echoServer({ pingIntervalMs: 60, idleTimeoutMs: 400, tickMs: 10 });
    const silent = await upgraded(r.server);
    const answering = await upgraded(r.server);
    // The answering one sends a pong for each ping, while the silent one runs into its idle timeout.
    const answered = (async () => {
      let pings = 0;
      while (r.server.stats().closed.idle === 0 || pings < 3) {
        const p = await answering.frame(5000);
        expect(p.opcode).toBe(9);
        pings++;
        await answering.send(clientFrame(0x8a, p.payload));
      }
      return pings;
    })();
    const ping = await silent.frame();
    expect(ping.opcode).toBe(9);
    const frames = await silent.untilClose(5000);
    expect(frames.map((f) => f.opcode)).toEqual([8]); // one ping per silence, then the close
    expect(frames.at(-1)!.closeCode).toBe(1001);
    expect(await answered).toBeGreaterThanOrEqual(3);
    expect(answering.tcp.closed).toBe(false);
    expect(r.server.stats().closed.idle).toBe(1);
    expect(r.closes).toContainEqual([1001, "idle timeout"]);
  });

  test("send returns false over maxWriteBufferBytes, drain after the reader resumes; a reader that never reads is cut", async () => {
    let drained = 0;
    let refusedAt = -1;
    const chunk = new Uint8Array(256 * 1024);
    const r = await echoServer(
      { maxWriteBufferBytes: 1 << 20, writeStallTimeoutMs: 0, handler: { drain() { drained++; } } as never },
      (conn) => {
        for (let i = 0; i < 64; i++) {
          if (!conn.send(chunk)) {
            refusedAt = i;
            return;
          }
        }
      },
    );
    const ws = await upgraded(r.server);
    ws.tcp.pause();
    await ws.send(clientFrame(0x81, "flood"));
    await until("send to return false", () => refusedAt >= 0);
    ws.tcp.resume();
    await until("drain", () => drained === 1);
    await ws.tcp.waitBytes((refusedAt + 1) * (chunk.length + 10), 10_000);
    // One that never reads: cut once stalled for writeStallTimeoutMs; its close code is 1006.
    const stall = await echoServer({ maxWriteBufferBytes: 1 << 20, writeStallTimeoutMs: 200, tickMs: 10 }, (conn) => {
      while (conn.send(chunk));
    });
    const never = await upgraded(stall.server);
    never.tcp.pause();
    await never.send(clientFrame(0x81, "flood"));
    await until("the stalled reader's close", () => stall.closes.length === 1, 10_000);
    expect(stall.closes).toEqual([[1006, ""]]);
    expect(stall.server.stats().closed.writeStall).toBe(1);
  });

  test("topics: publish reaches subscribers once, unsubscribe and close remove them, except skips the sender", async () => {
    const r = await echoServer({}, (conn, data) => {
      const cmd = String(data);
      if (cmd.startsWith("sub ")) conn.send(String(conn.subscribe(cmd.slice(4))));
      else if (cmd.startsWith("unsub ")) conn.send(String(conn.unsubscribe(cmd.slice(6))));
      else if (cmd.startsWith("say ")) conn.publish("room", cmd.slice(4));
    });
    const a = await upgraded(r.server);
    const b = await upgraded(r.server);
    const c = await upgraded(r.server);
    for (const ws of [a, b, c]) {
      await ws.send(clientFrame(0x81, "sub room"));
      expect((await ws.frame()).text).toBe("true");
    }
    await a.send(clientFrame(0x81, "sub room"));
    expect((await a.frame()).text).toBe("false");
    expect(r.server.subscriberCount("room")).toBe(3);
    expect(r.server.publish("room", "to all")).toBe(3);
    for (const ws of [a, b, c]) expect((await ws.frame()).text).toBe("to all");
    await c.send(clientFrame(0x81, "say from c"));
    expect((await a.frame()).text).toBe("from c");
    expect((await b.frame()).text).toBe("from c");
    await b.send(clientFrame(0x81, "unsub room"));
    expect((await b.frame()).text).toBe("true");
    a.close();
    await until("a's close", () => r.server.subscriberCount("room") === 1);
    expect(r.server.publish("room", new Uint8Array([1, 2]))).toBe(1);
    expect([...(await c.frame()).payload]).toEqual([1, 2]);
    expect(r.server.publish("nobody", "x")).toBe(0);
    expect(r.server.stats().websocket).toMatchObject({ topics: 1, subscriptions: 1 });
  });

  test("publish bursts keep each connection's order: with direct sends, another topic, an excluded sender, a compressing subscriber", async () => {
    let ids: number[] = [];
    const r = await echoServer({ perMessageDeflate: { thresholdBytes: 8 } }, (conn, data) => {
      const cmd = String(data);
      if (cmd.startsWith("sub ")) conn.send(String(conn.subscribe(cmd.slice(4))));
      else if (cmd === "id") ids.push(conn.id);
    });
    const plain = await upgraded(r.server);
    const zipped = await upgraded(r.server, upgradeRequest("/", { "Sec-WebSocket-Extensions": "permessage-deflate" }));
    for (const ws of [plain, zipped]) {
      await ws.send(concat([clientFrame(0x81, "sub a"), clientFrame(0x81, "sub b"), clientFrame(0x81, "id")]));
      expect((await ws.frame()).text).toBe("true");
      expect((await ws.frame()).text).toBe("true");
    }
    await until("both ids", () => ids.length === 2);
    const [plainId, zippedId] = ids as [number, number];
    // One turn: a burst to a, a direct send, more to a (one excluding plain), then b, then a again.
    const server = r.server;
    for (let i = 0; i < 50; i++) server.publish("a", `a${i} ${"x".repeat(i)}`);
    server.send(plainId, "direct");
    server.send(zippedId, "direct");
    server.publish("a", "a50");
    (server as unknown as { websocket: { publish(t: string, d: string, c: boolean, except: number): number } }).websocket.publish("a", "not for plain", true, plainId);
    server.publish("b", new Uint8Array([1, 2, 3]));
    server.publish("a", "a51");
    const expected = [...Array.from({ length: 50 }, (_, i) => `a${i} ${"x".repeat(i)}`), "direct", "a50", "not for plain", "\u0001\u0002\u0003", "a51"];
    const texts = async (ws: RawWs, n: number, inflate: boolean) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const f = await ws.frame();
        const bytes = f.rsv === 4 ? zlib.inflateRawSync(concat([f.payload, Uint8Array.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }) : f.payload;
        if (f.rsv === 4) expect(inflate).toBe(true);
        out.push(new TextDecoder().decode(bytes));
      }
      return out;
    };
    expect(await texts(plain, expected.length - 1, false)).toEqual(expected.filter((t) => t !== "not for plain"));
    expect(await texts(zipped, expected.length, true)).toEqual(expected);
    ids = [];
  });

  test("stop() sends 1001 to every open connection, then closes", async () => {
    const r = await echoServer();
    const ws = [await upgraded(r.server), await upgraded(r.server)];
    const stopped = r.server.stop({ timeoutMs: 5000 });
    for (const w of ws) expect((await w.untilClose()).at(-1)!.closeCode).toBe(1001);
    const stats = await stopped;
    expect(stats.websocket).toMatchObject({ connections: 0, upgraded: 2, closeCodes: { "1001": 2 } });
  });
});

// Clients first, then servers.
import { afterAll } from "bun:test";
afterAll(async () => {
  for (const c of clients) if (!c.tcp.closed) c.close();
  for (const s of servers) await s.stop({ graceful: false });
});
