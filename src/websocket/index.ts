/**
 * WebSocket connection state for the reactor: the framer (frames to messages, per-slot state
 * in typed arrays) and the topic registry behind subscribe / publish. The server side that
 * uses them (the upgrade, conn.send, publish) is in src/reactor.
 */
export { WebSocketFramer, CONSUME_FAILED, STREAM_MIN_BYTES, EXT_DEFLATE, EXT_CLIENT_TAKEOVER, EXT_SERVER_TAKEOVER, EXT_WINDOW_SHIFT, type FrameSink, type FramerOptions } from "./framer.ts";
export { Topics, type Topic } from "./topics.ts";
