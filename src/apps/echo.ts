/**
 * The echo app: every frame goes back to its sender, framed by the same protocol.
 *
 *   const app = createEchoApp({ protocol: "lines" });
 *   await createServer({ port: 7000, protocol: app.protocol, handler: app.handler });
 *
 * raw: the bytes as read; lines: the line plus "\n"; length-u16 / length-u32: the payload
 * under a new header; resp: the request's arguments as an array of bulk strings. Each reply
 * is one write of one message (so ServerStats.framesOut counts replies, one per frame in),
 * written as soon as its frame arrives: the reactor sends the writes of one data event with
 * one socket write, so coalesced frames still cost one send and the app buffers nothing.
 * Framed replies are encoded into one new array each (the codec's encode, or
 * encodeRespCommand for RESP): one small allocation per frame buys one write per frame.
 */
import { encodeRespCommand, linesCodec, lengthU16Codec, lengthU32Codec } from "../codec/index.ts";
import { MyriadRangeError } from "../errors.ts";
import type { Conn, Handler, ProtocolName } from "../reactor/index.ts";

/** The echo app: a handler for createServer({ protocol }) that writes every frame back to its sender. */
export interface EchoApp {
  readonly protocol: ProtocolName;
  readonly handler: Handler<Uint8Array | Uint8Array[]>;
}

/** Creates the echo app for `protocol` (default "raw"). */
export function createEchoApp(opts: { protocol?: ProtocolName } = {}): EchoApp {
  const protocol = opts?.protocol ?? "raw";
  let message: (conn: Conn, frame: Uint8Array | Uint8Array[]) => void;
  switch (protocol) {
    case "raw":
      message = (conn, frame) => {
        conn.write(frame as Uint8Array);
      };
      break;
    case "lines":
      // A decoded line holds no "\n", so encode (which appends one) cannot refuse it.
      message = (conn, frame) => {
        conn.write(linesCodec.encode(frame as Uint8Array));
      };
      break;
    case "length-u16":
      // A decoded payload fits its header, so encode cannot refuse it.
      message = (conn, frame) => {
        conn.write(lengthU16Codec.encode(frame as Uint8Array));
      };
      break;
    case "length-u32":
      message = (conn, frame) => {
        conn.write(lengthU32Codec.encode(frame as Uint8Array));
      };
      break;
    case "resp":
      message = (conn, frame) => {
        const args = frame as Uint8Array[];
        if (args.length === 0) return;
        conn.write(encodeRespCommand(args));
      };
      break;
    default:
      throw new MyriadRangeError("ERR_APP_OPTION", `createEchoApp: protocol must be one of raw, lines, length-u16, length-u32, resp; got ${String(protocol)}`);
  }
  return {
    protocol,
    handler: { message },
  };
}
