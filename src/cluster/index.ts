/**
 * Many processes, one service: workers that share ports with reusePort under a supervisor
 * (restart with backoff, graceful stop on SIGINT/SIGTERM, one stats view), the planners
 * that size them against `ulimit -n`, and the machine's limits as doctor reads them.
 */
export {
  readSystemLimits,
  readProcFile,
  readSockstat,
  readSlabinfo,
  readMeminfo,
  readNetstat,
  parseNetstat,
  readRssBytes,
  readPageBytes,
  isProcessAlive,
  parseNofile,
  parseMeminfo,
  parseSockstat,
  parseSlabinfo,
  type ProcReader,
  type SystemLimits,
  type Sockstat,
  type SlabCache,
  type ConntrackInfo,
  type Triple,
} from "./limits.ts";
export {
  diagnose,
  formatDoctorReport,
  kernelBytesPerSocketFromSlabs,
  DEFAULT_COST_MODEL,
  DEFAULT_CONNECTIONS_PER_SOURCE,
  SOCKET_SLAB_CACHES,
  type DoctorCheck,
  type DoctorOptions,
  type DoctorPlan,
  type DoctorReport,
  type CostModel,
  type CheckStatus,
} from "./doctor.ts";
export {
  planWorkers,
  resolveWorkers,
  connectionsPerProcess,
  safeMeanPerWorker,
  fdMarginOf,
  parsePorts,
  listenAddresses,
  type WorkerPlan,
  type WorkerPlanInput,
  type ListenAddress,
} from "./plan.ts";
export { runCluster, Cluster, ClusterError, type ClusterOptions, type ClusterEvent, type RestartPolicy, type WorkerInfo } from "./supervisor.ts";
export {
  WORKER_CONFIG_ENV,
  type WorkerApp,
  type WorkerConfig,
  type WorkerServerOptions,
  type SupervisorToWorker,
  type WorkerToSupervisor,
} from "./protocol.ts";
export { sumStats, zeroStats } from "./stats.ts";
