/**
 * The error contract (src/errors.ts), as one table: every public entry point called with bad
 * input, and what must come out — the class (MyriadError always; RangeError / TypeError for
 * bad arguments; the folder's own class where it has one), the stable code, and a message
 * that names what was wrong. A promise-returning entry point must reject, never throw, and
 * the pool's and clients' must answer the same bad input the same way in every state (with
 * an idle connection and without one; before and during drain).
 *
 * Real parts only: the clients talk to a myriad server on loopback; the cluster and load
 * rows are refused before any process is spawned.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  Channel,
  ChannelClosedError,
  CodecEncodeError,
  ConnTable,
  ListenError,
  MYRIAD_ERROR_CODES,
  MyriadError,
  MyriadRangeError,
  MyriadTypeError,
  Pool,
  PoolOptionError,
  PoolReleaseError,
  SegmentPool,
  SegmentRefError,
  ServerOptionError,
  TimerRangeError,
  TimerReentrancyError,
  TimerTypeError,
  TimingWheel,
  UnknownCodecError,
  WebSocketHeaderError,
  codecByName,
  headerLines,
  createRespClient,
  createServer,
  createTcpClient,
  encodeRespCommand,
  encodeRespCommands,
  isMyriadError,
  lengthU16Codec,
  lengthU32Codec,
  linesCodec,
  resp,
  type MyriadErrorCode,
  type Server,
  type TcpClient,
  type RespClient,
} from "../src/index.ts";
import { AcquireRejectedError, ClientRequestError, PoolRegistry } from "../src/pool/index.ts";
import { ExpiryIndex, KvStore, createEchoApp, createKvApp, loadModuleApp } from "../src/apps/index.ts";
import { FlagError, defineCommand } from "../src/config/index.ts";
import { ClusterError, parsePorts, resolveWorkers, runCluster } from "../src/cluster/index.ts";
import { planWorkers } from "../src/system/index.ts";
import { createAdminApp, serverSource, startAdminServer, type AdminServer } from "../src/admin/index.ts";
import { BusError, createRedisBus, parseBusUrl } from "../src/bus/index.ts";
import { ProxyConfigError, parseProxyConfig, readProxyConfig } from "../src/proxy/index.ts";
import { LoadEngine, LoadError, LogHistogram, TargetSpecError, parseAddresses, parseTargets, resolveSources, startLoad } from "../src/loadgen/index.ts";

type Class = abstract new (...args: never[]) => unknown;

interface Row {
  /** "<entry point>: <the bad input>". */
  name: string;
  call: () => unknown;
  /** The call returns a promise that must reject (and must not throw). */
  rejects?: true;
  /** Classes the error must be an instance of, besides MyriadError. */
  is: Class[];
  code: MyriadErrorCode;
  message: RegExp;
}

// ---- what the rows run against: real servers on loopback, made once -------------------------

const FIXTURE_APPS = join(import.meta.dir, "fixtures", "bad-apps.ts");
let lineServer: Server;
let kvServer: Server;
let kvStop: () => void;
/** A lines client that has sent one request, so it holds an idle connection. */
let warmLines: TcpClient<Uint8Array, Uint8Array | string>;
/** A RESP client in the same state. */
let warmResp: RespClient;
let admin: AdminServer;
const toClose: Array<() => unknown> = [];

const statsSource = {
  snapshot: () => ({ workers: [], pools: [] }),
  isAccepting: () => true,
  stop: async () => {},
};

beforeAll(async () => {
  lineServer = await createServer({ hostname: "127.0.0.1", port: 0, protocol: "lines", handler: createEchoApp({ protocol: "lines" }).handler });
  const kv = createKvApp();
  kvStop = () => kv.close();
  kvServer = await createServer({ hostname: "127.0.0.1", port: 0, protocol: "resp", handler: kv.handler });
  warmLines = createTcpClient({ port: lineServer.port, codec: linesCodec });
  expect(new TextDecoder().decode(await warmLines.send("hello"))).toBe("hello");
  warmResp = createRespClient({ port: kvServer.port, pool: { max: 1 } });
  expect(await warmResp.send(["PING"])).toBe("PONG");
  admin = await startAdminServer({ source: statsSource, port: 0 });
});

afterAll(async () => {
  for (const close of toClose) await close();
  await warmLines?.close();
  await warmResp?.close();
  await admin?.stop();
  await lineServer?.stop({ graceful: false });
  await kvServer?.stop({ graceful: false });
  kvStop?.();
});

/** A client that has never connected: no idle connection to take. */
function coldLines(): TcpClient<Uint8Array, Uint8Array | string> {
  const c = createTcpClient({ port: lineServer.port, codec: linesCodec });
  toClose.push(() => c.close());
  return c;
}

function coldResp(): RespClient {
  const c = createRespClient({ port: kvServer.port, pool: { max: 1 } });
  toClose.push(() => c.close());
  return c;
}

