/**
 * src/bus public surface: the node bus over Redis pub/sub that carries broadcasts and topic
 * publishes between the nodes of a fleet.
 */
export {
  createRedisBus,
  parseBusUrl,
  BusError,
  type NodeBus,
  type BusListener,
  type BusStats,
  type RedisBusOptions,
} from "./redis-bus.ts";
export { mergeBusStats } from "./stats.ts";
