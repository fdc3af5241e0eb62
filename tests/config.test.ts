import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { defineCommand, FlagError } from "../src/config/index.ts";

const cmd = defineCommand({
  name: "demo",
  summary: "A command for tests.",
  configFlag: "config",
  flags: {
    config: { type: "string", help: "JSON config file", placeholder: "<path>" },
    port: { type: "int", default: 6380, min: 0, max: 65535, help: "TCP port", short: "p" },
    host: { type: "string", default: "127.0.0.1", minLength: 1, help: "address" },
    ratio: { type: "number", default: 0.5, min: 0, max: 1, help: "a ratio" },
    app: { type: "enum", choices: ["kv", "echo"], default: "kv", help: "which app" },
    verbose: { type: "bool", help: "say more" },
    tls: { type: "bool", default: true, help: "use TLS" },
    idleTimeoutMs: { type: "duration-ms", default: 0, max: 3_600_000, help: "idle timeout" },
    tests: { type: "list", choices: ["ping", "set", "get"], default: ["ping"], help: "tests to run" },
    tags: { type: "list", help: "free tags" },
    ports: { type: "port-range", default: { from: 6380, to: 6380 }, help: "target ports" },
    token: { type: "string", help: "secret", env: "DEMO_TOKEN" },
    secret: { type: "string", help: "never from env", env: false },
  },
});

function err(argv: string[], env: Record<string, string> = {}): FlagError {
  try {
    cmd.parse(argv, { env });
  } catch (e) {
    if (e instanceof FlagError) return e;
    throw e;
  }
  throw new Error(`expected a FlagError for ${argv.join(" ")}`);
}

