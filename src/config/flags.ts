/**
 * The command-line layer every myriad CLI uses (serve, load, c1m, doctor).
 *
 * A command declares its flags once (spec.ts); from that one declaration come the argv
 * parser (here), the `--help` text (help.ts), the `MYRIAD_*` environment names and a
 * TypeBox schema (coerce.ts) that validates the same settings when they come from a JSON
 * config file. Precedence, highest first: flags > environment > config file > defaults.
 *
 * Flag names are camelCase in code and in JSON files (`maxConnections`) and kebab-case on the
 * command line (`--max-connections`); the environment name is `MYRIAD_` + SNAKE_CASE
 * (`MYRIAD_MAX_CONNECTIONS`) unless the flag names another one.
 *
 * Errors are one line that names the flag, the value and what the flag accepts; a CLI prints
 * it and exits 2 (`runCommand` / `command.parseOrExit`).
 */
import { Type, type TSchema, type TObject } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { readFileSync } from "node:fs";
import { MyriadError } from "../errors.ts";
import { CoerceError, coerceFileValue, coerceString, flagSchema } from "./coerce.ts";
import { FlagError, type FlagErrorCode } from "./errors.ts";
import { describeAccepts, helpText } from "./help.ts";
import {
  envNameOf,
  flagNameOf,
  kebabCase,
  type Command,
  type CommandSpec,
  type FlagSpec,
  type FlagValues,
  type ParsedCommand,
  type ParseOptions,
  type ValueSource,
} from "./spec.ts";

/** Declares a command. `const` inference keeps enum choices as literal types. */
export function defineCommand<const F extends Record<string, FlagSpec>>(spec: CommandSpec<F>): Command<F> {
  return new CommandImpl(spec);
}

/** Shorthand: `runCommand(cmd)` = `cmd.parseOrExit(process.argv.slice(2))`. */
export function runCommand<F extends Record<string, FlagSpec>>(cmd: Command<F>, opts?: ParseOptions): ParsedCommand<F> {
  return cmd.parseOrExit(process.argv.slice(2), opts);
}

function quote(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
}

