import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { isProcessAlive } from "../src/system/index.ts";
import { startLoad, type LoadReport } from "../src/loadgen/index.ts";
import { until } from "./helpers/until.ts";

// A load process's figures must not depend on how long it takes to close its connections:
// at a million, 53 processes closing 19,000 sockets each (and the servers handling every
// close) took longer than the grace, and every process was reported dead with no connect
// times. Here the grace is 0, so every process is still closing when it runs out.

let server: TCPSocketListener<undefined>;
const peers = new Set<Socket<undefined>>();

beforeAll(() => {
  server = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        peers.add(s);
      },
      data(s, d) {
        s.write(d);
      },
      close(s) {
        peers.delete(s);
      },
    },
  });
});
afterAll(() => server.stop(true));

/** Resolves once the server saw every connection close. */
async function peersGone(): Promise<void> {
  await until(() => `the server to see every connection close (${peers.size} open)`, () => peers.size === 0);
}

function expectConnectTimes(r: LoadReport, count: number): void {
  const c = r.ramp.connectUs;
  expect(c.count).toBe(count);
  expect(c.p50).toBeGreaterThan(0);
  expect(c.p99).toBeGreaterThanOrEqual(c.p50);
  expect(c.max).toBeGreaterThanOrEqual(c.p99);
}

describe("load teardown", () => {
  test("processes still closing when the grace runs out are killed, not counted dead; connect times are kept", async () => {
    const run = await startLoad({
      connections: 3000,
      processes: 2,
      targets: [{ host: "127.0.0.1", port: server.port }],
      sources: [],
      connectWindow: 128,
      maxLifetimeMs: 60_000,
    });
    const ramped = await run.ramped();
    expect(ramped.open).toBe(3000);
    const r = await run.stop(0);
    expect(r.processes.died).toEqual([]);
    expect([...r.processes.killedAtTeardown].sort()).toEqual([...run.pids].sort());
    expect(r.processes.unreported).toEqual([]);
    expect(r.processes.teardownMs).toBeGreaterThanOrEqual(0);
    expect(r.connections).toMatchObject({ target: 3000, reached: 3000, held: 3000, lost: 0, lostAfterRamp: 0, failed: 0 });
    expectConnectTimes(r, 3000);
    // Connections closed by the teardown are not lost either.
    expect(run.counters().lost).toBe(0);
    expect(run.counters().open).toBe(0);
    for (const pid of run.pids) expect(isProcessAlive(pid)).toBe(false);
    await peersGone();
  }, 30_000);

  test("a process that exits before the teardown is a death: its connections are lost, the rest report", async () => {
    const run = await startLoad({
      connections: 2000,
      processes: 2,
      targets: [{ host: "127.0.0.1", port: server.port }],
      sources: [],
      connectWindow: 128,
      maxLifetimeMs: 60_000,
    });
    expect((await run.ramped()).open).toBe(2000);
    const victim = run.pids[0]!;
    process.kill(victim, "SIGKILL");
    await until(() => `the victim's 1000 connections counted lost (${run.counters().lost})`, () => run.counters().lost >= 1000);
    expect(run.counters().lost).toBe(1000);
    const r = await run.stop();
    expect(r.processes.died).toEqual([{ pid: victim, exitCode: null, signal: "SIGKILL" }]);
    expect(r.processes.killedAtTeardown).toEqual([]);
    expect(r.processes.unreported).toEqual([victim]);
    expect(r.connections).toMatchObject({ reached: 2000, held: 1000, lost: 1000, lostAfterRamp: 1000, failed: 0 });
    // Only the survivor's connect times are known.
    expectConnectTimes(r, 1000);
    for (const pid of run.pids) expect(isProcessAlive(pid)).toBe(false);
    await peersGone();
  }, 30_000);
});
