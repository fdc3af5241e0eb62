/** The doctor's report as text for a terminal. */
import { fmt, gib, type DoctorReport } from "./doctor.ts";
import type { SystemLimits } from "./limits.ts";

/** What the first line says about where the connections come from. */
const TARGET_SUFFIX = {
  sockets: " with the load generator on this machine, kernel-socket client (both ends local: two sockets per connection)",
  tun: " with the load generator on this machine, TUN client (userland TCP in a network namespace: one kernel socket per connection, the server's)",
  none: " (server side only)",
} as const;

/** The report as text for a terminal: one block per check, failures first, then the plan; `clientNote` (a line saying why this load client) under the first line. */
export function formatDoctorReport(report: DoctorReport, limits: SystemLimits, clientNote?: string): string {
  const mark = { ok: "ok  ", warn: "WARN", fail: "FAIL" } as const;
  const lines: string[] = [];
  lines.push(
    `myriad doctor — target ${fmt(report.target)} concurrent connections${TARGET_SUFFIX[report.client ?? "none"]}`,
    ...(clientNote === undefined ? [] : [clientNote]),
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
      (report.client === "sockets" ? ` + ${p.loadProcesses} load processes, ${fmt(p.sourceAddresses)} source addresses in 127.0.0.0/8` : "") +
      (report.client === "tun" ? ` + ${p.loadProcesses} TUN load processes` : "") +
      `, ${fmt(p.sockets)} kernel sockets` +
      `, ${fmt(p.descriptors)} descriptors, ≈${gib(p.memory.totalBytes)} of memory`,
    report.ready ? "verdict: ready for the target as configured" : "verdict: NOT ready — fix the FAIL lines first",
  );
  return lines.join("\n") + "\n";
}
