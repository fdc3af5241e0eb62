/**
 * The flags `bun run load` and `bun run c1m` share: one declaration, so both accept the same
 * values; each command gives its own defaults (c1m ramps a million connections, load a
 * thousand) and may say more in its help.
 */
import { DEFAULT_CONNECTIONS_PER_SOURCE } from "../system/index.ts";

/**
 * Most connections per bound source address. bind() without a port reserves an ephemeral
 * port for the address whatever the destination, so one address holds at most the
 * ephemeral range: 28,232 ports by default, 64,512 at the widest (1024-65535, doctor's fix).
 * 60,000 lets a widened range be used (c1m's 20,000 forbade it); past the machine's range
 * connects fail with EADDRNOTAVAIL, which both commands report by kind.
 */
const MAX_CONNECTIONS_PER_SOURCE = 60_000;

/** Per-command defaults and help of the shared flags. */
interface LoadFlagDefaults {
  connectWindow: number;
  connectWindowHelp: string;
  connectTimeoutMs: number;
  retries: number;
  confirmHelp: string;
}

/** The shared flag specs, with `d`'s defaults; place each where the command lists it. */
export function loadClientFlags(d: LoadFlagDefaults) {
  return {
    perSource: {
      type: "int",
      min: 1,
      max: MAX_CONNECTIONS_PER_SOURCE,
      default: DEFAULT_CONNECTIONS_PER_SOURCE,
      help: "connections per bound source address (127.N.x.y) when the source addresses are picked automatically",
    },
    connectWindow: { type: "int", min: 1, max: 100_000, default: d.connectWindow, help: d.connectWindowHelp },
    connectRate: {
      type: "int",
      min: 0,
      max: 10_000_000,
      default: 0,
      help: "new connections per second over all load processes (0 = unbounded: the window paces them)",
    },
    connectTimeout: {
      type: "duration-ms",
      min: 10,
      max: 600_000,
      default: d.connectTimeoutMs,
      help: "a connect not done after this long counts as ETIMEDOUT (and is retried while retries are left)",
    },
    retries: { type: "int", min: 0, max: 100, default: d.retries, help: "extra attempts per failed connection" },
    confirm: { type: "bool", help: d.confirmHelp },
  } as const;
}

/** The words of a bad "auto or N" value, as every flag of that kind says it. */
export function countOrAutoError(flag: string, max: number, got: string): string {
  return `--${flag} must be auto or an integer from 1 to ${max}, got "${got}"`;
}
