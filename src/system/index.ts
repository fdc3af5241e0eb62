/**
 * The machine under myriad: its limits as /proc tells them, the sizing rules every process
 * count comes from (descriptors per process, workers, load processes), the doctor that says
 * which limit bites first for a connection count, and the request/answer bookkeeping of
 * parents that ask child processes for reports. Imports nothing of myriad but
 * errors.ts: the reactor, the cluster and the load generator all build on it.
 */
export {
  readProcFile,
  readSockstat,
  readSlabinfo,
  readMeminfo,
  readNetstat,
  readRssBytes,
  readPageBytes,
  isProcessAlive,
  parseNetstat,
  parseNofile,
  parseMeminfo,
  parseSockstat,
  parseSlabinfo,
  type ProcReader,
  type Sockstat,
  type SlabCache,
} from "./proc.ts";
export { ReplyWaiters, allWithin } from "./replies.ts";
export { readSystemLimits, type SystemLimits, type ConntrackInfo, type Triple } from "./limits.ts";
export {
  fdMargin,
  connectionsPerProcess,
  safeMeanPerWorker,
  planWorkers,
  loadProcessesFor,
  DEFAULT_CONNECTIONS_PER_SOURCE,
  type LoadClientKind,
  type WorkerPlan,
  type WorkerPlanInput,
} from "./capacity.ts";
export { SOCKET_SLAB_CACHES, SOCKET_GROWTH_CACHES, kernelBytesPerSocketFromSlabs } from "./slabs.ts";
export { formatDoctorReport } from "./doctor-format.ts";
export {
  diagnose,
  DEFAULT_COST_MODEL,
  type DoctorCheck,
  type DoctorOptions,
  type DoctorPlan,
  type DoctorReport,
  type CostModel,
  type CheckStatus,
} from "./doctor.ts";
