/**
 * The proxy's upstream connections refuse a socket connected to itself, on every path: the
 * shared pipelined connections (src/pool's client), dedicated connections (blocking
 * commands, transactions) and subscriber connections. Made certain, not waited for: in a
 * network namespace this test makes, the port range is narrowed onto the server's port (see
 * tests/pool-self-connect.test.ts); tests/fixtures/proxy-self-connect.ts runs there.
 */
import { expect, test } from "bun:test";
import { narrowPortNamespace } from "./helpers/narrow-ports.ts";

const NS = narrowPortNamespace("myriad-proxyself");
const FIXTURE = `${import.meta.dir}/fixtures/proxy-self-connect.ts`;

test("a server address that self-connects: GET, BLPOP and SUBSCRIBE through the proxy all answer errors, never their own request", async () => {
  const proc = Bun.spawn(["ip", "netns", "exec", NS, process.execPath, FIXTURE], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`fixture exited ${code}: ${err}`);
  const r = JSON.parse(out.trim().split("\n").at(-1) as string) as { rawSelf: number; replies: string[] };
  expect(r.rawSelf).toBeGreaterThan(0); // the trap is set
  expect(r.replies).toHaveLength(3);
  for (const reply of r.replies) {
    expect(reply).toStartWith("error: ERR proxy: server 127.0.0.1:40000 of pool p is unavailable");
    expect(reply).not.toContain("GET");
  }
  expect(r.replies.some((x) => x.includes("connected to itself"))).toBe(true);
}, 30_000);
