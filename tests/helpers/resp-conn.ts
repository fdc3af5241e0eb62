/**
 * A raw RESP test connection: writes commands (pipelined in one write when given together)
 * and reads back whole replies in order, decoded (errors as RespError values, not throws),
 * so a test sees exactly what a server or proxy answered, error replies included. Every
 * wait is bounded in time.
 */
import { encodeRespCommands, FRAME_INCOMPLETE, respReplyCodec, type RespCommand, type RespValue } from "../../src/codec/index.ts";
import { connect, type TestClient } from "./net.ts";

export interface RespConn {
  readonly client: TestClient;
  /** Writes the commands in one write. */
  send(...commands: RespCommand[]): Promise<void>;
  /** The next n replies (waits up to timeoutMs for them). */
  read(n: number, timeoutMs?: number): Promise<RespValue[]>;
  /** Sends the commands and reads one reply per command. */
  call(...commands: RespCommand[]): Promise<RespValue[]>;
  /** Replies received and not read yet (complete ones). */
  buffered(): number;
  close(): void;
}

/** Connects to 127.0.0.1:port (or a unix path). */
export async function respConnect(target: number | string): Promise<RespConn> {
  const client = await connect(typeof target === "number" ? { port: target } : { unix: target });
  let offset = 0;
  const pending = (): Array<{ value: RespValue; next: number }> => {
    const bytes = client.received();
    const out: Array<{ value: RespValue; next: number }> = [];
    let p = offset;
    for (;;) {
      const n = respReplyCodec.measure(bytes, p, bytes.length, 1 << 30);
      if (n === FRAME_INCOMPLETE || n < 0) break;
      out.push({ value: respReplyCodec.decode(bytes, p, n), next: p + n });
      p += n;
    }
    return out;
  };
  const conn: RespConn = {
    client,
    send: (...commands) => client.send(encodeRespCommands(commands)),
    async read(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = pending();
        if (got.length >= n) {
          offset = got[n - 1]!.next;
          return got.slice(0, n).map((g) => g.value);
        }
        if (client.closed) throw new Error(`connection closed after ${got.length} of ${n} replies: ${client.text().slice(offset, offset + 300)}`);
        if (Date.now() > deadline) throw new Error(`${got.length} of ${n} replies within ${timeoutMs} ms: ${client.text().slice(offset, offset + 300)}`);
        await client.waitBytes(client.receivedBytes + 1, Math.max(1, deadline - Date.now())).catch(() => {});
      }
    },
    async call(...commands) {
      await conn.send(...commands);
      return conn.read(commands.length);
    },
    buffered: () => pending().length,
    close: () => client.close(),
  };
  return conn;
}
