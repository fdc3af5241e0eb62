/**
 * Example servers built on createServer: the RESP key-value store behind `bun run serve`
 * and an echo server for every codec.
 */
export { createKvApp, keyOf, REDIS_COMPAT_VERSION, type KvApp, type KvAppOptions } from "./kv.ts";
export { KvStore, SetCondition, type KvStoreOptions } from "./kv-store.ts";
export { ExpiryIndex, type ExpiryIndexOptions } from "./kv-expiry.ts";
export { createEchoApp, type EchoApp } from "./echo.ts";
export { PubSub } from "./pubsub.ts";