describe("defineCommand / parse", () => {
  test("defaults when nothing is given", () => {
    const r = cmd.parse([], { env: {} });
    expect(r.help).toBe(false);
    expect(r.values).toEqual({
      config: undefined,
      port: 6380,
      host: "127.0.0.1",
      ratio: 0.5,
      app: "kv",
      verbose: false,
      tls: true,
      idleTimeoutMs: 0,
      tests: ["ping"],
      tags: undefined,
      ports: { from: 6380, to: 6380 },
      token: undefined,
      secret: undefined,
    });
    expect(r.sources.port).toBe("default");
    expect(r.sources.token).toBeUndefined();
  });

  test("--flag value, --flag=value, short forms, bools and --no-flag", () => {
    const r = cmd.parse(
      ["--port", "7000", "--host=::1", "-p", "7001", "--verbose", "--no-tls", "--app=echo", "--ratio", "0.25"],
      { env: {} },
    );
    expect(r.values.port).toBe(7001);
    expect(r.values.host).toBe("::1");
    expect(r.values.verbose).toBe(true);
    expect(r.values.tls).toBe(false);
    expect(r.values.app).toBe("echo");
    expect(r.values.ratio).toBe(0.25);
    expect(cmd.parse(["-p9"], { env: {} }).values.port).toBe(9);
    expect(cmd.parse(["-p=10"], { env: {} }).values.port).toBe(10);
    expect(cmd.parse(["--verbose=false"], { env: {} }).values.verbose).toBe(false);
    expect(cmd.parse(["--tls=yes"], { env: {} }).values.tls).toBe(true);
  });

  test("int suffixes and separators, durations, lists, port ranges", () => {
    expect(cmd.parse(["--port", "1_000"], { env: {} }).values.port).toBe(1000);
    expect(cmd.parse(["--port", "6k"], { env: {} }).values.port).toBe(6000);
    const d = (s: string) => cmd.parse(["--idle-timeout-ms", s], { env: {} }).values.idleTimeoutMs;
    expect(d("250")).toBe(250);
    expect(d("250ms")).toBe(250);
    expect(d("2s")).toBe(2000);
    expect(d("1.5m")).toBe(90_000);
    expect(d("1h")).toBe(3_600_000);
    const r = cmd.parse(["--tests", "set,get", "--tags", "a", "--tags", "b,c", "--ports", "7000-7003"], { env: {} });
    expect(r.values.tests).toEqual(["set", "get"]);
    expect(r.values.tags).toEqual(["a", "b", "c"]);
    expect(r.values.ports).toEqual({ from: 7000, to: 7003 });
    expect(cmd.parse(["--ports", "7000"], { env: {} }).values.ports).toEqual({ from: 7000, to: 7000 });
  });

  test("positionals after -- and a stray word is an error", () => {
    const withArgs = defineCommand({
      name: "args",
      summary: "x",
      positionals: [{ name: "files", help: "inputs", variadic: true }],
      flags: { port: { type: "int", default: 1, help: "p" } },
    });
    const r = withArgs.parse(["a", "--port", "2", "--", "--port", "x"], { env: {} });
    expect(r.positionals).toEqual(["a", "--port", "x"]);
    expect(r.values.port).toBe(2);
    expect(withArgs.helpText()).toContain("Usage: bun run args [flags] [files...]");
    const e = err(["stray"]);
    expect(e.code).toBe("ERR_FLAG_ARGUMENT");
    expect(e.format()).toBe('demo: unexpected argument "stray" (it takes flags only); see demo --help');
  });

  test("--help wins over anything else and returns defaults", () => {
    const r = cmd.parse(["--port", "abc", "--help"], { env: {} });
    expect(r.help).toBe(true);
    expect(cmd.parse(["-h"], { env: {} }).help).toBe(true);
    // After "--" it is a positional (and this command takes none).
    expect(err(["--", "--help"]).code).toBe("ERR_FLAG_ARGUMENT");
  });

  test("bad values: one line naming flag, value and what it accepts", () => {
    expect(err(["--port", "abc"]).format()).toBe('demo: --port must be an integer from 0 to 65535, got "abc"');
    expect(err(["--port=70000"]).format()).toBe('demo: --port must be an integer from 0 to 65535, got "70000"');
    expect(err(["--port", "1.5"]).format()).toBe('demo: --port must be an integer from 0 to 65535, got "1.5"');
    expect(err(["-p", "-1"]).format()).toBe('demo: -p must be an integer from 0 to 65535, got "-1"');
    expect(err(["--app", "redis"]).format()).toBe('demo: --app must be one of kv, echo, got "redis"');
    expect(err(["--verbose=maybe"]).format()).toBe('demo: --verbose must be true or false, got "maybe"');
    expect(err(["--ratio", "2"]).format()).toBe('demo: --ratio must be a number from 0 to 1, got "2"');
    expect(err(["--host", ""]).format()).toBe('demo: --host must be a string of at least 1 character, got ""');
    expect(err(["--idle-timeout-ms", "2d"]).format()).toBe(
      'demo: --idle-timeout-ms must be a duration like 500ms, 2s, 1m (bare numbers are ms) from 0ms to 1h, got "2d"',
    );
    expect(err(["--tests", "ping,del"]).format()).toBe(
      'demo: --tests must be a comma-separated list of ping, set, get, got "ping,del"',
    );
    expect(err(["--ports", "7005-7000"]).format()).toBe(
      'demo: --ports must be a port or port range like 6380-6389 within 1..65535, got "7005-7000"',
    );
    expect(err(["--ports", "0"]).code).toBe("ERR_FLAG_VALUE");
    for (const e of [err(["--port", "abc"]), err(["--app", "x"])]) {
      expect(e.code).toBe("ERR_FLAG_VALUE");
      expect(e.format()).not.toContain("\n");
    }
  });

  test("missing value and bool given a value with --no-", () => {
    expect(err(["--port"]).format()).toBe("demo: --port needs a value: an integer from 0 to 65535");
    expect(err(["--port", "--verbose"]).format()).toBe("demo: --port needs a value: an integer from 0 to 65535");
    expect(err(["--no-verbose=1"]).format()).toBe('demo: --no-verbose takes no value, got "1"');
  });

  test("unknown flags name the flag and suggest the closest", () => {
    const e = err(["--prot", "1"]);
    expect(e.code).toBe("ERR_FLAG_UNKNOWN");
    expect(e.format()).toBe("demo: unknown flag --prot (did you mean --port?); see demo --help for the flags it accepts");
    expect(err(["--zzzzzzzz"]).format()).toBe("demo: unknown flag --zzzzzzzz; see demo --help for the flags it accepts");
    expect(err(["-x"]).format()).toBe("demo: unknown flag -x; see demo --help for the flags it accepts");
    // --no- only applies to bools.
    expect(err(["--no-port"]).code).toBe("ERR_FLAG_UNKNOWN");
  });

  test("environment: MYRIAD_<SNAKE> by default, overrides, disabled, validated", () => {
    const r = cmd.parse([], {
      env: { MYRIAD_PORT: "7100", MYRIAD_IDLE_TIMEOUT_MS: "3s", MYRIAD_VERBOSE: "1", DEMO_TOKEN: "t", MYRIAD_SECRET: "s" },
    });
    expect(r.values.port).toBe(7100);
    expect(r.sources.port).toBe("env");
    expect(r.values.idleTimeoutMs).toBe(3000);
    expect(r.values.verbose).toBe(true);
    expect(r.values.token).toBe("t");
    expect(r.values.secret).toBeUndefined();
    expect(cmd.envName("idleTimeoutMs")).toBe("MYRIAD_IDLE_TIMEOUT_MS");
    expect(cmd.envName("secret")).toBeUndefined();
    expect(cmd.flagName("idleTimeoutMs")).toBe("--idle-timeout-ms");
    expect(err([], { MYRIAD_PORT: "abc" }).format()).toBe('demo: MYRIAD_PORT must be an integer from 0 to 65535, got "abc"');
  });

  test("config file: precedence flags > env > file > defaults", () => {
    const dir = mkdtempSync(join(tmpdir(), "myriad-config-"));
    try {
      const file = join(dir, "c.json");
      writeFileSync(file, JSON.stringify({ port: 7200, host: "::1", idleTimeoutMs: "2s", ports: "7000-7001", app: "echo" }));
      const r = cmd.parse(["--config", file, "--app", "kv"], { env: { MYRIAD_HOST: "localhost" } });
      expect(r.values.port).toBe(7200);
      expect(r.sources.port).toBe("file");
      expect(r.values.host).toBe("localhost");
      expect(r.sources.host).toBe("env");
      expect(r.values.app).toBe("kv");
      expect(r.sources.app).toBe("flag");
      expect(r.values.idleTimeoutMs).toBe(2000);
      expect(r.values.ports).toEqual({ from: 7000, to: 7001 });
      expect(r.values.ratio).toBe(0.5);
      // The file path may come from the environment too.
      expect(cmd.parse([], { env: { MYRIAD_CONFIG: file } }).values.port).toBe(7200);

      writeFileSync(file, JSON.stringify({ port: "7200" }));
      expect(err(["--config", file]).format()).toBe(`demo: config file ${file}: port must be an integer from 0 to 65535, got "7200"`);
      writeFileSync(file, JSON.stringify({ prot: 1 }));
      expect(err(["--config", file]).format()).toBe(
        `demo: config file ${file}: unknown key "prot" (did you mean "port"?); keys are the flag names in camelCase, see demo --help`,
      );
      writeFileSync(file, "{ not json");
      const bad = err(["--config", file]);
      expect(bad.code).toBe("ERR_CONFIG_FILE");
      expect(bad.format()).toStartWith(`demo: config file ${file}: not valid JSON`);
      expect(bad.format()).not.toContain("\n");
      writeFileSync(file, "[1]");
      expect(err(["--config", file]).format()).toStartWith(`demo: config file ${file}: must be a JSON object`);
      expect(err(["--config", join(dir, "missing.json")]).format()).toBe(
        `demo: config file ${join(dir, "missing.json")}: cannot read it (no such file)`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("schema validates typed config objects", () => {
    expect(Value.Check(cmd.schema, { port: 1, app: "echo", tests: ["get"] })).toBe(true);
    expect(Value.Check(cmd.schema, { port: 1.5 })).toBe(false);
    expect(Value.Check(cmd.schema, { app: "nope" })).toBe(false);
    expect(Value.Check(cmd.schema, { other: 1 })).toBe(false);
    expect(cmd.checkConfig({ port: 5 }, "x")).toEqual({ port: 5 });
  });

  test("required flags and cross-flag validation", () => {
    const c = defineCommand({
      name: "req",
      summary: "x",
      flags: {
        target: { type: "string", required: true, help: "host:port to hit" },
        min: { type: "int", default: 1, help: "min" },
        max: { type: "int", default: 2, help: "max" },
      },
      validate: (v) => (v.min > v.max ? `--min (${v.min}) must not exceed --max (${v.max})` : undefined),
    });
    expect(() => c.parse([], { env: {} })).toThrow("--target is required: a string (host:port to hit)");
    expect(c.parse(["--target", "a"], { env: {} }).values.target).toBe("a");
    expect(() => c.parse(["--target", "a", "--min", "5"], { env: {} })).toThrow("--min (5) must not exceed --max (2)");
  });

  test("bad specs are rejected at definition", () => {
    expect(() =>
      defineCommand({ name: "x", summary: "x", flags: { a: { type: "enum", choices: ["p"], default: "q" as "p", help: "" } } }),
    ).toThrow("default of a is not one of its choices");
    expect(() => defineCommand({ name: "x", summary: "x", flags: { help: { type: "bool", help: "" } } })).toThrow("reserved");
  });

  test("--help text lists every flag with its default and env name", () => {
    const text = cmd.helpText();
    expect(text).toStartWith("Usage: bun run demo [flags]\n\nA command for tests.");
    for (const [key, spec] of Object.entries(cmd.spec.flags)) {
      const line = text.split("\n").findIndex((l) => l.includes(cmd.flagName(key as never) + (spec.type === "bool" ? "," : " ")));
      expect(line).toBeGreaterThan(0);
    }
    expect(text).toContain("-p, --port <int>");
    expect(text).toContain("TCP port (default: 6380; env MYRIAD_PORT)");
    expect(text).toContain("--verbose, --no-verbose");
    expect(text).toContain("say more (default: false; env MYRIAD_VERBOSE)");
    expect(text).toContain("idle timeout (default: 0ms; env MYRIAD_IDLE_TIMEOUT_MS)");
    expect(text).toContain("tests to run (default: ping; env MYRIAD_TESTS)");
    expect(text).toContain("target ports (default: 6380; env MYRIAD_PORTS)");
    expect(text).toContain("secret (default: none; env DEMO_TOKEN)");
    expect(text).toContain("never from env (default: none)");
    expect(text).toContain("-h, --help");
  });

  test("property: any in-range int round-trips through every spelling", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), fc.boolean(), (n, inline) => {
        const argv = inline ? [`--port=${n}`] : ["--port", String(n)];
        expect(cmd.parse(argv, { env: {} }).values.port).toBe(n);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 65536, max: 2 ** 40 }), (n) => {
        expect(err(["--port", String(n)]).code).toBe("ERR_FLAG_VALUE");
      }),
      { numRuns: 100 },
    );
  });
});

