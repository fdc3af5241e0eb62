/**
 * A client that pipelines faster than the proxy's servers answer: RPUSHes of 1000-byte values
 * to one key, written until the kernel takes less than offered (the proxy stopped reading
 * it), then checked reply by reply. With the server holding the key SIGSTOPped, the proxy
 * pauses reading it at its in-flight bound (tests/proxy-flood.test.ts,
 * tests/proxy-pubsub-flood.test.ts, the dashboard's row in tests/proxy-cli.test.ts).
 */
import type { Socket } from "bun";
import { Placement, type ProxyPoolConfig } from "../../src/proxy/index.ts";
import { until } from "./until.ts";

/** Bytes of each RPUSH's value. */
export const VALUE_BYTES = 1000;

/** The index in `pool.servers` of the server holding `key`. */
export function serverIndexOf(pool: ProxyPoolConfig, key: string): number {
  const b = Buffer.from(key);
  return new Placement(pool).serverOf(b, 0, b.length);
}

/** The first name `prefix<i>` that server `index` of `pool` holds (a key, or a channel: PUBLISH places it as a key). */
export function nameOn(pool: ProxyPoolConfig, index: number, prefix: string): string {
  for (let i = 0; i < 100_000; i++) if (serverIndexOf(pool, `${prefix}${i}`) === index) return `${prefix}${i}`;
  throw new Error(`no name ${prefix}<i> on server ${index} of pool ${pool.name} in 100000 tries`);
}

/** RPUSH key <value i> on the wire, the value padded to VALUE_BYTES. */
export function rpush(key: string, i: number): string {
  const v = `v${i}`.padEnd(VALUE_BYTES, ".");
  return `*3\r\n$5\r\nRPUSH\r\n$${key.length}\r\n${key}\r\n$${VALUE_BYTES}\r\n${v}\r\n`;
}

/** A flooding client (see the file comment). */
export interface Flooder {
  socket: Socket<undefined>;
  /** Requests begun (the last batch may still be partly unwritten, written on drain). */
  readonly sent: number;
  /** Everything received so far. */
  text(): string;
  /** Replies received so far (complete lines). */
  replyCount(): number;
  /**
   * Pipelined RPUSHes in batches until the kernel takes less than offered (the proxy does
   * not read): returns whether that happened. Bounded: 64 Ki requests (64 MiB) in all, far
   * past what the buffers on the way hold once the proxy stops reading.
   */
  untilPushedBack(): Promise<boolean>;
  /** Waits for every reply, then checks them: RPUSH answers the list's length, so in order and none lost means :1, :2, ... */
  expectAllInOrder(): Promise<void>;
}

const enc = new TextEncoder();

/** A client that pipelines RPUSHes to `key` through 127.0.0.1:port and collects the replies. */
export async function flooder(port: number, key: string): Promise<Flooder> {
  let replies = "";
  let rest: Uint8Array | null = null;
  let sent = 0;
  const pump = (s: Socket<undefined>) => {
    while (rest !== null && rest.length > 0) {
      const n = s.write(rest);
      if (n <= 0) return;
      rest = rest.subarray(n);
    }
  };
  const dec = new TextDecoder();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d: Uint8Array) {
        replies += dec.decode(d);
      },
      drain: pump,
    },
  });
  const replyCount = () => replies.split("\r\n").length - 1;
  return {
    socket,
    get sent() {
      return sent;
    },
    text: () => replies,
    replyCount,
    async untilPushedBack(): Promise<boolean> {
      pump(socket);
      if (rest !== null && rest.length > 0) return true;
      while (sent < 64 * 1024) {
        let batch = "";
        for (let k = 0; k < 64; k++) batch += rpush(key, sent + k);
        const bytes = enc.encode(batch);
        sent += 64;
        const n = socket.write(bytes);
        if (n < bytes.length) {
          rest = bytes.subarray(Math.max(0, n));
          return true;
        }
        await Promise.resolve();
      }
      return false;
    },
    async expectAllInOrder(): Promise<void> {
      const total = sent;
      await until(
        () => `${total} replies (have ${replyCount()})`,
        () => replyCount() >= total,
        60_000,
      );
      const lines = replies.split("\r\n");
      for (let i = 0; i < total; i++) if (lines[i] !== `:${i + 1}`) throw new Error(`reply ${i} is ${lines[i]}, expected :${i + 1}`);
    },
  };
}
