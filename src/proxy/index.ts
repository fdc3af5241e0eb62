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
export { HASH_NAMES, keyHash, isHashName, type HashName, type KeyHash } from "./hash.ts";
export { Continuum, DISTRIBUTION_NAMES, compareServerNames, type DistributionName, type ContinuumServer } from "./continuum.ts";
export { Placement, type PlacementConfig } from "./placement.ts";
export { createProxy, type Proxy, type ProxyOptions, type ProxyPoolHandle, type ProxyStats } from "./proxy.ts";
export type { PoolProxyStats } from "./pool-proxy.ts";
export type { UpstreamStats } from "./upstream.ts";
export { COMMANDS, Kind as CommandKind, type CommandSpec } from "./commands.ts";
