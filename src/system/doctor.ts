/**
 * `bun run doctor`: for a target connection count, which limit of this machine bites first,
 * what the user sees when it does, and the exact command that moves it.
 *
 * Every check computes the connection count at which its limit bites as the machine is
 * configured now (`limitConnections`), so "what fails first" is the smallest of them.
 * Status: "ok" — not in the way; "warn" — bites a naive setup (one process, one address
 * tuple) or busy sockets, but myriad's workers and load processes work around it;
 * "fail" — blocks the target even with myriad's plan until fixed.
 */
import type { SystemLimits } from "./limits.ts";
import type { SlabCache } from "./proc.ts";
import { connectionsPerProcess, DEFAULT_CONNECTIONS_PER_SOURCE, loadProcessesFor, planWorkers } from "./capacity.ts";

export type CheckStatus = "ok" | "warn" | "fail";

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
  /** Load generator userland per connection (Bun.connect socket + its state). */
  clientBytesPerConnection: number;
  /** RSS of one idle Bun process. */
  processBaselineBytes: number;
}

export const DEFAULT_COST_MODEL: CostModel = {
  kernelBytesPerSocket: 3584,
  serverBytesPerConnection: 1024,
  clientBytesPerConnection: 1536,
  processBaselineBytes: 32 << 20,
};

/** Slab caches one TCP socket occupies an object in (client sockets add a bind bucket). */
export const SOCKET_SLAB_CACHES = ["TCP", "sock_inode_cache", "filp", "eventpoll_epi", "dentry"] as const;

/** The listen backlog Bun.listen asks for (not configurable from JavaScript). */
export const BUN_LISTEN_BACKLOG = 512;

export interface DoctorOptions {
  /** Target concurrent connections. */
  connections: number;
  /** Both ends on this machine (load generator on loopback): twice the sockets, ports matter. Default true. */
  loopback?: boolean;
  /** /proc/slabinfo, when readable: object sizes refine kernelBytesPerSocket. */
  slabs?: Map<string, SlabCache>;
  cost?: Partial<CostModel>;
}

export interface DoctorPlan {
  /** Sockets on this machine: connections × (loopback ? 2 : 1). */
  sockets: number;
  serverProcesses: number;
  loadProcesses: number;
  connectionsPerProcess: number;
  /** Source addresses the load generator binds (127.x.y.z), at DEFAULT_CONNECTIONS_PER_SOURCE each. */
  sourceAddresses: number;
  /** (src IP, dst IP, dst port) tuples needed without source binding, at 2/3 of the port range each. */
  tuplesWithoutBinding: number;
  /** Descriptors system-wide. */
  descriptors: number;
  memory: { kernelBytes: number; serverBytes: number; clientBytes: number; processBytes: number; totalBytes: number };
  cost: CostModel;
}

