/**
 * The echo app: every frame goes back to its sender, framed by the same protocol.
 *
 *   const app = createEchoApp({ protocol: "lines" });
 *   await createServer({ port: 7000, protocol: app.protocol, handler: app.handler });
 *
 * raw: the bytes as read; lines: the line plus "\n"; length-u16 / length-u32: the payload
 * under a new header; resp: the request's arguments as an array of bulk strings. Each reply
 * is written as soon as its frame arrives: the reactor sends the writes of one data event
 * with one write, so coalesced frames still cost one send and the app buffers nothing.
 */
import type { Conn, Handler, ProtocolName } from "../reactor/index.ts";
import { arrayHeader, bulk } from "./replies.ts";

export interface EchoApp {
  readonly protocol: ProtocolName;
  readonly handler: Handler<Uint8Array | Uint8Array[]>;
}

const LF = Uint8Array.of(10);

/** Creates the echo app for `protocol` (default "raw"). */
export function createEchoApp(opts: { protocol?: ProtocolName } = {}): EchoApp {
  const protocol = opts.protocol ?? "raw";
  // conn.write has taken (sent or copied) its bytes when it returns, as it must for the
  // frames, which are views of the read buffer: one header array serves every reply.
  const header2 = new Uint8Array(2);
  const header4 = new Uint8Array(4);
  let message: (conn: Conn, frame: Uint8Array | Uint8Array[]) => void;
  switch (protocol) {
    case "raw":
      message = (conn, frame) => {
        conn.write(frame as Uint8Array);
      };
      break;
    case "lines":
      message = (conn, frame) => {
        conn.write(frame as Uint8Array);
        conn.write(LF);
      };
      break;
    case "length-u16":
      message = (conn, frame) => {
        const f = frame as Uint8Array;
        const n = f.length;
        header2[0] = n >>> 8;
        header2[1] = n & 0xff;
        conn.write(header2);
        conn.write(f);
      };
      break;
    case "length-u32":
      message = (conn, frame) => {
        const f = frame as Uint8Array;
        const n = f.length;
        header4[0] = n >>> 24;
        header4[1] = (n >>> 16) & 0xff;
        header4[2] = (n >>> 8) & 0xff;
        header4[3] = n & 0xff;
        conn.write(header4);
        conn.write(f);
      };
      break;
    case "resp":
      message = (conn, frame) => {
        const args = frame as Uint8Array[];
        if (args.length === 0) return;
        conn.write(arrayHeader(args.length));
        for (const a of args) conn.write(bulk(a));
      };
      break;
    default:
      throw new RangeError(`createEchoApp: protocol must be one of raw, lines, length-u16, length-u32, resp; got ${String(protocol)}`);
  }
  return {
    protocol,
    handler: { message },
  };
}
