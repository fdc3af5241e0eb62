/**
 * The load generator behind `bun run load` and `bun run c1m`: C connections over P
 * processes, spread over source and destination addresses in 127.0.0.0/8, held idle or
 * driven with pings or request/response traffic; mergeable latency histograms.
 */
export { LogHistogram, type HistogramJSON, type PercentileSummary } from "./histogram.ts";
export {
  parseTargets,
  parseAddresses,
  resolveSources,
  autoSources,
  parseIPv4,
  formatIPv4,
  tupleOf,
  maxPerTuple,
  splitEvenly,
  TargetSpecError,
  AUTO_SOURCE_BASE,
  type Target,
} from "./targets.ts";
export {
  LoadEngine,
  emptyCounters,
  addCounters,
  errorKind,
  type EngineOptions,
  type EngineReport,
  type LoadCounters,
  type LoadMode,
  type LoadProtocol,
} from "./engine.ts";
export { startLoad, teardownGraceMs, LoadRun, LoadError, type LoadOptions, type LoadReport } from "./coordinator.ts";
export { progressLine, formatLoadReport } from "./progress.ts";
export { runC1m, type C1mClient, type C1mOptions, type C1mResult, type C1mPhaseResult, type ServerKind } from "./c1m.ts";
export { tunSupport } from "./tun/netns.ts";
