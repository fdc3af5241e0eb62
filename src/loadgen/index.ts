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
  tupleOf,
  maxPerTuple,
  splitEvenly,
  TargetSpecError,
  type Target,
} from "./targets.ts";
export { LoadEngine } from "./engine.ts";
export { emptyCounters, addCounters, errorKind, type EngineReport, type LoadCounters } from "./counters.ts";
export { LOAD_MODES, LOAD_PROTOCOLS, type EngineOptions, type LoadMode, type LoadProtocol } from "./options.ts";
export { startLoad, LoadRun } from "./coordinator.ts";
export { LoadError, type LoadOptions, type LoadReport } from "./run-options.ts";
export { progressLine, formatLoadReport } from "./progress.ts";
export { runC1m } from "./c1m.ts";
export type { C1mClient, C1mOptions, C1mResult, C1mPhaseResult, ServerKind } from "./c1m-types.ts";
export { tunSupport } from "./tun/netns.ts";
