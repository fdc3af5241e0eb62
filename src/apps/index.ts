/**
 * `myriad/apps`: example servers built on createServer — the RESP key-value store behind
 * `bun run serve`, an echo server for every codec, WebSocket echo and chat — and the contract of module apps
 * (`--app ./my-app.ts`). Not part of the library surface (`myriad`).
 */
export { createKvApp, type KvApp, type KvAppOptions } from "./kv.ts";
export { KvStore, SetCondition, type KvStoreOptions } from "./kv-store.ts";
export { ExpiryIndex, type ExpiryIndexOptions } from "./kv-expiry.ts";
export { createEchoApp, type EchoApp } from "./echo.ts";
export { PubSub } from "./pubsub.ts";
export { createWsEchoApp, type WebSocketApp } from "./ws-echo.ts";
export { createWsChatApp } from "./ws-chat.ts";
export { loadModuleApp, type AppContext, type AppFactory, type ModuleApp, type ModuleAppSpec } from "./module.ts";