describe("a CLI as a subprocess", () => {
  const fixture = join(import.meta.dir, "fixtures", "config-cli.ts");
  async function run(args: string[], env: Record<string, string> = {}) {
    const proc = Bun.spawn([process.execPath, fixture, ...args], {
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "", ...env },
    });
    const [out, errText, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { out, err: errText, code };
  }

  test("valid flags exit 0 with the parsed values", async () => {
    const r = await run(["--port", "1234", "--verbose"], { MYRIAD_APP: "echo" });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).values).toMatchObject({ port: 1234, verbose: true, app: "echo" });
  });

  test("--help prints usage to stdout and exits 0", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("Usage: bun run demo [flags]");
    expect(r.out).toContain("--port <int>");
    expect(r.err).toBe("");
  });

  test("a bad value exits 2 with one line on stderr", async () => {
    const r = await run(["--port", "abc"]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toBe('demo: --port must be an integer from 0 to 65535, got "abc"\n');
  });

  test("an unknown flag exits 2 with one line on stderr", async () => {
    const r = await run(["--nope"]);
    expect(r.code).toBe(2);
    expect(r.err).toBe("demo: unknown flag --nope; see demo --help for the flags it accepts\n");
  });

  test("a bad environment value exits 2", async () => {
    const r = await run([], { MYRIAD_PORT: "99999" });
    expect(r.code).toBe(2);
    expect(r.err).toBe('demo: MYRIAD_PORT must be an integer from 0 to 65535, got "99999"\n');
  });
});
