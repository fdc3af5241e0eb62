/**
 * The base of every error myriad throws at its edges. `code` is stable and meant for
 * programs (switch on it); `message` is for people and says what to do.
 */
export class MyriadError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
