/**
 * The codec contract shared by the reactor (server side) and the pooled clients.
 *
 * A codec is stateless, so one instance serves every connection: the bytes of an incomplete
 * frame are the caller's to keep (the reactor keeps them in pooled segments, per slot).
 */

/** `measure` result: the bytes so far are a valid prefix of a frame; wait for more. */
export const FRAME_INCOMPLETE = 0;
/** `measure` result: the frame is (or will be) longer than maxFrameBytes. */
export const FRAME_TOO_LARGE = -1;
/** `measure` result: the bytes cannot be a frame of this protocol. */
export const FRAME_MALFORMED = -2;

/** A wire protocol's framing: measures a frame's length in raw bytes, decodes it, encodes outgoing messages. */
export interface Codec<In = Uint8Array, Out = Uint8Array> {
  /** "raw" | "lines" | "length-u16" | "length-u32" | "resp" | "resp-reply" | ... */
  readonly name: string;
  /**
   * Length in bytes of the complete frame that starts at buf[start], reading no further than
   * buf[end - 1]. Returns FRAME_INCOMPLETE when the bytes so far are a valid but incomplete
   * prefix, FRAME_TOO_LARGE as soon as it is known that the frame exceeds maxFrameBytes
   * (before it is complete), FRAME_MALFORMED for bytes that can never form a frame.
   * A length is in [1, end - start] and includes any header and terminator (consume that
   * many bytes). Every codec here answers FRAME_TOO_LARGE before end - start exceeds
   * maxFrameBytes + 4, so a caller that keeps incomplete frames holds at most that much.
   * Allocates nothing.
   */
  measure(buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number;
  /**
   * The frame occupying buf[start, start + length), as measured. It may be (or hold) views
   * into buf: valid only until the handler that receives it returns; copy to keep.
   */
  decode(buf: Uint8Array, start: number, length: number): In;
  /** The bytes on the wire for one outgoing message. */
  encode(message: Out): Uint8Array;
}
