/**
 * The pooled pipelining TCP client with non-RESP codecs, against small real servers on
 * loopback (Bun.listen) that misbehave on purpose: drop connections mid-pipeline, send
 * garbage, stop reading, refuse connections.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { linesCodec, respReplyCodec } from "../src/codec/index.ts";
import { createTcpClient, PoolOptionError, type TcpClient } from "../src/pool/index.ts";
import { freePort } from "./helpers/ports.ts";
import { settledBeforeTimers, timerLateness } from "./helpers/timing.ts";
import { until } from "./helpers/until.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

type ServerState = { buf: string; seen: number };

/** A line server: `reply(line, n, socket)` answers the n-th line of a connection (return undefined for no answer). */
function lineServer(reply: (line: string, n: number, s: Socket<ServerState>) => string | undefined | null): TCPSocketListener<ServerState> {
  return Bun.listen<ServerState>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: "", seen: 0 };
      },
      data(s, chunk) {
        s.data.buf += chunk.toString();
        let nl: number;
        let out = "";
        while ((nl = s.data.buf.indexOf("\n")) >= 0) {
          const line = s.data.buf.slice(0, nl);
          s.data.buf = s.data.buf.slice(nl + 1);
          const r = reply(line, ++s.data.seen, s);
          if (r === null) {
            if (out) s.write(out);
            s.terminate();
            return;
          }
          if (r !== undefined) out += `${r}\n`;
        }
        if (out) s.write(out);
      },
    },
  });
}

const open: { close(options?: { timeoutMs?: number }): Promise<void> }[] = [];
const servers: TCPSocketListener<any>[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close({ timeoutMs: 1_000 })));
  for (const s of servers.splice(0)) s.stop(true);
});
function track<T extends TcpClient<any, any>>(c: T): T {
  open.push(c);
  return c;
}

describe("pipelining with the lines codec", () => {
  test("replies are matched to requests in order, many in flight per connection", async () => {
    const server = lineServer((line) => `echo:${line}`);
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 2 } }));
    let peak = 0;
    const replies = await Promise.all(
      Array.from({ length: 2_000 }, async (_, i) => {
        const r = await client.send(`m${i}`);
        peak = Math.max(peak, client.inFlight);
        return text(r);
      }),
    );
    expect(replies).toEqual(Array.from({ length: 2_000 }, (_, i) => `echo:m${i}`));
    expect(client.connections).toBeLessThanOrEqual(2);
    expect(peak).toBeGreaterThan(2);
    expect(client.stats()).toMatchObject({ requests: 2_000, replies: 2_000, inFlight: 0 });
  });

  test("a full pipeline spills onto the next connection, then callers queue in the pool", async () => {
    const server = lineServer((line) => line);
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 3 }, maxInFlightPerConnection: 4 }));
    const all = Array.from({ length: 30 }, (_, i) => client.send(String(i)));
    // 3 connections x depth 4 in flight; the other 18 wait for room.
    await until("callers waiting in the pool", () => client.stats().pool.waiting > 0);
    const got = (await Promise.all(all)).map(text);
    expect(got).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
    expect(client.stats().pool.created).toBe(3);
  });
});

describe("a connection that drops", () => {
  test("fails exactly its unanswered requests; the pool replaces it", async () => {
    // Answers 3 lines, then closes the connection when the 4th arrives.
    const server = lineServer((line, n) => (n <= 3 ? `ok:${line}` : null));
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 1 } }));
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.send(`r${i}`)));
    const fulfilled = results.filter((r) => r.status === "fulfilled").map((r) => text((r as PromiseFulfilledResult<Uint8Array>).value));
    const rejected = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
    expect(fulfilled).toEqual(["ok:r0", "ok:r1", "ok:r2"]);
    expect(rejected).toHaveLength(7);
    for (const e of rejected) {
      expect(e.code).toBe("ERR_CONNECTION_CLOSED");
      expect(e.message).toMatch(/closed with 7 request\(s\) unanswered/);
    }
    expect(client.stats().connectionErrors).toBe(7);
    // A fresh connection serves the next request.
    expect(text(await client.send("again"))).toBe("ok:again");
    expect(client.stats().pool).toMatchObject({ created: 2, destroyed: 1 });
  });

  test("garbage from the peer is a protocol error that closes only that connection", async () => {
    let conns = 0;
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open() {
          conns++;
        },
        data(s, chunk) {
          const cmd = chunk.toString();
          s.write(cmd.includes("BAD") ? "?what\r\n" : "+OK\r\n");
        },
      },
    });
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: respReplyCodec, pool: { max: 1 } }));
    expect(await client.send(["PING"])).toBe("OK");
    const err = await client.send(["BAD"]).catch((e) => e);
    expect(err.code).toBe("ERR_PROTOCOL");
    expect(err.message).toMatch(/not a valid resp-reply reply/);
    expect(await client.send(["PING"])).toBe("OK");
    expect(conns).toBe(2);
  });

  test("a reply larger than maxFrameBytes is refused", async () => {
    const server = lineServer(() => "x".repeat(5_000));
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, maxFrameBytes: 1_000 }));
    await expect(client.send("hi")).rejects.toMatchObject({ code: "ERR_PROTOCOL", message: expect.stringMatching(/exceeds maxFrameBytes=1000/) });
  });
});

