/**
 * The echo app: every frame goes back to its sender, framed by the same protocol.
 *
 *   const app = createEchoApp({ protocol: "lines" });
 *   await createServer({ port: 7000, protocol: app.protocol, handler: app.handler });
 *
 * raw: the bytes as read; lines: the line plus "\n"; length-u16 / length-u32: the payload
 * under a new header; resp: the request's arguments as an array of bulk strings. The
 * replies of one data event are written with one write (reply-buffer.ts).
 */
import type { Conn, Handler, ProtocolName } from "../reactor/index.ts";
import { ReplyBuffer } from "./reply-buffer.ts";

export interface EchoApp {
  readonly protocol: ProtocolName;
  readonly handler: Handler<Uint8Array | Uint8Array[]>;
}

/** Creates the echo app for `protocol` (default "raw"). */
export function createEchoApp(opts: { protocol?: ProtocolName } = {}): EchoApp {
  const protocol = opts.protocol ?? "raw";
  const out = new ReplyBuffer();
  let message: (conn: Conn, frame: Uint8Array | Uint8Array[]) => void;
  switch (protocol) {
    case "raw":
      message = (conn, frame) => {
        // One frame per read already: no batching to gain.
        conn.write(frame as Uint8Array);
      };
      break;
    case "lines":
      message = (conn, frame) => {
        const f = frame as Uint8Array;
        out.begin(conn);
        out.reserve(f.length + 1);
        out.bytes(f);
        out.buf[out.length++] = 10;
        out.maybeFlush();
      };
      break;
    case "length-u16":
    case "length-u32": {
      const headerBytes = protocol === "length-u16" ? 2 : 4;
      message = (conn, frame) => {
        const f = frame as Uint8Array;
        out.begin(conn);
        out.reserve(f.length + headerBytes);
        const b = out.buf;
        let p = out.length;
        const n = f.length;
        if (headerBytes === 4) {
          b[p++] = n >>> 24;
          b[p++] = (n >>> 16) & 0xff;
        }
        b[p++] = (n >>> 8) & 0xff;
        b[p++] = n & 0xff;
        out.length = p;
        out.bytes(f);
        out.maybeFlush();
      };
      break;
    }
    case "resp":
      message = (conn, frame) => {
        const args = frame as Uint8Array[];
        if (args.length === 0) return;
        out.begin(conn);
        out.arrayHeader(args.length);
        for (const a of args) out.bulk(a);
        out.maybeFlush();
      };
      break;
    default:
      throw new RangeError(`createEchoApp: protocol must be one of raw, lines, length-u16, length-u32, resp; got ${String(protocol)}`);
  }
  return {
    protocol,
    handler: {
      message,
      close(conn) {
        out.forget(conn.id);
      },
    },
  };
}
