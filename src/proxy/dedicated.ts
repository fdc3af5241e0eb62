/**
 * A dedicated upstream connection: one client's alone while it needs one (a blocking
 * command, a transaction, subscriptions), unlike the shared pipelined connections of src/pool
 * that every client's requests go down. Requests are answered in order through callbacks;
 * with `onPush` set (pub/sub), "message" and "pmessage" arrays go there instead.
 *
 * Connects with Bun.connect, refuses a socket connected to itself (isSelfConnect, as every
 * client in myriad does), authenticates and selects the pool's database before it is handed
 * out. A request that times out, a protocol error or a close fails every request waiting on
 * it and closes the connection: its order can no longer be trusted.
 */
import type { Socket } from "bun";
import { FRAME_INCOMPLETE, respReplyCodec } from "../codec/index.ts";
import { ClientRequestError, isSelfConnect } from "../pool/index.ts";
import { encodeArgs } from "./request.ts";

/** Called with the reply (an error reply is a reply) or, when none came, the error. */
export type ReplyCallback = (reply: Uint8Array | null, err: Error | null) => void;

/** Where and how to connect. */
export interface DedicatedOptions {
  host: string;
  port: number;
  /** A unix socket path to connect to instead of host:port ("" or absent: TCP). */
  unix?: string;
  /** "host:port", for messages. */
  address: string;
  /** AUTH with this password first ("" for none). */
  password: string;
  /** SELECT this database first (0: none). */
  db: number;
  connectTimeoutMs: number;
  maxFrameBytes: number;
}

const enc = new TextEncoder();
const MESSAGE = enc.encode("*3\r\n$7\r\nmessage\r\n");
const PMESSAGE = enc.encode("*4\r\n$8\r\npmessage\r\n");

