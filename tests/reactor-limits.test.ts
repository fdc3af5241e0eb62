/**
 * Timeouts on the shared wheel (idle, handshake) measured against their deadline, connection
 * limits (maxConnections, maxConnectionsPerIp) without spinning, and protocol errors that
 * close only the offending connection.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lengthU16Codec } from "../src/codec/index.ts";
import { createServer, type CloseReason } from "../src/reactor/index.ts";
import { connect, type TestClient, trackPeers } from "./helpers/net.ts";
import { timerLateness } from "./helpers/timing.ts";
import { until } from "./helpers/until.ts";

const { servers, client } = trackPeers();

/** A lines server that records, per connection, when it last read and when/why it closed. */
async function recordingServer(opts: Record<string, unknown>) {
  const lastRead = new Map<number, number>();
  const opened = new Map<number, number>();
  const closed = new Map<number, { at: number; reason: CloseReason }>();
  const server = await createServer({
    protocol: "lines",
    ...opts,
    handler: {
      open(conn) {
        opened.set(conn.id, performance.now());
        lastRead.set(conn.id, performance.now());
      },
      message(conn, line: Uint8Array) {
        lastRead.set(conn.id, performance.now());
        if (line.length > 0) conn.write(line.length + "\n");
      },
      close(conn, reason) {
        closed.set(conn.id, { at: performance.now(), reason });
      },
    },
  } as Parameters<typeof createServer>[0]);
  servers.push(server);
  return { server, lastRead, opened, closed };
}

test("idle timeout fires within one tick of the deadline", async () => {
  const idleMs = 200;
  const tickMs = 20;
  const { server, lastRead, closed } = await recordingServer({ idleTimeoutMs: idleMs, tickMs });
  const a = await client(server.port);
  // The reactor takes its activity time at the read, before the message hook runs (a busy
  // machine can put milliseconds between them): "never early" is measured from before the send.
  const sentAt = performance.now();
  await a.send("hello\n");
  await a.waitBytes(2);
  const lag = timerLateness(idleMs + tickMs); // a control: how late this loop runs a timer due then
  await a.waitClosed(3000);
  expect(closed.size).toBe(1);
  const [id, c] = [...closed][0]!;
  expect(c.reason).toBe("idle");
  expect(c.at - sentAt - idleMs).toBeGreaterThanOrEqual(-1); // -1: the reactor's clock is whole milliseconds
  // The last byte moved with the reply write, right after the last read.
  const late = c.at - lastRead.get(id)! - idleMs;
  // One tick, plus what the control timer was late by (a busy machine), plus slack.
  expect(late).toBeLessThan(tickMs + (await lag) + 100);
  console.log(`idle timeout: fired ${late.toFixed(1)} ms after the deadline (tick ${tickMs} ms)`);
  expect(server.stats().closed.idle).toBe(1);
});

test("reads and writes both count as activity", async () => {
  // Wide margins: a busy CI machine can stretch an 80 ms sleep a lot, and the test must not
  // read that as idleness. Each active client is touched every 60 ms against a 600 ms timeout.
  const idleMs = 600;
  const everyMs = 60;
  const { server, closed } = await recordingServer({ idleTimeoutMs: idleMs, tickMs: 10 });
  const talker = await client(server.port);
  const listener = await client(server.port);
  await until("two connections", () => server.connections === 2, 2000);
  // The talker sends; the listener sends nothing and is sent nothing (a zero-byte broadcast is
  // not activity). Keep going until the listener has been closed, and at least past idleMs.
  const t0 = performance.now();
  let longestGap = 0;
  let last = t0;
  while ((!listener.closed || performance.now() - t0 < idleMs + 100) && performance.now() - t0 < 5000) {
    await talker.send("x\n");
    server.broadcast("");
    await Bun.sleep(everyMs);
    longestGap = Math.max(longestGap, performance.now() - last);
    last = performance.now();
  }
  expect(longestGap).toBeLessThan(idleMs); // else this machine was too busy for the test to mean anything
  expect(listener.closed).toBe(true);
  expect(talker.closed).toBe(false); // it outlived the silent one on its reads (and the replies)
  expect([...closed.values()].map((c) => c.reason)).toEqual(["idle"]);
  // Writes alone keep a connection: push to a silent client every 60 ms for over idleMs.
  const pushed = await client(server.port);
  await until("the pushed-to connection", () => server.connections === 2, 2000);
  const pushes = Math.ceil((idleMs * 1.5) / everyMs);
  for (let i = 0; i < pushes; i++) {
    server.broadcast("tick\n");
    await Bun.sleep(everyMs);
  }
  expect(pushed.closed).toBe(false);
  await until("every push", () => pushed.receivedBytes === 5 * pushes, 2000);
  // Once the pushes stop, both go idle (the talker got the pushes too; the two deadlines may
  // fall in neighbouring ticks, so wait for each).
  await pushed.waitClosed(3000);
  await talker.waitClosed(3000);
  expect(server.stats().closed.idle).toBe(3); // listener, then talker and pushed once quiet
});

