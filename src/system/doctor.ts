/**
 * `bun run doctor`: for a target connection count, which limit of this machine bites first,
 * what the user sees when it does, and the exact command that moves it.
 *
 * The plan counts what the machine holds: the server's sockets and workers and, with the
 * load generator on this machine too (loopback), its processes and per-connection cost,
 * which depend on its client: kernel sockets (a second socket and descriptor per
 * connection, ephemeral ports) or c1m's TUN client (userland TCP in a network namespace:
 * no socket, no descriptor, no port of the machine's range).
 *
 * Every check computes the connection count at which its limit bites as the machine is
 * configured now (`limitConnections`), so "what fails first" is the smallest of them.
 * Status: "ok" — not in the way; "warn" — bites a naive setup (one process, one address
 * tuple) or busy sockets, but myriad's workers and load processes work around it;
 * "fail" — blocks the target even with myriad's plan until fixed.
 */
import type { SystemLimits } from "./limits.ts";
import type { SlabCache } from "./proc.ts";
import { connectionsPerProcess, DEFAULT_CONNECTIONS_PER_SOURCE, loadProcessesFor, planWorkers, type LoadClientKind } from "./capacity.ts";
import { kernelBytesPerSocketFromSlabs } from "./slabs.ts";

/** "ok": not in the way; "warn": bites a naive setup or busy sockets; "fail": blocks the target until fixed. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One limit of the machine against the target: where it bites, what that looks like, how to move it. */
export interface DoctorCheck {
  id: "nofile" | "nr_open" | "file_max" | "ports" | "listen_queue" | "tcp_mem" | "tcp_buffers" | "conntrack" | "memory";
  title: string;
  /** The current setting, as read. */
  value: string;
  status: CheckStatus;
  /** Connections at which this limit bites as configured now; Infinity when it never does. */
  limitConnections: number;
  /** What the user sees when it bites (the error message or kernel log line). */
  symptom: string;
  /** Why, with the numbers. */
  detail: string;
  /** The exact command(s) that raise the limit, when one exists. */
  fix?: string;
}

/** Bytes the model assumes, per connection or process; measured on this project's machines. */
export interface CostModel {
  /** Kernel memory per idle TCP socket (TCP slab, sock_inode, file, epoll item, dentry). */
  kernelBytesPerSocket: number;
  /** Server userland per idle connection (myriad reactor). */
  serverBytesPerConnection: number;
  /** Load generator userland per connection with kernel sockets (Bun.connect socket + its state). */
  clientBytesPerConnection: number;
  /** Load generator userland per connection with the TUN client (its connection state; 16-18 B measured at 1M, with margin). */
  tunClientBytesPerConnection: number;
  /** RSS of one idle Bun process. */
  processBaselineBytes: number;
}

/** The cost model's defaults, from this project's measurements (bench/RESULTS.md). */
export const DEFAULT_COST_MODEL: CostModel = {
  kernelBytesPerSocket: 3584,
  serverBytesPerConnection: 1024,
  clientBytesPerConnection: 1536,
  tunClientBytesPerConnection: 64,
  processBaselineBytes: 32 << 20,
};

/** The listen backlog Bun.listen asks for (not configurable from JavaScript). */
const BUN_LISTEN_BACKLOG = 512;

/** What diagnose plans for. */
export interface DoctorOptions {
  /** Target concurrent connections. */
  connections: number;
  /** The load generator runs on this machine too (default true); false: the server side only. */
  loopback?: boolean;
  /**
   * With loopback, the load client: "sockets" (default; a kernel socket per connection on
   * each end, ports matter) or "tun" (c1m's userland TCP client: one kernel socket per
   * connection, the server's). Ignored without loopback.
   */
  client?: LoadClientKind;
  /** /proc/slabinfo, when readable: object sizes refine kernelBytesPerSocket. */
  slabs?: Map<string, SlabCache>;
  cost?: Partial<CostModel>;
}

/** What the target needs of this machine under the plan. */
export interface DoctorPlan {
  /** Kernel sockets on this machine: connections × 2 with the kernel-socket load client, × 1 otherwise. */
  sockets: number;
  serverProcesses: number;
  loadProcesses: number;
  connectionsPerProcess: number;
  /** Source addresses the kernel-socket load client binds (127.x.y.z), at DEFAULT_CONNECTIONS_PER_SOURCE each; 0 otherwise. */
  sourceAddresses: number;
  /** (src IP, dst IP, dst port) tuples the kernel-socket client needs without source binding, at 2/3 of the port range each; 0 otherwise. */
  tuplesWithoutBinding: number;
  /** Descriptors system-wide. */
  descriptors: number;
  memory: { kernelBytes: number; serverBytes: number; clientBytes: number; processBytes: number; totalBytes: number };
  cost: CostModel;
}

