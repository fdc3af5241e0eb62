/** The one error the command-line layer throws at its users: a bad flag, environment value or config entry. */
import { MyriadError, type MyriadErrorCode } from "../errors.ts";

/** The codes a FlagError carries. */
export type FlagErrorCode = Extract<MyriadErrorCode, "ERR_FLAG_UNKNOWN" | "ERR_FLAG_VALUE" | "ERR_FLAG_MISSING" | "ERR_FLAG_ARGUMENT" | "ERR_CONFIG_FILE">;

/**
 * A bad flag, environment value or config file entry. `message` is the one line to print
 * (without the command prefix); `code` is ERR_FLAG_UNKNOWN, ERR_FLAG_VALUE, ERR_FLAG_MISSING,
 * ERR_FLAG_ARGUMENT or ERR_CONFIG_FILE.
 */
export class FlagError extends MyriadError {
  declare readonly code: FlagErrorCode;
  readonly command: string;
  constructor(command: string, code: FlagErrorCode, message: string) {
    super(code, message);
    this.command = command;
  }
  /** The line a CLI prints: `serve: --port must be ...`. */
  format(): string {
    return `${this.command}: ${this.message}`;
  }
}
