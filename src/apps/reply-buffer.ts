/**
 * Replies of one data event, gathered and written with one conn.write.
 *
 * A pipelining client (redis-benchmark -P 16) sends many commands in one read; a write per
 * reply costs a syscall each. The app appends every reply to this buffer and the buffer
 * flushes once: in a microtask, which Bun runs right after the data callback that produced
 * the replies returns (before any other socket's callback), or earlier when a reply for
 * another connection arrives or the buffer passes flushAtBytes.
 *
 * The server's Conn handed to a callback is a flyweight valid only during that callback, so
 * the buffer keeps a bound Conn (conn.ref()) per slot, made once per connection and dropped
 * in forget() when the connection closes.
 */
import type { Conn } from "../reactor/index.ts";

const SLOT_MASK = (1 << 20) - 1;
const CRLF0 = 13;
const CRLF1 = 10;

/** Bytes of "-9007199254740991" plus slack: the longest integer text written. */
const MAX_INT_CHARS = 24;

export class ReplyBuffer {
  /** The bytes being gathered; valid from 0 to `length`. */
  buf: Uint8Array;
  /** Bytes gathered for the current connection. */
  length = 0;
  /** Handle of the connection the gathered bytes belong to, -1 when none. */
  private targetId = -1;
  private target: Conn | null = null;
  private readonly refs: (Conn | undefined)[] = [];
  private scheduled = false;
  private readonly flushAtBytes: number;
  private readonly flushBound: () => void;
  /** Writes issued (one per flush with bytes). */
  writes = 0;

  /** flushAtBytes: flush at once past this many gathered bytes (bounds the buffer for big replies). */
  constructor(opts: { initialBytes?: number; flushAtBytes?: number } = {}) {
    this.buf = new Uint8Array(opts.initialBytes ?? 64 * 1024);
    this.flushAtBytes = opts.flushAtBytes ?? 256 * 1024;
    this.flushBound = () => {
      this.scheduled = false;
      this.flush();
    };
  }

  /**
   * Directs the following appends to `conn`: flushes what was gathered for another
   * connection first, and arranges the end-of-event flush. Call once per frame.
   */
  begin(conn: Conn): void {
    const id = conn.id;
    if (id !== this.targetId) {
      if (this.length > 0) this.flush();
      this.targetId = id;
      const slot = id & SLOT_MASK;
      let ref = this.refs[slot];
      if (ref === undefined || ref.id !== id) {
        ref = conn.ref();
        this.refs[slot] = ref;
      }
      this.target = ref;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushBound);
    }
  }

  /** Writes the gathered bytes to their connection with one write. Returns that write's result (true when nothing was pending). */
  flush(): boolean {
    const n = this.length;
    if (n === 0 || this.target === null) return true;
    this.length = 0;
    this.writes++;
    return this.target.write(this.buf.subarray(0, n));
  }

  /** Flushes if the gathered bytes passed flushAtBytes; call after each frame's reply. */
  maybeFlush(): void {
    if (this.length >= this.flushAtBytes) this.flush();
  }

  /** Drops the bound Conn of a closed connection (and any bytes gathered for it). */
  forget(id: number): void {
    const slot = id & SLOT_MASK;
    if (this.refs[slot]?.id === id) this.refs[slot] = undefined;
    if (this.targetId === id) {
      this.length = 0;
      this.targetId = -1;
      this.target = null;
    }
  }

  /** Makes room for `more` bytes. */
  reserve(more: number): void {
    const need = this.length + more;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Appends raw bytes. */
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** Appends a string's char codes as bytes (latin1: the key and error texts are latin1). */
  latin1(s: string): void {
    const n = s.length;
    this.reserve(n);
    const buf = this.buf;
    let p = this.length;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i) & 0xff;
    this.length = p;
  }

  private digits(n: number): void {
    // Integers only (callers pass safe integers): written right to left without a string.
    const buf = this.buf;
    let p = this.length;
    if (n < 0) {
      buf[p++] = 45;
      n = -n;
    }
    if (n < 10) {
      buf[p++] = 48 + n;
    } else {
      let len = 0;
      for (let t = n; t >= 1; t = Math.floor(t / 10)) len++;
      let q = p + len;
      p = q;
      while (n >= 1) {
        const d = n % 10;
        buf[--q] = 48 + d;
        n = (n - d) / 10;
      }
    }
    this.length = p;
  }

  private crlf(): void {
    const buf = this.buf;
    buf[this.length] = CRLF0;
    buf[this.length + 1] = CRLF1;
    this.length += 2;
  }

  /** "+OK\r\n". */
  ok(): void {
    this.reserve(5);
    const b = this.buf;
    const p = this.length;
    b[p] = 43;
    b[p + 1] = 79;
    b[p + 2] = 75;
    b[p + 3] = 13;
    b[p + 4] = 10;
    this.length = p + 5;
  }

  /** "$-1\r\n": the RESP2 null bulk string. */
  nil(): void {
    this.reserve(5);
    const b = this.buf;
    const p = this.length;
    b[p] = 36;
    b[p + 1] = 45;
    b[p + 2] = 49;
    b[p + 3] = 13;
    b[p + 4] = 10;
    this.length = p + 5;
  }

  /** "+<s>\r\n"; s must hold no CR or LF. */
  simple(s: string): void {
    this.reserve(s.length + 3);
    this.buf[this.length++] = 43;
    this.latin1(s);
    this.crlf();
  }

  /** "-<message>\r\n"; CR and LF in the message become spaces, as redis does. */
  error(message: string): void {
    this.reserve(message.length + 3);
    this.buf[this.length++] = 45;
    const start = this.length;
    this.latin1(message);
    const b = this.buf;
    for (let i = start; i < this.length; i++) if (b[i] === 13 || b[i] === 10) b[i] = 32;
    this.crlf();
  }

  /** ":<n>\r\n" for a safe integer n. */
  integer(n: number): void {
    this.reserve(MAX_INT_CHARS + 3);
    this.buf[this.length++] = 58;
    this.digits(n);
    this.crlf();
  }

  /** ":<n>\r\n" for any integer given as text (from a bigint). */
  integerText(s: string): void {
    this.reserve(s.length + 3);
    this.buf[this.length++] = 58;
    this.latin1(s);
    this.crlf();
  }

  /** "$<len>\r\n<bytes>\r\n". */
  bulk(b: Uint8Array): void {
    const n = b.length;
    this.reserve(n + MAX_INT_CHARS + 5);
    this.buf[this.length++] = 36;
    this.digits(n);
    this.crlf();
    this.buf.set(b, this.length);
    this.length += n;
    this.crlf();
  }

  /** A bulk string of a latin1 string's bytes. */
  bulkLatin1(s: string): void {
    this.reserve(s.length + MAX_INT_CHARS + 5);
    this.buf[this.length++] = 36;
    this.digits(s.length);
    this.crlf();
    this.latin1(s);
    this.crlf();
  }

  /** "*<n>\r\n": an array header; the caller appends n elements. */
  arrayHeader(n: number): void {
    this.reserve(MAX_INT_CHARS + 3);
    this.buf[this.length++] = 42;
    this.digits(n);
    this.crlf();
  }
}
