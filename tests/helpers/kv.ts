// RESP test tools for the kv / serve tests: a minimal RESP wire client that returns each reply's
// exact bytes, request encoding, and a fake Conn to drive a handler in-process.
import { respReplyCodec } from "../../src/codec/index.ts";
import type { Conn } from "../../src/reactor/index.ts";
import { until } from "./until.ts";

const enc = new TextEncoder();

/** RESP request bytes for args (strings as latin1 so that every byte value can be sent). */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Uint8Array {
  const parts: number[] = [];
  const push = (s: string) => {
    for (let i = 0; i < s.length; i++) parts.push(s.charCodeAt(i) & 0xff);
  };
  push(`*${args.length}\r\n`);
  for (const a of args) {
    const b = typeof a === "string" ? latin1(a) : a;
    push(`$${b.length}\r\n`);
    for (const x of b) parts.push(x);
    push("\r\n");
  }
  return Uint8Array.from(parts);
}

export function latin1(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

export function text(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return s;
}

/** Resolves once something accepts TCP connections on host:port; rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs = 10_000, hostname = "127.0.0.1"): Promise<void> {
  await until(`something to listen on ${hostname}:${port}`, async () => {
    const s = await Bun.connect({ hostname, port, socket: { data() {} } });
    s.end();
    return true;
  }, timeoutMs);
}

/** One connection speaking RESP; call() returns the exact bytes of one reply. */
export class Wire {
  private buf = new Uint8Array(0);
  private waiters: (() => void)[] = [];
  closed = false;
  private constructor(private socket: Bun.Socket<undefined> | null) {}

  static async connect(port: number, hostname = "127.0.0.1"): Promise<Wire> {
    const w = new Wire(null);
    w.socket = await Bun.connect({
      hostname,
      port,
      socket: {
        data(_s, d) {
          const next = new Uint8Array(w.buf.length + d.length);
          next.set(w.buf);
          next.set(d, w.buf.length);
          w.buf = next;
          w.wake();
        },
        close() {
          w.closed = true;
          w.wake();
        },
        error() {
          w.closed = true;
          w.wake();
        },
      },
    });
    return w;
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const f of ws) f();
  }

  private async waitData(timeoutMs: number): Promise<void> {
    let timer: Timer | undefined;
    await Promise.race([
      new Promise<void>((r) => this.waiters.push(r)),
      new Promise<void>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Sends raw bytes. */
  send(bytes: Uint8Array | string): void {
    this.socket!.write(typeof bytes === "string" ? enc.encode(bytes) : bytes);
  }

  /** The next complete reply's bytes. */
  async reply(timeoutMs = 5000): Promise<Uint8Array> {
    for (;;) {
      const n = this.buf.length ? respReplyCodec.measure(this.buf, 0, this.buf.length, 1 << 30) : 0;
      if (n > 0) {
        const r = this.buf.slice(0, n);
        this.buf = this.buf.slice(n);
        return r;
      }
      if (n < 0) throw new Error(`malformed reply bytes: ${JSON.stringify(text(this.buf))}`);
      if (this.closed) throw new Error(`connection closed; unparsed: ${JSON.stringify(text(this.buf))}`);
      await this.waitData(timeoutMs);
    }
  }

  /** Sends one command and returns its reply as a latin1 string of the exact bytes. */
  async call(...args: (string | Uint8Array)[]): Promise<string> {
    this.send(encodeCommand(args));
    return text(await this.reply());
  }

  /**
   * Sends one command followed by PING <sentinel> in the same write and returns every reply
   * before the sentinel's, concatenated: works for commands with any number of replies
   * (SUBSCRIBE a b c) and in subscribed mode (where PING answers an array).
   */
  async callAll(...args: (string | Uint8Array)[]): Promise<string> {
    const sentinel = "__myriad_sentinel__";
    const cmd = encodeCommand(args);
    const ping = encodeCommand(["PING", sentinel]);
    const both = new Uint8Array(cmd.length + ping.length);
    both.set(cmd);
    both.set(ping, cmd.length);
    this.send(both);
    let acc = "";
    for (;;) {
      const r = text(await this.reply());
      if (r === `$${sentinel.length}\r\n${sentinel}\r\n` || r === `*2\r\n$4\r\npong\r\n$${sentinel.length}\r\n${sentinel}\r\n`) return acc;
      acc += r;
    }
  }

  /** Resolves when the peer closed the connection (or throws after timeoutMs). */
  async closedByPeer(timeoutMs = 5000): Promise<void> {
    while (!this.closed) await this.waitData(timeoutMs);
  }

  close(): void {
    this.socket?.end();
  }
}

/** A Conn stand-in that records what the handler writes. */
export class FakeConn implements Conn {
  written: Uint8Array[] = [];
  closedWith: string | undefined;
  writeCalls = 0;
  /** remoteAddress: the peer it claims to be (loopback unless a test says otherwise). */
  constructor(
    readonly id: number,
    readonly remoteAddress = "127.0.0.1",
    readonly remotePort = 40000 + id,
  ) {}
  readonly localAddress = "127.0.0.1";
  readonly localPort = 6380;
  write(data: Uint8Array | string): boolean {
    this.writeCalls++;
    this.written.push(typeof data === "string" ? enc.encode(data) : data.slice());
    return true;
  }
  send(message: unknown): boolean {
    return this.write(message as Uint8Array);
  }
  close(reason?: string): void {
    this.closedWith = reason ?? "server";
  }
  /** Counts the application's read pauses (the store under test uses none). */
  readPauses = 0;
  pauseReading(): void {
    this.readPauses++;
  }
  resumeReading(): void {
    this.readPauses--;
  }
  get isOpen(): boolean {
    return this.closedWith === undefined;
  }
  ref(): Conn {
    return this;
  }
  /** Everything written so far, as latin1, and forgets it. */
  take(): string {
    let s = "";
    for (const w of this.written) s += text(w);
    this.written = [];
    return s;
  }
}
