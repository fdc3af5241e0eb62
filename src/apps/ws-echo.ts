/**
 * The WebSocket echo app: every message goes back to its sender, text as text, binary as
 * binary (compressed when the client negotiated permessage-deflate).
 *
 *   const app = createWsEchoApp();
 *   await createServer({ port: 8080, protocol: app.protocol, handler: app.handler });
 *
 * `bun run serve --app ws-echo`. It keeps nothing per connection.
 */
import type { WebSocketHandler } from "../reactor/index.ts";

/** A WebSocket app: createServer({ protocol: "websocket", handler, ...options }). */
export interface WebSocketApp {
  readonly protocol: "websocket";
  readonly handler: WebSocketHandler;
}

/** Creates the WebSocket echo app. */
export function createWsEchoApp(): WebSocketApp {
  return {
    protocol: "websocket",
    handler: {
      message(conn, data) {
        conn.send(data);
      },
    },
  };
}
