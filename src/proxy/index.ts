/**
 * The RESP proxy (twemproxy's job on myriad's reactor and pool): twemproxy configuration
 * files, nutcracker's key hashes and distributions, and the proxy itself.
 */
export {
  parseProxyConfig,
  readProxyConfig,
  proxyConfigFromObject,
  quickProxyConfig,
  ProxyConfigError,
  POOL_KEYS,
  DEFAULT_TIMEOUT_MS,
  type ProxyConfig,
  type ProxyPoolConfig,
  type ProxyServerConfig,
  type ProxyListen,
  type TwemproxyConfigObject,
} from "./config.ts";
/** nutcracker's twelve key hashes, by name. */
export { HASH_NAMES, keyHash, isHashName, type HashName, type KeyHash } from "./hash.ts";
/** ketama, modula and random over a pool's live servers. */
export { Continuum, DISTRIBUTION_NAMES, compareServerNames, type DistributionName, type ContinuumServer } from "./continuum.ts";
/** Which server of a pool holds a key (hash_tag, hash, continuum). */
export { Placement, type PlacementConfig } from "./placement.ts";
/** The proxy: every pool of a configuration listening, and its stats. */
export { createProxy, type Proxy, type ProxyOptions, type ProxyPoolHandle, type ProxyStats } from "./proxy.ts";
/** Per pool and per server counters, as stats() and the admin server show them. */
export type { PoolProxyStats } from "./pool-proxy.ts";
export type { UpstreamStats } from "./upstream.ts";
/** How the proxy handles each redis command (routed, split, answered here, dedicated, refused and why). */
export { COMMANDS, Kind as CommandKind, type CommandSpec } from "./commands.ts";
/** `--share-upstream`: the hub's and a front's configurations (fronts share the hub's upstream connections). */
export { hubConfigOf, frontConfigOf, hubSocketPath, frontTimeoutMs } from "./share-upstream.ts";
