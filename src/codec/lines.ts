import { MyriadTypeError } from "../errors.ts";
import { CodecEncodeError } from "./errors.ts";
import { CR, LF, bytesAt, indexOfByte, utf8Length, writeUtf8 } from "./bytes.ts";
import { FRAME_INCOMPLETE, FRAME_TOO_LARGE, type Codec } from "./types.ts";

/**
 * Lines ended by "\n" or "\r\n". measure counts the terminator (it is consumed), decode
 * returns the line without it (a view into buf, or a copy when small), maxFrameBytes bounds the line without it (so at most
 * maxFrameBytes + 2 bytes are ever buffered). A line longer than maxFrameBytes is reported
 * FRAME_TOO_LARGE as soon as more than maxFrameBytes (+1 for a pending "\r") bytes arrived
 * without a "\n". Every byte other than "\n" is content: there is no FRAME_MALFORMED.
 *
 * encode(string | Uint8Array) appends "\n". A message that holds "\n" would arrive as two
 * lines, so encode throws CodecEncodeError for it; a message ending in "\r" loses that "\r"
 * at the receiver.
 */
export const linesCodec: Codec<Uint8Array, Uint8Array | string> = {
  name: "lines",
  measure(buf: Uint8Array, start: number, end: number, maxFrameBytes: number): number {
    // A line of maxFrameBytes content may need "\r\n" after it: look no further.
    const limit = Math.min(end, start + maxFrameBytes + 2);
    const nl = indexOfByte(buf, LF, start, limit);
    if (nl >= 0) {
      const content = nl > start && buf[nl - 1] === CR ? nl - 1 - start : nl - start;
      return content > maxFrameBytes ? FRAME_TOO_LARGE : nl + 1 - start;
    }
    // No "\n" yet: the content is at least every byte so far but a trailing "\r".
    const have = end - start;
    const least = have > 0 && buf[end - 1] === CR ? have - 1 : have;
    return least > maxFrameBytes ? FRAME_TOO_LARGE : FRAME_INCOMPLETE;
  },
  decode(buf: Uint8Array, start: number, length: number): Uint8Array {
    let stop = start + length - 1; // the "\n"
    if (stop > start && buf[stop - 1] === CR) stop--;
    return bytesAt(buf, start, stop);
  },
  encode(message: Uint8Array | string): Uint8Array {
    if (typeof message === "string") {
      if (message.includes("\n")) throw newlineError();
      const n = utf8Length(message);
      const out = new Uint8Array(n + 1);
      writeUtf8(message, out, 0);
      out[n] = LF;
      return out;
    }
    if (!(message instanceof Uint8Array)) {
      throw new MyriadTypeError("ERR_CODEC_ENCODE", `lines codec: encode takes a string or a Uint8Array, got ${typeof message}`);
    }
    if (message.indexOf(LF) >= 0) throw newlineError();
    const out = new Uint8Array(message.length + 1);
    out.set(message, 0);
    out[message.length] = LF;
    return out;
  },
};

function newlineError(): CodecEncodeError {
  return new CodecEncodeError(
    'lines codec: a message may not contain "\\n" (it would arrive as two lines); split it into one message per line',
  );
}
