/**
 * createRespClient: the pooled pipelining client (tcp-client.ts) with the RESP2 reply codec,
 * for redis-server and myriad's own KV server.
 */
import { Type } from "@sinclair/typebox";
import {
  type RespCommand,
  RespError,
  type RespValue,
  respReplyBufferCodec,
  respReplyCodec,
} from "../codec/index.ts";
import { checkClientOptions, clientOptionsSchema, type TcpClientOptions } from "./client-options.ts";
import { PoolOptionError } from "./errors.ts";
import type { PipelinedConnection } from "./pipelined-connection.ts";
import { clientFromCheckedOptions, type TcpClient } from "./tcp-client.ts";

/** Options of createRespClient: those of createTcpClient except codec/isErrorReply/onConnect, plus RESP ones. */
export interface RespClientOptions extends Omit<TcpClientOptions<RespValue, RespCommand>, "codec" | "isErrorReply" | "onConnect"> {
  /** Sent as AUTH [username] password on every new connection. */
  password?: string;
  /** ACL user for AUTH (redis >= 6). */
  username?: string;
  /** SELECT db on every new connection. */
  db?: number;
  /** Bulk strings as Uint8Array (binary-safe) instead of UTF-8 strings. Default false. */
  binary?: boolean;
}

/** A pooled RESP client: send(["SET", "k", "v"]) resolves "OK"; an error reply rejects with RespError. */
export type RespClient = TcpClient<RespValue, RespCommand>;

/** The TypeBox schema of RespClientOptions. */
const RespClientOptionsSchema = clientOptionsSchema(["codec", "isErrorReply", "onConnect"], {
  password: Type.Optional(Type.String({ description: "a string" })),
  username: Type.Optional(Type.String({ minLength: 1, description: "a non-empty string" })),
  db: Type.Optional(Type.Integer({ minimum: 0, description: "an integer >= 0" })),
  binary: Type.Optional(Type.Boolean({ description: "true or false" })),
});

function isErrorReply(reply: RespValue): Error | undefined {
  return reply instanceof RespError ? reply : undefined;
}

/**
 * Creates a RESP client over a pool of pipelined connections to host:port (default
 * 127.0.0.1). send(command) resolves the reply: string, number, null, array (or Uint8Array
 * bulk strings with `binary`), and rejects with RespError for an error reply. Throws
 * PoolOptionError for an unknown or bad option. close() drains it.
 */
export function createRespClient(options: RespClientOptions): RespClient {
  checkClientOptions(RespClientOptionsSchema, options, "RESP client");
  const { password, username, db, binary, ...rest } = options;
  if (username !== undefined && password === undefined) {
    throw new PoolOptionError(
      "username",
      `RESP client option username=${JSON.stringify(username)} is invalid: expected together with password (AUTH needs both)`,
    );
  }
  const tcpOptions: TcpClientOptions<RespValue, RespCommand> = {
    ...rest,
    codec: binary ? respReplyBufferCodec : respReplyCodec,
    isErrorReply,
    pingMessage: rest.pingMessage ?? ["PING"],
  };
  if (password !== undefined || (db !== undefined && db !== 0)) {
    tcpOptions.onConnect = async (conn: PipelinedConnection<RespValue, RespCommand>) => {
      const handshake: Promise<RespValue>[] = [];
      if (password !== undefined) handshake.push(conn.request(username === undefined ? ["AUTH", password] : ["AUTH", username, password]));
      if (db !== undefined && db !== 0) handshake.push(conn.request(["SELECT", db]));
      await Promise.all(handshake);
    };
  }
  return clientFromCheckedOptions(tcpOptions);
}
