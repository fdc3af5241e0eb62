/** The load generator's live display and its text report. */
import type { LoadCounters } from "./counters.ts";
import type { LoadReport } from "./run-options.ts";
import type { PercentileSummary } from "./histogram.ts";

const n = (x: number) => Math.round(x).toLocaleString("en-US");
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

function errorsText(errors: Record<string, number>): string {
  const parts = Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${n(v)}`);
  return parts.length ? parts.join(", ") : "none";
}

/**
 * One status line: a bar of `barWidth` cells when barWidth > 0 (a TTY), plain text
 * otherwise. `ratePerSec` is the connect rate over the last interval.
 */
export function progressLine(c: LoadCounters, phase: string, ratePerSec: number, barWidth: number): string {
  const done = c.target > 0 ? Math.min(1, c.open / c.target) : 1;
  const bar = barWidth > 0 ? `[${"#".repeat(Math.round(done * barWidth)).padEnd(barWidth, ".")}] ` : "";
  const errs = Object.values(c.errors).reduce((a, b) => a + b, 0);
  let line = `${bar}${phase} ${n(c.open)}/${n(c.target)} open, ${n(ratePerSec)}/s, connecting ${n(c.connecting)}, failed ${n(c.failed)}, errors ${n(errs)}, lost ${n(c.lost)}`;
  if (c.requests > 0) line += `, ${n(c.responses)} responses`;
  line += `, rss ${mb(c.rssBytes)}`;
  return line;
}

function latency(s: PercentileSummary): string {
  if (s.count === 0) return "n/a";
  const ms = (us: number) => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
  return `p50 ${ms(s.p50)} ms, p90 ${ms(s.p90)} ms, p99 ${ms(s.p99)} ms, p99.9 ${ms(s.p999)} ms, max ${ms(s.max)} ms (${n(s.count)} samples)`;
}

/** The report as text. */
export function formatLoadReport(r: LoadReport): string {
  const c = r.connections;
  const lines = [
    `load: ${n(r.config.connections)} connections (${r.config.mode}, ${r.config.protocol}) over ${r.processes.count} processes, ${n(r.config.targets)} targets, ${n(r.config.sources)} source addresses`,
    `connections: reached ${n(c.reached)} of ${n(c.target)}, held ${n(c.held)} at the end, lost ${n(c.lost)} (${n(c.lostAfterRamp)} after the ramp), failed ${n(c.failed)} after ${n(c.attempts)} attempts`,
    `errors: ${errorsText(c.errors)}`,
    `ramp: ${(r.ramp.ms / 1000).toFixed(2)} s, ${n(r.ramp.connectionsPerSec)} connections/s; connect time ${latency(r.ramp.connectUs)}`,
  ];
  if (r.traffic.requests > 0) {
    lines.push(
      `traffic: ${n(r.traffic.responses)} responses of ${n(r.traffic.requests)} requests in ${(r.traffic.ms / 1000).toFixed(1)} s = ${n(r.traffic.responsesPerSec)}/s, ${mb(r.traffic.bytesOut)} out, ${mb(r.traffic.bytesIn)} in` +
        (r.traffic.skipped ? `, ${n(r.traffic.skipped)} pings skipped (previous unanswered)` : "") +
        (r.traffic.badReplies ? `, ${n(r.traffic.badReplies)} bad/error replies` : ""),
      `latency: ${latency(r.traffic.latencyUs)}`,
    );
  }
  lines.push(
    `memory (load processes): ${mb(r.memory.rssBytes)} RSS in all, largest process ${mb(r.memory.maxProcessRssBytes)}, ${n(r.memory.bytesPerConnection)} B per connection (baselines included)`,
  );
  lines.push(
    `teardown: ${(r.processes.teardownMs / 1000).toFixed(1)} s` +
      (r.processes.killedAtTeardown.length ? `, ${r.processes.killedAtTeardown.length} processes still closing after the grace were killed (not deaths)` : ""),
  );
  if (r.processes.died.length) lines.push(`died before the teardown: ${r.processes.died.map((d) => `pid ${d.pid} (${d.signal ?? `exit ${d.exitCode}`})`).join(", ")}`);
  if (r.processes.unreported.length) lines.push(`no report from: ${r.processes.unreported.map((p) => `pid ${p}`).join(", ")} (their connect times and traffic are missing)`);
  return lines.join("\n") + "\n";
}
