import type { CloseReason, CountedCloseReason } from "./types.ts";

/** Close reasons by code; code 0 means "none recorded" and reads as "peer". */
export const REASONS: readonly CloseReason[] = [
  "peer",
  "peer",
  "idle",
  "handshake",
  "protocol",
  "writeStall",
  "shutdown",
  "server",
  "error",
  "limit",
  "proxy",
];
/** No reason recorded yet (the slot's closeReason at rest); reads as "peer". */
export const R_NONE = 0;
/** Code of "peer". */
export const R_PEER = 1;
/** Code of "idle". */
export const R_IDLE = 2;
/** Code of "handshake". */
export const R_HANDSHAKE = 3;
/** Code of "protocol". */
export const R_PROTOCOL = 4;
/** Code of "writeStall". */
export const R_WRITE_STALL = 5;
/** Code of "shutdown". */
export const R_SHUTDOWN = 6;
/** Code of "server" (and of any reason string the application makes up: reasonCode). */
export const R_SERVER = 7;
/** Code of "error". */
export const R_ERROR = 8;
/** Code of "limit". */
export const R_LIMIT = 9;
/** Code of "proxy" (a missing, malformed or late PROXY protocol header). */
export const R_PROXY = 10;

/** The code of a close reason given by the application; unknown strings count as "server". */
export function reasonCode(reason: CloseReason | undefined): number {
  switch (reason) {
    case "peer":
      return R_PEER;
    case "idle":
      return R_IDLE;
    case "handshake":
      return R_HANDSHAKE;
    case "protocol":
      return R_PROTOCOL;
    case "writeStall":
      return R_WRITE_STALL;
    case "shutdown":
      return R_SHUTDOWN;
    case "error":
      return R_ERROR;
    case "limit":
      return R_LIMIT;
    case "proxy":
      return R_PROXY;
    default:
      return R_SERVER;
  }
}

/** closed-by-reason counters as ServerStats wants them (allocates the record). */
export function closedRecord(counts: Float64Array): Record<CountedCloseReason, number> {
  return {
    peer: counts[R_PEER]!,
    idle: counts[R_IDLE]!,
    handshake: counts[R_HANDSHAKE]!,
    protocol: counts[R_PROTOCOL]!,
    writeStall: counts[R_WRITE_STALL]!,
    shutdown: counts[R_SHUTDOWN]!,
    server: counts[R_SERVER]!,
    error: counts[R_ERROR]!,
    proxy: counts[R_PROXY]!,
  };
}

/** Bucket upper bounds of the request-latency histogram, in ms. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000,
];
