// The echo app over real sockets, for every protocol: frames split byte by byte and many
// frames coalesced in one write all come back framed the same way, in order.
import { afterAll, describe, expect, test } from "bun:test";
import { createEchoApp } from "../src/apps/index.ts";
import { createServer, type ProtocolName, type Server } from "../src/reactor/index.ts";
import { latin1, text } from "./helpers/kv.ts";
import { expectSame } from "./helpers/assert.ts";
import { ECHO_FRAMINGS } from "./helpers/echo-framings.ts";
import { concat, connect } from "./helpers/net.ts";

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop({ graceful: false });
});

async function echoServer(protocol: ProtocolName): Promise<Server> {
  const app = createEchoApp({ protocol });
  const s = await createServer({ port: 0, hostname: "127.0.0.1", protocol: app.protocol, handler: app.handler });
  servers.push(s);
  return s;
}

/** Connects, runs send(write), and resolves with everything received (as latin1) once `expected` bytes arrived. */
async function roundTrip(port: number, send: (write: (b: Uint8Array) => void) => Promise<void>, expectedBytes: number): Promise<string> {
  const c = await connect({ port });
  await send((b) => c.socket.write(b));
  await c.waitBytes(expectedBytes, 5000);
  c.close();
  return text(c.received());
}

const payloads = ["a", "hello world", "", "\u0000\u00ff\u0080binary", "x".repeat(3000)].map(latin1);

describe("echo app", () => {
  for (const f of ECHO_FRAMINGS) {
    const usable = payloads.filter((p) => !(f.protocol === "lines" && (p.includes(10) || p.includes(13))));
    const expected = text(concat(usable.map(f.reply)));

    test(`${f.protocol}: coalesced frames in one write`, async () => {
      const s = await echoServer(f.protocol);
      const got = await roundTrip(s.port, async (w) => w(concat(usable.map(f.frame))), expected.length);
      expectSame(got, expected);
    });

    test(`${f.protocol}: frames split into 1-7 byte pieces`, async () => {
      const s = await echoServer(f.protocol);
      const all = concat(usable.map(f.frame));
      const got = await roundTrip(
        s.port,
        async (w) => {
          let i = 0;
          let step = 1;
          while (i < all.length) {
            const n = Math.min(step, all.length - i, i > 200 ? 1000 : 7);
            w(all.subarray(i, i + n));
            i += n;
            step = (step % 7) + 1;
            if (i < 300) await Bun.sleep(0);
          }
        },
        expected.length,
      );
      expectSame(got, expected);
    });
  }

  test("raw: bytes come back as sent", async () => {
    const s = await echoServer("raw");
    const data = latin1("\u0000\u0001raw bytes \u00ff".repeat(100));
    const got = await roundTrip(s.port, async (w) => w(data), data.length);
    expect(got).toBe(text(data));
  });

  test("unknown protocol throws naming the choices", () => {
    expect(() => createEchoApp({ protocol: "http" as ProtocolName })).toThrow(
      "createEchoApp: protocol must be one of raw, lines, length-u16, length-u32, resp; got http",
    );
  });
});
