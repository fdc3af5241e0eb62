import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { FlagError, kebabCase, serveCommand, serveFlags } from "../src/config/index.ts";

const parse = (argv: string[], env: Record<string, string> = {}) => serveCommand.parse(argv, { env });
function errLine(argv: string[], env: Record<string, string> = {}): string {
  try {
    parse(argv, env);
  } catch (e) {
    if (e instanceof FlagError) return e.format();
    throw e;
  }
  throw new Error("expected a FlagError");
}

describe("serve settings", () => {
  test("defaults: kv on 127.0.0.1:6380, admin on 127.0.0.1:9180, one worker", () => {
    const v = parse([]).values;
    expect(v.app).toBe("kv");
    expect(v.host).toEqual(["127.0.0.1"]);
    expect(v.port).toEqual({ from: 6380, to: 6380 });
    expect(v.admin).toBe(true);
    expect(v.adminHost).toBe("127.0.0.1");
    expect(v.adminPort).toBe(9180);
    expect(v.workers).toBe("1");
    expect(v.maxFrameBytes).toBe(1024 * 1024);
    expect(v.maxWriteBufferBytes).toBe(4 * 1024 * 1024);
    expect(v.unix).toBeUndefined();
  });

  test("--help lists every flag with its default and env name", () => {
    const help = serveCommand.helpText();
    for (const key of Object.keys(serveFlags)) {
      const flag = `--${kebabCase(key)}`;
      const idx = help.indexOf(flag);
      expect(idx).toBeGreaterThanOrEqual(0);
      const rest = help.slice(idx);
      const entry = rest.slice(0, rest.indexOf("\n  -") > 0 ? rest.indexOf("\n  -") : undefined);
      expect(entry).toContain("(default: ");
      expect(entry).toContain(`env MYRIAD_${key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase()}`);
    }
    expect(help).toContain("--no-admin");
  });

  test("flags, env and file, with precedence", () => {
    const dir = mkdtempSync(join(tmpdir(), "myriad-serve-config-"));
    try {
      const file = join(dir, "serve.json");
      writeFileSync(file, JSON.stringify({ port: 7000, idleTimeoutMs: "30s", app: "echo", protocol: "lines", maxConnections: 500 }));
      const r = parse(["--config", file, "--port", "7001"], { MYRIAD_MAX_CONNECTIONS: "600" });
      expect(r.values.port).toEqual({ from: 7001, to: 7001 });
      expect(r.values.maxConnections).toBe(600);
      expect(r.values.idleTimeoutMs).toBe(30_000);
      expect(r.values.app).toBe("echo");
      expect(r.values.protocol).toBe("lines");
      expect(r.sources.idleTimeoutMs).toBe("file");

      writeFileSync(file, JSON.stringify({ maxFrameBytes: 0 }));
      expect(errLine(["--config", file])).toBe(
        `serve: config file ${file}: maxFrameBytes must be an integer from 1 to 536870912, got 0`,
      );
      writeFileSync(file, JSON.stringify({ app: "memcached" }));
      expect(errLine(["--config", file])).toBe('serve: --app must be kv, echo, ws-echo, ws-chat or the path of a module app (like ./my-app.ts), got "memcached"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad values name the flag, the value and what is allowed", () => {
    expect(errLine(["--port", "abc"])).toBe('serve: --port must be a port or port range like 6380-6389 within 0..65535, got "abc"');
    expect(errLine(["--port", "65536"])).toBe('serve: --port must be a port or port range like 6380-6389 within 0..65535, got "65536"');
    expect(errLine(["--port", "7010-7000"])).toBe('serve: --port must be a port or port range like 6380-6389 within 0..65535, got "7010-7000"');
    expect(errLine(["--app", "redis"])).toBe('serve: --app must be kv, echo, ws-echo, ws-chat or the path of a module app (like ./my-app.ts), got "redis"');
    expect(errLine(["--app", ""])).toStartWith("serve: --app ");
    for (const bad of ["0", "two", "-1", "1.5", "4097", ""])
      expect(errLine(["--workers", bad, "--app", "echo"])).toBe(`serve: --workers must be auto or an integer from 1 to 4096, got ${JSON.stringify(bad)}`);
    expect(errLine([], { MYRIAD_WORKERS: "many" })).toBe('serve: --workers must be auto or an integer from 1 to 4096, got "many"');
    expect(errLine(["--idle-timeout-ms", "soon"])).toBe(
      'serve: --idle-timeout-ms must be a duration like 500ms, 2s, 1m (bare numbers are ms) >= 0ms, got "soon"',
    );
    expect(errLine([], { MYRIAD_ADMIN_PORT: "-1" })).toBe('serve: MYRIAD_ADMIN_PORT must be an integer from 0 to 65535, got "-1"');
  });

  test("cross-flag rules", () => {
    expect(errLine(["--tls-cert", "c.pem"])).toBe("serve: --tls-cert and --tls-key go together, got only --tls-cert");
    expect(errLine(["--protocol", "lines"])).toBe("serve: --protocol lines applies to --app echo; the kv app speaks resp");
    expect(parse(["--protocol", "resp"]).values.protocol).toBe("resp");
    expect(parse(["--app", "echo", "--protocol", "length-u32"]).values.protocol).toBe("length-u32");
  });

  test("workers, port ranges and several hosts", () => {
    const v = parse(["--app", "echo", "--workers", "auto", "--port", "7000-7019", "--host", "127.0.0.1,::1", "--host", "127.0.0.2"]).values;
    expect(v.workers).toBe("auto");
    expect(v.port).toEqual({ from: 7000, to: 7019 });
    expect(v.host).toEqual(["127.0.0.1", "::1", "127.0.0.2"]);
    expect(parse(["--app", "echo", "-p", "0", "--workers", "12"]).values).toMatchObject({ port: { from: 0, to: 0 }, workers: "12" });
    // Several listeners with one worker keep one store: kv is fine there.
    expect(parse(["--port", "6380-6383", "--host", "127.0.0.1,::1"]).values.app).toBe("kv");
    expect(parse(["--workers", "1", "--unix", "/tmp/x.sock"]).values.unix).toBe("/tmp/x.sock");

    const dir = mkdtempSync(join(tmpdir(), "myriad-serve-config-"));
    try {
      const file = join(dir, "serve.json");
      writeFileSync(file, JSON.stringify({ app: "echo", workers: "auto", port: "7000-7003", host: "127.0.0.1,127.0.0.2" }));
      expect(parse(["--config", file]).values).toMatchObject({ workers: "auto", port: { from: 7000, to: 7003 }, host: ["127.0.0.1", "127.0.0.2"] });
      writeFileSync(file, JSON.stringify({ port: 7000, host: ["::1"] }));
      expect(parse(["--config", file]).values).toMatchObject({ port: { from: 7000, to: 7000 }, host: ["::1"] });
      // A JSON number for a number-or-word flag is taken as its text and checked like a flag.
      writeFileSync(file, JSON.stringify({ app: "echo", workers: 2 }));
      expect(parse(["--config", file]).values).toMatchObject({ workers: "2" });
      writeFileSync(file, JSON.stringify({ app: "echo", workers: 0 }));
      expect(() => parse(["--config", file])).toThrow(/--workers must be auto or an integer from 1 to 4096, got "0"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("refusals: kv or unix with several workers, port 0 in a range, too many ports, no host", () => {
    for (const w of ["2", "auto"]) {
      const line = errLine(["--workers", w]);
      expect(line).toStartWith(`serve: --workers ${w} with --app kv: each worker would keep its own store`);
      expect(line).toContain("use --workers 1 for kv");
      expect(line).toContain("or --app echo");
      expect(line).not.toContain("\n");
    }
    const unix = errLine(["--app", "echo", "--workers", "2", "--unix", "/tmp/x.sock"]);
    expect(unix).toStartWith("serve: --workers 2 with --unix: workers share a TCP port through reusePort");
    expect(unix).toContain("use --workers 1 with --unix");
    expect(errLine(["--port", "0-3"])).toBe("serve: --port 0 (any free port) stands alone, not in a range, got 0-3");
    expect(errLine(["--port", "1000-5100"])).toBe("serve: --port 1000-5100 names 4101 ports; at most 4096");
    expect(errLine(["--host", ","])).toBe("serve: --host must name at least one address, like 127.0.0.1 or 127.0.0.1,::1");
  });

  test("the schema validates a typed config object", () => {
    expect(Value.Check(serveCommand.schema, { port: { from: 6380, to: 6380 }, app: "kv", admin: false, idleTimeoutMs: 1000 })).toBe(true);
    expect(Value.Check(serveCommand.schema, { host: ["127.0.0.1"], workers: "auto" })).toBe(true);
    expect(Value.Check(serveCommand.schema, { port: { from: 70000, to: 70000 } })).toBe(false);
    expect(Value.Check(serveCommand.schema, { prot: 1 })).toBe(false);
  });
});
