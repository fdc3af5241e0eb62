// `bun run serve` as a subprocess: redis-cli talks to it, the admin server answers, SIGTERM
// stops it gracefully with final stats and exit 0; bad settings exit 2 with one line.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitForPort } from "./helpers/kv.ts";
import { connect } from "./helpers/net.ts";
import { freePort } from "./helpers/ports.ts";
import { until } from "./helpers/until.ts";

const root = join(import.meta.dir, "..");
const started: Bun.Subprocess[] = [];

afterAll(async () => {
  for (const p of started) {
    if (p.exitCode === null) {
      process.kill(p.pid, "SIGKILL");
      await p.exited;
    }
  }
});

function redisCli(): string {
  const bin = Bun.which("redis-cli");
  if (!bin) throw new Error("redis-cli not found: install redis-tools (apt-get install redis-tools) to run this test");
  return bin;
}

async function run(cmd: string[], opts: { env?: Record<string, string>; stdin?: string } = {}) {
  const proc = Bun.spawn(cmd, {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...opts.env },
  });
  started.push(proc);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { out, err, code };
}

const serve = (...args: string[]) => [process.execPath, "run", "serve", ...args];

describe("bun run serve: settings", () => {
  test("--help lists every flag and exits 0", async () => {
    const r = await run(serve("--help"));
    expect(r.code).toBe(0);
    for (const flag of ["--app", "--protocol", "--host", "--port", "--unix", "--max-connections", "--max-connections-per-ip", "--idle-timeout-ms", "--handshake-timeout-ms", "--max-frame-bytes", "--max-write-buffer-bytes", "--write-stall-timeout-ms", "--admin-port", "--admin-host", "--admin-token", "--no-admin", "--workers", "--tls-cert", "--tls-key", "--config"])
      expect(r.out).toContain(flag);
    expect(r.out).toContain("(default: 6380; env MYRIAD_PORT)");
  });

  test("a bad flag value exits 2 with one line naming flag, value and what is allowed", async () => {
    const r = await run(serve("--port", "abc"));
    expect(r.code).toBe(2);
    const lines = r.err.split("\n").filter((l) => l && !l.startsWith("$ "));
    expect(lines).toEqual(['serve: --port must be a port or port range like 6380-6389 within 0..65535, got "abc"']);
  });

  test("an unknown flag exits 2", async () => {
    const r = await run([process.execPath, "src/cli/serve.ts", "--prot", "1"]);
    expect(r.code).toBe(2);
    expect(r.err).toBe("serve: unknown flag --prot (did you mean --port?); see serve --help for the flags it accepts\n");
  });

  test("a bad environment value or config file entry exits 2", async () => {
    const env = await run([process.execPath, "src/cli/serve.ts"], { env: { MYRIAD_IDLE_TIMEOUT_MS: "forever" } });
    expect(env.code).toBe(2);
    expect(env.err).toBe(
      'serve: MYRIAD_IDLE_TIMEOUT_MS must be a duration like 500ms, 2s, 1m (bare numbers are ms) >= 0ms, got "forever"\n',
    );
    const dir = mkdtempSync(join(tmpdir(), "myriad-serve-"));
    try {
      const file = join(dir, "bad.json");
      writeFileSync(file, JSON.stringify({ maxConnections: -5 }));
      const r = await run([process.execPath, "src/cli/serve.ts", "--config", file]);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`serve: config file ${file}: maxConnections must be an integer from 0 to 1048576, got -5\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a port already taken exits 1 with a message saying so", async () => {
    const blocker = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await run([process.execPath, "src/cli/serve.ts", "--port", String(blocker.port), "--no-admin"]);
      expect(r.code).toBe(1);
      expect(r.err).toStartWith(`serve: cannot listen on 127.0.0.1:${blocker.port}: `);
    } finally {
      blocker.stop(true);
    }
  });
});

describe("bun run serve: redis-cli session, admin, graceful stop", () => {
  test("GET/SET/EXPIRE/TTL through redis-cli, then SIGTERM prints final stats and exits 0", async () => {
    const cli = redisCli();
    const port = await freePort();
    const adminPort = await freePort();
    const proc = Bun.spawn(serve("--port", String(port), "--admin-port", String(adminPort), "--idle-timeout-ms", "60s"), {
      cwd: root,
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    });
    started.push(proc);
    const outP = new Response(proc.stdout).text();
    const errP = new Response(proc.stderr).text();
    await waitForPort(port);

    const c = async (...args: string[]) => {
      const r = await run([cli, "-h", "127.0.0.1", "-p", String(port), ...args]);
      expect(r.code).toBe(0);
      return r.out.trimEnd();
    };
    expect(await c("PING")).toBe("PONG");
    expect(await c("SET", "greeting", "hello world")).toBe("OK");
    expect(await c("GET", "greeting")).toBe("hello world");
    expect(await c("TTL", "greeting")).toBe("-1");
    const expiredAt = performance.now();
    expect(await c("EXPIRE", "greeting", "100")).toBe("1");
    // TTL rounds the ms left to seconds (as redis does): 100 unless the two redis-cli runs
    // took over half a second on a busy machine, and then no less than the time taken allows.
    const ttl = Number(await c("TTL", "greeting"));
    const tookMs = performance.now() - expiredAt;
    expect(ttl).toBeLessThanOrEqual(100);
    expect(ttl).toBeGreaterThanOrEqual(Math.floor((100_000 - tookMs + 500) / 1000));
    expect(await c("SET", "short", "x", "PX", "50")).toBe("OK");
    await Bun.sleep(120);
    expect(await c("GET", "short")).toBe("");
    expect(await c("EXISTS", "short")).toBe("0");
    expect(await c("INCR", "n")).toBe("1");
    expect(await c("DBSIZE")).toBe("2");
    expect(await c("nosuch", "a")).toBe("ERR unknown command 'nosuch', with args beginning with: 'a'");
    // redis-cli reading commands from stdin (one connection, several commands).
    const piped = await run([cli, "-h", "127.0.0.1", "-p", String(port)], { stdin: "SET piped 1\nINCRBY piped 41\nGET piped\nPTTL piped\n" });
    expect(piped.code).toBe(0);
    expect(piped.out.trimEnd().split("\n")).toEqual(["OK", "42", "42", "-1"]);

    // The admin server runs beside it and counts exactly the connections this test opened:
    // waitForPort's probe, the 12 one-shot redis-cli runs and the piped one, all closed by
    // their side. (A probe that found nothing listening was refused, never accepted.)
    const opened = 1 + 12 + 1;
    const health = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
    expect(health.status).toBe(200);
    type Totals = { connections: number; accepted: number; rejected: number; closed: { peer: number } };
    let totals: Totals | undefined;
    await until(
      () => `/stats to count ${opened} connections closed by their peer (${JSON.stringify(totals)})`,
      async () => {
        totals = ((await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as { totals: Totals }).totals;
        return totals.connections === 0 && totals.closed.peer === opened;
      },
    ).catch(() => {}); // the comparison below shows what was counted
    expect(totals).toMatchObject({ connections: 0, accepted: opened, rejected: 0, closed: { peer: opened } });

    process.kill(proc.pid, "SIGTERM");
    const code = await proc.exited;
    const out = await outP;
    const err = await errP;
    expect(code).toBe(0);
    expect(out).toContain(`listening on 127.0.0.1:${port}`);
    expect(out).toContain("limits: max connections");
    expect(out).toContain("idle timeout 1m");
    expect(out).toContain(`admin: http://127.0.0.1:${adminPort}/`);
    expect(out).toContain("SIGTERM: stopping gracefully");
    const final = out.split("\n").find((l) => l.startsWith("serve: stopped after"));
    expect(final).toBeDefined();
    const accepted = Number(/accepted (\d+)/.exec(final!)?.[1]);
    expect(accepted).toBe(opened);
    expect(final).toMatch(/frames in \d+/);
    expect(err.split("\n").filter((l) => l && !l.startsWith("$ "))).toEqual([]);
  });

  test("an open connection at SIGTERM is closed as shutdown, after its pending reply", async () => {
    const port = await freePort();
    const proc = Bun.spawn([process.execPath, "src/cli/serve.ts", "--port", String(port), "--no-admin"], { cwd: root, stdout: "pipe", stderr: "pipe" });
    started.push(proc);
    const outP = new Response(proc.stdout).text();
    await waitForPort(port);
    const { Wire } = await import("./helpers/kv.ts");
    const w = await Wire.connect(port);
    expect(await w.call("SET", "k", "v")).toBe("+OK\r\n");
    process.kill(proc.pid, "SIGTERM");
    await w.closedByPeer();
    expect(await proc.exited).toBe(0);
    const out = await outP;
    expect(out).toMatch(/closed (.*, )?shutdown 1/);
  });

  test("unix socket and TLS listeners (redis-cli -s, redis-cli --tls)", async () => {
    const cli = redisCli();
    const openssl = Bun.which("openssl");
    if (!openssl) throw new Error("openssl not found: install openssl (apt-get install openssl) to run this test");
    const dir = mkdtempSync(join(tmpdir(), "myriad-serve-tls-"));
    try {
      const gen = Bun.spawnSync([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost"], { stdout: "ignore", stderr: "pipe" });
      expect(gen.exitCode).toBe(0);
      const sockPath = join(dir, "kv.sock");
      const unixProc = Bun.spawn([process.execPath, "src/cli/serve.ts", "--unix", sockPath, "--no-admin"], { cwd: root, stdout: "pipe", stderr: "pipe" });
      started.push(unixProc);
      const unixOut = new Response(unixProc.stdout).text();
      await until(`serve to create ${sockPath}`, () => existsSync(sockPath));
      let r = await run([cli, "-s", sockPath, "SET", "u", "over unix"]);
      expect(r.out.trim()).toBe("OK");
      r = await run([cli, "-s", sockPath, "GET", "u"]);
      expect(r.out.trim()).toBe("over unix");
      process.kill(unixProc.pid, "SIGTERM");
      expect(await unixProc.exited).toBe(0);
      expect(await unixOut).toContain(`listening on unix:${sockPath}`);

      const port = await freePort();
      const tlsProc = Bun.spawn(
        [process.execPath, "src/cli/serve.ts", "--port", String(port), "--no-admin", "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")],
        { cwd: root, stdout: "pipe", stderr: "pipe" },
      );
      started.push(tlsProc);
      const tlsOut = new Response(tlsProc.stdout).text();
      await waitForPort(port);
      r = await run([cli, "--tls", "--insecure", "-p", String(port), "SET", "t", "over tls"]);
      expect(r.out.trim()).toBe("OK");
      r = await run([cli, "--tls", "--insecure", "-p", String(port), "GET", "t"]);
      expect(r.out.trim()).toBe("over tls");
      process.kill(tlsProc.pid, "SIGTERM");
      expect(await tlsProc.exited).toBe(0);
      expect(await tlsOut).toContain("with TLS");

      const missing = await run([process.execPath, "src/cli/serve.ts", "--tls-cert", join(dir, "nope.pem"), "--tls-key", join(dir, "key.pem")]);
      expect(missing.code).toBe(2);
      expect(missing.err).toBe(`serve: --tls-cert ${join(dir, "nope.pem")}: no such file (give a PEM file)\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("--app echo --protocol lines echoes lines; SIGINT stops it", async () => {
    const port = await freePort();
    const proc = Bun.spawn([process.execPath, "src/cli/serve.ts", "--app", "echo", "--protocol", "lines", "--port", String(port), "--no-admin"], {
      cwd: root,
      stdout: "pipe",
      stderr: "pipe",
    });
    started.push(proc);
    const outP = new Response(proc.stdout).text();
    await waitForPort(port);
    const c = await connect({ port });
    await c.send("one\ntwo\r\nthree\n");
    await c.waitBytes("one\ntwo\nthree\n".length);
    expect(c.text()).toBe("one\ntwo\nthree\n");
    c.close();
    process.kill(proc.pid, "SIGINT");
    expect(await proc.exited).toBe(0);
    const out = await outP;
    expect(out).toContain("echo (lines) listening on");
    expect(out).toContain("admin: off");
    // waitForPort's probe and our socket.
    expect(out).toMatch(/serve: stopped after .*accepted 2, rejected 0/);
    expect(out).toMatch(/frames in 3, /);
  });
});