describe("sendWith: callbacks instead of a Promise", () => {
  /** Sends `messages` with sendWith; each outcome recorded once, and whether it came from inside the call. */
  function sendAll(client: TcpClient<Uint8Array, string>, messages: string[], many = false) {
    const outcomes: (string | { code: string })[] = new Array(messages.length);
    let settled = 0;
    let inside = false;
    let calledInside = 0;
    let twice = 0;
    const oks: ((reply: Uint8Array) => void)[] = [];
    const fails: ((err: Error) => void)[] = [];
    messages.forEach((m, i) => {
      const record = (v: string | { code: string }) => {
        if (inside) calledInside++;
        if (outcomes[i] !== undefined) twice++;
        outcomes[i] = v;
        settled++;
      };
      oks.push((reply) => record(text(reply)));
      fails.push((err) => record({ code: (err as Error & { code?: string }).code ?? String(err) }));
      if (!many) {
        inside = true;
        client.sendWith(m, oks[i]!, fails[i]!);
        inside = false;
      }
    });
    if (many) {
      inside = true;
      client.sendManyWith(messages, oks, fails, messages.length);
      inside = false;
    }
    return { outcomes, settled: () => settled, calledInside: () => calledInside, twice: () => twice };
  }

  test("replies in order, also for senders that waited for room; a closed client refuses later", async () => {
    const server = lineServer((line) => `echo:${line}`);
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 2 }, maxInFlightPerConnection: 4 }));
    const messages = Array.from({ length: 50 }, (_, i) => `m${i}`);
    const r = sendAll(client, messages);
    // 2 connections x depth 4: the rest waited in the pool for room.
    expect(client.stats().pool.waiting).toBeGreaterThan(0);
    await until(() => `50 settled (${r.settled()})`, () => r.settled() === 50);
    expect(r.outcomes).toEqual(messages.map((m) => `echo:${m}`));
    expect(r.calledInside()).toBe(0);
    expect(r.twice()).toBe(0);
    expect(client.stats()).toMatchObject({ requests: 50, replies: 50, inFlight: 0 });
    await client.close();
    const late = sendAll(client, ["late"]);
    await until(() => `the late send settled (${late.settled()})`, () => late.settled() === 1);
    expect(late.outcomes).toEqual([{ code: "ERR_CLIENT_CLOSED" }]);
    expect(late.calledInside()).toBe(0);
  });

  test("sendManyWith: one borrow of a free connection for as many as it takes, the rest wait their turn, all in order", async () => {
    const server = lineServer((line) => `echo:${line}`);
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 2 }, maxInFlightPerConnection: 8 }));
    expect(text(await client.send("warm"))).toBe("echo:warm"); // one idle connection
    const acquired = client.stats().pool.acquired;
    const few = sendAll(client, ["a", "b", "c", "d", "e"], true);
    expect(client.stats().pool.acquired - acquired).toBe(1);
    await until(() => `5 settled (${few.settled()})`, () => few.settled() === 5);
    expect(few.outcomes).toEqual(["echo:a", "echo:b", "echo:c", "echo:d", "echo:e"]);
    // More than the idle connection has room for: 8 on it, the rest wait for room or the second connection.
    const messages = Array.from({ length: 60 }, (_, i) => `m${i}`);
    const r = sendAll(client, messages, true);
    expect(client.stats().pool.waiting).toBeGreaterThan(0);
    await until(() => `60 settled (${r.settled()})`, () => r.settled() === 60);
    expect(r.outcomes).toEqual(messages.map((m) => `echo:${m}`));
    expect(r.calledInside() + r.twice() + few.calledInside() + few.twice()).toBe(0);
    expect(client.stats()).toMatchObject({ requests: 66, replies: 66, inFlight: 0 });
  });

  test("a callback that throws is reported; the requests around it get their own replies, the connection stays", async () => {
    const server = lineServer((line) => `echo:${line}`);
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 1 }, requestTimeoutMs: 5_000 }));
    const logged: unknown[][] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      const got: string[] = [];
      const fails: string[] = [];
      const fail = (err: Error) => fails.push((err as Error & { code?: string }).code ?? String(err));
      // One write out, one read back: b's reply is decoded between a's and c's in the same read.
      client.sendWith("a", (r) => got.push(text(r)), fail);
      client.sendWith("b", () => {
        throw new Error("the caller's bug");
      }, fail);
      client.sendWith("c", (r) => got.push(text(r)), fail);
      await until(() => `a and c answered (${got.join(",")}; failed ${fails.join(",")})`, () => got.length + fails.length >= 2);
      client.sendWith("d", (r) => got.push(text(r)), fail);
      await until(() => `d answered (${got.join(",")})`, () => got.length + fails.length >= 3);
      expect({ got, fails }).toEqual({ got: ["echo:a", "echo:c", "echo:d"], fails: [] });
      expect(logged.length).toBe(1);
      expect(String(logged[0]![0])).toContain("callback");
      expect(String(logged[0]![1])).toContain("the caller's bug");
      expect(client.stats()).toMatchObject({ requests: 4, replies: 4, inFlight: 0, connectionErrors: 0 });
    } finally {
      console.error = consoleError;
    }
  });

  test("a connection that drops fails exactly its unanswered requests, once each", async () => {
    const server = lineServer((line, n) => (n <= 3 ? `ok:${line}` : null));
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 1 } }));
    const r = sendAll(
      client,
      Array.from({ length: 10 }, (_, i) => `r${i}`),
    );
    await until(() => `10 settled (${r.settled()})`, () => r.settled() === 10);
    expect(r.outcomes).toEqual(["ok:r0", "ok:r1", "ok:r2", ...Array.from({ length: 7 }, () => ({ code: "ERR_CONNECTION_CLOSED" }))]);
    expect(r.twice()).toBe(0);
    expect(client.stats()).toMatchObject({ replies: 3, connectionErrors: 7, inFlight: 0 });
  });
});

