/**
 * Options of the pooled clients (createTcpClient, createRespClient): the typed interfaces,
 * the TypeBox schemas, the one check every client runs once, and the defaults.
 */
import { type TObject, type TSchema, Type } from "@sinclair/typebox";
import type { Codec } from "../codec/index.ts";
import { checkOptions, PoolOptionsSchema, type PoolOptions } from "./options.ts";
import type { ConnectionSettings, PipelinedConnection } from "./pipelined-connection.ts";
import { PoolOptionError } from "./errors.ts";

/** The Pool options a client accepts (create/destroy/isBroken/validate are the client's). */
export type ClientPoolOptions = Partial<Omit<PoolOptions<unknown>, "create" | "destroy" | "validate" | "isBroken">>;

/** Options of createTcpClient. Times in milliseconds. */
export interface TcpClientOptions<In, Out> {
  /** Host to connect to. Default "127.0.0.1". */
  host?: string;
  /** Port to connect to. Required unless `unix` is given. */
  port?: number;
  /** A unix socket path to connect to instead of host:port (e.g. a local proxy's private socket). */
  unix?: string;
  /**
   * Frames replies (measure/decode) and encodes requests. send() encodes at once, before it
   * waits for a connection: encode must return bytes the client may keep until they are
   * written (every codec of src/codec does).
   */
  codec: Codec<In, Out>;
  /** Pool of connections; `max` default 8. pool.acquireTimeoutMs, when given, caps the wait for a connection. */
  pool?: ClientPoolOptions;
  /** Whole-request deadline: waiting for a connection + sending + the reply. Default 10_000; Infinity allowed. */
  requestTimeoutMs?: number;
  /** Connection attempt limit (the pool's createTimeoutMs unless pool.createTimeoutMs is given). Default 5_000. */
  connectTimeoutMs?: number;
  /** Pipeline depth: requests in flight per connection before it stops taking more. Default 256. */
  maxInFlightPerConnection?: number;
  /** Unsent bytes per connection before it stops taking more requests (until `drain`). Default 4 MiB. */
  maxWriteBufferBytes?: number;
  /** Largest reply accepted; a bigger one is a protocol error that closes the connection. Default 64 MiB. */
  maxFrameBytes?: number;
  /** Turns a decoded reply into an error to reject with (e.g. a RESP "-ERR" reply), or undefined. */
  isErrorReply?: (reply: In) => Error | undefined;
  /**
   * Sent to check a connection that sat idle in the pool for pool.validateAfterIdleMs
   * (default 500) before it is used again; an error or no reply within connectTimeoutMs
   * drops it. This catches a peer that closed the connection while the close was not yet
   * seen. Omitted: no validation (createRespClient sends ["PING"]).
   */
  pingMessage?: Out;
  /** Runs on each new connection before it joins the pool (AUTH, SELECT...); a rejection fails the connect. */
  onConnect?: (conn: PipelinedConnection<In, Out>) => void | Promise<void>;
}

/** Per-call options of send(). */
export interface SendOptions {
  /** This request's deadline in ms, >= 0 or Infinity (overrides requestTimeoutMs). */
  timeoutMs?: number;
}

/** TcpClientOptions after defaults: what the client is built from. */
export interface ResolvedClientOptions<In, Out> extends ConnectionSettings<In, Out> {
  readonly host: string;
  readonly port: number;
  /** The unix socket path, or "" for TCP to host:port. */
  readonly unix: string;
  readonly connectTimeoutMs: number;
  readonly pool: ClientPoolOptions;
  readonly pingMessage: Out | undefined;
  readonly onConnect: ((conn: PipelinedConnection<In, Out>) => void | Promise<void>) | undefined;
}

const positiveMs = (allowed: string) =>
  Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.Literal(Infinity)], { description: allowed });

const ClientPoolSchema = Type.Partial(Type.Omit(PoolOptionsSchema, ["create", "destroy", "validate", "isBroken"]));

/** The TypeBox schema of TcpClientOptions. */
export const TcpClientOptionsSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1, description: "a host name or IP address" })),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: "an integer port in 1..65535" })),
    unix: Type.Optional(Type.String({ minLength: 1, description: "a unix socket path" })),
    codec: Type.Object(
      {
        measure: Type.Function([], Type.Unknown()),
        decode: Type.Function([], Type.Unknown()),
        encode: Type.Function([], Type.Unknown()),
      },
      { description: "a Codec from src/codec (measure, decode, encode)" },
    ),
    pool: Type.Optional(Type.Object({}, { description: "Pool options (see PoolOptions) without create/destroy/validate/isBroken" })),
    requestTimeoutMs: Type.Optional(positiveMs("milliseconds > 0, or Infinity")),
    connectTimeoutMs: Type.Optional(positiveMs("milliseconds > 0, or Infinity")),
    maxInFlightPerConnection: Type.Optional(Type.Integer({ minimum: 1, description: "an integer >= 1" })),
    maxWriteBufferBytes: Type.Optional(Type.Integer({ minimum: 1, description: "an integer number of bytes >= 1" })),
    maxFrameBytes: Type.Optional(Type.Integer({ minimum: 1, description: "an integer number of bytes >= 1" })),
    isErrorReply: Type.Optional(Type.Function([], Type.Unknown(), { description: "a function (reply) => Error | undefined" })),
    onConnect: Type.Optional(Type.Function([], Type.Unknown(), { description: "a function (conn) => void | Promise<void>" })),
    pingMessage: Type.Optional(Type.Unknown({ description: "a message the codec can encode" })),
  },
  { additionalProperties: false },
);

/**
 * The one check of a client's options: `opts` against `schema` (TcpClientOptionsSchema or a
 * client's own, e.g. the RESP client's), then the nested pool options. Throws
 * PoolOptionError naming the first bad or unknown option; `what` names the client in it.
 */
export function checkClientOptions(schema: TObject, opts: unknown, what: string): void {
  checkOptions(schema, opts, what);
  const pool = (opts as { pool?: unknown }).pool;
  if (pool !== undefined) checkOptions(ClientPoolSchema, pool, `${what} pool`);
}

/** A client's schema: TcpClientOptionsSchema without `omit`, plus `extra` properties. */
export function clientOptionsSchema(omit: readonly (keyof TcpClientOptions<unknown, unknown>)[], extra: Record<string, TSchema>): TObject {
  const props: Record<string, TSchema> = { ...TcpClientOptionsSchema.properties };
  for (const key of omit) delete props[key];
  return Type.Object({ ...props, ...extra }, { additionalProperties: false });
}

/** Fills in the defaults of options that checkClientOptions accepted. */
export function resolveClientOptions<In, Out>(options: TcpClientOptions<In, Out>): ResolvedClientOptions<In, Out> {
  const host = options.host ?? "127.0.0.1";
  const unix = options.unix ?? "";
  if (unix === "" && options.port === undefined) throw new PoolOptionError("port", "client option port is missing: give port (an integer in 1..65535), or unix (a socket path)");
  return {
    host,
    port: options.port ?? 0,
    unix,
    address: unix !== "" ? `unix:${unix}` : host.includes(":") ? `[${host}]:${options.port}` : `${host}:${options.port}`,
    codec: options.codec,
    pool: options.pool ?? {},
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
    maxInFlight: options.maxInFlightPerConnection ?? 256,
    maxWriteBufferBytes: options.maxWriteBufferBytes ?? 4 << 20,
    maxFrameBytes: options.maxFrameBytes ?? 64 << 20,
    isErrorReply: options.isErrorReply,
    pingMessage: options.pingMessage,
    onConnect: options.onConnect,
  };
}
