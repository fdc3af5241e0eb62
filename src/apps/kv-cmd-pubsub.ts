/**
 * The KV app's pub/sub commands: SUBSCRIBE, UNSUBSCRIBE and PUBLISH over exact channel names
 * (see pubsub.ts), with redis's replies. Which commands a subscribed connection may still
 * send is the dispatcher's rule (kv.ts).
 */
import type { CommandTable } from "./commands.ts";
import type { CurrentClient } from "./kv-clients.ts";
import { keyOf, type KvContext, type Run } from "./kv-context.ts";
import { NIL, arrayHeader, bulk, bulkLatin1, error as errorReply, integer } from "./replies.ts";

const SUBSCRIBE = bulkLatin1("subscribe");
const UNSUBSCRIBE = bulkLatin1("unsubscribe");
/**
 * PUBLISH while the node bus is down: all or nothing, so a message never reaches only this
 * node's part of the fleet's subscribers.
 */
const BUS_DOWN_REPLY = errorReply("BUSDOWN the node bus is down: the message was not delivered to any node; retry when it is back");

/** Adds the pub/sub commands to table. */
export function addPubSubCommands(
  table: CommandTable<Run>,
  ctx: Pick<KvContext, "pubsub" | "send" | "bus"> & { readonly current: CurrentClient },
): void {
  const { pubsub, send, bus, current } = ctx;

  /** [kind, channel, count]: a channel as bytes, as a latin1 string, or null. */
  function subscriptionReply(kind: Uint8Array, channel: Uint8Array | string | null, count: number): void {
    send(arrayHeader(3));
    send(kind);
    if (channel === null) send(NIL);
    else if (typeof channel === "string") send(bulkLatin1(channel));
    else send(bulk(channel));
    send(integer(count));
  }

  function cmdSubscribe(args: Uint8Array[]): void {
    const { id, clients, slot } = current;
    const conn = clients.conns[slot]!;
    for (let i = 1; i < args.length; i++) subscriptionReply(SUBSCRIBE, args[i]!, pubsub.subscribe(id, conn, keyOf(args[i]!)));
  }

  function cmdUnsubscribe(args: Uint8Array[]): void {
    const id = current.id;
    if (args.length === 1) {
      const mine = pubsub.channelsOf(id);
      if (mine.length === 0) subscriptionReply(UNSUBSCRIBE, null, 0);
      for (const ch of mine) subscriptionReply(UNSUBSCRIBE, ch, pubsub.unsubscribe(id, ch));
      return;
    }
    for (let i = 1; i < args.length; i++) subscriptionReply(UNSUBSCRIBE, args[i]!, pubsub.unsubscribe(id, keyOf(args[i]!)));
  }

  /**
   * Delivers to this node's subscribers and, with a bus, hands the message to the bus for the
   * other nodes. The reply is this node's receivers (counting the fleet's would cost a round
   * trip to every node per publish); a publish the bus then fails to send is counted in its
   * stats (publishErrors), as the reply has already gone.
   */
  function cmdPublish(args: Uint8Array[]): void {
    const key = keyOf(args[1]!);
    if (bus === null) {
      send(integer(pubsub.publish(args[1]!, args[2]!, key)));
      return;
    }
    if (!bus.up) {
      send(BUS_DOWN_REPLY);
      return;
    }
    send(integer(pubsub.publish(args[1]!, args[2]!, key)));
    // The bus owns the bytes from here: args[2] may be a view into the read buffer.
    bus.publish(key, args[2]!.slice()).catch(() => {});
  }

  table.add("subscribe", -2, cmdSubscribe).add("unsubscribe", -1, cmdUnsubscribe).add("publish", 3, cmdPublish);
}