describe("backpressure and timeouts", () => {
  test("a peer that stops reading: the connection stops taking requests until drain, nothing is lost", async () => {
    let paused: Socket<ServerState> | undefined;
    const server = Bun.listen<ServerState>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { buf: "", seen: 0 };
          paused = s;
          s.pause();
        },
        data(s, chunk) {
          s.data.buf += chunk.toString();
          let nl: number;
          let out = "";
          while ((nl = s.data.buf.indexOf("\n")) >= 0) {
            out += `${s.data.buf.slice(0, 16)}\n`;
            s.data.buf = s.data.buf.slice(nl + 1);
          }
          if (out) s.write(out);
        },
      },
    });
    servers.push(server);
    const client = track(
      createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 1 }, maxWriteBufferBytes: 256 << 10, requestTimeoutMs: 20_000 }),
    );
    const payload = (i: number) => `${String(i).padStart(16, "0")}${"y".repeat(256 << 10)}`;
    const all = Array.from({ length: 40 }, (_, i) => client.send(payload(i)));
    // The kernel buffers fill, the write buffer passes its limit, the connection is held.
    await until(
      () => `the connection held with callers waiting (${JSON.stringify(client.stats().pool)})`,
      () => client.stats().pool.borrowed === 1 && client.stats().pool.waiting > 0,
      5_000,
    );
    expect(client.stats().pool).toMatchObject({ size: 1, borrowed: 1 });
    const stuck = client.inFlight;
    await Bun.sleep(50);
    expect(client.inFlight).toBe(stuck); // nothing more is piled onto the held connection
    paused!.resume();
    const got = (await Promise.all(all)).map(text);
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => String(i).padStart(16, "0")));
  });

  test("no reply: the request times out, the silent connection is retired", async () => {
    const server = lineServer((line) => (line === "silence" ? undefined : line));
    servers.push(server);
    const client = track(createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 1 }, requestTimeoutMs: 150 }));
    const t0 = performance.now();
    const err = await client.send("silence").catch((e) => e);
    expect(err.code).toBe("ERR_REQUEST_TIMEOUT");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
    expect(text(await client.send("hello"))).toBe("hello");
    expect(client.stats()).toMatchObject({ timeouts: 1, pool: { created: 2 } });
  });
});