function levenshtein(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

class CommandImpl<F extends Record<string, FlagSpec>> implements Command<F> {
  readonly name: string;
  readonly spec: CommandSpec<F>;
  readonly schema: TObject;
  private readonly keys: (keyof F & string)[];
  private readonly byLong = new Map<string, keyof F & string>();
  private readonly byShort = new Map<string, keyof F & string>();
  private readonly schemas = new Map<string, TSchema>();

  constructor(spec: CommandSpec<F>) {
    this.name = spec.name;
    this.spec = spec;
    this.keys = Object.keys(spec.flags) as (keyof F & string)[];
    const props: Record<string, TSchema> = {};
    for (const key of this.keys) {
      const f = spec.flags[key]!;
      if (key === "help") throw new MyriadError("ERR_FLAG_SPEC", `${spec.name}: the flag name "help" is reserved`);
      if (f.type === "enum" && f.default !== undefined && !f.choices.includes(f.default))
        throw new MyriadError("ERR_FLAG_SPEC", `${spec.name}: default of ${key} is not one of its choices`);
      this.byLong.set(kebabCase(key), key);
      if (f.short) {
        if (f.short.length !== 1 || f.short === "h")
          throw new MyriadError("ERR_FLAG_SPEC", `${spec.name}: short alias of ${key} must be one letter other than h`);
        this.byShort.set(f.short, key);
      }
      const s = flagSchema(f);
      this.schemas.set(key, s);
      props[key] = Type.Optional(s);
    }
    if (spec.configFlag !== undefined && spec.flags[spec.configFlag]?.type !== "string")
      throw new MyriadError("ERR_FLAG_SPEC", `${spec.name}: configFlag must name a string flag`);
    this.schema = Type.Object(props, { additionalProperties: false });
  }

  flagName(key: keyof F & string): string {
    return flagNameOf(key);
  }

  envName(key: keyof F & string): string | undefined {
    return envNameOf(key, this.spec.flags[key]!);
  }

  private fail(code: FlagErrorCode, message: string): never {
    throw new FlagError(this.name, code, message);
  }

  /** Coerces and validates one raw string; `who` is how the error names it (`--port`, `MYRIAD_PORT`). */
  private fromString(key: keyof F & string, raw: string, who: string): unknown {
    const spec = this.spec.flags[key]!;
    let v: unknown;
    try {
      v = coerceString(spec, raw);
    } catch (e) {
      if (!(e instanceof CoerceError)) throw e;
      this.fail("ERR_FLAG_VALUE", `${who} must be ${describeAccepts(spec)}, got ${quote(raw)}`);
    }
    if (!Value.Check(this.schemas.get(key)!, v))
      this.fail("ERR_FLAG_VALUE", `${who} must be ${describeAccepts(spec)}, got ${quote(raw)}`);
    return v;
  }

  checkConfig(config: unknown, origin = "config"): Partial<FlagValues<F>> {
    if (typeof config !== "object" || config === null || Array.isArray(config))
      this.fail("ERR_CONFIG_FILE", `${origin}: must be a JSON object of settings (keys: ${this.keys.join(", ")})`);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(config as Record<string, unknown>)) {
      if (!Object.hasOwn(this.spec.flags, k)) {
        const hint = closest(k, this.keys);
        this.fail(
          "ERR_CONFIG_FILE",
          `${origin}: unknown key ${quote(k)}${hint ? ` (did you mean ${quote(hint)}?)` : ""}; keys are the flag names in camelCase, see ${this.name} --help`,
        );
      }
      const key = k as keyof F & string;
      const spec = this.spec.flags[key]!;
      let c: unknown;
      try {
        c = coerceFileValue(spec, v);
      } catch (e) {
        if (!(e instanceof CoerceError)) throw e;
        c = v;
      }
      out[key] = c;
    }
    // The whole object goes through the schema so that a file is checked exactly as documented by it.
    if (!Value.Check(this.schema, out)) {
      const first = Value.Errors(this.schema, out).First();
      const key = (first?.path ?? "").split("/")[1] ?? "";
      const spec = this.spec.flags[key];
      const raw = (config as Record<string, unknown>)[key];
      if (spec) this.fail("ERR_CONFIG_FILE", `${origin}: ${key} must be ${describeAccepts(spec)}, got ${quote(raw)}`);
      this.fail("ERR_CONFIG_FILE", `${origin}: ${first?.message ?? "invalid settings"}`);
    }
    return out as Partial<FlagValues<F>>;
  }

  private readConfigFile(path: string): Partial<FlagValues<F>> {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message;
      this.fail("ERR_CONFIG_FILE", `config file ${path}: cannot read it (${why})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      this.fail("ERR_CONFIG_FILE", `config file ${path}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
    }
    return this.checkConfig(json, `config file ${path}`);
  }

  parse(argv: readonly string[], opts: ParseOptions = {}): ParsedCommand<F> {
    const env = opts.env ?? process.env;
    const flags = this.spec.flags;
    const values: Record<string, unknown> = {};
    const sources: Record<string, ValueSource | undefined> = {};
    for (const key of this.keys) {
      const f = flags[key]!;
      const d = f.default !== undefined ? f.default : f.type === "bool" ? false : undefined;
      values[key] = Array.isArray(d) ? [...d] : typeof d === "object" && d !== null ? { ...d } : d;
      sources[key] = d === undefined ? undefined : "default";
    }

    const stop = argv.indexOf("--");
    const head = stop < 0 ? argv : argv.slice(0, stop);
    if (head.includes("--help") || head.includes("-h"))
      return { help: true, values: values as FlagValues<F>, positionals: [], sources: sources as ParsedCommand<F>["sources"] };

    // Pass 1: argv into raw per-flag settings (later flags win; lists accumulate).
    const fromArgv: Record<string, unknown> = {};
    const positionals: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      if (i === stop) {
        positionals.push(...argv.slice(i + 1));
        break;
      }
      if (!arg.startsWith("-") || arg === "-") {
        positionals.push(arg);
        continue;
      }
      let key: (keyof F & string) | undefined;
      let inline: string | undefined;
      let who: string;
      let negated = false;
      if (arg.startsWith("--")) {
        const eq = arg.indexOf("=");
        const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
        inline = eq < 0 ? undefined : arg.slice(eq + 1);
        who = "--" + name;
        key = this.byLong.get(name);
        if (key === undefined && name.startsWith("no-")) {
          const k = this.byLong.get(name.slice(3));
          if (k !== undefined && flags[k]!.type === "bool") {
            if (inline !== undefined) this.fail("ERR_FLAG_VALUE", `${who} takes no value, got ${quote(inline)}`);
            key = k;
            negated = true;
          }
        }
      } else {
        const letter = arg.slice(1, 2);
        who = "-" + letter;
        key = this.byShort.get(letter);
        if (arg.length > 2) inline = arg[2] === "=" ? arg.slice(3) : arg.slice(2);
      }
      if (key === undefined) {
        const all = this.keys.map(kebabCase);
        const hint = arg.startsWith("--") ? closest(who.slice(2), all) : undefined;
        this.fail(
          "ERR_FLAG_UNKNOWN",
          `unknown flag ${who}${hint ? ` (did you mean --${hint}?)` : ""}; see ${this.name} --help for the flags it accepts`,
        );
      }
      const spec = flags[key]!;
      let v: unknown;
      if (spec.type === "bool") {
        v = negated ? false : inline === undefined ? true : this.fromString(key, inline, who);
      } else {
        let raw = inline;
        if (raw === undefined) {
          const next = argv[i + 1];
          // A value may itself start with "-" (negative numbers) but not look like a flag name.
          if (next === undefined || i + 1 === stop || (next.startsWith("--") && next.length > 2) || /^-[a-zA-Z]/.test(next))
            this.fail("ERR_FLAG_VALUE", `${who} needs a value: ${describeAccepts(spec)}`);
          raw = next;
          i++;
        }
        v = this.fromString(key, raw, who);
      }
      if (spec.type === "list" && Array.isArray(fromArgv[key])) v = [...(fromArgv[key] as string[]), ...(v as string[])];
      fromArgv[key] = v;
    }

    const allowed = this.spec.positionals ?? [];
    const variadic = allowed.some((p) => p.variadic);
    if (!variadic && positionals.length > allowed.length) {
      const extra = positionals[allowed.length]!;
      this.fail(
        "ERR_FLAG_ARGUMENT",
        `unexpected argument ${quote(extra)}${allowed.length ? ` (accepts ${allowed.map((p) => p.name).join(" ")})` : " (it takes flags only)"}; see ${this.name} --help`,
      );
    }

    // Layer 2: config file (its path may come from argv or env).
    const cf = this.spec.configFlag;
    if (cf !== undefined) {
      const envCf = this.envName(cf);
      const path = (fromArgv[cf] as string | undefined) ?? (envCf !== undefined && env[envCf] ? env[envCf] : undefined) ?? (values[cf] as string | undefined);
      if (path) {
        const fileValues = this.readConfigFile(path);
        for (const [k, v] of Object.entries(fileValues)) {
          values[k] = v;
          sources[k] = "file";
        }
        values[cf] = path;
      }
    }
    // Layer 3: environment.
    for (const key of this.keys) {
      const name = this.envName(key);
      if (name === undefined) continue;
      const raw = env[name];
      if (raw === undefined) continue;
      values[key] = this.fromString(key, raw, name);
      sources[key] = "env";
    }
    // Layer 4: flags.
    for (const [k, v] of Object.entries(fromArgv)) {
      values[k] = v;
      sources[k] = "flag";
    }

    for (const key of this.keys) {
      const f = flags[key]!;
      if (f.required && values[key] === undefined)
        this.fail("ERR_FLAG_MISSING", `${this.flagName(key)} is required: ${describeAccepts(f)} (${f.help})`);
    }
    const problem = this.spec.validate?.(values as FlagValues<F>);
    if (problem !== undefined) this.fail("ERR_FLAG_VALUE", problem);
    return { help: false, values: values as FlagValues<F>, positionals, sources: sources as ParsedCommand<F>["sources"] };
  }

  parseOrExit(argv: readonly string[] = process.argv.slice(2), opts?: ParseOptions): ParsedCommand<F> {
    let parsed: ParsedCommand<F>;
    try {
      parsed = this.parse(argv, opts);
    } catch (e) {
      if (e instanceof FlagError) {
        process.stderr.write(e.format() + "\n");
        process.exit(2);
      }
      throw e;
    }
    if (parsed.help) {
      process.stdout.write(this.helpText());
      process.exit(0);
    }
    return parsed;
  }

  helpText(): string {
    return helpText(this.spec);
  }
}