test("handshake timeout: open without a complete first frame", async () => {
  const hsMs = 150;
  const tickMs = 10;
  const { server, opened, closed } = await recordingServer({ handshakeTimeoutMs: hsMs, tickMs });
  // The reactor reads its clock at accept, before the open hook runs (a busy machine can put a
  // millisecond or more between them): "never early" is measured from before the connect.
  const connectingAt = performance.now();
  const slow = await client(server.port);
  const lag = timerLateness(hsMs + tickMs);
  const good = await client(server.port);
  await slow.send("partial line without its end");
  await good.send("complete\n");
  await slow.waitClosed(3000);
  await Bun.sleep(2 * hsMs);
  expect(good.closed).toBe(false); // greeted in time: the handshake timeout no longer applies
  expect(closed.size).toBe(1);
  const [id, c] = [...closed][0]!;
  expect(c.reason).toBe("handshake");
  expect(c.at - connectingAt - hsMs).toBeGreaterThanOrEqual(-1); // -1: the reactor's clock is whole milliseconds
  const late = c.at - opened.get(id)! - hsMs;
  expect(late).toBeLessThan(tickMs + (await lag) + 100);
  console.log(`handshake timeout: fired ${late.toFixed(1)} ms after the deadline (tick ${tickMs} ms)`);
  expect(server.stats().closed.handshake).toBe(1);
});

test("maxConnections: extra connections are closed at once, counted, and nothing spins", async () => {
  const { server } = await recordingServer({ maxConnections: 3 });
  const cs: TestClient[] = [];
  let failedToConnect = 0; // a refused connection may close before its client saw it open
  for (let i = 0; i < 7; i++) {
    try {
      cs.push(await client(server.port));
    } catch {
      failedToConnect++;
    }
  }
  await until("4 rejected connections to close", () => cs.filter((c) => c.closed).length + failedToConnect === 4, 3000);
  let st = server.stats();
  expect(st.connections).toBe(3);
  expect(st.accepted).toBe(3);
  expect(st.rejected).toBe(4);
  // The survivors work.
  const alive = cs.filter((c) => !c.closed);
  expect(alive.length).toBe(3);
  await alive[0]!.send("abc\n");
  await alive[0]!.waitBytes(2);
  expect(alive[0]!.text()).toBe("3\n");
  // No busy loop while full: this process uses little CPU over an idle 300 ms.
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Bun.sleep(300);
  const cpuMs = (process.cpuUsage(cpu0).user + process.cpuUsage(cpu0).system) / 1000;
  expect(cpuMs).toBeLessThan((performance.now() - t0) * 0.5);
  // A slot frees up: the next connection is accepted.
  alive[1]!.close();
  await until("the close", () => server.connections === 2, 2000);
  const late = await client(server.port);
  await late.send("z\n");
  await late.waitBytes(2);
  st = server.stats();
  expect(st.accepted).toBe(4);
  expect(st.rejected).toBe(4);
  expect(st.peakConnections).toBe(3);
});