function startsWith(buf: Uint8Array, prefix: Uint8Array): boolean {
  if (buf.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

/** True for a pub/sub delivery ("message" or "pmessage" array) as opposed to a command's reply. */
function isPushMessage(reply: Uint8Array): boolean {
  return startsWith(reply, MESSAGE) || startsWith(reply, PMESSAGE);
}

/** A dedicated upstream connection (see the file comment): open() it, send() requests, close() it. */
export class DedicatedConnection {
  private socket: Socket<DedicatedConnection> | null = null;
  /** The socket closed or was never opened. */
  closed = false;
  private readonly callbacks: ReplyCallback[] = [];
  private readonly timers: (ReturnType<typeof setTimeout> | undefined)[] = [];
  private head = 0;
  private inbuf: Uint8Array | null = null;
  private pendingWrite: Uint8Array | null = null;
  /** Pub/sub deliveries go here when set. */
  onPush: ((reply: Uint8Array) => void) | null = null;
  /** Called once when the connection closes (after its waiting requests failed). */
  onClose: ((err: Error) => void) | null = null;

  private constructor(readonly o: DedicatedOptions) {}

  /** Connects, authenticates and selects; rejects with ClientRequestError (ERR_CONNECT, ...). */
  static async open(o: DedicatedOptions): Promise<DedicatedConnection> {
    const conn = new DedicatedConnection(o);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ClientRequestError("ERR_CONNECT", `cannot connect to ${o.address}: no connection within ${o.connectTimeoutMs} ms`)),
        o.connectTimeoutMs,
      );
    });
    let connecting: Promise<Socket<DedicatedConnection>> | undefined;
    try {
      const handlers = {
        binaryType: "uint8array" as const,
        data: (s: Socket<DedicatedConnection>, chunk: Uint8Array) => s.data.onData(chunk),
        drain: (s: Socket<DedicatedConnection>) => s.data.flush(),
        close: (s: Socket<DedicatedConnection>, err?: Error) => s.data.onSocketClose(err),
        error: (s: Socket<DedicatedConnection>, err: Error) => s.data.onSocketClose(err),
        connectError() {},
      };
      connecting = o.unix
        ? Bun.connect<DedicatedConnection>({ unix: o.unix, data: conn, socket: handlers })
        : Bun.connect<DedicatedConnection>({ hostname: o.host, port: o.port, data: conn, socket: handlers });
      const socket = await Promise.race([connecting, timeout]);
      if (isSelfConnect(socket)) {
        socket.terminate();
        throw new ClientRequestError("ERR_CONNECT", `cannot connect to ${o.address}: the socket connected to itself (nothing listens there); retrying later`);
      }
      socket.setNoDelay(true);
      conn.socket = socket;
      if (conn.closed) throw new ClientRequestError("ERR_CONNECT", `connection to ${o.address} closed during the handshake`);
      const handshake: Promise<void>[] = [];
      if (o.password !== "") handshake.push(conn.expectOk(["AUTH", o.password]));
      if (o.db !== 0) handshake.push(conn.expectOk(["SELECT", String(o.db)]));
      if (handshake.length > 0) await Promise.race([Promise.all(handshake), timeout]);
      return conn;
    } catch (err) {
      conn.close();
      // A connect that lost the race with the timeout is closed when it completes.
      if (conn.socket === null) connecting?.then((s) => s.terminate(), () => {});
      if (err instanceof ClientRequestError) throw err;
      const code = (err as { code?: string } | null)?.code;
      throw new ClientRequestError(
        "ERR_CONNECT",
        `cannot connect to ${o.address}: ${(err as Error)?.message ?? err}${code ? ` (${code})` : ""}; check that the server runs and listens there`,
        err,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  private expectOk(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.send(encodeArgs(args.map((a) => enc.encode(a))), (reply, err) => {
        if (err !== null) reject(err);
        else if (reply![0] === 45) reject(new ClientRequestError("ERR_CONNECT", `${this.o.address} refused ${args[0]}: ${Buffer.from(reply!).toString().trim()}`));
        else resolve();
      });
    });
  }

  /** Requests waiting for their reply. */
  get waiting(): number {
    return this.callbacks.length - this.head;
  }

  /**
   * Sends request bytes (copied); `cb` gets the reply in order. With a finite timeoutMs, no
   * reply by then fails it (ERR_REQUEST_TIMEOUT) and closes the connection.
   */
  send(bytes: Uint8Array, cb: ReplyCallback, timeoutMs = Infinity): void {
    if (this.closed) {
      cb(null, new ClientRequestError("ERR_CONNECTION_CLOSED", `connection to ${this.o.address} is closed; the request was not sent`));
      return;
    }
    this.callbacks.push(cb);
    this.timers.push(
      timeoutMs === Infinity
        ? undefined
        : setTimeout(() => {
            this.fail(
              new ClientRequestError("ERR_REQUEST_TIMEOUT", `no reply from ${this.o.address} within ${timeoutMs} ms (timeout); it may still be applied`),
            );
          }, timeoutMs),
    );
    this.write(bytes);
  }

  private write(bytes: Uint8Array): void {
    if (this.pendingWrite !== null) {
      const next = new Uint8Array(this.pendingWrite.length + bytes.length);
      next.set(this.pendingWrite, 0);
      next.set(bytes, this.pendingWrite.length);
      this.pendingWrite = next;
      return;
    }
    const socket = this.socket;
    if (socket === null) {
      this.pendingWrite = new Uint8Array(bytes); // a copy (a Buffer's slice() would be a view)
      return;
    }
    const n = socket.write(bytes);
    if (n < 0) return;
    if (n < bytes.length) this.pendingWrite = new Uint8Array(bytes.subarray(n)); // a copy, not a view into the caller's buffer
  }

  /** @internal writes what the kernel did not take before. */
  flush(): void {
    const rest = this.pendingWrite;
    const socket = this.socket;
    if (rest === null || socket === null) return;
    this.pendingWrite = null;
    const n = socket.write(rest);
    if (n >= 0 && n < rest.length) this.pendingWrite = rest.slice(n);
  }

  /** @internal */
  onData(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.inbuf !== null) {
      buf = new Uint8Array(this.inbuf.length + chunk.length);
      buf.set(this.inbuf, 0);
      buf.set(chunk, this.inbuf.length);
      this.inbuf = null;
    }
    let p = 0;
    while (p < buf.length) {
      const n = respReplyCodec.measure(buf, p, buf.length, this.o.maxFrameBytes);
      if (n === FRAME_INCOMPLETE) break;
      if (n < 0) {
        this.fail(new ClientRequestError("ERR_PROTOCOL", `${this.o.address} sent bytes that are not a valid RESP reply`));
        return;
      }
      const reply = buf.slice(p, p + n);
      p += n;
      if (this.onPush !== null && isPushMessage(reply)) {
        this.onPush(reply);
        continue;
      }
      if (this.head >= this.callbacks.length) {
        this.fail(new ClientRequestError("ERR_PROTOCOL", `${this.o.address} sent a reply nobody asked for`));
        return;
      }
      const cb = this.callbacks[this.head]!;
      const timer = this.timers[this.head];
      if (timer !== undefined) clearTimeout(timer);
      this.head++;
      if (this.head === this.callbacks.length) {
        this.callbacks.length = 0;
        this.timers.length = 0;
        this.head = 0;
      }
      cb(reply, null);
      if (this.closed) return;
    }
    if (p < buf.length) this.inbuf = buf.slice(p);
  }

  /** Fails every waiting request with err and closes. */
  private fail(err: Error): void {
    const cbs = this.callbacks.slice(this.head);
    for (const t of this.timers) if (t !== undefined) clearTimeout(t);
    this.callbacks.length = 0;
    this.timers.length = 0;
    this.head = 0;
    this.terminate(err);
    for (const cb of cbs) cb(null, err);
  }

  /** @internal the socket closed or failed. */
  onSocketClose(err: Error | undefined): void {
    if (this.closed) return;
    const e = new ClientRequestError(
      "ERR_CONNECTION_CLOSED",
      `connection to ${this.o.address} closed${err ? ` (${err.message})` : ""}; a request in flight may or may not have been applied`,
      err,
    );
    this.closed = true;
    this.socket = null;
    this.fail(e);
    const onClose = this.onClose;
    this.onClose = null;
    onClose?.(e);
  }

  private terminate(err: Error): void {
    const socket = this.socket;
    this.socket = null;
    if (!this.closed) {
      this.closed = true;
      socket?.terminate();
      const onClose = this.onClose;
      this.onClose = null;
      onClose?.(err);
    }
  }

  /** Closes now; waiting requests fail with ERR_CONNECTION_CLOSED. */
  close(): void {
    if (this.closed) return;
    this.fail(new ClientRequestError("ERR_CONNECTION_CLOSED", `connection to ${this.o.address} was closed by the proxy`));
  }
}