export interface DoctorReport {
  target: number;
  loopback: boolean;
  checks: DoctorCheck[];
  /** The check with the smallest limitConnections below the target (null: nothing bites). */
  firstFailure: DoctorCheck["id"] | null;
  /** True when no check failed: the plan can reach the target as configured. */
  ready: boolean;
  plan: DoctorPlan;
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "unlimited");
const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${Math.round(b / 2 ** 20)} MiB`);

/** Kernel bytes per socket from slab object sizes, or undefined when slabinfo is unreadable. */
export function kernelBytesPerSocketFromSlabs(slabs: Map<string, SlabCache> | undefined): number | undefined {
  if (!slabs || !slabs.has("TCP")) return undefined;
  let sum = 0;
  for (const name of SOCKET_SLAB_CACHES) sum += slabs.get(name)?.objectBytes ?? 0;
  return sum;
}

/**
 * Diagnoses `limits` for `opts.connections`. Pure: same input, same report.
 * Contract: firstFailure is the id of the check with the smallest limitConnections that is
 * below the target, or null; ready is false exactly when a check has status "fail".
 */
export function diagnose(limits: SystemLimits, opts: DoctorOptions): DoctorReport {
  const C = Math.max(0, Math.floor(opts.connections));
  const loopback = opts.loopback !== false;
  const ends = loopback ? 2 : 1;
  const cost: CostModel = { ...DEFAULT_COST_MODEL, ...opts.cost };
  const fromSlabs = kernelBytesPerSocketFromSlabs(opts.slabs);
  if (fromSlabs !== undefined && opts.cost?.kernelBytesPerSocket === undefined) cost.kernelBytesPerSocket = fromSlabs;

  const perProcess = connectionsPerProcess(limits.nofileSoft);
  const workers = planWorkers({ maxConnections: C, nofile: limits.nofileSoft, cpus: limits.cpus });
  const loadProcesses = loopback ? loadProcessesFor(C, "sockets", limits.nofileSoft, limits.cpus) : 0;
  const processes = workers.workers + loadProcesses + 1;
  const sockets = C * ends;
  const descriptors = sockets + processes * 64;
  const portsPerTuple = Math.floor(limits.portRange.count * (2 / 3));
  const memory = {
    kernelBytes: sockets * cost.kernelBytesPerSocket,
    serverBytes: C * cost.serverBytesPerConnection,
    clientBytes: loopback ? C * cost.clientBytesPerConnection : 0,
    processBytes: processes * cost.processBaselineBytes,
    totalBytes: 0,
  };
  memory.totalBytes = memory.kernelBytes + memory.serverBytes + memory.clientBytes + memory.processBytes;
  const plan: DoctorPlan = {
    sockets,
    serverProcesses: workers.workers,
    loadProcesses,
    connectionsPerProcess: perProcess,
    sourceAddresses: loopback ? Math.max(1, Math.ceil(C / DEFAULT_CONNECTIONS_PER_SOURCE)) : 0,
    tuplesWithoutBinding: loopback ? Math.max(1, Math.ceil(C / Math.max(1, portsPerTuple))) : 0,
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
          (loopback ? ` and ${loadProcesses} load processes (bun run load --processes ${loadProcesses})` : "") +
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
      detail: `${fmt(C)} connections need ≈${fmt(descriptors)} descriptors (${ends} socket${ends > 1 ? "s" : ""} each${loopback ? ": both ends are on this machine" : ""}, plus ${processes} processes)`,
      fix: ok ? undefined : `sysctl -w fs.file-max=${Math.ceil((descriptors + limits.filesAllocated) * 1.25)}`,
    });
  }

  // 4. Ephemeral ports per address tuple (client side).
  if (loopback) {
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
    const perConnection = ends * cost.kernelBytesPerSocket + cost.serverBytesPerConnection + (loopback ? cost.clientBytesPerConnection : 0);
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
        (loopback ? `, load generator ${gib(memory.clientBytes)} (${fmt(cost.clientBytesPerConnection)} B/conn)` : "") +
        `, ${processes} processes × ${gib(cost.processBaselineBytes)}`,
      fix: status === "ok" ? undefined : `free memory (stop other processes), or run the load generator on another machine (halves the kernel share)`,
    });
  }

  let first: DoctorCheck | undefined;
  for (const c of checks) {
    if (c.limitConnections < C && (first === undefined || c.limitConnections < first.limitConnections)) first = c;
  }
  return {
    target: C,
    loopback,
    checks,
    firstFailure: first?.id ?? null,
    ready: !checks.some((c) => c.status === "fail"),
    plan,
  };
}

/** The report as text for a terminal: one block per check, failures first, then the plan. */
export function formatDoctorReport(report: DoctorReport, limits: SystemLimits): string {
  const mark = { ok: "ok  ", warn: "WARN", fail: "FAIL" } as const;
  const lines: string[] = [];
  lines.push(
    `myriad doctor — target ${fmt(report.target)} concurrent connections${report.loopback ? " with the load generator on this machine (both ends local)" : " (server side only)"}`,
    `machine: ${limits.cpus} CPUs, ${gib(limits.memTotalBytes)} RAM, page ${limits.pageBytes} B`,
    "",
  );
  const order = { fail: 0, warn: 1, ok: 2 } as const;
  const sorted = [...report.checks].sort((a, b) => order[a.status] - order[b.status]);
  for (const c of sorted) {
    lines.push(`[${mark[c.status]}] ${c.title}: ${c.value}`);
    lines.push(`       ${c.detail}`);
    if (c.status !== "ok") lines.push(`       symptom: ${c.symptom}`);
    if (c.fix) lines.push(`       fix: ${c.fix}`);
  }
  lines.push("");
  if (report.firstFailure) {
    const c = report.checks.find((x) => x.id === report.firstFailure)!;
    lines.push(`fails first: ${c.title} — at ≈${fmt(c.limitConnections)} connections: ${c.symptom}`);
    if (c.fix) lines.push(`  fix: ${c.fix}`);
  } else {
    lines.push(`fails first: nothing below ${fmt(report.target)}`);
  }
  const p = report.plan;
  lines.push(
    "",
    `plan: ${p.serverProcesses} server workers` +
      (report.loopback ? ` + ${p.loadProcesses} load processes, ${fmt(p.sourceAddresses)} source addresses in 127.0.0.0/8` : "") +
      `, ${fmt(p.descriptors)} descriptors, ≈${gib(p.memory.totalBytes)} of memory`,
    report.ready ? "verdict: ready for the target as configured" : "verdict: NOT ready — fix the FAIL lines first",
  );
  return lines.join("\n") + "\n";
}