test("at a real descriptor limit (ulimit -n 128): the default maxConnections stays below it; a flood of 400 is refused at once, counted, nothing spins, and the server keeps serving", async () => {
  // The server runs in a child whose soft RLIMIT_NOFILE is 128. Were maxConnections at or
  // over the limit, accept() would fail with EMFILE and Bun's loop would retry it without
  // end (a core at 100%, as uWS users report), leaving the flood in the backlog unanswered.
  const dir = mkdtempSync(join(tmpdir(), "myriad-emfile-"));
  const script = join(dir, "server.ts");
  writeFileSync(
    script,
    `
    import { createServer, defaultMaxConnections, fdSoftLimit } from ${JSON.stringify(join(import.meta.dir, "../src/reactor/index.ts"))};
    const server = await createServer({
      protocol: "lines",
      handler: { message(conn, line) { conn.write(line.length + "\\n"); } },
    });
    const report = () => {
      const st = server.stats();
      const cpu = process.cpuUsage();
      console.log(JSON.stringify({ port: server.port, fdLimit: fdSoftLimit(), maxConnections: defaultMaxConnections(),
        connections: st.connections, accepted: st.accepted, rejected: st.rejected, cpuMs: (cpu.user + cpu.system) / 1000 }));
    };
    report();
    for await (const line of console) if (line.trim() === "stats") report();
    `,
  );
  const child = Bun.spawn(["sh", "-c", 'ulimit -n 128 && exec "$0" "$1"', process.execPath, script], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const flood: TestClient[] = [];
  try {
    const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
    let pending = "";
    const next = async (): Promise<Record<string, number>> => {
      const deadline = performance.now() + 10_000;
      while (!pending.includes("\n")) {
        const r = await Promise.race([reader.read(), Bun.sleep(Math.max(1, deadline - performance.now())).then(() => null)]);
        if (r === null || r.done) throw new Error(`server child ${child.pid} stopped answering`);
        pending += new TextDecoder().decode(r.value);
      }
      const nl = pending.indexOf("\n");
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      return JSON.parse(line);
    };
    const ask = (): Promise<Record<string, number>> => {
      (child.stdin as import("bun").FileSink).write("stats\n");
      (child.stdin as import("bun").FileSink).flush();
      return next();
    };
    const first = await next();
    expect(first.fdLimit).toBe(128);
    const max = first.maxConnections!;
    expect(max).toBeLessThan(128);
    expect(max).toBeGreaterThan(64); // the margin leaves most descriptors to connections
    const port = first.port!;

    const attempts = 400;
    const t0 = performance.now();
    const results = await Promise.allSettled(Array.from({ length: attempts }, () => connect({ port })));
    for (const r of results) if (r.status === "fulfilled") flood.push(r.value);
    // Over the cap, a connection is accepted and closed at once (a few may even fail to connect).
    await until("the over-cap connections to be refused", () => flood.filter((c) => c.closed).length + (attempts - flood.length) >= attempts - max, 10_000);
    const refusedMs = performance.now() - t0;
    let st = await ask();
    expect(st.connections).toBe(max);
    expect(st.accepted).toBe(max);
    expect(st.rejected).toBe(attempts - max); // every attempt reached the server: refused ones fail to connect or close at once
    console.log(`flood of ${attempts} at ulimit -n 128: ${max} accepted, ${st.rejected} refused, all within ${refusedMs.toFixed(0)} ms`);

    // Full, with nothing to do: the server sleeps (a spinning accept loop burns ~a core).
    const cpu0 = st.cpuMs!;
    await Bun.sleep(1000);
    st = await ask();
    expect(st.cpuMs! - cpu0).toBeLessThan(150);

    // And it serves: the accepted connections answer; freed slots take new connections.
    const alive = flood.filter((c) => !c.closed);
    expect(alive.length).toBe(max);
    await alive[0]!.send("abcd\n");
    await alive[0]!.waitBytes(2);
    expect(alive[0]!.text()).toBe("4\n");
    for (const c of alive.slice(1, 11)) c.close();
    await until(() => `the server to hold ${max - 10} connections (${st.connections})`, async () => (st = await ask()).connections === max - 10);
    for (let i = 0; i < 10; i++) {
      const c = await connect({ port });
      flood.push(c);
      await c.send("xy\n");
      await c.waitBytes(2);
      expect(c.text()).toBe("2\n");
    }
    st = await ask();
    expect(st.connections).toBe(max);
    expect(st.accepted).toBe(max + 10);
    expect(st.rejected).toBe(attempts - max);
  } finally {
    for (const c of flood) if (!c.closed) c.close();
    child.kill("SIGKILL");
    await child.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test("maxConnectionsPerIp: counted per remote address", async () => {
  // Listening on "::" (dual stack): 127.0.0.1 and ::1 are two different remote addresses.
  const { server } = await recordingServer({ hostname: "::", maxConnectionsPerIp: 2 });
  const v4 = [await client(server.port, "127.0.0.1"), await client(server.port, "127.0.0.1"), await client(server.port, "127.0.0.1")];
  const v6 = [await client(server.port, "::1"), await client(server.port, "::1")];
  await until("the third connection from 127.0.0.1 to be refused", () => v4[2]!.closed, 2000);
  await Bun.sleep(50);
  expect(v4[0]!.closed || v4[1]!.closed).toBe(false);
  expect(v6.map((c) => c.closed)).toEqual([false, false]);
  expect(server.stats().rejected).toBe(1);
  expect(server.connections).toBe(4);
  // Closing one from 127.0.0.1 makes room for another from it.
  v4[0]!.close();
  await until("the close", () => server.connections === 3, 2000);
  const again = await client(server.port, "127.0.0.1");
  await again.send("ok\n");
  await again.waitBytes(2);
  expect(server.stats().rejected).toBe(1);
});

test("connectionBudget: one cap over two servers (one with hooks, one without); refused connections never reach the handler", async () => {
  const budget = { max: 3, live: 0 };
  const hooked = await recordingServer({ connectionBudget: budget });
  const plain = await createServer({ protocol: "lines", connectionBudget: budget, handler: { message: (conn, line: Uint8Array) => void conn.write(line.length + "\n") } });
  servers.push(plain);
  const a = [await client(hooked.server.port), await client(hooked.server.port)];
  const b = [await client(plain.port)];
  await until("three connections counted in the budget", () => budget.live === 3, 2000);
  const over = [await client(plain.port).catch(() => null), await client(hooked.server.port).catch(() => null)];
  await until("both connections over the budget to be refused", () => over.every((c) => c === null || c.closed), 3000);
  expect(budget.live).toBe(3);
  expect(hooked.server.stats().rejected + plain.stats().rejected).toBe(2);
  expect(hooked.opened.size).toBe(2); // the refused one never saw open
  expect(hooked.closed.size).toBe(0);
  // A close on one server makes room on the other.
  a[0]!.close();
  await until("the close to leave the budget", () => budget.live === 2, 2000);
  expect(hooked.closed.size).toBe(1);
  const late = await client(plain.port);
  await late.send("abcd\n");
  await late.waitBytes(2);
  expect(late.text()).toBe("4\n");
  expect(budget.live).toBe(3);
  expect(b[0]!.closed || a[1]!.closed).toBe(false);
  await plain.stop();
  await until("the plain server's connections to leave the budget", () => budget.live === 1, 2000);
  await expect(createServer({ connectionBudget: { max: 0, live: 0 }, handler: { message() {} } })).rejects.toThrow(/connectionBudget/);
  await expect(createServer({ connectionBudget: { max: 2 } as never, handler: { message() {} } })).rejects.toMatchObject({ code: "ERR_SERVER_OPTION" });
});

test("an oversized frame closes that connection with reason protocol; others keep working", async () => {
  const errors: string[] = [];
  const reasons: CloseReason[] = [];
  const server = await createServer({
    codec: lengthU16Codec,
    maxFrameBytes: 1000,
    handler: {
      message(conn, frame: Uint8Array) {
        conn.write(lengthU16Codec.encode(frame));
      },
      error(_c, e) {
        errors.push((e as { code?: string }).code ?? e.message);
      },
      close(_c, r) {
        reasons.push(r);
      },
    },
  });
  servers.push(server);
  const good = await client(server.port);
  const bad = await client(server.port);
  await good.send(lengthU16Codec.encode(new Uint8Array(1000).fill(1)));
  await good.waitBytes(1002);
  // Header says 5000 bytes: refused as soon as the header arrives, before any payload.
  await bad.send(new Uint8Array([0x13, 0x88, 1, 2, 3]));
  await bad.waitClosed(2000);
  expect(errors).toEqual(["ERR_FRAME_TOO_LARGE"]);
  expect(reasons).toEqual(["protocol"]);
  await good.send(lengthU16Codec.encode(new Uint8Array([7, 8, 9])));
  await good.waitBytes(1002 + 5);
  expect([...good.received().subarray(1002)]).toEqual([0, 3, 7, 8, 9]);
  expect(server.stats().closed.protocol).toBe(1);
});

test("garbage bytes: a malformed RESP request closes with protocol; a throwing handler closes with error", async () => {
  const reasons: CloseReason[] = [];
  const errors: string[] = [];
  const server = await createServer({
    protocol: "resp",
    handler: {
      message(conn, args: Uint8Array[]) {
        if (new TextDecoder().decode(args[0]) === "THROW") throw new Error("handler bug");
        conn.write("+OK\r\n");
      },
      error(_c, e) {
        errors.push((e as { code?: string }).code ?? e.message);
      },
      close(_c, r) {
        reasons.push(r);
      },
    },
  });
  servers.push(server);
  const good = await client(server.port);
  const garbage = await client(server.port);
  const thrower = await client(server.port);
  await garbage.send("*2\r\n$3\r\nGET\r\n$x\r\n");
  await garbage.waitClosed(2000);
  await thrower.send("*1\r\n$5\r\nTHROW\r\n");
  await thrower.waitClosed(2000);
  await good.send("*1\r\n$4\r\nPING\r\n");
  await good.waitBytes(5);
  expect(good.text()).toBe("+OK\r\n");
  expect(reasons).toEqual(["protocol", "error"]);
  expect(errors).toEqual(["ERR_FRAME_MALFORMED", "handler bug"]);
  const st = server.stats();
  expect(st.closed.protocol).toBe(1);
  expect(st.closed.error).toBe(1);
});

test("servers share one wheel: a server arriving later rebuilds it, and every deadline survives", async () => {
  // A (idle 400 ms) has a pending deadline when B (idle 150 ms) takes its first timer: B's
  // wheel ids lie past the wheel's capacity (and its tick may be finer), so the process-wide
  // wheel is rebuilt and A's deadline re-filed from A's stored activity times.
  const a = await recordingServer({ idleTimeoutMs: 400, tickMs: 50 });
  const ca = await client(a.server.port);
  const sentA = performance.now(); // before the reactor's read time (see the idle timeout test)
  await ca.send("a\n");
  await ca.waitBytes(2);
  const lagA = timerLateness(400 + 50);
  await Bun.sleep(100);
  const b = await recordingServer({ idleTimeoutMs: 150, tickMs: 10 });
  const cb = await client(b.server.port);
  const sentB = performance.now();
  await cb.send("b\n");
  await cb.waitBytes(2);
  const lagB = timerLateness(150 + 10);
  await cb.waitClosed(3000);
  await ca.waitClosed(3000);
  const [idA, closeA] = [...a.closed][0]!;
  const [idB, closeB] = [...b.closed][0]!;
  expect(closeA.reason).toBe("idle");
  expect(closeB.reason).toBe("idle");
  const lateA = closeA.at - a.lastRead.get(idA)! - 400;
  const lateB = closeB.at - b.lastRead.get(idB)! - 150;
  // Never early; late by at most the tick plus what a control timer was late by, plus slack.
  expect(closeA.at - sentA - 400).toBeGreaterThanOrEqual(-1);
  expect(lateA).toBeLessThan(50 + (await lagA) + 100);
  expect(closeB.at - sentB - 150).toBeGreaterThanOrEqual(-1);
  expect(lateB).toBeLessThan(10 + (await lagB) + 100);
});
