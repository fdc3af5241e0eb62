/**
 * `bun run serve --bus`: the fleet's bus through the command line. ws-chat with --workers 2
 * (each worker a node on the bus): a message sent to any worker reaches every client once,
 * whichever worker the kernel gave it. The single-process kv path is covered with a
 * graceful drain: /readyz turns 503 at once on SIGTERM while the node still serves.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisServer } from "./helpers/redis-server.ts";
import { freePort } from "./helpers/ports.ts";
import { killAllServes, startServe, stopServe, workerPidsOf } from "./helpers/serve-process.ts";
import { until } from "./helpers/until.ts";

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await killAllServes();
  await redis.kill();
});

describe("serve --bus", () => {
  test("ws-chat with --workers 2: every client gets every message once, whichever worker holds it", async () => {
    const port = freePort();
    const adminPort = freePort();
    const served = await startServe(["--app", "ws-chat", "--workers", "2", "--port", String(port), "--admin-port", String(adminPort), "--bus", `redis://127.0.0.1:${redis.port}`]);
    expect(workerPidsOf(served).length).toBe(2);
    const clients: { ws: WebSocket; got: string[] }[] = [];
    const perWorker = async () => {
      const stats = await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json();
      return (stats.workers as { stats: { connections: number } }[]).map((w) => w.stats.connections);
    };
    // Open clients until both workers hold some (the kernel picks; bounded).
    for (let i = 0; i < 40; i++) {
      const c = { ws: new WebSocket(`ws://127.0.0.1:${port}/`), got: [] as string[] };
      c.ws.onmessage = (e) => c.got.push(String(e.data));
      clients.push(c);
      await until("a client open", () => c.ws.readyState === WebSocket.OPEN, 5_000);
      if (i >= 3) {
        const counts = await until("both workers' stats", async () => {
          const n = await perWorker();
          return n.reduce((a, b) => a + b, 0) === clients.length ? n : null;
        }, 5_000);
        if (counts.every((n) => n > 0)) break;
      }
    }
    const counts = await perWorker();
    expect(counts.every((n) => n > 0)).toBe(true);
    // The supervisor's admin server shows the workers' buses as one.
    const bus = await until("both workers' buses up in /stats", async () => {
      const b = (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()).bus;
      return b?.up === true ? b : null;
    }, 10_000);
    expect(bus.connects).toBeGreaterThanOrEqual(2);
    expect(await (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).text()).toBe("ready");
    // Each worker subscribes its chat topic on the bus when its first client joins: probe
    // until a message from one client reaches all of them, then count exactly.
    await until(
      "a probe message seen by every client",
      async () => {
        clients[0]!.ws.send("probe");
        await Bun.sleep(50);
        return clients.every((c) => c.got.includes("probe"));
      },
      10_000,
    );
    for (const [i, c] of clients.entries()) c.ws.send(`m${i}`);
    const want = clients.map((_, i) => `m${i}`).sort();
    // Probes still in flight may arrive too: only the m<i> messages are counted.
    const counted = (c: { got: string[] }) => c.got.filter((m) => m !== "probe").sort();
    await until("every message at every client", () => clients.every((c) => counted(c).length >= want.length), 10_000);
    for (const c of clients) expect(counted(c)).toEqual(want);
    for (const c of clients) c.ws.close();
    await stopServe(served);
  });

  test("kv with --drain-delay-ms: on SIGTERM /readyz answers 503 at once while the node still serves", async () => {
    const port = freePort();
    const adminPort = freePort();
    const served = await startServe(["--port", String(port), "--admin-port", String(adminPort), "--drain-delay-ms", "1500ms", "--bus", `redis://127.0.0.1:${redis.port}`]);
    await until("/readyz ready", async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200, 5_000);
    await until("the bus up in /stats", async () => (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()).bus.up === true, 5_000);
    process.kill(served.pid, "SIGTERM");
    await until("/readyz 503", async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 503, 5_000);
    // Still serving: a PING is answered while unready.
    const reply = await new Promise<string>((resolve, reject) => {
      let text = "";
      Bun.connect({ hostname: "127.0.0.1", port, socket: { open(s) { s.write("PING\r\n"); }, data(s, d) { text += d.toString(); if (text.endsWith("\r\n")) { resolve(text); s.end(); } }, connectError(_s, e) { reject(e); } } }).catch(reject);
    });
    expect(reply).toBe("+PONG\r\n");
    expect(served.out.text).toContain("unready, serving on");
    // The one SIGTERM is enough: after the drain the node stops gracefully and exits 0.
    await until("serve to exit after its drain", () => served.proc.exitCode !== null, 15_000);
    expect(served.proc.exitCode).toBe(0);
    expect(served.out.text).toContain("stopping gracefully");
  });
});
