/**
 * One worker of `bun run proxy --workers N`, spawned by src/cluster's supervisor (it speaks
 * src/cluster/protocol.ts): every pool of the configuration (MYRIAD_PROXY_WORKER_CONFIG, JSON)
 * listening with reusePort, so the kernel spreads clients over the workers; stats reports
 * with the proxy's pools and servers; a graceful stop when told. It exits when the IPC
 * channel closes (the supervisor is gone); the hub of --share-upstream then also removes its
 * socket directory (MYRIAD_PROXY_HUB_DIR), which a killed supervisor could not.
 */
import type { SupervisorToWorker, WorkerToSupervisor } from "../cluster/index.ts";
import { createProxy, type Proxy, type ProxyConfig, type ProxyOptions } from "../proxy/index.ts";
import { sumServerStats } from "../reactor/index.ts";
import { removeHubDir } from "./hub-dir.ts";

const rawConfig = process.env.MYRIAD_PROXY_WORKER_CONFIG;
if (rawConfig === undefined || typeof process.send !== "function") {
  console.error("src/cli/proxy-worker.ts is started by `bun run proxy --workers N`, not by hand");
  process.exit(2);
}
const intervalMs = (() => {
  try {
    return (JSON.parse(process.env.MYRIAD_CLUSTER_WORKER ?? "{}") as { statsIntervalMs?: number }).statsIntervalMs ?? 1000;
  } catch {
    return 1000;
  }
})();

function send(m: WorkerToSupervisor): void {
  try {
    process.send!(m);
  } catch {
    // supervisor gone: the disconnect handler ends this process
  }
}

let proxy!: Proxy;
try {
  const options = JSON.parse(process.env.MYRIAD_PROXY_WORKER_OPTIONS ?? "{}") as ProxyOptions;
  proxy = await createProxy(JSON.parse(rawConfig) as ProxyConfig, {
    ...options,
    reusePort: true,
    onEvent: (e) => console.error(`proxy worker ${process.pid}: pool ${e.pool}: server ${e.server} ${e.type === "eject" ? "ejected" : "back"}`),
  });
} catch (e) {
  send({ t: "fatal", message: e instanceof Error ? e.message : String(e) });
  setTimeout(() => process.exit(1), 50);
  await new Promise(() => {});
}

function report(id?: number): Extract<WorkerToSupervisor, { t: "stats" }> {
  const stats = proxy.stats();
  const m: Extract<WorkerToSupervisor, { t: "stats" }> = {
    t: "stats",
    stats: sumServerStats(proxy.serverStats()),
    pools: stats.pools.flatMap((p) => p.servers.map((s) => ({ name: `${p.name}/${s.address}`, stats: s.pool }))),
    proxy: stats.pools,
  };
  if (id !== undefined) m.id = id;
  return m;
}

const timer = setInterval(() => send(report()), intervalMs);
let stopping = false;

async function stop(graceful: boolean, timeoutMs: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  await proxy.stop({ graceful, timeoutMs });
  const last = report();
  send({ t: "stopped", stats: last.stats, pools: last.pools, proxy: last.proxy });
  setTimeout(() => process.exit(0), 50);
}

process.on("message", (m: SupervisorToWorker) => {
  if (m.t === "stop") void stop(m.graceful, m.timeoutMs);
  else if (m.t === "stats") send(report(m.id));
});
const hubDir = process.env.MYRIAD_PROXY_HUB_DIR ?? "";
const removeOwnDir = (): void => {
  if (hubDir !== "") removeHubDir(hubDir);
};
process.on("disconnect", () => {
  // Once the listeners are closed (their socket files gone), the directory is empty.
  void stop(false, 0).finally(removeOwnDir);
  setTimeout(() => {
    removeOwnDir();
    process.exit(0);
  }, 2000).unref();
});
process.on("SIGINT", () => {});
process.on("SIGTERM", () => void stop(true, 10_000));

send({ t: "ready", pid: process.pid, listen: proxy.pools.slice(0, 1).map((p) => ({ hostname: p.hostname, port: p.port })) });
send(report());
