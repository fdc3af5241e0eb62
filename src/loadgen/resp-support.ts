/**
 * The RESP pieces the load generator needs, in their own module so that a load process that
 * speaks echo or lines never loads the codecs (≈8 MB of RSS per process, ×55 processes for a
 * million connections).
 */
import { encodeRespCommand, respReplyCodec } from "../codec/index.ts";

/** The RESP pieces a load engine needs: encode a command, measure a reply. */
export interface RespSupport {
  /** The bytes of one command. */
  encode(command: ReadonlyArray<string | number | Uint8Array>): Uint8Array;
  /** Length of the complete reply at buf[0, end), 0 while incomplete, < 0 when malformed. */
  measure(buf: Uint8Array, end: number): number;
}

/** The RESP support over src/codec (loaded only by engines that speak RESP). */
export const respSupport: RespSupport = {
  encode: encodeRespCommand,
  measure: (buf, end) => respReplyCodec.measure(buf, 0, end, 64 << 20),
};
