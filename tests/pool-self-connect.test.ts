/**
 * TCP self-connect, made certain rather than waited for: in a network namespace this test
 * makes, net.ipv4.ip_local_port_range is narrowed to 40000-40001 and nothing listens on
 * 127.0.0.1:40000, so a connect to it gets 40000 as its source port and the socket connects
 * to itself (every byte written comes back). tests/fixtures/self-connect.ts runs there and
 * reports; this test checks that the trap was set and that no myriad client fell in.
 */
import { describe, expect, test } from "bun:test";
import { isSelfConnect } from "../src/pool/index.ts";
import { narrowPortNamespace } from "./helpers/narrow-ports.ts";

const NS = narrowPortNamespace("myriad-selfconn");
const FIXTURE = `${import.meta.dir}/fixtures/self-connect.ts`;

interface Outcome {
  resolved: unknown[];
  errors: { code?: string; causeMessage?: string }[];
}
interface Report {
  rawSelf: number;
  rawEcho: string;
  respDown: Outcome;
  tcpDown: Outcome;
  respDownStats: { created: number; createErrors: number };
  tcpDownStats: { created: number; createErrors: number };
  load: { attempts: number; connected: number; open: number; failed: number; errors: Record<string, number> };
  listenError: string | null;
  respUp: unknown;
  tcpUp: unknown;
}

describe("a connection to itself", () => {
  test("isSelfConnect compares both ends", () => {
    expect(isSelfConnect({ localAddress: "127.0.0.1", localPort: 40000, remoteAddress: "127.0.0.1", remotePort: 40000 })).toBe(true);
    expect(isSelfConnect({ localAddress: "127.0.0.1", localPort: 40001, remoteAddress: "127.0.0.1", remotePort: 40000 })).toBe(false);
    expect(isSelfConnect({ localAddress: "127.0.0.2", localPort: 40000, remoteAddress: "127.0.0.1", remotePort: 40000 })).toBe(false);
    expect(isSelfConnect({ localAddress: "::1", localPort: 40000, remoteAddress: "::1", remotePort: 40000 })).toBe(true);
  });

  test("with the port range narrowed onto the target port: the trap is set, and no client of myriad delivers its own request as a reply or counts it open", async () => {
    const proc = Bun.spawn(["ip", "netns", "exec", NS, process.execPath, FIXTURE], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`fixture exited ${code}: ${err}`);
    const r = JSON.parse(out.trim().split("\n").at(-1) as string) as Report;

    // The trap: a plain connect lands on itself and reads back what it wrote.
    expect(r.rawSelf).toBeGreaterThan(0);
    expect(r.rawEcho).toBe("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");

    // The pooled clients: every send failed, none resolved (no echo of GET k taken as its reply),
    // no connection was ever created, and the failures name the self-connect.
    for (const [name, down, stats] of [
      ["RESP client", r.respDown, r.respDownStats],
      ["TCP client", r.tcpDown, r.tcpDownStats],
    ] as const) {
      expect({ name, resolved: down.resolved }).toEqual({ name, resolved: [] });
      expect(down.errors).toHaveLength(4);
      for (const e of down.errors) expect(["ERR_POOL_UPSTREAM_FAILING", "ERR_POOL_CIRCUIT_OPEN"]).toContain(e.code as string);
      expect(down.errors.some((e) => /connected to itself \(local 127\.0\.0\.1:40000 = remote/.test(e.causeMessage ?? ""))).toBe(true);
      expect(stats.created).toBe(0);
      expect(stats.createErrors).toBeGreaterThan(0);
    }

    // The load generator's kernel-socket client: self-connects are failed connects, never open.
    expect(r.load.connected).toBe(0);
    expect(r.load.open).toBe(0);
    expect(r.load.errors.ESELFCONNECT ?? 0).toBeGreaterThan(0);
    expect(r.load.failed).toBe(4);

    // A server on the port: the clients' usual retries find it and get its real reply.
    expect(r.listenError).toBeNull();
    expect(r.respUp).toBe("server");
    expect(r.tcpUp).toBe("server");
  }, 30_000);
});
