/**
 * `bun run fleet` at a small scale: HAProxy (send-proxy-v2, /readyz checks) in front of three
 * myriad KV nodes with a Redis bus, in network namespaces the run makes and removes, with 300
 * subscribers through the balancer. The run's own checks are the assertions; this test also
 * reads the figures back so that a report that claims success without them fails.
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";

const NEED = ["haproxy", "redis-server", "redis-cli", "ip", "curl"];

test("fleet: spread, real addresses, fan-out, graceful stop, node kill and bus outage", async () => {
  if (process.getuid?.() !== 0) throw new Error("the fleet test makes network namespaces: run the suite as root (as .ci/run does)");
  for (const tool of NEED) {
    if (!Bun.which(tool) && !Bun.which(tool, { PATH: "/usr/sbin:/sbin" }))
      throw new Error(`${tool} not found: apt-get install haproxy redis-server redis-tools iproute2 curl`);
  }
  const proc = Bun.spawn([process.execPath, "bench/fleet.ts", "--connections", "300", "--messages", "20", "--latency-samples", "20", "--json"], {
    cwd: `${import.meta.dir}/..`,
    stdout: "pipe",
    stderr: "pipe",
  });
  // The run bounds itself; should it hang anyway, this test's own end must not leave it running.
  const killer = setTimeout(() => proc.kill("SIGTERM"), 200_000);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(killer);
  const line = out.trim().split("\n").at(-1) ?? "";
  let report: any;
  try {
    report = JSON.parse(line);
  } catch {
    throw new Error(`fleet printed no JSON report (exit ${proc.exitCode}):\n${out}\n${err}`);
  }
  expect(report.failures).toEqual([]);
  expect(report.ok).toBe(true);
  expect(proc.exitCode).toBe(0);
  expect(report.spread.perNode.reduce((a: number, b: number) => a + b, 0)).toBe(300);
  expect(report.spread.maxDeviation).toBeLessThanOrEqual(0.1);
  expect(report.fanout.deliveries).toBe(300 * 20);
  expect(report.fanout.complete).toBe(300);
  expect(report.gracefulStop.connectionsWhenMarkedDown).toBeGreaterThan(0);
  expect(report.gracefulStop.markedDownMs).toBeGreaterThanOrEqual(0);
  expect(report.gracefulStop.markedDownMs).toBeLessThan(report.gracefulStop.exitedMs);
  expect(report.gracefulStop.reconnected).toBe(report.gracefulStop.stoppedNodeConnections);
  expect(report.gracefulStop.stayersIncomplete).toBe(0);
  expect(report.busOutage.publishesDuringOutage.errors).toBe(report.busOutage.publishesDuringOutage.published);
  // The run removed every namespace it made (named myrfleet-<its pid>-*: another run on the machine is not this test's).
  const left = existsSync("/var/run/netns") ? readdirSync("/var/run/netns").filter((n) => n.startsWith(`myrfleet-${proc.pid}-`)) : [];
  expect(left).toEqual([]);
}, 240_000);
