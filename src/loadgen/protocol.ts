/** IPC messages between the load generator's parent (coordinator.ts) and its children (child-main.ts). */
import type { EngineReport, LoadCounters } from "./counters.ts";
import type { EngineOptions } from "./options.ts";

/** What a child gets in MYRIAD_LOADGEN_CHILD. */
export interface ChildConfig {
  engine: EngineOptions;
  progressIntervalMs: number;
  /** The child stops and exits by itself after this long, whatever happens. */
  maxLifetimeMs: number;
  /** Set: this process is a userland TCP client on its own TUN device (tun/child.ts), not a socket client. */
  tun?: TunChildConfig;
}

/** A TUN load process's device, client addresses and servers (see tun/netns.ts). */
export interface TunChildConfig {
  device: string;
  /** First client address (IPv4, unsigned 32-bit) and the route that covers this process's block. */
  clientFirstIp: number;
  clientCidr: string;
  serverIp: number;
  ports: number[];
}

/** What the coordinator tells a load process. */
export type ParentToChild =
  | { t: "start" }
  | { t: "traffic" }
  | { t: "stop-connecting" }
  /** Report now; the answer carries the same id (periodic reports carry none). */
  | { t: "progress"; id: number }
  /** Counters and histograms now, without stopping; the answer carries the same id. */
  | { t: "report"; id: number }
  | { t: "stop" };

/** What a load process tells the coordinator. */
export type ChildToParent =
  | { t: "ready"; pid: number }
  | { t: "progress"; counters: LoadCounters; id?: number }
  | { t: "report"; report: EngineReport; id: number }
  | { t: "final"; report: EngineReport; why: string }
  | { t: "fatal"; message: string };
