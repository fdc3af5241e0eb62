/**
 * The options only WebSocket servers take, checked and defaulted (createServer with
 * protocol "websocket"; the TCP options are options.ts's).
 */
import { DEFAULT_MAX_HANDSHAKE_BYTES, resolveDeflateOptions, type ResolvedDeflateOptions } from "../codec/index.ts";
import { ServerOptionError } from "./errors.ts";
import type { WebSocketHandler, WebSocketServerOptions } from "./websocket-types.ts";

/** WebSocket settings with their defaults, checked. */
export interface ResolvedWebSocketOptions {
  handler: WebSocketHandler;
  idleTimeoutMs: number;
  pingIntervalMs: number;
  closeTimeoutMs: number;
  maxHandshakeBytes: number;
  subprotocols: string[];
  deflate: ResolvedDeflateOptions | null;
}

/** The option names only WebSocket servers take. */
export const WEBSOCKET_OPTION_NAMES = ["pingIntervalMs", "closeTimeoutMs", "maxHandshakeBytes", "subprotocols", "perMessageDeflate"] as const;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Checks the WebSocket-only options (and the handler); throws ServerOptionError naming the first bad one. */
export function resolveWebSocketOptions(opts: WebSocketServerOptions): ResolvedWebSocketOptions {
  const o = opts as unknown as Record<string, unknown>;
  const ms = (name: string, dflt: number) => {
    const v = o[name];
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) {
      throw new ServerOptionError(name, `expected milliseconds (an integer 0..${2 ** 31 - 1}), got ${String(v)}`);
    }
    return v;
  };
  const handler = opts.handler;
  for (const hook of ["upgrade", "open", "close", "drain", "error"] as const) {
    if (handler[hook] !== undefined && typeof handler[hook] !== "function") {
      throw new ServerOptionError(`handler.${hook}`, "expected a function");
    }
  }
  const maxHandshakeBytes = o.maxHandshakeBytes ?? DEFAULT_MAX_HANDSHAKE_BYTES;
  if (typeof maxHandshakeBytes !== "number" || !Number.isInteger(maxHandshakeBytes) || maxHandshakeBytes < 256 || maxHandshakeBytes > 1 << 20) {
    throw new ServerOptionError("maxHandshakeBytes", `expected bytes (an integer 256..${1 << 20}), got ${String(maxHandshakeBytes)}`);
  }
  const subprotocols = o.subprotocols ?? [];
  if (!Array.isArray(subprotocols) || !subprotocols.every((p) => typeof p === "string" && TOKEN.test(p))) {
    throw new ServerOptionError("subprotocols", "expected an array of subprotocol names (HTTP tokens)");
  }
  const pmd = o.perMessageDeflate ?? false;
  if (typeof pmd !== "boolean" && (pmd === null || typeof pmd !== "object")) {
    throw new ServerOptionError("perMessageDeflate", "expected true, false or an object of settings");
  }
  return {
    handler,
    idleTimeoutMs: ms("idleTimeoutMs", 0),
    pingIntervalMs: ms("pingIntervalMs", 0),
    closeTimeoutMs: ms("closeTimeoutMs", 5000) || 5000,
    maxHandshakeBytes,
    subprotocols: [...(subprotocols as string[])],
    deflate: resolveDeflateOptions(pmd as boolean | object),
  };
}
