import { MyriadError } from "../errors.ts";

/**
 * An option of createServer is missing, of the wrong type or out of range. `option` names
 * it; code ERR_SERVER_OPTION.
 */
export class ServerOptionError extends MyriadError {
  readonly option: string;
  constructor(option: string, message: string) {
    super("ERR_SERVER_OPTION", `createServer: option ${option}: ${message}`);
    this.option = option;
  }
}

/**
 * The server could not listen. code: ERR_ADDRESS_IN_USE (another process holds the port),
 * ERR_ACCESS_DENIED (a privileged port or a unix path not writable) or ERR_LISTEN (anything
 * else); `cause` is Bun's error.
 */
export class ListenError extends MyriadError {
  /** "host:port" or the unix socket path. */
  readonly address: string;
  constructor(code: "ERR_ADDRESS_IN_USE" | "ERR_ACCESS_DENIED" | "ERR_LISTEN", address: string, message: string, cause: unknown) {
    super(code, message, { cause });
    this.address = address;
  }
}

/**
 * A connection sent a frame over maxFrameBytes (code ERR_FRAME_TOO_LARGE) or bytes its
 * codec cannot parse (code ERR_FRAME_MALFORMED). Handed to handler.error; the connection is
 * closed with reason "protocol".
 */
export class ProtocolError extends MyriadError {
  constructor(code: "ERR_FRAME_TOO_LARGE" | "ERR_FRAME_MALFORMED", message: string) {
    super(code, message);
  }
}