describe("connect failures and close", () => {
  test("nothing listening: sends fail with the connect error within their timeout, then fail fast", async () => {
    const port = freePort();
    const client = track(createTcpClient({ port, codec: linesCodec, requestTimeoutMs: 300, pool: { createBackoffMaxMs: 50 } }));
    const t0 = performance.now();
    const control = timerLateness(300);
    const err = await client.send("x").catch((e) => e);
    const elapsed = performance.now() - t0;
    expect(err.code).toBe("ERR_POOL_UPSTREAM_FAILING");
    expect(err.cause.code).toBe("ERR_CONNECT");
    expect(err.cause.message).toMatch(/cannot connect to 127\.0\.0\.1:\d+/);
    // Within its 300 ms timeout, late by no more than a timer of 300 ms started with it (plus 100 ms).
    expect(elapsed).toBeLessThan(300 + (await control) + 100);
    // At once (settled before any timer could fire), not after the 300 ms timeout.
    const fast = await settledBeforeTimers(client.send("y"));
    expect(fast).toMatchObject({ code: "ERR_POOL_CIRCUIT_OPEN" });
  });

  test("close(): in-flight requests get their replies, later sends are refused, sockets closed", async () => {
    let closedOnServer = 0;
    const server = Bun.listen<ServerState>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { buf: "", seen: 0 };
        },
        data(s, chunk) {
          // Slow server: answer after 50 ms.
          const lines = chunk.toString().split("\n").filter(Boolean);
          setTimeout(() => s.write(lines.map((l) => `${l}\n`).join("")), 50);
        },
        close() {
          closedOnServer++;
        },
      },
    });
    servers.push(server);
    const client = createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 2 }, maxInFlightPerConnection: 2 });
    const inflight = [client.send("a"), client.send("b"), client.send("c"), client.send("d")];
    const queued = client.send("e"); // both connections full: waits in the pool
    await until(
      () => `4 requests in flight and one caller waiting (${client.inFlight}, ${client.stats().pool.waiting})`,
      () => client.inFlight === 4 && client.stats().pool.waiting === 1,
    );
    const closing = client.close();
    await expect(client.send("late")).rejects.toMatchObject({ code: "ERR_CLIENT_CLOSED" });
    await expect(queued).rejects.toMatchObject({ code: "ERR_POOL_CLOSED" });
    expect((await Promise.all(inflight)).map(text)).toEqual(["a", "b", "c", "d"]);
    await closing;
    expect(client.connections).toBe(0);
    // The server sees the FINs on a later loop turn.
    await until(() => `the server to see 2 closes (${closedOnServer})`, () => closedOnServer >= 2, 2_000);
    await Bun.sleep(20); // a window for a third close to show up (there is nothing to poll for)
    expect(closedOnServer).toBe(2);
  });

  test("options are validated", () => {
    expect(() => createTcpClient({ port: 1, codec: linesCodec, maxInFlightPerConnection: 0 })).toThrow(PoolOptionError);
    expect(() => createTcpClient({ port: 1, codec: {} as never })).toThrow(/codec=\{\} is invalid: expected a Codec from src\/codec/);
    expect(() => createTcpClient({ port: 1, codec: linesCodec, requestTimeoutMs: -5 })).toThrow(/requestTimeoutMs=-5 is invalid/);
    expect(() => createTcpClient({ port: 1, codec: linesCodec, pool: { maxx: 1 } as never })).toThrow(/unknown client pool option "maxx"/);
  });
});
