/**
 * The short version of bench/pool-soak.ts: every fault scenario of the pool once, shortened
 * (--quick), each in a fresh process, against a real redis-server and misbehaving listeners on
 * loopback (kill-narrow in a network namespace the soak makes and deletes: needs root and
 * iproute2). A run passes when every send settled with its own reply or a MyriadError and the
 * process exited cleanly; a crash of the runtime, a hang or a failed check fails the test. The
 * long soak (many runs, in bench/RESULTS.md) is `bun bench/pool-soak.ts`.
 */
import { expect, test } from "bun:test";

const SOAK = `${import.meta.dir}/../bench/pool-soak.ts`;

test("each fault scenario once, in a fresh process: no crash, no hang, every send settled", async () => {
  if (!Bun.which("redis-server")) throw new Error("redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server redis-tools)");
  if (!Bun.which("ip")) throw new Error("`ip` not found: install iproute2 (apt-get install -y iproute2); the kill-narrow scenario makes a network namespace");
  const proc = Bun.spawn([process.execPath, SOAK, "--runs", "1", "--quick", "--child-timeout", "40"], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  // The summary table: one row per scenario with runs, ok, failed, crashed, hung.
  const rows = out
    .split("\n")
    .map((l) => /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/.exec(l.trim()))
    .filter((m) => m !== null)
    .map((m) => ({ scenario: m[1]!, runs: Number(m[2]), ok: Number(m[3]), failed: Number(m[4]), crashed: Number(m[5]), hung: Number(m[6]) }));
  expect(rows.map((r) => r.scenario)).toEqual(["kill-restart", "kill-narrow", "flap", "kill-big", "refuse", "reset", "hang", "garbage", "timeouts", "close-mid-load"]);
  // A failed run's line, its stderr's last lines (the soak prints them after it) and our stderr.
  const runLines = (scenario: string) => {
    const lines = out.split("\n");
    const at = lines.findIndex((l) => new RegExp(`^\\s*\\d+ ${scenario} `).test(l));
    if (at < 0) return out + err;
    let end = at + 1;
    while (end < lines.length && lines[end]!.startsWith("       ")) end++;
    return [...lines.slice(at, end), err.trim()].join("\n");
  };
  for (const r of rows) expect({ ...r, log: r.ok === 1 ? "" : runLines(r.scenario) }).toEqual({ ...r, runs: 1, ok: 1, failed: 0, crashed: 0, hung: 0, log: "" });
  expect(code).toBe(0);
}, 120_000);
