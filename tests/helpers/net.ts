/**
 * Test clients over real sockets (Bun.connect): collect what the server sends, wait for a
 * byte count or a close, write byte by byte, stop reading. Every wait is bounded in time.
 */
import { afterAll } from "bun:test";
import type { Socket } from "bun";
import type { Server } from "../../src/reactor/index.ts";
import { until } from "./until.ts";

export type Target =
  | { port: number; hostname?: string; tls?: boolean }
  | { unix: string; tls?: boolean };

/** A connected test client. */
export interface TestClient {
  readonly socket: Socket<undefined>;
  /** Bytes received so far (concatenated on demand). */
  received(): Uint8Array;
  /** Bytes received so far, as UTF-8 text. */
  text(): string;
  readonly receivedBytes: number;
  readonly closed: boolean;
  /** Resolves once the server closed the connection (or rejects after timeoutMs). */
  waitClosed(timeoutMs?: number): Promise<void>;
  /** Resolves once at least n bytes arrived (rejects after timeoutMs, or on close before that). */
  waitBytes(n: number, timeoutMs?: number): Promise<void>;
  /** Writes everything (retrying partial writes on drain); resolves when the kernel took it all. */
  send(data: Uint8Array | string): Promise<void>;
  /** Writes one byte at a time, waiting delayMs between bytes, so the server sees many reads. */
  sendSlowly(data: Uint8Array | string, delayMs?: number, chunkBytes?: number): Promise<void>;
  /** Stops reading (the kernel window then fills and pushes back on the server). */
  pause(): void;
  resume(): void;
  close(): void;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Connects to target; rejects when the connection fails. */
export async function connect(target: Target): Promise<TestClient> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let closed = false;
  let waiters: Array<() => void> = [];
  let drainWaiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const handlers = {
    binaryType: "uint8array" as const,
    data(_s: Socket<undefined>, d: Uint8Array) {
      chunks.push(d.slice());
      total += d.length;
      wake();
    },
    drain() {
      const w = drainWaiters;
      drainWaiters = [];
      for (const f of w) f();
    },
    close() {
      closed = true;
      wake();
      const w = drainWaiters;
      drainWaiters = [];
      for (const f of w) f();
    },
    error() {},
  };
  const socket =
    "unix" in target
      ? await Bun.connect({ unix: target.unix, tls: target.tls ? { rejectUnauthorized: false } : undefined, socket: handlers })
      : await Bun.connect({
          hostname: target.hostname ?? "127.0.0.1",
          port: target.port,
          tls: target.tls ? { rejectUnauthorized: false } : undefined,
          socket: handlers,
        });
  socket.setNoDelay(true);

  function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (cond()) return resolve();
      const timer = setTimeout(() => {
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (received ${total} bytes, closed=${closed})`));
      }, timeoutMs);
      const check = () => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else if (closed) {
          clearTimeout(timer);
          if (what === "close") resolve();
          else reject(new Error(`connection closed while waiting for ${what} (received ${total} bytes)`));
        } else waiters.push(check);
      };
      waiters.push(check);
    });
  }

  const client: TestClient = {
    socket,
    received() {
      if (chunks.length > 1) {
        const all = new Uint8Array(total);
        let o = 0;
        for (const c of chunks) {
          all.set(c, o);
          o += c.length;
        }
        chunks.length = 0;
        chunks.push(all);
      }
      return chunks[0] ?? new Uint8Array(0);
    },
    text() {
      return dec.decode(client.received());
    },
    get receivedBytes() {
      return total;
    },
    get closed() {
      return closed;
    },
    waitClosed(timeoutMs = 5000) {
      return waitUntil(() => closed, timeoutMs, "close");
    },
    waitBytes(n, timeoutMs = 5000) {
      return waitUntil(() => total >= n, timeoutMs, `${n} bytes`);
    },
    async send(data) {
      let bytes = typeof data === "string" ? enc.encode(data) : data;
      const deadline = Date.now() + 20_000;
      while (bytes.length > 0) {
        if (closed) throw new Error("send: connection closed");
        const n = socket.write(bytes);
        if (n < 0) throw new Error("send: connection closed");
        bytes = bytes.subarray(n);
        if (bytes.length > 0) {
          if (Date.now() > deadline) throw new Error("send: peer did not read for 20 s");
          await new Promise<void>((r) => {
            drainWaiters.push(r);
            setTimeout(r, 50);
          });
        }
      }
    },
    async sendSlowly(data, delayMs = 1, chunkBytes = 1) {
      const bytes = typeof data === "string" ? enc.encode(data) : data;
      for (let i = 0; i < bytes.length; i += chunkBytes) {
        await client.send(bytes.subarray(i, Math.min(bytes.length, i + chunkBytes)));
        await Bun.sleep(delayMs);
      }
    },
    pause() {
      socket.pause();
    },
    resume() {
      socket.resume();
    },
    close() {
      socket.end();
    },
  };
  return client;
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function pseudoRandomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * The servers and clients a test file opens, closed after its last test (clients first,
 * then servers, without grace). Call once, at the file's top level: it registers an
 * afterAll. Push servers into `servers`; `client(port, hostname?)` connects and tracks;
 * `clientsInOrder` connects several, each seen by the server before the next.
 */
export function trackPeers(): {
  servers: Server[];
  client(port: number, hostname?: string): Promise<TestClient>;
  clientsInOrder(port: number, n: number, opened: () => number): Promise<TestClient[]>;
} {
  const servers: Server[] = [];
  const clients: TestClient[] = [];
  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    for (const s of servers) await s.stop({ graceful: false });
  });
  return {
    servers,
    async client(port: number, hostname = "127.0.0.1"): Promise<TestClient> {
      const c = await connect({ port, hostname });
      clients.push(c);
      return c;
    },
    /**
     * n clients connected one after another, each awaited until the server's open hook
     * counted it (`opened()` is that count, starting from 0): the first holds the lowest slot.
     */
    async clientsInOrder(port: number, n: number, opened: () => number): Promise<TestClient[]> {
      const out: TestClient[] = [];
      for (let i = 0; i < n; i++) {
        out.push(await this.client(port));
        await until(`connection ${i} opened`, () => opened() === i + 1);
      }
      return out;
    },
  };
}
