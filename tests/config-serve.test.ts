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
    expect(v.host).toBe("127.0.0.1");
    expect(v.port).toBe(6380);
    expect(v.admin).toBe(true);
    expect(v.adminHost).toBe("127.0.0.1");
    expect(v.adminPort).toBe(9180);
    expect(v.workers).toBe(1);
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
      expect(r.values.port).toBe(7001);
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
      expect(errLine(["--config", file])).toBe(`serve: config file ${file}: app must be one of kv, echo, got "memcached"`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad values name the flag, the value and what is allowed", () => {
    expect(errLine(["--port", "abc"])).toBe('serve: --port must be an integer from 0 to 65535, got "abc"');
    expect(errLine(["--port", "65536"])).toBe('serve: --port must be an integer from 0 to 65535, got "65536"');
    expect(errLine(["--app", "redis"])).toBe('serve: --app must be one of kv, echo, got "redis"');
    expect(errLine(["--workers", "4"])).toBe('serve: --workers must be an integer from 1 to 1, got "4"');
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

  test("the schema validates a typed config object", () => {
    expect(Value.Check(serveCommand.schema, { port: 6380, app: "kv", admin: false, idleTimeoutMs: 1000 })).toBe(true);
    expect(Value.Check(serveCommand.schema, { port: 70000 })).toBe(false);
    expect(Value.Check(serveCommand.schema, { prot: 1 })).toBe(false);
  });
});
