import { MyriadError, MyriadRangeError } from "../errors.ts";

/** `codecByName` was given a name it does not know. code: ERR_UNKNOWN_CODEC. */
export class UnknownCodecError extends MyriadError {
  constructor(name: string, choices: readonly string[]) {
    super("ERR_UNKNOWN_CODEC", `unknown codec ${JSON.stringify(name)}: choose one of ${choices.join(", ")}`);
  }
}

/**
 * A message cannot be encoded by this codec (a u16 payload over 65535 bytes, a line that
 * contains "\n", a fractional RESP integer, ...). Thrown by `encode` and the `resp` encoders;
 * code: ERR_CODEC_ENCODE. A RangeError (the value is out of what the wire can carry) and
 * `instanceof MyriadError`. A message of the wrong type is a MyriadTypeError with the same code.
 */
export class CodecEncodeError extends MyriadRangeError {
  constructor(message: string) {
    super("ERR_CODEC_ENCODE", message);
  }
}

/**
 * A RESP error reply ("-ERR unknown command", "-WRONGTYPE ...") as a value: reply codecs
 * return it, they never throw it. `message` is the text after "-"; `prefix` is its first
 * word ("ERR", "WRONGTYPE", "MOVED"), the part programs switch on. code: ERR_RESP_REPLY.
 */
export class RespError extends MyriadError {
  /** The error's first word, e.g. "ERR" or "WRONGTYPE"; "" when the message is empty. */
  readonly prefix: string;
  constructor(message: string) {
    super("ERR_RESP_REPLY", message);
    const space = message.indexOf(" ");
    this.prefix = space < 0 ? message : message.slice(0, space);
  }
}
