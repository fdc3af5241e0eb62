/**
 * Differential test: respCodec's inline-command splitting against a real redis-server.
 * Random inline lines full of quotes, backslashes, \x escapes, tabs, CRs and NULs are sent
 * to redis as "RPUSH k <line>"; LRANGE then shows how redis split them, and an unbalanced
 * line must be refused by both (redis answers a protocol error and closes).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { FRAME_MALFORMED, RespError, type RespValue, respCodec, respReplyBufferCodec } from "../src/codec/index.ts";
import { concat, reassemble } from "./helpers/reassemble.ts";
import { RedisServer } from "./helpers/redis-server.ts";

const enc = new TextEncoder();
let redis: RedisServer | undefined;
let port = 0;

beforeAll(async () => {
  redis = await RedisServer.start();
  port = redis.port;
});

afterAll(async () => {
  await redis?.kill();
});

/**
 * Sends bytes; resolves with the replies once `want` arrived, redis closed the connection,
 * or waitMs passed.
 */
function exchange(bytes: Uint8Array, want: number, waitMs = 3000): Promise<{ replies: RespValue[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let done = false;
    const finish = (closed: boolean, sock?: { end(): void }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const r = reassemble(respReplyBufferCodec, chunks, 1 << 20);
      if (r.error) reject(new Error(`unparseable reply from redis: ${r.error}`));
      else resolve({ replies: r.frames, closed });
      sock?.end();
    };
    const timer = setTimeout(() => finish(false), waitMs);
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(sock) {
          sock.write(bytes);
        },
        data(sock, data) {
          chunks.push(new Uint8Array(data));
          if (reassemble(respReplyBufferCodec, chunks, 1 << 20).frames.length >= want) finish(false, sock);
        },
        close() {
          finish(true);
        },
        error(_s, e) {
          if (!done) {
            done = true;
            clearTimeout(timer);
            reject(e);
          }
        },
      },
    }).catch((e) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(e);
      }
    });
  });
}

// Alphabet weighted toward the characters sdssplitargs treats specially.
const lineChar = fc.constantFrom(..."ab x 0f9\t\v\"\"''\\\\\\x4AG \r".split(""), "\\x", "\\xff", "\\n", "\\'", "\\\"");

describe("respCodec inline splitting matches redis-server", () => {
  test("property: random inline lines split (or are refused) exactly as redis does", async () => {
    const lines = fc.sample(fc.array(lineChar, { maxLength: 16 }).map((cs) => cs.join("")), { numRuns: 150, seed: 42 });
    lines.push('"a b" \'c d\' "\\x41\\x4a\\x4"', "a'b c'd", '"abc', "'it\\'s'", '"x"y', "\t\tz\t");
    let refused = 0;
    for (const line of lines) {
      const wire = concat([enc.encode("RPUSH k "), enc.encode(line), enc.encode("\r\n")]);
      const n = respCodec.measure(wire, 0, wire.length, 1 << 20);
      const request = concat([enc.encode("DEL k\r\n"), wire, enc.encode("LRANGE k 0 -1\r\n")]);
      if (n === FRAME_MALFORMED) {
        refused++;
        const r = await exchange(request, 3);
        expect([line, r.closed, r.replies.length]).toEqual([line, true, 2]);
        expect((r.replies[1] as RespError).message).toContain("unbalanced quotes");
        continue;
      }
      expect(n).toBe(wire.length);
      const args = respCodec.decode(wire, 0, n).map((a) => a.slice());
      const r = await exchange(request, 3);
      expect([line, r.replies.length]).toEqual([line, 3]);
      if (args.length <= 2) {
        expect(r.replies[1]).toBeInstanceOf(RespError); // RPUSH k without values: wrong arity
        expect(r.replies[2]).toEqual([]);
      } else {
        expect([line, r.replies[2]]).toEqual([line, args.slice(2)]);
      }
    }
    // the sample must exercise both outcomes
    expect(refused).toBeGreaterThan(5);
    expect(refused).toBeLessThan(lines.length - 20);
  }, 30_000);

  test("a NUL byte: redis stalls the connection (no reply, no close); respCodec refuses the line", async () => {
    const wire = enc.encode("RPUSH k a\0b\r\n");
    expect(respCodec.measure(wire, 0, wire.length, 1 << 20)).toBe(FRAME_MALFORMED);
    const r = await exchange(concat([enc.encode("DEL k\r\n"), wire]), 2, 300);
    expect(r.replies.length).toBe(1);
    expect(r.closed).toBe(false);
  });
});
