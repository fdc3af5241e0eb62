/**
 * The echo app's frames, for every framed protocol: how a payload goes out as a request and
 * what the echo app sends back for it. Shared by the reactor's and serve's echo tests.
 */
import { encodeRespCommand } from "../../src/codec/index.ts";
import type { ProtocolName } from "../../src/reactor/index.ts";
import { concat } from "./net.ts";

/** A payload's request and the echo app's reply, on one framed protocol. */
export interface EchoFraming {
  protocol: ProtocolName;
  frame(payload: Uint8Array): Uint8Array;
  reply(payload: Uint8Array): Uint8Array;
}

/** n as `bytes` big-endian bytes (a length prefix). */
const bigEndian = (n: number, bytes: number) => Uint8Array.from({ length: bytes }, (_, i) => (n >>> (8 * (bytes - 1 - i))) & 0xff);
const CRLF = Uint8Array.of(13, 10);
const LF = Uint8Array.of(10);

/** lines (sent with CRLF, echoed with LF), length-u16, length-u32 and RESP (ECHO p, echoed as the same command). */
export const ECHO_FRAMINGS: readonly EchoFraming[] = [
  { protocol: "lines", frame: (p) => concat([p, CRLF]), reply: (p) => concat([p, LF]) },
  { protocol: "length-u16", frame: (p) => concat([bigEndian(p.length, 2), p]), reply: (p) => concat([bigEndian(p.length, 2), p]) },
  { protocol: "length-u32", frame: (p) => concat([bigEndian(p.length, 4), p]), reply: (p) => concat([bigEndian(p.length, 4), p]) },
  { protocol: "resp", frame: (p) => encodeRespCommand(["ECHO", p]), reply: (p) => encodeRespCommand(["ECHO", p]) },
];
