/**
 * A raw WebSocket client for tests, over helpers/net.ts's TestClient: it writes the upgrade
 * request and frames byte for byte (whatever the test builds, valid or not) and reads the
 * server's answer and frames strictly, so a test sees exactly what went over the wire.
 */
import { encodeClientFrame, closePayload } from "../../src/codec/index.ts";
import { connect, type Target, type TestClient } from "./net.ts";
import { until } from "./until.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The RFC 6455 example key; the server's accept for it is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=. */
export const TEST_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
export const TEST_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK = Uint8Array.from([0x12, 0x34, 0x56, 0x78]);

/** An upgrade request; `headers` replace or add fields (a null value drops the field). */
export function upgradeRequest(path = "/", headers: Record<string, string | null> = {}): string {
  const fields: Record<string, string | null> = {
    Host: "127.0.0.1",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": TEST_KEY,
    "Sec-WebSocket-Version": "13",
    ...headers,
  };
  let s = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(fields)) if (v !== null) s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}

/** A masked client frame: b0 is FIN | RSV | opcode. */
export function clientFrame(b0: number, payload: Uint8Array | string = new Uint8Array(0)): Uint8Array {
  return encodeClientFrame(b0, typeof payload === "string" ? enc.encode(payload) : payload, MASK);
}

/** A masked close frame with code and reason (code 0: no payload). */
export function clientClose(code = 1000, reason = ""): Uint8Array {
  return clientFrame(0x88, closePayload(code, reason));
}

/** A frame the server sent. */
export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Uint8Array;
  /** The payload as text (for text frames and close reasons). */
  text: string;
  /** For a close frame: its code (1005 when it had none). */
  closeCode: number;
}

/** The server's HTTP answer. */
export interface HttpAnswer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** A raw WebSocket connection in a test. */
export interface RawWs {
  readonly tcp: TestClient;
  /** Sends bytes or a string as they are. */
  send(data: Uint8Array | string): Promise<void>;
  /** Reads the HTTP response head (and, for errors, its body once the server closed). */
  answer(timeoutMs?: number): Promise<HttpAnswer>;
  /** The next frame from the server (after the 101); rejects on close or timeout. */
  frame(timeoutMs?: number): Promise<ServerFrame>;
  /** Frames until (and including) the server's close frame; then waits for the TCP close. */
  untilClose(timeoutMs?: number): Promise<ServerFrame[]>;
  close(): void;
}

/** Connects and sends `request` (default: a valid upgrade to "/"). */
export async function rawWs(target: Target, request: string | Uint8Array = upgradeRequest()): Promise<RawWs> {
  const tcp = await connect(target);
  await tcp.send(request);
  let pos = 0; // bytes of tcp.received() consumed
  let headEnd = -1;
  const findHead = () => {
    const b = tcp.received();
    for (let i = 0; i + 3 < b.length; i++) {
      if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i + 4;
    }
    return -1;
  };
  const ws: RawWs = {
    tcp,
    send: (d) => tcp.send(d),
    async answer(timeoutMs = 5000) {
      headEnd = await until("the HTTP answer", () => {
        const at = findHead();
        if (at < 0 && tcp.closed) throw new Error(`closed before an HTTP answer: ${JSON.stringify(tcp.text())}`);
        return at < 0 ? false : at;
      }, timeoutMs);
      const head = dec.decode(tcp.received().subarray(0, headEnd));
      const lines = head.split("\r\n");
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!)?.[1] ?? "0");
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const c = line.indexOf(":");
        if (c > 0) headers.set(line.slice(0, c).toLowerCase(), line.slice(c + 1).trim());
      }
      pos = headEnd;
      let body = "";
      if (status !== 101) {
        await tcp.waitClosed(timeoutMs);
        body = dec.decode(tcp.received().subarray(headEnd));
        pos = tcp.received().length;
      }
      return { status, headers, body };
    },
    async frame(timeoutMs = 5000) {
      if (headEnd < 0) {
        const a = await ws.answer(timeoutMs);
        if (a.status !== 101) throw new Error(`upgrade refused: ${a.status} ${a.body}`);
      }
      const f = await until("a frame from the server", () => {
        const got = parseFrame(tcp.received(), pos);
        if (got === null && tcp.closed) throw new Error(`connection closed with no (complete) frame pending; ${tcp.received().length - pos} bytes left`);
        return got;
      }, timeoutMs);
      pos = f.end;
      return f.frame;
    },
    async untilClose(timeoutMs = 5000) {
      const frames: ServerFrame[] = [];
      for (;;) {
        const f = await ws.frame(timeoutMs);
        frames.push(f);
        if (f.opcode === 8) break;
      }
      await tcp.waitClosed(timeoutMs);
      return frames;
    },
    close: () => tcp.close(),
  };
  return ws;
}

/** Parses one server frame at b[pos]; null while incomplete. Throws on a masked server frame. */
export function parseFrame(b: Uint8Array, pos: number): { frame: ServerFrame; end: number } | null {
  if (b.length - pos < 2) return null;
  const b0 = b[pos]!;
  const b1 = b[pos + 1]!;
  if ((b1 & 0x80) !== 0) throw new Error("the server sent a masked frame");
  let len = b1 & 0x7f;
  let p = pos + 2;
  if (len === 126) {
    if (b.length - pos < 4) return null;
    len = (b[p]! << 8) | b[p + 1]!;
    p += 2;
  } else if (len === 127) {
    if (b.length - pos < 10) return null;
    len = 0;
    for (let i = 0; i < 8; i++) len = len * 256 + b[p + i]!;
    p += 8;
  }
  if (b.length - p < len) return null;
  const payload = b.slice(p, p + len);
  const opcode = b0 & 0x0f;
  const closeCode = opcode === 8 ? (len >= 2 ? (payload[0]! << 8) | payload[1]! : 1005) : 0;
  const text = dec.decode(opcode === 8 ? payload.subarray(Math.min(2, len)) : payload);
  return { frame: { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode, payload, text, closeCode }, end: p + len };
}