/** diagnose's answer: every check, the first to bite, the verdict and the plan. */
export interface DoctorReport {
  target: number;
  loopback: boolean;
  /** The load client planned for; null without loopback. */
  client: LoadClientKind | null;
  checks: DoctorCheck[];
  /** The check with the smallest limitConnections below the target (null: nothing bites). */
  firstFailure: DoctorCheck["id"] | null;
  /** True when no check failed: the plan can reach the target as configured. */
  ready: boolean;
  plan: DoctorPlan;
}

/** Thousands with commas; Infinity as "unlimited". */
export const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "unlimited");
/** Bytes as GiB (one decimal) or, below a GiB, MiB. */
export const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${Math.round(b / 2 ** 20)} MiB`);

/**
 * Diagnoses `limits` for `opts.connections`. Pure: same input, same report.
 * Contract: firstFailure is the id of the check with the smallest limitConnections that is
 * below the target, or null; ready is false exactly when a check has status "fail".
 */
export function diagnose(limits: SystemLimits, opts: DoctorOptions): DoctorReport {
  const C = Math.max(0, Math.floor(opts.connections));
  const loopback = opts.loopback !== false;
  const client: LoadClientKind | null = loopback ? (opts.client ?? "sockets") : null;
  // Kernel sockets (and descriptors) per connection: the TUN client holds neither.
  const ends = client === "sockets" ? 2 : 1;

  const cost: CostModel = { ...DEFAULT_COST_MODEL, ...opts.cost };
  const fromSlabs = kernelBytesPerSocketFromSlabs(opts.slabs);
  if (fromSlabs !== undefined && opts.cost?.kernelBytesPerSocket === undefined) cost.kernelBytesPerSocket = fromSlabs;

  const perProcess = connectionsPerProcess(limits.nofileSoft);
  const workers = planWorkers({ maxConnections: C, nofile: limits.nofileSoft, cpus: limits.cpus });
  const loadProcesses = client === null ? 0 : loadProcessesFor(C, client, limits.nofileSoft, limits.cpus);
  const processes = workers.workers + loadProcesses + 1;
  const sockets = C * ends;
  const descriptors = sockets + processes * 64;
  const portsPerTuple = Math.floor(limits.portRange.count * (2 / 3));
  const clientCost = client === "sockets" ? cost.clientBytesPerConnection : client === "tun" ? cost.tunClientBytesPerConnection : 0;
  const memory = {
    kernelBytes: sockets * cost.kernelBytesPerSocket,
    serverBytes: C * cost.serverBytesPerConnection,
    clientBytes: C * clientCost,
    processBytes: processes * cost.processBaselineBytes,
    totalBytes: 0,
  };
  memory.totalBytes = memory.kernelBytes + memory.serverBytes + memory.clientBytes + memory.processBytes;
  const plan: DoctorPlan = {
    sockets,
    serverProcesses: workers.workers,
    loadProcesses,
    connectionsPerProcess: perProcess,
    sourceAddresses: client === "sockets" ? Math.max(1, Math.ceil(C / DEFAULT_CONNECTIONS_PER_SOURCE)) : 0,
    tuplesWithoutBinding: client === "sockets" ? Math.max(1, Math.ceil(C / Math.max(1, portsPerTuple))) : 0,
    descriptors,
    memory,
    cost,
  };

  const checks: DoctorCheck[] = [];

  // 1. Descriptors per process.
  {
    const need = C + 1024;
    let fix: string;
    if (limits.nofileHard >= need) fix = `ulimit -n ${need}   # soft limit up to the hard limit (${fmt(limits.nofileHard)}), in the shell that starts the server`;
    else if (limits.nrOpen >= need)
      fix = `as root: prlimit --pid <pid> --nofile=${need}:${need}; for good: "* - nofile ${need}" in /etc/security/limits.conf, LimitNOFILE=${need} for systemd, --ulimit nofile=${need}:${need} for docker (raising the hard limit needs CAP_SYS_RESOURCE)`;
    else
      fix = `sysctl -w fs.nr_open=${need} && then raise the hard limit: "* - nofile ${need}" in /etc/security/limits.conf (needs CAP_SYS_RESOURCE)`;
    const fits = C <= perProcess;
    checks.push({
      id: "nofile",
      title: "open files per process (ulimit -n)",
      value: `soft ${fmt(limits.nofileSoft)}, hard ${fmt(limits.nofileHard)}`,
      status: fits ? "ok" : "warn",
      limitConnections: perProcess,
      symptom: `accept()/connect(): "Too many open files" (EMFILE) once a process holds ~${fmt(perProcess)} sockets; a loop retrying accept() then spins a core`,
      detail: fits
        ? `one process can hold ${fmt(perProcess)} connections: enough for ${fmt(C)}`
        : `one process can hold ${fmt(perProcess)} connections, so ${fmt(C)} need ${workers.workers} server workers (serve --workers auto: ≈${fmt(workers.meanPerWorker)} each, reusePort)` +
          (client === "sockets" ? ` and ${loadProcesses} load processes (bun run load --processes ${loadProcesses})` : "") +
          (client === "tun" ? ` and ${loadProcesses} TUN load processes (no descriptor per connection)` : "") +
          `; or raise the limit to use fewer processes`,
      fix: fits ? undefined : fix,
    });
  }

  // 2. fs.nr_open caps any per-process limit.
  checks.push({
    id: "nr_open",
    title: "largest per-process limit (fs.nr_open)",
    value: fmt(limits.nrOpen),
    status: "ok",
    limitConnections: Infinity,
    symptom: `"ulimit: open files: cannot modify limit: Operation not permitted" when asking for more than ${fmt(limits.nrOpen)}`,
    detail:
      limits.nrOpen >= C + 1024
        ? `a single process could be allowed ${fmt(limits.nrOpen)} descriptors (if its hard limit were raised)`
        : `even a raised limit stops at ${fmt(limits.nrOpen)} per process: more processes are the way (myriad's workers)`,
    fix: limits.nrOpen >= C + 1024 ? undefined : `sysctl -w fs.nr_open=${C + 1024}`,
  });

  // 3. System-wide descriptors.
  {
    const room = limits.fileMax - limits.filesAllocated - processes * 64;
    const limitConnections = Math.max(0, Math.floor(room / ends));
    const ok = limitConnections >= C;
    checks.push({
      id: "file_max",
      title: "open files system-wide (fs.file-max)",
      value: `${fmt(limits.fileMax)} (allocated now ${fmt(limits.filesAllocated)})`,
      status: ok ? "ok" : "fail",
      limitConnections,
      symptom: `"Too many open files in system" (ENFILE); dmesg: "VFS: file-max limit ${fmt(limits.fileMax)} reached"`,
      detail: `${fmt(C)} connections need ≈${fmt(descriptors)} descriptors (${ends} socket${ends > 1 ? "s" : ""} each${client === "sockets" ? ": both ends are on this machine" : client === "tun" ? ": the TUN load client holds none" : ""}, plus ${processes} processes)`,
      fix: ok ? undefined : `sysctl -w fs.file-max=${Math.ceil((descriptors + limits.filesAllocated) * 1.25)}`,
    });
  }

  // 4. Ephemeral ports per address tuple (the kernel-socket client; the TUN client picks its own ports in its namespace).
  if (client === "sockets") {
    const ok = C <= portsPerTuple;
    checks.push({
      id: "ports",
      title: "ephemeral ports per address tuple (net.ipv4.ip_local_port_range)",
      value: `${limits.portRange.low}-${limits.portRange.high} (${fmt(limits.portRange.count)} ports)`,
      status: ok ? "ok" : "warn",
      limitConnections: portsPerTuple,
      symptom: `connect(): "Cannot assign requested address" (EADDRNOTAVAIL), and long before that 100% system CPU in the kernel's port search (seen at ~18,000 per tuple)`,
      detail: ok
        ? `${fmt(C)} connections fit one (source IP, destination IP, destination port) tuple`
        : `${fmt(C)} connections need ${fmt(plan.sourceAddresses)} source addresses in 127.0.0.0/8 at ${fmt(DEFAULT_CONNECTIONS_PER_SOURCE)} each (bun run load binds them; bind() slows down past a few thousand per address), or ${fmt(plan.tuplesWithoutBinding)} (destination IP, port) tuples without binding`,
      fix: ok
        ? undefined
        : `bun run load --sources auto   # or widen the range: sysctl -w net.ipv4.ip_local_port_range="1024 65535"`,
    });
  }

  // 5. Accept queues.
  {
    // Bun.listen asks for a backlog of 512 whatever somaxconn allows (ss -ltn shows Send-Q 512).
    const queue = Math.min(BUN_LISTEN_BACKLOG, limits.somaxconn);
    const ok = limits.somaxconn >= 1024 && limits.tcpMaxSynBacklog >= 1024;
    checks.push({
      id: "listen_queue",
      title: "listen queues (net.core.somaxconn, net.ipv4.tcp_max_syn_backlog)",
      value: `somaxconn ${fmt(limits.somaxconn)}, tcp_max_syn_backlog ${fmt(limits.tcpMaxSynBacklog)}`,
      status: ok ? "ok" : "warn",
      limitConnections: Infinity,
      symptom: `connects stall 1 s, 3 s, 7 s (SYN retransmits) during a ramp; dmesg "Possible SYN flooding on port N"; nstat ListenOverflows/ListenDrops grow`,
      detail: `each listener queues at most ${fmt(queue)} unaccepted connections (Bun.listen's backlog is ${BUN_LISTEN_BACKLOG}, capped by somaxconn): a ramp must keep fewer connects in flight than listeners × ${fmt(queue)}; more workers and ports add listeners, the load generator's connect window bounds the burst`,
      fix: ok ? undefined : `sysctl -w net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535`,
    });
  }

  // 6. TCP memory: idle sockets charge nothing, a socket with queued bytes at least a page.
  {
    const t = limits.tcpMemPages;
    const limitConnections = Math.floor(t.max / ends);
    const busyOk = sockets <= t.mid;
    const memPages = Math.floor(limits.memTotalBytes / limits.pageBytes);
    const want = { min: Math.ceil(sockets / 2), mid: sockets, max: Math.min(Math.ceil(sockets * 1.5), Math.floor(memPages / 2)) };
    checks.push({
      id: "tcp_mem",
      title: "TCP buffer memory (net.ipv4.tcp_mem, pages)",
      value: `${t.min} ${t.mid} ${t.max} pages (pressure at ${gib(t.mid * limits.pageBytes)}, cap ${gib(t.max * limits.pageBytes)}); in use now ${fmt(limits.sockstat.tcpMemPages)}`,
      status: busyOk ? "ok" : "warn",
      limitConnections,
      symptom: `dmesg "TCP: out of memory -- consider tuning tcp_mem"; sockets reset and orphans killed, processes see ECONNRESET under load`,
      detail: busyOk
        ? `${fmt(sockets)} sockets each holding a page stay under the pressure mark`
        : `idle sockets hold no buffer pages, but once ${fmt(t.mid)} pages are queued (≈${fmt(Math.floor(t.mid / ends))} connections with a page of data each) the kernel enters memory pressure, and at ${fmt(t.max)} it drops data and kills sockets: fine for idle connections, risky for a busy million`,
      fix: busyOk ? undefined : `sysctl -w net.ipv4.tcp_mem="${want.min} ${want.mid} ${want.max}"`,
    });
  }

  // 7. Default buffer sizes: the worst case if every socket filled its default buffers.
  {
    const perSocket = limits.tcpRmem.mid + limits.tcpWmem.mid;
    const worst = perSocket * sockets;
    const ok = worst <= limits.memTotalBytes / 2;
    checks.push({
      id: "tcp_buffers",
      title: "default socket buffers (net.ipv4.tcp_rmem, tcp_wmem)",
      value: `rmem ${limits.tcpRmem.min} ${limits.tcpRmem.mid} ${limits.tcpRmem.max}, wmem ${limits.tcpWmem.min} ${limits.tcpWmem.mid} ${limits.tcpWmem.max}`,
      status: ok ? "ok" : "warn",
      limitConnections: Math.floor(limits.memTotalBytes / 2 / Math.max(1, perSocket) / ends),
      symptom: `memory pressure (see tcp_mem) when many connections are behind on reading at once`,
      detail: `idle sockets cost no buffer memory; if every socket filled its default buffers that would be ${gib(worst)} (tcp_mem caps the total first)`,
      fix: ok ? undefined : `sysctl -w net.ipv4.tcp_rmem="4096 16384 4194304" net.ipv4.tcp_wmem="4096 16384 4194304"   # smaller defaults for many mostly-idle connections`,
    });
  }

  // 8. conntrack: one entry per loopback flow when a rule makes the kernel track them.
  {
    const ct = limits.conntrack;
    if (ct === null) {
      checks.push({
        id: "conntrack",
        title: "connection tracking (nf_conntrack)",
        value: "module not loaded",
        status: "ok",
        limitConnections: Infinity,
        symptom: `dmesg "nf_conntrack: table full, dropping packet"; new connections time out`,
        detail: "nothing is tracked",
      });
    } else {
      const room = Math.max(0, ct.max - ct.count);
      const tracking = ct.count > 0 || limits.sockstat.tcpInuse === 0;
      const ok = room >= C;
      const want = Math.ceil((C + ct.count) * 1.25);
      checks.push({
        id: "conntrack",
        title: "connection tracking (net.netfilter.nf_conntrack_max)",
        value: `max ${fmt(ct.max)}, tracked now ${fmt(ct.count)}, buckets ${fmt(ct.buckets)}`,
        status: ok ? "ok" : tracking ? "fail" : "warn",
        limitConnections: room,
        symptom: `dmesg "nf_conntrack: table full, dropping packet"; new connections time out`,
        detail: ok
          ? `room for ${fmt(room)} more flows`
          : tracking
            ? `each connection is one tracked flow: ${fmt(C)} do not fit in ${fmt(room)}`
            : `the module is loaded but tracks nothing now (no rule uses it); if a firewall rule starts tracking, ${fmt(C)} flows do not fit in ${fmt(room)}`,
        fix: ok
          ? undefined
          : `sysctl -w net.netfilter.nf_conntrack_max=${want} && echo ${Math.ceil(want / 4)} > /sys/module/nf_conntrack/parameters/hashsize   # or skip tracking on loopback: iptables -t raw -I PREROUTING -i lo -j NOTRACK; iptables -t raw -I OUTPUT -o lo -j NOTRACK`,
      });
    }
  }

  // 9. Memory.
  {
    const perConnection = ends * cost.kernelBytesPerSocket + cost.serverBytesPerConnection + clientCost;
    const room = limits.memAvailableBytes - memory.processBytes;
    const limitConnections = Math.max(0, Math.floor(room / perConnection));
    const status: CheckStatus = memory.totalBytes > limits.memAvailableBytes ? "fail" : memory.totalBytes > 0.8 * limits.memAvailableBytes ? "warn" : "ok";
    checks.push({
      id: "memory",
      title: "memory (/proc/meminfo MemAvailable)",
      value: `${gib(limits.memAvailableBytes)} available of ${gib(limits.memTotalBytes)}`,
      status,
      limitConnections,
      symptom: `dmesg "Out of memory: Killed process <pid> (bun)"; the OOM killer picks the biggest process`,
      detail:
        `≈${gib(memory.totalBytes)} needed: kernel ${gib(memory.kernelBytes)} (${fmt(sockets)} sockets × ${fmt(cost.kernelBytesPerSocket)} B${fromSlabs !== undefined ? " from slab object sizes" : ""}), ` +
        `server ${gib(memory.serverBytes)} (${fmt(cost.serverBytesPerConnection)} B/conn)` +
        (client === null ? "" : `, load generator ${gib(memory.clientBytes)} (${client === "tun" ? "TUN client, " : ""}${fmt(clientCost)} B/conn)`) +
        `, ${processes} processes × ${gib(cost.processBaselineBytes)}`,
      fix:
        status === "ok"
          ? undefined
          : client === "sockets"
            ? `free memory (stop other processes), use the TUN load client (bun run c1m's default as root with /dev/net/tun: one socket per connection), or run the load generator on another machine (halves the kernel share)`
            : `free memory (stop other processes), or run fewer connections per machine`,
    });
  }

  let first: DoctorCheck | undefined;
  for (const c of checks) {
    if (c.limitConnections < C && (first === undefined || c.limitConnections < first.limitConnections)) first = c;
  }
  return {
    target: C,
    loopback,
    client,
    checks,
    firstFailure: first?.id ?? null,
    ready: !checks.some((c) => c.status === "fail"),
    plan,
  };
}
