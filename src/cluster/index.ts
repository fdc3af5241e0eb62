/**
 * Many processes, one service: workers that share ports with reusePort under a supervisor
 * (restart with backoff, graceful stop on SIGINT/SIGTERM, one stats view), and the listen
 * list and worker count they are started with (sized by src/system's rules).
 */
export { resolveWorkers, parsePorts, listenAddresses, type ListenAddress } from "./plan.ts";
export { runCluster, Cluster, ClusterError, type ClusterOptions, type ClusterEvent, type RestartPolicy, type WorkerInfo } from "./supervisor.ts";
export {
  WORKER_CONFIG_ENV,
  type WorkerApp,
  type WorkerConfig,
  type WorkerServerOptions,
  type SupervisorToWorker,
  type WorkerToSupervisor,
} from "./protocol.ts";
