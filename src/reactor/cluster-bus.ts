/**
 * A server's broadcasts and topic publishes over a node bus, so that they reach the clients of
 * every node of a fleet (createServer({ bus })).
 *
 * - server.broadcast(bytes) goes out on the bus channel "broadcast"; every other node's server
 *   broadcasts it to its own connections.
 * - A WebSocket publish (server.publish, conn.publish) goes out on "topic:<name>". A node
 *   subscribes to a topic's channel only while one of its connections subscribes to the topic
 *   (the topic registry says when a topic gains its first member and loses its last).
 * - The bus drops a node's own messages when Redis echoes them back, so each client gets a
 *   message once: from its own node at once, or from the bus.
 * - A bus publish that fails (the bus down) is counted in the bus's own stats; the local
 *   delivery has happened by then, as a broadcast or publish returns synchronously.
 *
 * The reactor imports nothing of src/bus: ClusterBus is the shape it needs (NodeBus has it).
 */
import type { ReactorState } from "./state.ts";
import type { WebSocketStage } from "./websocket.ts";
import type { ClusterBus } from "./types.ts";
import { broadcast } from "./fanout.ts";

const BROADCAST = "broadcast";
const TOPIC = "topic:";
/** Envelope of a topic publish: one byte of flags, then the payload. */
const F_TEXT = 1;
const F_COMPRESS = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One server's side of the bus: what it sends and what it listens to. */
export class ServerBus {
  private readonly offs = new Map<string, () => void>();
  private readonly offBroadcast: () => void;

  constructor(
    private readonly s: ReactorState,
    private readonly bus: ClusterBus,
    private readonly ws: WebSocketStage | null,
  ) {
    this.offBroadcast = bus.subscribe(BROADCAST, (payload) => {
      broadcast(s, payload);
    });
    if (ws !== null) ws.onTopicActive((topic, active) => (active ? this.listen(topic) : this.unlisten(topic)));
  }

  /** server.broadcast(bytes) was just delivered here: send it to the other nodes. */
  broadcast(bytes: Uint8Array | string): void {
    this.bus.publish(BROADCAST, bytes).catch(() => {});
  }

  /** A WebSocket publish was just delivered here: send it to the other nodes. */
  publish(topic: string, data: string | Uint8Array, compress: boolean): void {
    const body = typeof data === "string" ? encoder.encode(data) : data;
    const envelope = new Uint8Array(1 + body.length);
    envelope[0] = (typeof data === "string" ? F_TEXT : 0) | (compress ? F_COMPRESS : 0);
    envelope.set(body, 1);
    this.bus.publish(TOPIC + topic, envelope).catch(() => {});
  }

  /** Stops listening (the server stopped). */
  close(): void {
    this.offBroadcast();
    for (const off of this.offs.values()) off();
    this.offs.clear();
  }

  private listen(topic: string): void {
    if (this.offs.has(topic)) return;
    const ws = this.ws!;
    this.offs.set(
      topic,
      this.bus.subscribe(TOPIC + topic, (payload) => {
        if (payload.length === 0) return;
        const flags = payload[0]!;
        const body = payload.subarray(1);
        ws.publishLocal(topic, (flags & F_TEXT) !== 0 ? decoder.decode(body) : body, (flags & F_COMPRESS) !== 0);
      }),
    );
  }

  private unlisten(topic: string): void {
    this.offs.get(topic)?.();
    this.offs.delete(topic);
  }
}
