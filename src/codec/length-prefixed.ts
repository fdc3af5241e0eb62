import { bytesAt } from "./bytes.ts";
import { MyriadTypeError } from "../errors.ts";
import { CodecEncodeError } from "./errors.ts";
import { FRAME_INCOMPLETE, FRAME_TOO_LARGE, type Codec } from "./types.ts";

/** Largest payload a u16 length header can announce. */
export const MAX_U16_PAYLOAD_BYTES = 0xffff;
/** Largest payload a u32 length header can announce. */
export const MAX_U32_PAYLOAD_BYTES = 0xffffffff;

/**
 * A big-endian length header of headerBytes (2 or 4) then that many payload bytes.
 * measure counts header + payload; decode returns the payload (a view into buf, or a copy when small: see
 * bytesAt); maxFrameBytes
 * bounds the payload. FRAME_TOO_LARGE is known from the header's first byte when it alone
 * announces more than maxFrameBytes, long before the payload arrives. Empty payloads are
 * valid frames. Every header is valid: there is no FRAME_MALFORMED.
 */
function lengthPrefixed(name: string, headerBytes: 2 | 4): Codec<Uint8Array, Uint8Array> {
  const maxPayload = headerBytes === 2 ? MAX_U16_PAYLOAD_BYTES : MAX_U32_PAYLOAD_BYTES;
  return {
    name,
    measure(buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number {
      const have = end - start;
      // The header bytes we have are the length's high bytes: a lower bound of the length.
      let len = 0;
      const known = have < headerBytes ? have : headerBytes;
      for (let i = 0; i < known; i++) len = len * 256 + (buf[start + i] as number);
      for (let i = known; i < headerBytes; i++) len *= 256;
      if (len > maxFrameBytes) return FRAME_TOO_LARGE;
      if (known < headerBytes) return FRAME_INCOMPLETE;
      return have - headerBytes >= len ? headerBytes + len : FRAME_INCOMPLETE;
    },
    decode(buf: Uint8Array, start: number, length: number): Uint8Array {
      return bytesAt(buf, start + headerBytes, start + length);
    },
    encode(message: Uint8Array): Uint8Array {
      if (!(message instanceof Uint8Array)) {
        throw new MyriadTypeError("ERR_CODEC_ENCODE", `${name} codec: encode takes a Uint8Array, got ${typeof message}`);
      }
      const n = message.length;
      if (n > maxPayload) {
        throw new CodecEncodeError(
          `${name} codec: payload of ${n} bytes exceeds the ${maxPayload}-byte limit of its header; ` +
            (headerBytes === 2 ? 'split the message or use "length-u32"' : "split the message"),
        );
      }
      const out = new Uint8Array(headerBytes + n);
      if (headerBytes === 2) {
        out[0] = n >>> 8;
        out[1] = n & 0xff;
      } else {
        out[0] = n >>> 24;
        out[1] = (n >>> 16) & 0xff;
        out[2] = (n >>> 8) & 0xff;
        out[3] = n & 0xff;
      }
      out.set(message, headerBytes);
      return out;
    },
  };
}

/** 2-byte big-endian length header; payloads of 0..65535 bytes. */
export const lengthU16Codec: Codec<Uint8Array, Uint8Array> = lengthPrefixed("length-u16", 2);
/** 4-byte big-endian length header; payloads of 0..2^32-1 bytes (bounded by maxFrameBytes). */
export const lengthU32Codec: Codec<Uint8Array, Uint8Array> = lengthPrefixed("length-u32", 4);