function newPool(): Pool<{ n: number }> {
  let n = 0;
  const p = new Pool<{ n: number }>({ create: async () => ({ n: n++ }), max: 2 });
  toClose.push(() => p.drain({ timeoutMs: 0 }));
  return p;
}

/** A pool with one idle resource. */
async function idlePool(): Promise<Pool<{ n: number }>> {
  const p = newPool();
  p.release(await p.acquire());
  return p;
}

const demo = defineCommand({
  name: "demo",
  summary: "A command for the error table.",
  flags: {
    port: { type: "int", default: 6380, min: 0, max: 65535, help: "TCP port" },
    name: { type: "string", required: true, help: "a name" },
  },
});

// ---- the table --------------------------------------------------------------------------------

const rows: Row[] = [
  // src/timers
  { name: "new TimingWheel: capacity 0", call: () => new TimingWheel({ capacity: 0 }), is: [TimerRangeError, RangeError], code: "ERR_TIMER_OPTIONS", message: /capacity must be an integer in \[1, \d+\]/ },
  { name: "new TimingWheel: tickMs 0.5", call: () => new TimingWheel({ capacity: 4, tickMs: 0.5 }), is: [TimerRangeError, RangeError], code: "ERR_TIMER_OPTIONS", message: /tickMs must be an integer/ },
  { name: "new TimingWheel: no options", call: () => new TimingWheel(null as never), is: [TimerTypeError, TypeError], code: "ERR_TIMER_TYPE", message: /options must be an object/ },
  { name: "wheel.schedule: id -1", call: () => new TimingWheel({ capacity: 4 }).schedule(-1, 10), is: [TimerRangeError, RangeError], code: "ERR_TIMER_ID", message: /id/ },
  { name: "wheel.schedule: id = capacity", call: () => new TimingWheel({ capacity: 4 }).schedule(4, 10), is: [TimerRangeError], code: "ERR_TIMER_ID", message: /id must be an integer in \[0, 3\] \(capacity 4\), got 4/ },
  { name: "wheel.schedule: delay NaN", call: () => new TimingWheel({ capacity: 4 }).schedule(0, NaN), is: [TimerRangeError, RangeError], code: "ERR_TIMER_DELAY", message: /delayMs/ },
  { name: "wheel.cancel: id 1.5", call: () => new TimingWheel({ capacity: 4 }).cancel(1.5), is: [TimerRangeError], code: "ERR_TIMER_ID", message: /1\.5/ },
  { name: "wheel.advance: back in time", call: () => new TimingWheel({ capacity: 4, startMs: 100 }).advance(50, () => {}), is: [TimerRangeError, RangeError], code: "ERR_TIMER_TIME", message: /nowMs/ },
  { name: "wheel.advance: onExpire not a function", call: () => new TimingWheel({ capacity: 4 }).advance(10, "x" as never), is: [TimerTypeError, TypeError], code: "ERR_TIMER_TYPE", message: /onExpire/ },
  {
    name: "wheel.advance: from inside its own callback",
    call: () => {
      const w = new TimingWheel({ capacity: 4, tickMs: 1 });
      w.schedule(0, 1);
      w.advance(10, () => w.advance(20, () => {}));
    },
    is: [TimerReentrancyError],
    code: "ERR_TIMER_REENTRANT",
    message: /inside an onExpire callback/,
  },

  // src/conn-table
  { name: "new ConnTable: capacity 0", call: () => new ConnTable(0), is: [RangeError, MyriadRangeError], code: "ERR_CONN_TABLE_OPTION", message: /capacity must be an integer in 1\.\.1048576/ },
  { name: "new ConnTable: capacity 2^20 + 1", call: () => new ConnTable(2 ** 20 + 1), is: [RangeError], code: "ERR_CONN_TABLE_OPTION", message: /run more processes/ },
  { name: "new SegmentPool: maxSegments -1", call: () => new SegmentPool({ maxSegments: -1 }), is: [RangeError], code: "ERR_SEGMENT_POOL_OPTION", message: /maxSegments must be an integer/ },
  { name: "new SegmentPool: segmentBytes 0", call: () => new SegmentPool({ maxSegments: 4, segmentBytes: 0 }), is: [RangeError], code: "ERR_SEGMENT_POOL_OPTION", message: /segmentBytes/ },
  { name: "new SegmentPool: no options", call: () => new SegmentPool(undefined as never), is: [TypeError, MyriadTypeError], code: "ERR_SEGMENT_POOL_OPTION", message: /options must be an object/ },
  { name: "segmentPool.acquire: -1 bytes", call: () => new SegmentPool({ maxSegments: 4 }).acquire(-1), is: [RangeError], code: "ERR_SEGMENT_POOL_OPTION", message: /minBytes/ },
  {
    name: "segmentPool.grow: usedBytes over the ref's capacity",
    call: () => {
      const p = new SegmentPool({ maxSegments: 4, segmentBytes: 64 });
      p.grow(p.acquire(10), 65, 100);
    },
    is: [RangeError],
    code: "ERR_SEGMENT_POOL_OPTION",
    message: /usedBytes/,
  },
  {
    name: "segmentPool.release: twice",
    call: () => {
      const p = new SegmentPool({ maxSegments: 4 });
      const ref = p.acquire(10);
      p.release(ref);
      p.release(ref);
    },
    is: [SegmentRefError],
    code: "ERR_SEGMENT_REF",
    message: /is not in use/,
  },

  // src/codec
  { name: "codecByName: unknown name", call: () => codecByName("morse"), is: [UnknownCodecError], code: "ERR_UNKNOWN_CODEC", message: /unknown codec "morse": choose one of raw, lines/ },
  { name: "headerLines: a header name with a space", call: () => headerLines({ "Bad Name": "x" }), is: [WebSocketHeaderError], code: "ERR_WEBSOCKET_HEADER", message: /not an HTTP token/ },
  { name: "headerLines: CR/LF in a value", call: () => headerLines({ "X-Id": "a\r\nSet-Cookie: x" }), is: [WebSocketHeaderError], code: "ERR_WEBSOCKET_HEADER", message: /without CR, LF or NUL/ },
  { name: "resp.integer: 1.5", call: () => resp.integer(1.5), is: [CodecEncodeError, RangeError], code: "ERR_CODEC_ENCODE", message: /resp\.bulk\(String\(n\)\)/ },
  { name: "resp.integer: NaN", call: () => resp.integer(NaN), is: [CodecEncodeError, RangeError], code: "ERR_CODEC_ENCODE", message: /whole numbers/ },
  { name: "resp.integer: a string", call: () => resp.integer("3" as never), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /resp\.integer: takes a number/ },
  { name: "resp.bulk: a number", call: () => resp.bulk(42 as never), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /resp\.bulk: takes a string or Uint8Array, got 42/ },
  { name: "resp.bulkOrNull: an object", call: () => resp.bulkOrNull({} as never), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /resp\.bulk: takes a string or Uint8Array/ },
  { name: "resp.simple: undefined", call: () => resp.simple(undefined as never), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /resp\.simple: takes a string/ },
  { name: "resp.error: a number", call: () => resp.error(7 as never), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /resp\.error: takes a string/ },
  { name: "resp.array: an item that is not encoded", call: () => resp.array([resp.ok, "x" as never]), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /resp\.array: takes an array of encoded replies/ },
  { name: "resp.bulkArray: an object entry", call: () => resp.bulkArray(["a", {} as never]), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /resp\.bulkArray/ },
  { name: "linesCodec.encode: a newline", call: () => linesCodec.encode("a\nb"), is: [CodecEncodeError, RangeError], code: "ERR_CODEC_ENCODE", message: /may not contain "\\n"/ },
  { name: "linesCodec.encode: a number", call: () => linesCodec.encode(42 as never), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /lines codec: encode takes a string or a Uint8Array/ },
  { name: "lengthU16Codec.encode: 65536 bytes", call: () => lengthU16Codec.encode(new Uint8Array(65536)), is: [CodecEncodeError], code: "ERR_CODEC_ENCODE", message: /65535-byte limit.*length-u32/ },
  { name: "lengthU32Codec.encode: a string", call: () => lengthU32Codec.encode("x" as never), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /length-u32 codec: encode takes a Uint8Array/ },
  { name: "encodeRespCommand: empty", call: () => encodeRespCommand([]), is: [CodecEncodeError], code: "ERR_CODEC_ENCODE", message: /RESP command is empty/ },
  { name: "encodeRespCommand: an object word", call: () => encodeRespCommand(["SET", {} as never]), is: [CodecEncodeError], code: "ERR_CODEC_ENCODE", message: /word 1 is object/ },
  { name: "encodeRespCommand: a string", call: () => encodeRespCommand("GET k" as never), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /an array of words/ },
  { name: "encodeRespCommands: a null command", call: () => encodeRespCommands([["PING"], null as never]), is: [TypeError], code: "ERR_CODEC_ENCODE", message: /got null/ },

  // src/reactor
  { name: "createServer: port -1", call: () => createServer({ port: -1, handler: { message() {} } }), rejects: true, is: [ServerOptionError], code: "ERR_SERVER_OPTION", message: /option port: .*0\.\.65535/ },
  { name: "createServer: no options", call: () => createServer(null as never), rejects: true, is: [ServerOptionError], code: "ERR_SERVER_OPTION", message: /expected an object/ },
  { name: "createServer: handler without message", call: () => createServer({ port: 0, handler: {} as never }), rejects: true, is: [ServerOptionError], code: "ERR_SERVER_OPTION", message: /handler/ },
  { name: "createServer: unknown option", call: () => createServer({ port: 0, handler: { message() {} }, idleTimeout: 5 } as never), rejects: true, is: [ServerOptionError], code: "ERR_SERVER_OPTION", message: /unknown option/ },
  { name: "createServer: a port in use", call: () => createServer({ hostname: "127.0.0.1", port: lineServer.port, handler: { message() {} } }), rejects: true, is: [ListenError], code: "ERR_ADDRESS_IN_USE", message: /127\.0\.0\.1:\d+/ },
  { name: "createServer: a unix path in a directory that does not exist", call: () => createServer({ unix: "/nonexistent-myriad-dir/x.sock", handler: { message() {} } }), rejects: true, is: [ListenError], code: "ERR_LISTEN", message: /its directory must exist/ },
  { name: "createServer: a unix path nobody may create (sysfs)", call: () => createServer({ unix: "/sys/myriad-test.sock", handler: { message() {} } }), rejects: true, is: [ListenError], code: "ERR_ACCESS_DENIED", message: /permission denied; choose a path/ },
  {
    name: "conn.write: a number",
    call: async () => {
      const caught = Promise.withResolvers<unknown>();
      const server = await createServer({
        hostname: "127.0.0.1",
        port: 0,
        protocol: "lines",
        handler: {
          message(conn) {
            try {
              conn.write(42 as never);
              caught.resolve(undefined);
            } catch (e) {
              caught.resolve(e);
            }
          },
        },
      });
      const socket = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() {} } });
      try {
        socket.write("hello\n");
        const err = await caught.promise;
        if (err !== undefined) throw err;
      } finally {
        socket.end();
        await server.stop({ graceful: false });
      }
    },
    rejects: true,
    is: [TypeError],
    code: "ERR_WRITE_TYPE",
    message: /conn\.write: data must be a string or a Uint8Array/,
  },
  { name: "server.broadcast: an object", call: () => lineServer.broadcast({} as never), is: [TypeError], code: "ERR_WRITE_TYPE", message: /server\.broadcast: data must be a string or a Uint8Array/ },
  { name: "server.stop: timeoutMs -1", call: () => lineServer.stop({ timeoutMs: -1 }), rejects: true, is: [ServerOptionError], code: "ERR_SERVER_OPTION", message: /stop\.timeoutMs/ },
  {
    name: "server.stop: timeoutMs -1 while a stop is under way",
    call: async () => {
      const s = await createServer({ port: 0, handler: { message() {} } });
      const stopping = s.stop();
      try {
        return await s.stop({ timeoutMs: -1 });
      } finally {
        await stopping;
      }
    },
    rejects: true,
    is: [ServerOptionError],
    code: "ERR_SERVER_OPTION",
    message: /stop\.timeoutMs/,
  },

  // src/pool: Channel
  { name: "new Channel: capacity 1.5", call: () => new Channel(1.5), is: [RangeError], code: "ERR_POOL_OPTION", message: /capacity/ },
  { name: "channel.push: timeoutMs NaN", call: () => new Channel<number>(1).push(1, NaN), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },
  {
    name: "channel.push: timeoutMs -1 on a full channel",
    call: () => {
      const ch = new Channel<number>(1);
      ch.tryPush(0);
      return ch.push(1, -1);
    },
    rejects: true,
    is: [RangeError],
    code: "ERR_POOL_OPTION",
    message: /timeoutMs/,
  },
  { name: "channel.pop: timeoutMs -1", call: () => new Channel<number>(1).pop(-1), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },
  {
    name: "channel.tryPush: after close",
    call: () => {
      const ch = new Channel<number>(1);
      ch.close();
      ch.tryPush(1);
    },
    is: [ChannelClosedError],
    code: "ERR_CHANNEL_CLOSED",
    message: /closed Channel/,
  },
  {
    name: "channel.push: after close",
    call: () => {
      const ch = new Channel<number>(1);
      ch.close();
      return ch.push(1);
    },
    rejects: true,
    is: [ChannelClosedError],
    code: "ERR_CHANNEL_CLOSED",
    message: /closed Channel/,
  },

  // src/pool: Pool
  { name: "new Pool: max 0", call: () => new Pool({ create: async () => 1, max: 0 }), is: [PoolOptionError], code: "ERR_POOL_OPTION", message: /max/ },
  { name: "new Pool: no create", call: () => new Pool({ max: 1 } as never), is: [PoolOptionError], code: "ERR_POOL_OPTION", message: /create/ },
  { name: "new Pool: unknown option", call: () => new Pool({ create: async () => 1, max: 1, maxSize: 3 } as never), is: [PoolOptionError], code: "ERR_POOL_OPTION", message: /unknown .*"maxSize"/ },
  { name: "pool.acquire: timeoutMs -1, nothing idle", call: () => newPool().acquire({ timeoutMs: -1 }), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },
  { name: "pool.acquire: timeoutMs -1, a resource idle", call: async () => (await idlePool()).acquire({ timeoutMs: -1 }), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },
  { name: "pool.drain: timeoutMs -1", call: () => newPool().drain({ timeoutMs: -1 }), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },
  {
    name: "pool.drain: timeoutMs -1 while draining",
    call: () => {
      const p = newPool();
      void p.drain();
      return p.drain({ timeoutMs: -1 });
    },
    rejects: true,
    is: [RangeError],
    code: "ERR_POOL_OPTION",
    message: /timeoutMs/,
  },
  {
    name: "pool.acquire: after drain",
    call: () => {
      const p = newPool();
      void p.drain();
      return p.acquire();
    },
    rejects: true,
    is: [AcquireRejectedError],
    code: "ERR_POOL_CLOSED",
    message: /.+/,
  },
  { name: "pool.acquire: an aborted signal", call: () => newPool().acquire({ signal: AbortSignal.abort() }), rejects: true, is: [AcquireRejectedError], code: "ERR_POOL_ABORTED", message: /.+/ },
  { name: "pool.release: a foreign object", call: () => newPool().release({ n: -1 }), is: [PoolReleaseError], code: "ERR_POOL_FOREIGN_RESOURCE", message: /.+/ },
  {
    name: "pool.release: twice",
    call: async () => {
      const p = newPool();
      const r = await p.acquire();
      p.release(r);
      p.release(r);
    },
    rejects: true,
    is: [PoolReleaseError],
    code: "ERR_POOL_DOUBLE_RELEASE",
    message: /.+/,
  },

  // src/pool: clients
  { name: "createTcpClient: port -1", call: () => createTcpClient({ port: -1, codec: linesCodec }), is: [PoolOptionError], code: "ERR_POOL_OPTION", message: /port/ },
  { name: "createTcpClient: no codec", call: () => createTcpClient({ port: 1 } as never), is: [PoolOptionError], code: "ERR_POOL_OPTION", message: /codec/ },
  { name: "tcpClient.send: timeoutMs -1, no idle connection", call: () => coldLines().send("x", { timeoutMs: -1 }), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },
  { name: "tcpClient.send: timeoutMs -1, an idle connection", call: () => warmLines.send("x", { timeoutMs: -1 }), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },
  { name: "tcpClient.send: a newline, no idle connection", call: () => coldLines().send("a\nb"), rejects: true, is: [CodecEncodeError], code: "ERR_CODEC_ENCODE", message: /may not contain/ },
  { name: "tcpClient.send: a newline, an idle connection", call: () => warmLines.send("a\nb"), rejects: true, is: [CodecEncodeError], code: "ERR_CODEC_ENCODE", message: /may not contain/ },
  {
    name: "tcpClient.send: after close",
    call: () => {
      const c = coldLines();
      void c.close();
      return c.send("x");
    },
    rejects: true,
    is: [ClientRequestError],
    code: "ERR_CLIENT_CLOSED",
    message: /closed/,
  },
  { name: "createRespClient: port 70000", call: () => createRespClient({ port: 70000 }), is: [PoolOptionError], code: "ERR_POOL_OPTION", message: /port/ },
  { name: "createRespClient: username without password", call: () => createRespClient({ port: 1, username: "u" }), is: [PoolOptionError], code: "ERR_POOL_OPTION", message: /username.*password/ },
  { name: "respClient.send: an empty command, no idle connection", call: () => coldResp().send([]), rejects: true, is: [CodecEncodeError], code: "ERR_CODEC_ENCODE", message: /RESP command is empty/ },
  { name: "respClient.send: an empty command, an idle connection", call: () => warmResp.send([]), rejects: true, is: [CodecEncodeError], code: "ERR_CODEC_ENCODE", message: /RESP command is empty/ },
  { name: "respClient.send: timeoutMs -1, no idle connection", call: () => coldResp().send(["PING"], { timeoutMs: -1 }), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },
  { name: "respClient.send: timeoutMs -1, an idle connection", call: () => warmResp.send(["PING"], { timeoutMs: -1 }), rejects: true, is: [RangeError], code: "ERR_POOL_OPTION", message: /timeoutMs/ },

  // src/apps
  { name: "createEchoApp: unknown protocol", call: () => createEchoApp({ protocol: "morse" as never }), is: [RangeError], code: "ERR_APP_OPTION", message: /protocol must be one of raw, lines/ },
  { name: "createKvApp: maxKeys -1", call: () => createKvApp({ maxKeys: -1 }), is: [RangeError], code: "ERR_APP_OPTION", message: /maxKeys must be an integer >= 0/ },
  { name: "new KvStore: tickMs 0", call: () => new KvStore({ tickMs: 0 }), is: [RangeError], code: "ERR_APP_OPTION", message: /tickMs/ },
  { name: "new KvStore: now not a function", call: () => new KvStore({ now: 5 as never }), is: [TypeError], code: "ERR_APP_OPTION", message: /now must be a function/ },
  { name: "new ExpiryIndex: no onExpire", call: () => new ExpiryIndex({} as never), is: [TypeError], code: "ERR_APP_OPTION", message: /onExpire/ },
  { name: "registerPool: empty name", call: () => new PoolRegistry().register("", { stats: () => ({}) as never }), is: [TypeError], code: "ERR_APP_ARGUMENT", message: /name must be a non-empty string/ },
  { name: "registerPool: no stats()", call: () => new PoolRegistry().register("db", {} as never), is: [TypeError], code: "ERR_APP_ARGUMENT", message: /stats\(\)/ },
  { name: "loadModuleApp: no spec", call: () => loadModuleApp(null as never, { workerIndex: 0, workers: 1 }, new PoolRegistry()), rejects: true, is: [TypeError], code: "ERR_APP_MODULE", message: /spec must be \{ module/ },
  {
    name: "loadModuleApp: a module that does not exist",
    call: () => loadModuleApp({ module: join(import.meta.dir, "fixtures", "no-such-app.ts") }, { workerIndex: 0, workers: 1 }, new PoolRegistry()),
    rejects: true,
    is: [],
    code: "ERR_APP_MODULE",
    message: /cannot import app module .*no-such-app\.ts/,
  },
  { name: "loadModuleApp: no such export", call: () => loadModuleApp({ module: FIXTURE_APPS, export: "nope" }, { workerIndex: 0, workers: 1 }, new PoolRegistry()), rejects: true, is: [], code: "ERR_APP_MODULE", message: /has no function export "nope"/ },
  { name: "loadModuleApp: an export that is not a function", call: () => loadModuleApp({ module: FIXTURE_APPS, export: "notAFactory" }, { workerIndex: 0, workers: 1 }, new PoolRegistry()), rejects: true, is: [], code: "ERR_APP_MODULE", message: /has no function export "notAFactory"/ },
  { name: "loadModuleApp: a factory that throws", call: () => loadModuleApp({ module: FIXTURE_APPS, export: "throws" }, { workerIndex: 0, workers: 1 }, new PoolRegistry()), rejects: true, is: [], code: "ERR_APP_MODULE", message: /export "throws" threw: the factory could not reach its database/ },
  { name: "loadModuleApp: a result without handler", call: () => loadModuleApp({ module: FIXTURE_APPS, export: "noHandler" }, { workerIndex: 0, workers: 1 }, new PoolRegistry()), rejects: true, is: [], code: "ERR_APP_MODULE", message: /must return \{ protocol\?, codec\?, handler/ },

  // src/config
  { name: "command.parse: unknown flag", call: () => demo.parse(["--name", "a", "--prot", "1"], { env: {} }), is: [FlagError], code: "ERR_FLAG_UNKNOWN", message: /--prot/ },
  { name: "command.parse: bad value", call: () => demo.parse(["--name", "a", "--port", "http"], { env: {} }), is: [FlagError], code: "ERR_FLAG_VALUE", message: /--port must be an integer/ },
  { name: "command.parse: required flag missing", call: () => demo.parse([], { env: {} }), is: [FlagError], code: "ERR_FLAG_MISSING", message: /--name is required/ },
  { name: "command.parse: a stray word", call: () => demo.parse(["--name", "a", "extra"], { env: {} }), is: [FlagError], code: "ERR_FLAG_ARGUMENT", message: /extra/ },
  { name: "command.checkConfig: bad value", call: () => demo.checkConfig({ port: "x" }, "demo.json"), is: [FlagError], code: "ERR_CONFIG_FILE", message: /demo\.json: port must be/ },
  { name: "defineCommand: a flag named help", call: () => defineCommand({ name: "bad", summary: "x", flags: { help: { type: "bool", help: "x" } } }), is: [], code: "ERR_FLAG_SPEC", message: /"help" is reserved/ },

  // src/cluster
  { name: "parsePorts: high-low", call: () => parsePorts("7003-7000"), is: [], code: "ERR_CLUSTER_PORTS", message: /ports must look like 7000, 7000-7019/ },
  { name: "parsePorts: a number", call: () => parsePorts(7000 as never), is: [TypeError], code: "ERR_CLUSTER_PORTS", message: /ports must be a string/ },
  { name: "planWorkers: maxConnections -1", call: () => planWorkers({ maxConnections: -1, nofile: 20000, cpus: 2 }), is: [RangeError], code: "ERR_CLUSTER_PLAN", message: /maxConnections must be a non-negative integer/ },
  { name: "planWorkers: cpus 0", call: () => planWorkers({ maxConnections: 10, nofile: 20000, cpus: 0 }), is: [RangeError], code: "ERR_CLUSTER_PLAN", message: /cpus/ },
  { name: "resolveWorkers: 0 workers", call: () => resolveWorkers(0, 0, 20000, 2), is: [], code: "ERR_CLUSTER_WORKERS", message: /workers must be auto or an integer >= 1/ },
  { name: "runCluster: 0 workers", call: () => runCluster({ workers: 0, listen: [{ hostname: "127.0.0.1", port: 0 }] }), rejects: true, is: [ClusterError], code: "ERR_CLUSTER_WORKERS", message: /workers must be an integer from 1 to 4096/ },
  { name: "runCluster: nothing to listen on", call: () => runCluster({ workers: 1, listen: [] }), rejects: true, is: [ClusterError], code: "ERR_CLUSTER_LISTEN", message: /listen must name at least one/ },
  { name: "runCluster: no options", call: () => runCluster(undefined as never), rejects: true, is: [ClusterError], code: "ERR_CLUSTER_WORKERS", message: /options must be an object/ },

  // src/admin
  { name: "startAdminServer: port 70000", call: () => startAdminServer({ source: statsSource, port: 70000 }), rejects: true, is: [], code: "ERR_ADMIN_BAD_PORT", message: /0 to 65535, got 70000/ },
  { name: "startAdminServer: all interfaces without a token", call: () => startAdminServer({ source: statsSource, port: 0, host: "0.0.0.0", token: "" }), rejects: true, is: [], code: "ERR_ADMIN_TOKEN_REQUIRED", message: /--admin-token/ },
  { name: "startAdminServer: a port in use", call: () => startAdminServer({ source: statsSource, port: admin.port }), rejects: true, is: [], code: "ERR_ADMIN_LISTEN", message: /could not listen on 127\.0\.0\.1:\d+/ },
  { name: "startAdminServer: a source without snapshot()", call: () => startAdminServer({ source: {} as never, port: 0 }), rejects: true, is: [TypeError], code: "ERR_ADMIN_OPTION", message: /snapshot\(\), isAccepting\(\) and stop\(\)/ },
  { name: "startAdminServer: no options", call: () => startAdminServer(undefined as never), rejects: true, is: [TypeError], code: "ERR_ADMIN_OPTION", message: /options must be an object/ },
  { name: "serverSource: not a server", call: () => serverSource({} as never), is: [TypeError], code: "ERR_ADMIN_OPTION", message: /server must be a myriad Server/ },
  { name: "createAdminApp: a token that is not a string", call: () => createAdminApp({ source: statsSource, token: 5 as never }), is: [TypeError], code: "ERR_ADMIN_OPTION", message: /token must be a string/ },

  // src/bus
  { name: "parseBusUrl: not redis://", call: () => parseBusUrl("http://127.0.0.1:6379"), is: [BusError], code: "ERR_BUS_OPTION", message: /the scheme must be redis:\/\// },
  {
    name: "bus.publish: a number",
    call: () => {
      const bus = createRedisBus({ port: kvServer.port });
      toClose.push(() => bus.close());
      return bus.publish("news", 42 as never);
    },
    rejects: true,
    is: [TypeError],
    code: "ERR_WRITE_TYPE",
    message: /bus publish: payload must be a string or a Uint8Array, got number/,
  },
  { name: "createRedisBus: port 70000", call: () => createRedisBus({ port: 70000 }), is: [BusError], code: "ERR_BUS_OPTION", message: /bus port 70000 is invalid/ },

  // src/proxy
  { name: "parseProxyConfig: no pools", call: () => parseProxyConfig("", "empty.yml"), is: [ProxyConfigError], code: "ERR_PROXY_CONFIG", message: /has no pools/ },
  { name: "parseProxyConfig: a memcached pool", call: () => parseProxyConfig("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n", "x.yml"), is: [ProxyConfigError], code: "ERR_PROXY_CONFIG", message: /x\.yml:1: pool "alpha" is a memcached pool/ },
  { name: "parseProxyConfig: not a string", call: () => parseProxyConfig(42 as never), is: [TypeError], code: "ERR_PROXY_CONFIG", message: /takes the YAML text as a string/ },
  { name: "readProxyConfig: no such file", call: () => readProxyConfig("/nonexistent-myriad.yml"), is: [ProxyConfigError], code: "ERR_PROXY_CONFIG", message: /nonexistent-myriad\.yml: no such file/ },

  // src/loadgen
  { name: "new LogHistogram: subBucketBits 0", call: () => new LogHistogram({ subBucketBits: 0 }), is: [RangeError], code: "ERR_LOADGEN_OPTION", message: /subBucketBits must be an integer 1\.\.12/ },
  { name: "logHistogram.merge: another shape", call: () => new LogHistogram().merge(new LogHistogram({ subBucketBits: 3 })), is: [RangeError], code: "ERR_LOADGEN_OPTION", message: /different shapes/ },
  { name: "parseTargets: no port", call: () => parseTargets("127.0.0.1"), is: [TargetSpecError], code: "ERR_LOADGEN_ADDRESS", message: /targets must look like 127\.0\.0\.1:7000/ },
  { name: "parseTargets: a number", call: () => parseTargets(7000 as never), is: [TypeError], code: "ERR_LOADGEN_ADDRESS", message: /targets must be a string/ },
  { name: "parseAddresses: outside loopback", call: () => parseAddresses("10.0.0.1", "sources"), is: [TargetSpecError], code: "ERR_LOADGEN_ADDRESS", message: /sources must stay inside 127\.0\.0\.0\/8/ },
  { name: "resolveSources: not a string", call: () => resolveSources(undefined as never, 10), is: [TypeError], code: "ERR_LOADGEN_ADDRESS", message: /sources must be "auto", "none"/ },
  { name: "new LoadEngine: connections -1", call: () => new LoadEngine({ connections: -1, sources: [], targets: [{ host: "127.0.0.1", port: 1 }] }), is: [RangeError], code: "ERR_LOADGEN_CONNECTIONS", message: /connections must be an integer >= 0/ },
  { name: "LoadEngine.create: no targets", call: () => LoadEngine.create({ connections: 1, sources: [], targets: [] }), rejects: true, is: [RangeError], code: "ERR_LOADGEN_ADDRESS", message: /targets must name at least one host:port/ },
  { name: "startLoad: 0 processes", call: () => startLoad({ connections: 1, processes: 0, sources: [], targets: [{ host: "127.0.0.1", port: 1 }] }), rejects: true, is: [LoadError], code: "ERR_LOADGEN_PROCESSES", message: /processes must be an integer >= 1/ },
  { name: "startLoad: no targets", call: () => startLoad({ connections: 1, processes: 1, sources: [], targets: [] }), rejects: true, is: [LoadError], code: "ERR_LOADGEN_ADDRESS", message: /targets must name at least one/ },
  {
    // The engine in the load process refuses the payload size, so the process never gets ready.
    name: "startLoad: a load process that cannot start",
    call: () => startLoad({ connections: 1, processes: 1, sources: [], targets: [{ host: "127.0.0.1", port: 1 }], payloadBytes: 0 }),
    rejects: true,
    is: [LoadError],
    code: "ERR_LOADGEN_START",
    message: /could not start the load processes: payloadBytes must be >= 1/,
  },
  {
    name: "startLoad: the TUN client asked for traffic",
    call: () => startLoad({ connections: 1, processes: 1, sources: [], targets: [{ host: "10.9.0.1", port: 7000 }], tun: true, mode: "rr" }),
    rejects: true,
    is: [LoadError],
    code: "ERR_LOADGEN_TUN",
    message: /idle connections only/,
  },
];

/** Runs row.call and returns what it threw or rejected with, checking the way it failed. */
async function failureOf(row: Row): Promise<unknown> {
  let result: unknown;
  let thrown: { error: unknown } | undefined;
  try {
    result = row.call();
  } catch (error) {
    thrown = { error };
  }
  if (row.rejects) {
    expect(thrown === undefined ? "rejected" : `threw synchronously: ${String(thrown.error)}`).toBe("rejected");
    expect(result).toBeInstanceOf(Promise);
    try {
      await result;
    } catch (error) {
      return error;
    }
    throw new Error(`${row.name}: the promise resolved`);
  }
  if (result instanceof Promise) {
    // A synchronous entry point whose row needs an await first (release twice after acquire).
    try {
      await result;
    } catch (error) {
      return error;
    }
  }
  if (thrown === undefined) throw new Error(`${row.name}: no error`);
  return thrown.error;
}

describe("every public entry point answers bad input with a MyriadError", () => {
  for (const row of rows) {
    test(row.name, async () => {
      const err = await failureOf(row);
      expect(err).toBeInstanceOf(MyriadError);
      expect(isMyriadError(err, row.code)).toBe(true);
      for (const cls of row.is) expect(err).toBeInstanceOf(cls);
      const e = err as MyriadError;
      expect(e.code).toBe(row.code);
      expect(Object.hasOwn(MYRIAD_ERROR_CODES, e.code)).toBe(true);
      expect(e.message).toMatch(row.message);
      expect(e.name).not.toBe("Error");
    });
  }
});

describe("the contract itself", () => {
  test("MyriadError recognises myriad's RangeError and TypeError classes, and only those", () => {
    const range = new MyriadRangeError("ERR_TIMER_ID", "r");
    const type = new MyriadTypeError("ERR_TIMER_TYPE", "t");
    expect(range instanceof MyriadError && range instanceof RangeError).toBe(true);
    expect(type instanceof MyriadError && type instanceof TypeError).toBe(true);
    expect(new RangeError("plain") instanceof MyriadError).toBe(false);
    expect(new TypeError("plain") instanceof MyriadError).toBe(false);
    expect(new Error("plain") instanceof MyriadError).toBe(false);
    for (const v of [null, undefined, 0, "ERR_TIMER_ID", { code: "ERR_TIMER_ID" }]) expect(v instanceof MyriadError).toBe(false);
    // A subclass keeps the ordinary check: a range error is not a ServerOptionError.
    expect(range instanceof ServerOptionError).toBe(false);
    expect(new ServerOptionError("port", "x") instanceof ServerOptionError).toBe(true);
    expect(new ServerOptionError("port", "x") instanceof RangeError).toBe(false);
    expect(range.name).toBe("MyriadRangeError");
    expect(new TimerRangeError("ERR_TIMER_ID", "id", "x").name).toBe("TimerRangeError");
  });

  test("every code is documented in MYRIAD_ERROR_CODES", () => {
    for (const [code, meaning] of Object.entries(MYRIAD_ERROR_CODES)) {
      expect(code).toMatch(/^ERR_[A-Z0-9_]+$/);
      expect(meaning.length).toBeGreaterThan(10);
    }
  });
});
