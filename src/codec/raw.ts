import { FRAME_INCOMPLETE, type Codec } from "./types.ts";

/**
 * Raw bytes: a frame is whatever has arrived, capped at maxFrameBytes (a bigger read is
 * handed over in maxFrameBytes pieces, never refused). decode returns a view into buf;
 * encode returns its argument unchanged. No framing survives TCP, so use raw only for
 * stream protocols (echo, proxies).
 */
export const rawCodec: Codec<Uint8Array, Uint8Array> = {
  name: "raw",
  measure(_buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number {
    const n = end - start;
    if (n <= 0) return FRAME_INCOMPLETE;
    return n < maxFrameBytes ? n : maxFrameBytes;
  },
  decode(buf: Uint8Array, start: number, length: number): Uint8Array {
    return buf.subarray(start, start + length);
  },
  encode(message: Uint8Array): Uint8Array {
    return message;
  },
};
