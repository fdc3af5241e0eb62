/**
 * Framing codecs: bytes in, frames out, for the reactor (server side) and the pooled clients
 * (client side). Every codec is a stateless singleton following the contract in types.ts.
 *
 * What maxFrameBytes bounds, per codec (at most maxFrameBytes + 4 bytes of one frame are ever
 * buffered by a caller that stops at FRAME_TOO_LARGE):
 * - raw: the bytes handed over at once (a bigger read is split, never refused);
 * - lines: the line without its "\n" / "\r\n";
 * - length-u16 / length-u32: the payload, without the header;
 * - resp, resp-reply: the request / reply bytes on the wire (an inline request: its line
 *   without the terminator).
 */
import { UnknownCodecError } from "./errors.ts";
import { lengthU16Codec, lengthU32Codec } from "./length-prefixed.ts";
import { linesCodec } from "./lines.ts";
import { rawCodec } from "./raw.ts";
import { respCodec } from "./resp.ts";
import type { Codec } from "./types.ts";

export { FRAME_INCOMPLETE, FRAME_MALFORMED, FRAME_TOO_LARGE, type Codec } from "./types.ts";
export { CodecEncodeError, RespError, UnknownCodecError } from "./errors.ts";
export { rawCodec } from "./raw.ts";
export { linesCodec } from "./lines.ts";
export { lengthU16Codec, lengthU32Codec, MAX_U16_PAYLOAD_BYTES, MAX_U32_PAYLOAD_BYTES } from "./length-prefixed.ts";
export { respCodec, RESP_MAX_ARGS } from "./resp.ts";
export {
  respReplyCodec,
  respReplyBufferCodec,
  encodeRespCommand,
  encodeRespCommands,
  type RespValue,
  type RespCommand,
} from "./resp-reply.ts";
export { resp } from "./resp-encode.ts";
export * from "./websocket-frame.ts";
export { UTF8_ACCEPT, UTF8_REJECT, utf8Validate, isValidUtf8, utf8Text } from "./websocket-utf8.ts";
export {
  DEFAULT_MAX_HANDSHAKE_BYTES,
  REQUEST_TOO_LARGE,
  WEBSOCKET_GUID,
  PLAIN_101_BYTES,
  UpgradeScan,
  WebSocketHeaderError,
  acceptKey,
  errorResponse,
  headerLines,
  measureRequest,
  parseProtocolList,
  parseUpgradeRequest,
  switchingProtocolsResponse,
  type HandshakeRefusal,
  type ParsedUpgrade,
  type UpgradeRequest,
} from "./websocket-handshake.ts";
export {
  DeflateOptionError,
  INFLATE_CORRUPT,
  INFLATE_TOO_BIG,
  MessageDeflater,
  MessageInflater,
  negotiateDeflate,
  resolveDeflateOptions,
  type DeflateParams,
  type PerMessageDeflateOptions,
  type ResolvedDeflateOptions,
} from "./websocket-deflate.ts";
export { COPY_MAX_BYTES, bytesAt } from "./bytes.ts";

/** The server-side codec names codecByName accepts (and the reactor's `protocol` option). */
export const CODEC_NAMES = ["raw", "lines", "length-u16", "length-u32", "resp"] as const;
/** One of CODEC_NAMES. */
export type CodecName = (typeof CODEC_NAMES)[number];

const byName: Record<CodecName, Codec<any, any>> = {
  raw: rawCodec,
  lines: linesCodec,
  "length-u16": lengthU16Codec,
  "length-u32": lengthU32Codec,
  resp: respCodec,
};

/**
 * The codec called name, one of CODEC_NAMES; throws UnknownCodecError (code
 * ERR_UNKNOWN_CODEC) naming the choices for any other name.
 */
export function codecByName(name: string): Codec<any, any> {
  if (Object.hasOwn(byName, name)) return byName[name as CodecName];
  throw new UnknownCodecError(name, CODEC_NAMES);
}

/** True when name is one of CODEC_NAMES. */
export function isCodecName(name: string): name is CodecName {
  return Object.hasOwn(byName, name);
}
