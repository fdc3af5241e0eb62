/**
 * The WebSocket chat app: every connection subscribes to one topic at open, and every
 * message anyone sends is published to all of them, its sender included (the frame is built
 * once for all subscribers: server.publish's fan-out).
 *
 *   const app = createWsChatApp();
 *   await createServer({ port: 8080, protocol: app.protocol, handler: app.handler });
 *
 * `bun run serve --app ws-chat`. With --workers, each worker has its own subscribers: a
 * message reaches the connections of the worker that received it, unless `--bus
 * redis://...` makes every worker (and every node of a fleet) a node on one bus.
 */
import { MyriadRangeError } from "../errors.ts";
import type { WebSocketApp } from "./ws-echo.ts";

/** Creates the chat app; `topic` names the one room (default "chat"). */
export function createWsChatApp(opts: { topic?: string } = {}): WebSocketApp {
  const topic = opts?.topic ?? "chat";
  if (typeof topic !== "string" || topic === "") throw new MyriadRangeError("ERR_APP_OPTION", `createWsChatApp: topic must be a non-empty string, got ${String(topic)}`);
  return {
    protocol: "websocket",
    handler: {
      open(conn) {
        conn.subscribe(topic);
      },
      message(conn, data) {
        // To the others through the topic, and back to the sender.
        conn.publish(topic, data);
        conn.send(data);
      },
    },
  };
}
