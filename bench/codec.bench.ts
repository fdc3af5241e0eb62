/**
 * Codec throughput on the hot paths: the server decoding pipelined RESP requests, the
 * client decoding pipelined replies and encoding commands.
 *
 *   bun run bench codec                  # full
 *   BENCH_QUICK=1 bun run bench codec    # reduced (shorter sampling)
 *
 * "RESP requests": one read holding 16 pipelined requests (as redis-benchmark -P 16 sends
 * SET/GET), framed the way the reactor does it: measure then decode, frame after frame.
 * Divide the time per iteration by 16 for the cost of one request. The comparison is the
 * same work done by a straightforward parser (split on "\r\n", parseInt, subarray).
 * "RESP replies": 16 pipelined replies of mixed types, myriad's respReplyCodec against
 * ioredis 6's Decoder. "command encode": respReplyCodec.encode(["SET", key, value]) against
 * building the string and Buffer.from, the usual client approach.
 */
import { bench, do_not_optimize, group, run, summary } from "mitata";
// ioredis ships no types for its internal decoder module.
// @ts-ignore
import { Decoder } from "ioredis/built/resp/decoder.js";
import { FRAME_INCOMPLETE, encodeRespCommand, resp, respCodec, respReplyCodec } from "../src/codec/index.ts";

const QUICK = process.env.BENCH_QUICK === "1" || process.argv.includes("--quick");
const MAX = 1 << 20;
const enc = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ------------------------------------------------------------------ server: requests
const requests: Uint8Array[] = [];
for (let i = 0; i < 16; i++) {
  const key = `key:${String(100000 + i * 7919).padStart(12, "0")}`;
  requests.push(i % 2 === 0 ? encodeRespCommand(["SET", key, "x".repeat(3)]) : encodeRespCommand(["GET", key]));
}
const requestRead = concat(requests);

function frameAll(buf: Uint8Array): number {
  let start = 0;
  let args = 0;
  const end = buf.length;
  while (start < end) {
    const n = respCodec.measure(buf, start, end, MAX);
    if (n <= FRAME_INCOMPLETE) break;
    args += respCodec.decode(buf, start, n).length;
    start += n;
  }
  return args;
}

function measureAll(buf: Uint8Array): number {
  let start = 0;
  let frames = 0;
  const end = buf.length;
  while (start < end) {
    const n = respCodec.measure(buf, start, end, MAX);
    if (n <= FRAME_INCOMPLETE) break;
    frames++;
    start += n;
  }
  return frames;
}

/** A straightforward multibulk parser: what a first attempt usually looks like. */
function naiveAll(buf: Uint8Array): number {
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString("latin1");
  let p = 0;
  let args = 0;
  while (p < text.length) {
    const eol = text.indexOf("\r\n", p);
    const count = parseInt(text.slice(p + 1, eol), 10);
    p = eol + 2;
    const out: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const e = text.indexOf("\r\n", p);
      const len = parseInt(text.slice(p + 1, e), 10);
      out.push(buf.subarray(e + 2, e + 2 + len));
      p = e + 2 + len + 2;
    }
    args += out.length;
  }
  return args;
}

if (frameAll(requestRead) !== naiveAll(requestRead)) throw new Error("bench: request parsers disagree");

summary(() => {
  group("RESP requests: one read of 16 pipelined SET/GET", () => {
    bench("myriad respCodec measure + decode", () => do_not_optimize(frameAll(requestRead)));
    bench("myriad respCodec measure only", () => do_not_optimize(measureAll(requestRead)));
    bench("naive string split parser", () => do_not_optimize(naiveAll(requestRead)));
  });
});

// ------------------------------------------------------------------ client: replies
const replies: Uint8Array[] = [];
for (let i = 0; i < 16; i++) {
  switch (i % 4) {
    case 0:
      replies.push(resp.ok);
      break;
    case 1:
      replies.push(resp.bulk("value-" + "v".repeat(26)));
      break;
    case 2:
      replies.push(resp.integer(100000 + i));
      break;
    default:
      replies.push(resp.array([resp.bulk("a"), resp.nullBulk, resp.bulk("hello world")]));
  }
}
const replyRead = concat(replies);
const replyBuffer = Buffer.from(replyRead);

function replyAll(buf: Uint8Array): number {
  let start = 0;
  let count = 0;
  const end = buf.length;
  while (start < end) {
    const n = respReplyCodec.measure(buf, start, end, MAX);
    if (n <= FRAME_INCOMPLETE) break;
    do_not_optimize(respReplyCodec.decode(buf, start, n));
    count++;
    start += n;
  }
  return count;
}

let ioredisReplies = 0;
const decoder = new Decoder({
  getTypeMapping: () => ({}),
  onReply: (r: unknown) => {
    do_not_optimize(r);
    ioredisReplies++;
  },
  onErrorReply: () => {},
  onPush: () => {},
});
decoder.write(replyBuffer);
if (ioredisReplies !== 16 || replyAll(replyRead) !== 16) throw new Error(`bench: reply parsers disagree (${ioredisReplies})`);

summary(() => {
  group("RESP replies: one read of 16 pipelined replies (+OK, bulk, integer, array)", () => {
    bench("myriad respReplyCodec", () => do_not_optimize(replyAll(replyRead)));
    bench("ioredis 6 Decoder", () => decoder.write(replyBuffer));
  });
});

// ------------------------------------------------------------------ client: commands
const key = "key:000000123456";
const value = "value-" + "v".repeat(26);
summary(() => {
  group('command encode: ["SET", key, 32-byte value]', () => {
    bench("myriad encodeRespCommand", () => do_not_optimize(encodeRespCommand(["SET", key, value])));
    bench("string concat + Buffer.from", () => {
      const args = ["SET", key, value];
      let s = `*${args.length}\r\n`;
      for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
      return do_not_optimize(Buffer.from(s));
    });
    bench("string concat + TextEncoder", () => {
      const args = ["SET", key, value];
      let s = `*${args.length}\r\n`;
      for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
      return do_not_optimize(enc.encode(s));
    });
  });
});

await run(QUICK ? { throw: true, format: "mitata" } : { throw: true });
