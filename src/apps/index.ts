/**
 * Example servers built on createServer: the RESP key-value store behind `bun run serve`
 * and an echo server for every codec; the contract of module apps (`--app ./my-app.ts`).
 */
export { createKvApp, keyOf, REDIS_COMPAT_VERSION, type KvApp, type KvAppOptions } from "./kv.ts";
export { KvStore, SetCondition, type KvStoreOptions } from "./kv-store.ts";
export { ExpiryIndex, type ExpiryIndexOptions } from "./kv-expiry.ts";
export { createEchoApp, type EchoApp } from "./echo.ts";
export { PubSub } from "./pubsub.ts";
export { loadModuleApp, type AppContext, type AppFactory, type ModuleApp, type ModuleAppSpec } from "./module.ts";
