/**
 * src/pool's error contract, table-driven: every public entry point of the pool (Pool,
 * Channel, Histogram, the TCP and RESP clients, the registry) called with bad input or in a
 * refusing state. Each error must be instanceof MyriadError with its stable code and a message
 * that names the problem; a bad-argument error is a RangeError or TypeError too; a function
 * that returns a promise rejects and never throws; the same bad input gets the same answer
 * whatever state the pool or client is in. The clients talk to a real line server on loopback.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { type Codec, linesCodec } from "../src/codec/index.ts";
import { MyriadError } from "../src/errors.ts";
import {
  AcquireRejectedError,
  AcquireTimeoutError,
  Channel,
  ChannelClosedError,
  ClientRequestError,
  createRespClient,
  createTcpClient,
  Histogram,
  Pool,
  PoolOptionError,
  PoolRegistry,
  PoolReleaseError,
  type TcpClient,
} from "../src/pool/index.ts";
import { until } from "./helpers/until.ts";

type Kind = "RangeError" | "TypeError" | undefined;
interface Case {
  /** What is called, in words. */
  name: string;
  /** Returns a promise (must reject, never throw) or throws synchronously (a sync entry point). */
  call: () => unknown;
  /** "rejects" for promise-returning entry points, "throws" for synchronous ones. */
  how: "rejects" | "throws";
  cls: abstract new (...args: never[]) => Error;
  code: string;
  message: RegExp;
  /** Also instanceof RangeError or TypeError. */
  kind?: Kind;
}

/** Runs one case and checks class, code, message and how it was reported. */
async function check(c: Case): Promise<void> {
  let thrown: unknown = undefined;
  let result: unknown = undefined;
  let threw = false;
  try {
    result = c.call();
  } catch (err) {
    threw = true;
    thrown = err;
  }
  if (c.how === "rejects") {
    if (threw) throw new Error(`${c.name}: threw synchronously (${String(thrown)}); it returns a promise and must reject`);
    expect(result).toBeInstanceOf(Promise);
    thrown = await (result as Promise<unknown>).then(
      (v) => {
        throw new Error(`${c.name}: resolved ${String(v)}; expected a rejection with ${c.code}`);
      },
      (err: unknown) => err,
    );
  } else if (!threw) {
    throw new Error(`${c.name}: returned ${String(result)}; expected it to throw ${c.code}`);
  }
  const err = thrown as Error & { code?: string };
  expect({ case: c.name, myriad: err instanceof MyriadError, cls: err instanceof c.cls, code: err.code }).toEqual({
    case: c.name,
    myriad: true,
    cls: true,
    code: c.code,
  });
  expect(err.message).toMatch(c.message);
  if (c.kind === "RangeError") expect(err).toBeInstanceOf(RangeError);
  if (c.kind === "TypeError") expect(err).toBeInstanceOf(TypeError);
}

async function checkAll(cases: Case[]): Promise<void> {
  for (const c of cases) await check(c);
}

// A line server: "slow" lines are answered only when the test says so; others at once.
let server: TCPSocketListener<{ buf: string }>;
const slow: Socket<{ buf: string }>[] = [];
beforeAll(() => {
  server = Bun.listen<{ buf: string }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: "" };
      },
      data(s, chunk) {
        s.data.buf += chunk.toString();
        let nl: number;
        while ((nl = s.data.buf.indexOf("\n")) >= 0) {
          const line = s.data.buf.slice(0, nl);
          s.data.buf = s.data.buf.slice(nl + 1);
          if (line === "slow") slow.push(s);
          else s.write(`${line}\n`);
        }
      },
    },
  });
});
afterAll(() => server.stop(true));

const create = () => ({ id: Math.random() });

