/** What the c1m experiment is asked (C1mOptions) and what it measured (C1mResult, a phase at a time). */
import type { SystemLimits } from "../system/index.ts";
import type { LoadReport } from "./run-options.ts";

/** The server measured in a phase: myriad's reactor workers, or raw Bun.listen workers (the baseline). */
export type ServerKind = "myriad" | "raw";
/** The load client: userland TCP on TUN devices in a namespace of ours, or kernel sockets on loopback. */
export type C1mClient = "tun" | "sockets";

/** What runC1m runs: the target, the hold, the servers and client to measure, and how the load ramps. */
export interface C1mOptions {
  connections: number;
  holdMs: number;
  /** Server kinds, in order (default myriad then raw). */
  servers: ServerKind[];
  /** The load client (see the module comment). */
  client: C1mClient;
  /** echo (default): TCP echo workers; websocket: ws-echo workers and upgraded connections (needs confirm). */
  protocol?: "echo" | "websocket";
  /** Server workers per phase; default planWorkers (enough for ulimit -n, ≥ one per CPU). */
  workers?: number;
  /** Load processes; default enough for ulimit -n, at least one per CPU. */
  loaders?: number;
  /** Ports every worker listens on (all on 0.0.0.0); default 4 ports from 7100. */
  ports: number[];
  /** Destination addresses the load spreads over (default 127.0.0.1-127.0.0.4). */
  destinations: string[];
  /** Connections per bound source address (default 1000). */
  perSource: number;
  /** Connects in flight over all load processes. */
  connectWindow: number;
  /** New connections per second over all load processes, 0 = unbounded. */
  connectRatePerSec: number;
  connectTimeoutMs: number;
  retries: number;
  /** Confirm each connection with an echo round trip (see EngineOptions.confirm); default true with the TUN client, false with sockets. */
  confirm?: boolean;
  rampTimeoutMs: number;
  /** Sample period for the time series (default 500 ms). */
  sampleMs: number;
  /** Where the report files go (default bench/results). */
  outDir: string;
  /** The raw worker script (bench/c1m-raw-worker.ts). */
  rawWorkerEntry: string;
  /** Called with one line per event (progress, phase changes). */
  log?: (line: string) => void;
  /** Aborting cuts the ramp or hold short, tears the phase down and skips the rest; the report says so. */
  signal?: AbortSignal;
}

/** One point of the time series. */
export interface C1mSample {
  /** Seconds since the experiment started. */
  t: number;
  phase: ServerKind;
  stage: "start" | "ramp" | "hold" | "teardown";
  clientOpen: number;
  serverConnections: number;
  serverRssBytes: number;
  loaderRssBytes: number;
  /** MemTotal − MemAvailable. */
  machineUsedBytes: number;
  tcpInuse: number;
  tcpMemPages: number;
}

/** The figures of one phase. Bytes per connection/socket are null when nothing was held. */
export interface C1mPhaseResult {
  server: ServerKind;
  /** echo, or websocket: every connection upgraded (the 101 and an echoed message seen). */
  protocol: "echo" | "websocket";
  client: C1mClient;
  /** Connections counted open only after an echo round trip. */
  confirm: boolean;
  workers: number;
  loaders: number;
  workerPids: number[];
  loaderPids: number[];
  target: number;
  reached: number;
  held: number;
  serverHeld: number;
  /** Connections closed during the hold, seen by the load (client) side, and the drop of the server's count. */
  lostDuringHold: number;
  serverDropDuringHold: number;
  failed: number;
  errors: Record<string, number>;
  rampSeconds: number;
  rampPerSec: number;
  /** Connects in flight over all load processes (the option, capped at 128 per listener). */
  connectWindow: number;
  /** From the connect call to open: with connectWindow in flight, mostly time spent queued (about window ÷ ramp rate). */
  connectUs: LoadReport["ramp"]["connectUs"];
  holdSeconds: number;
  serverRssBaselineBytes: number;
  serverRssHeldBytes: number;
  serverUserlandBytesPerConnection: number | null;
  loaderRssBaselineBytes: number;
  loaderRssHeldBytes: number;
  loaderUserlandBytesPerConnection: number | null;
  /** Slab growth per socket, by cache, and in all (plus TCP buffer pages). */
  kernelBytesPerSocket: number | null;
  kernelSlabBytesPerSocketByCache: Record<string, number>;
  tcpBufferBytesPerSocket: number | null;
  socketsAdded: number;
  machineBytesPerConnection: number | null;
  /** The same with reclaimable slab counted as used (MemTotal − MemFree − Buffers − Cached). */
  machineAllSlabBytesPerConnection: number | null;
  /**
   * One end's cost, comparable to server-side write-ups (7.31 KB per connection at 30,000):
   * kernel bytes per socket + server userland bytes per connection.
   */
  serverSideBytesPerConnection: number | null;
  /** The same plus the server workers' idle RSS spread over the server's connections. */
  serverSideWithBaselineBytesPerConnection: number | null;
  /** Including every process's baseline (from before the workers started). */
  machineBytesPerConnectionWithBaselines: number | null;
  machineUsedBeforeBytes: number;
  machineUsedHeldBytes: number;
  /**
   * Kernel counters over the ramp: accept-queue overflows (each a dropped SYN or handshake,
   * i.e. a 1 s stall for that connect) and SYN retransmits.
   */
  listenOverflows: number;
  synRetransmits: number;
  /** Processes left alive after teardown (must be empty). */
  leftovers: number[];
  /** Load processes that exited before the teardown began (their connections count as lost). */
  loadersDied: LoadReport["processes"]["died"];
  /** Load processes still closing their connections when the teardown grace ran out, then killed by pid: slow, not dead. */
  loadersKilledAtTeardown: number[];
  /** Load processes whose report never arrived: the connect times miss theirs. */
  loadersUnreported: number[];
  /** Teardown grace given to the load processes, and how long they and then the workers took to exit. */
  teardownGraceSeconds: number;
  loadTeardownSeconds: number;
  serverTeardownSeconds: number;
  /** Server workers that exited before the teardown. */
  workersDied: number[];
  /** False when a worker did not answer the stats request at the end of the hold in time (server figures may be stale). */
  serverStatsComplete: boolean;
  slabinfoReadable: boolean;
}

/** A whole run: options, machine, every phase's figures, the time series and the files written. */
export interface C1mResult {
  startedAt: string;
  finishedAt: string;
  options: Omit<C1mOptions, "log">;
  machine: Pick<SystemLimits, "cpus" | "memTotalBytes" | "nofileSoft" | "nofileHard" | "portRange" | "somaxconn" | "tcpMemPages" | "fileMax">;
  phases: C1mPhaseResult[];
  /** True when the run was aborted (signal): figures cover what ran. */
  interrupted: boolean;
  samples: C1mSample[];
  files: { json: string; svg: string; md: string };
}