describe("Pool", () => {
  test("bad options and arguments, whatever the pool's state", async () => {
    await checkAll([
      { name: "new Pool(unknown option)", how: "throws", call: () => new Pool({ create, max: 1, maxSize: 2 } as never), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /unknown Pool option "maxSize"/, kind: "RangeError" },
      { name: "new Pool(no max)", how: "throws", call: () => new Pool({ create } as never), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /"max" is required/ },
      { name: "new Pool(min > max)", how: "throws", call: () => new Pool({ create, max: 1, min: 2 }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /min=2 is invalid/ },
      { name: "new Pool(options not an object)", how: "throws", call: () => new Pool(7 as never), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /Pool options must be an object, got 7/ },
    ]);
    const pool = new Pool({ create, max: 1, acquireTimeoutMs: 50 });
    const bad = (state: string): Case[] => [
      { name: `acquire({ timeoutMs: -1 }) ${state}`, how: "rejects", call: () => pool.acquire({ timeoutMs: -1 }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /acquire timeoutMs=-1 is invalid/, kind: "RangeError" },
      { name: `acquire({ timeoutMs: NaN }) ${state}`, how: "rejects", call: () => pool.acquire({ timeoutMs: Number.NaN }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /timeoutMs=NaN is invalid/ },
      { name: `acquire({ signal: "x" }) ${state}`, how: "rejects", call: () => pool.acquire({ signal: "x" as never }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /signal must be an AbortSignal/ },
      { name: `acquire(5) ${state}`, how: "rejects", call: () => pool.acquire(5 as never), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /acquire options must be an object/ },
      { name: `use("x") ${state}`, how: "rejects", call: () => pool.use("x" as never), cls: MyriadError, code: "ERR_POOL_OPTION", message: /use\(fn\) needs a function/, kind: "TypeError" },
      { name: `drain({ timeoutMs: -5 }) ${state}`, how: "rejects", call: () => pool.drain({ timeoutMs: -5 }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /drain timeoutMs=-5 is invalid/ },
      { name: `release(foreign) ${state}`, how: "throws", call: () => pool.release({ id: -1 }), cls: PoolReleaseError, code: "ERR_POOL_FOREIGN_RESOURCE", message: /did not lend/ },
      { name: `destroy(foreign) ${state}`, how: "rejects", call: () => pool.destroy({ id: -1 }), cls: PoolReleaseError, code: "ERR_POOL_FOREIGN_RESOURCE", message: /did not lend/ },
    ];
    await checkAll(bad("with nothing created"));
    const r = await pool.acquire();
    pool.release(r);
    expect(pool.stats().idle).toBe(1);
    await checkAll(bad("with a resource idle"));
    const held = await pool.acquire();
    await checkAll(bad("with every resource borrowed"));
    // The refused calls changed nothing.
    expect(pool.stats()).toMatchObject({ size: 1, borrowed: 1, idle: 0, waiting: 0, destroyed: 0 });
    pool.release(held);
    const drained = pool.drain();
    await checkAll(bad("while draining"));
    await drained;
  });

  test("refusals and timeouts", async () => {
    const pool = new Pool({ create, max: 1, maxWaiting: 1, acquireTimeoutMs: 30 });
    const held = await pool.acquire();
    const waiting = pool.acquire(); // takes the one waiting place
    const aborted = new AbortController();
    aborted.abort(new Error("caller gave up"));
    await checkAll([
      { name: "acquire() with maxWaiting reached", how: "rejects", call: () => pool.acquire(), cls: AcquireRejectedError, code: "ERR_POOL_QUEUE_FULL", message: /1 callers already waiting \(maxWaiting=1\)/ },
      { name: "acquire() with an aborted signal", how: "rejects", call: () => pool.acquire({ signal: aborted.signal }), cls: AcquireRejectedError, code: "ERR_POOL_ABORTED", message: /aborted by its signal/ },
    ]);
    await check({ name: "the waiter past acquireTimeoutMs", how: "rejects", call: () => waiting, cls: AcquireTimeoutError, code: "ERR_POOL_EXHAUSTED", message: /exhausted: no connection within acquireTimeoutMs=30 ms \(max=1: 1 borrowed/ });
    await check({ name: "acquire({ timeoutMs: 0 }) with none idle", how: "rejects", call: () => pool.acquire({ timeoutMs: 0 }), cls: AcquireTimeoutError, code: "ERR_POOL_EXHAUSTED", message: /acquireTimeoutMs=0 ms/ });
    pool.release(held);
    await check({ name: "release() twice", how: "throws", call: () => pool.release(held), cls: PoolReleaseError, code: "ERR_POOL_DOUBLE_RELEASE", message: /not borrowed/ });
    await pool.drain();
    await check({ name: "acquire() after drain", how: "rejects", call: () => pool.acquire(), cls: AcquireRejectedError, code: "ERR_POOL_CLOSED", message: /draining or drained/ });

    let n = 0;
    const failing = new Pool({ create: () => Promise.reject(new Error(`refused ${++n}`)), max: 1, acquireTimeoutMs: 40, createBackoffInitialMs: 1, createBackoffMaxMs: 5, failFastAfterCreateErrors: 2 });
    await check({ name: "acquire() while creates fail", how: "rejects", call: () => failing.acquire(), cls: AcquireTimeoutError, code: "ERR_POOL_UPSTREAM_FAILING", message: /upstream is failing: \d+ creates failed in a row, last: refused \d+/ });
    await until("the circuit to open", () => failing.stats().createErrors >= 2, 5_000);
    await check({ name: "acquire() with the circuit open", how: "rejects", call: () => failing.acquire(), cls: AcquireRejectedError, code: "ERR_POOL_CIRCUIT_OPEN", message: /creates failed in a row \(last: refused \d+\)/ });
    await failing.drain();
  });
});

describe("Channel and Histogram", () => {
  test("bad arguments and a closed channel", async () => {
    const ch = new Channel<number>(1);
    const bad = (state: string): Case[] => [
      { name: `push(1, -1) ${state}`, how: "rejects", call: () => ch.push(1, -1), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /Channel\.push timeoutMs=-1 is invalid/, kind: "RangeError" },
      { name: `pop("soon") ${state}`, how: "rejects", call: () => ch.pop("soon" as never), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /Channel\.pop timeoutMs="soon" is invalid/ },
    ];
    await checkAll([
      { name: "new Channel(0)", how: "throws", call: () => new Channel(0), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /capacity=0 is invalid/, kind: "RangeError" },
      { name: "new Histogram([5, 1])", how: "throws", call: () => new Histogram([5, 1]), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /strictly ascending/ },
      { name: "histogram.quantile(2)", how: "throws", call: () => new Histogram().quantile(2), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /q=2 is invalid/ },
      ...bad("empty"),
    ]);
    ch.tryPush(1);
    await checkAll(bad("full"));
    ch.close();
    await checkAll([
      ...bad("closed"),
      { name: "push() on a closed channel", how: "rejects", call: () => ch.push(2), cls: ChannelClosedError, code: "ERR_CHANNEL_CLOSED", message: /closed Channel/ },
      { name: "tryPush() on a closed channel", how: "throws", call: () => ch.tryPush(2), cls: ChannelClosedError, code: "ERR_CHANNEL_CLOSED", message: /closed Channel/ },
    ]);
    expect(await ch.pop()).toBe(1);
  });
});

describe("the TCP and RESP clients", () => {
  test("bad options to create a client", async () => {
    await checkAll([
      { name: "createTcpClient(port 0)", how: "throws", call: () => createTcpClient({ port: 0, codec: linesCodec }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /client option port=0 is invalid/, kind: "RangeError" },
      { name: "createTcpClient(requestTimeoutMs 0)", how: "throws", call: () => createTcpClient({ port: 1, codec: linesCodec, requestTimeoutMs: 0 }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /requestTimeoutMs=0 is invalid: expected milliseconds > 0/ },
      { name: "createTcpClient(pool.maxx)", how: "throws", call: () => createTcpClient({ port: 1, codec: linesCodec, pool: { maxx: 1 } as never }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /unknown client pool option "maxx"/ },
      { name: "createRespClient(codec)", how: "throws", call: () => createRespClient({ port: 1, codec: linesCodec } as never), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /unknown RESP client option "codec"/ },
      { name: "createRespClient(username without password)", how: "throws", call: () => createRespClient({ port: 1, username: "u" }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /username="u" is invalid: expected together with password/ },
      { name: "registry.register('')", how: "throws", call: () => new PoolRegistry().register("", { stats: () => ({}) as never }), cls: MyriadError, code: "ERR_APP_ARGUMENT", message: /name must be a non-empty string/, kind: "TypeError" },
    ]);
  });

  test("send() with bad options gets the same answer with a connection idle, none idle, or the client closed", async () => {
    const client: TcpClient<Uint8Array, string> = createTcpClient({ port: server.port, codec: linesCodec, pool: { max: 1 }, maxInFlightPerConnection: 1 });
    const bad = (state: string): Case[] => [
      { name: `send(m, { timeoutMs: -1 }) ${state}`, how: "rejects", call: () => client.send("m", { timeoutMs: -1 }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /send timeoutMs=-1 is invalid/, kind: "RangeError" },
      { name: `send(m, 3) ${state}`, how: "rejects", call: () => client.send("m", 3 as never), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /send options must be an object/ },
      { name: `send("a\\nb") ${state}`, how: "rejects", call: () => client.send("a\nb"), cls: MyriadError, code: "ERR_CODEC_ENCODE", message: /may not contain/, kind: "RangeError" },
      { name: `close({ timeoutMs: -1 }) ${state}`, how: "rejects", call: () => client.close({ timeoutMs: -1 }), cls: PoolOptionError, code: "ERR_POOL_OPTION", message: /close timeoutMs=-1 is invalid/ },
    ];
    await checkAll(bad("before any connection"));
    expect(new TextDecoder().decode(await client.send("hello"))).toBe("hello");
    expect(client.stats().pool.idle).toBe(1);
    await checkAll(bad("with a connection idle"));
    const pending = client.send("slow"); // the only connection is full and held by the client
    await until("the slow request to reach the server", () => slow.length === 1, 5_000);
    expect(client.stats().pool).toMatchObject({ idle: 0, borrowed: 1 });
    await checkAll(bad("with no connection idle"));
    expect(client.closed).toBe(false); // the refused close() did not start closing
    slow.shift()!.write("slow\n");
    expect(new TextDecoder().decode(await pending)).toBe("slow");
    await client.close();
    await checkAll([
      ...bad("after close()"),
      { name: "send() after close()", how: "rejects", call: () => client.send("m"), cls: ClientRequestError, code: "ERR_CLIENT_CLOSED", message: /is closed; create a new one/ },
    ]);
    // Every send() is counted once, as what became of it.
    const s = client.stats();
    expect(s.requests).toBe(s.replies + s.timeouts + s.connectionErrors + s.refused);
  });

  test("a user codec that throws a plain Error: the client rejects with CodecEncodeError, the cause kept", async () => {
    const plain = new Error("no such message");
    const codec: Codec<Uint8Array, string> = {
      ...linesCodec,
      name: "picky",
      encode(m: string) {
        if (m === "bad") throw plain;
        return linesCodec.encode(m);
      },
    } as Codec<Uint8Array, string>;
    const client = createTcpClient({ port: server.port, codec });
    try {
      await check({ name: "send(bad) through a user codec", how: "rejects", call: () => client.send("bad"), cls: MyriadError, code: "ERR_CODEC_ENCODE", message: /codec "picky" cannot encode this message: no such message/ });
      expect(((await client.send("bad").catch((e) => e)) as Error).cause).toBe(plain);
      expect(new TextDecoder().decode(await client.send("fine"))).toBe("fine");
    } finally {
      await client.close();
    }
  });

  test("errors while a request is out: connect refused, timeout, connection dropped", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const deadPort = probe.port;
    probe.stop(true);
    const dead = createTcpClient({ port: deadPort, codec: linesCodec, requestTimeoutMs: 200, pool: { createBackoffMaxMs: 20 } });
    const quiet = createTcpClient({ port: server.port, codec: linesCodec, requestTimeoutMs: 5_000 });
    try {
      const refused = (await dead.send("x").catch((e) => e)) as Error & { cause?: Error & { code?: string } };
      expect(refused).toBeInstanceOf(MyriadError);
      expect(["ERR_POOL_UPSTREAM_FAILING", "ERR_POOL_CIRCUIT_OPEN"]).toContain(String((refused as { code?: string }).code));
      expect(refused.cause).toBeInstanceOf(ClientRequestError);
      expect(refused.cause?.code).toBe("ERR_CONNECT");
      await check({ name: "send(slow, { timeoutMs: 50 })", how: "rejects", call: () => quiet.send("slow", { timeoutMs: 50 }), cls: ClientRequestError, code: "ERR_REQUEST_TIMEOUT", message: /no reply from 127\.0\.0\.1:\d+ within the request's timeout/ });
      const inFlight = quiet.send("slow");
      await until("the second slow request to reach the server", () => slow.length === 2, 5_000);
      for (const s of slow.splice(0)) s.terminate();
      await check({ name: "a request whose connection drops", how: "rejects", call: () => inFlight, cls: ClientRequestError, code: "ERR_CONNECTION_CLOSED", message: /closed with 1 request\(s\) unanswered/ });
    } finally {
      await Promise.all([dead.close(), quiet.close()]);
    }
  });
});
