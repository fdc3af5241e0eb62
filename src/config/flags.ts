/**
 * The command-line layer every myriad CLI uses (serve, load, c1m, doctor).
 *
 * A command declares its flags once; from that one declaration come the argv parser, the
 * `--help` text, the `MYRIAD_*` environment names and a TypeBox schema that validates the
 * same settings when they come from a JSON config file. Precedence, highest first:
 * flags > environment > config file > defaults.
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
import { MyriadError, type MyriadErrorCode } from "../errors.ts";

/** A `port-range` value: `6380` is `{ from: 6380, to: 6380 }`; `6380-6389` is both ends, inclusive. */
export interface PortRange {
  from: number;
  to: number;
}

interface FlagBase {
  /** One line for `--help`. */
  help: string;
  /** Environment variable that sets it; default `MYRIAD_<SNAKE_NAME>`; false for none. */
  env?: string | false;
  /** A one-letter alias: `short: "p"` accepts `-p 80`. */
  short?: string;
  /** A missing value (no flag, env, file entry or default) is an error. */
  required?: boolean;
  /** Hidden from `--help` (still accepted). */
  hidden?: boolean;
  /** The word shown after the flag in `--help`, e.g. `<path>`. */
  placeholder?: string;
}
/** Integer; accepts `_` separators and `k` / `m` suffixes (`100k`, `1m` = 1,000,000). */
export interface IntFlag extends FlagBase {
  type: "int";
  default?: number;
  min?: number;
  max?: number;
}
/** Any finite number. */
export interface NumberFlag extends FlagBase {
  type: "number";
  default?: number;
  min?: number;
  max?: number;
}
/** A duration, stored in milliseconds: `250`, `250ms`, `2s`, `1.5m`, `1h`. */
export interface DurationFlag extends FlagBase {
  type: "duration-ms";
  default?: number;
  /** Bounds in milliseconds. */
  min?: number;
  max?: number;
}
export interface StringFlag extends FlagBase {
  type: "string";
  default?: string;
  /** Minimum length (1 = non-empty). */
  minLength?: number;
}
/** `--flag`, `--flag=true|false|1|0|yes|no|on|off`, `--no-flag`. Default false unless given. */
export interface BoolFlag extends FlagBase {
  type: "bool";
  default?: boolean;
}
export interface EnumFlag<C extends string = string> extends FlagBase {
  type: "enum";
  choices: readonly C[];
  default?: C;
}
/** Comma-separated and/or repeated (`--x a,b --x c` = [a, b, c]); items may be restricted to choices. */
export interface ListFlag extends FlagBase {
  type: "list";
  default?: readonly string[];
  choices?: readonly string[];
}
/** `6380` or `6380-6389`; ports within min..max (default 1..65535). */
export interface PortRangeFlag extends FlagBase {
  type: "port-range";
  default?: PortRange;
  min?: number;
  max?: number;
}

export type FlagSpec = IntFlag | NumberFlag | DurationFlag | StringFlag | BoolFlag | EnumFlag | ListFlag | PortRangeFlag;
export type FlagType = FlagSpec["type"];

/** The parsed type of one flag. */
export type FlagValue<S> = S extends { type: "int" | "number" | "duration-ms" }
  ? number
  : S extends { type: "bool" }
    ? boolean
    : S extends { type: "enum"; choices: readonly (infer C)[] }
      ? C
      : S extends { type: "list" }
        ? string[]
        : S extends { type: "port-range" }
          ? PortRange
          : string;

/** Parsed values: a flag with a default (or a bool, or a required flag) is always set. */
export type FlagValues<F extends Record<string, FlagSpec>> = {
  [K in keyof F]: F[K] extends { default: unknown } | { type: "bool" } | { required: true }
    ? FlagValue<F[K]>
    : FlagValue<F[K]> | undefined;
};

/** Where a value came from. */
export type ValueSource = "default" | "file" | "env" | "flag";

export interface CommandSpec<F extends Record<string, FlagSpec>> {
  /** The command's name as the user types it after `bun run` (`serve`). Prefixes every error. */
  name: string;
  /** One or two sentences shown at the top of `--help`. */
  summary: string;
  flags: F;
  /** Usage line override; default `bun run <name> [flags]`. */
  usage?: string;
  /** Extra text at the end of `--help` (examples, notes). */
  epilog?: string;
  /** Positional arguments accepted (names for `--help`); none by default, so a stray word is an error. */
  positionals?: { name: string; help: string; variadic?: boolean }[];
  /**
   * Name of a string flag whose value is a JSON config file (keys = flag names in camelCase);
   * its settings rank below env and flags.
   */
  configFlag?: keyof F & string;
  /** Cross-flag checks after parsing: return one error line (without the command prefix), or undefined. */
  validate?: (values: FlagValues<F>) => string | undefined;
}

export interface ParsedCommand<F extends Record<string, FlagSpec>> {
  /** True when `--help` / `-h` was given: the values are then only the defaults. */
  help: boolean;
  values: FlagValues<F>;
  positionals: string[];
  sources: { [K in keyof F]: ValueSource | undefined };
}

export interface ParseOptions {
  /** Environment to read `MYRIAD_*` from; default `process.env`. Pass `{}` to ignore it. */
  env?: Record<string, string | undefined>;
}

/** The codes a FlagError carries. */
export type FlagErrorCode = Extract<MyriadErrorCode, "ERR_FLAG_UNKNOWN" | "ERR_FLAG_VALUE" | "ERR_FLAG_MISSING" | "ERR_FLAG_ARGUMENT" | "ERR_CONFIG_FILE">;

/**
 * A bad flag, environment value or config file entry. `message` is the one line to print
 * (without the command prefix); `code` is ERR_FLAG_UNKNOWN, ERR_FLAG_VALUE, ERR_FLAG_MISSING,
 * ERR_FLAG_ARGUMENT or ERR_CONFIG_FILE.
 */
export class FlagError extends MyriadError {
  declare readonly code: FlagErrorCode;
  readonly command: string;
  constructor(command: string, code: FlagErrorCode, message: string) {
    super(code, message);
    this.command = command;
  }
  /** The line a CLI prints: `serve: --port must be ...`. */
  format(): string {
    return `${this.command}: ${this.message}`;
  }
}

export interface Command<F extends Record<string, FlagSpec>> {
  readonly name: string;
  readonly spec: CommandSpec<F>;
  /** TypeBox schema of the typed values (all keys optional, no others): validates a config object. */
  readonly schema: TObject;
  /** Parses argv (without the runtime and script: `process.argv.slice(2)`). Throws FlagError. */
  parse(argv: readonly string[], opts?: ParseOptions): ParsedCommand<F>;
  /**
   * Parses argv; on `--help` prints usage to stdout and exits 0; on a FlagError prints its
   * one line to stderr and exits 2. Returns only with valid values.
   */
  parseOrExit(argv?: readonly string[], opts?: ParseOptions): ParsedCommand<F>;
  /** The `--help` text. */
  helpText(): string;
  /**
   * Validates a config object (as read from a JSON file) against the schema; throws FlagError
   * naming the key, the value and what it accepts. `origin` names it in errors.
   */
  checkConfig(config: unknown, origin?: string): Partial<FlagValues<F>>;
  /** The command-line spelling of a flag: `maxConnections` -> `--max-connections`. */
  flagName(key: keyof F & string): string;
  /** The environment variable of a flag, or undefined when it has none. */
  envName(key: keyof F & string): string | undefined;
}

/** Declares a command. `const` inference keeps enum choices as literal types. */
export function defineCommand<const F extends Record<string, FlagSpec>>(spec: CommandSpec<F>): Command<F> {
  return new CommandImpl(spec);
}

/** Shorthand: `runCommand(cmd)` = `cmd.parseOrExit(process.argv.slice(2))`. */
export function runCommand<F extends Record<string, FlagSpec>>(cmd: Command<F>, opts?: ParseOptions): ParsedCommand<F> {
  return cmd.parseOrExit(process.argv.slice(2), opts);
}

// ---------------------------------------------------------------------------------------

/** `maxConnections` -> `max-connections`. */
export function kebabCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}
/** `maxConnections` -> `MAX_CONNECTIONS`. */
export function snakeUpper(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

const TRUE_WORDS = new Set(["true", "1", "yes", "on", "y"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off", "n", ""]);

function quote(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
}

function formatMs(ms: number): string {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms !== 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function rangeText(min: number | undefined, max: number | undefined, fmt: (n: number) => string = String): string {
  if (min !== undefined && max !== undefined) return ` from ${fmt(min)} to ${fmt(max)}`;
  if (min !== undefined) return ` >= ${fmt(min)}`;
  if (max !== undefined) return ` <= ${fmt(max)}`;
  return "";
}

/** What a flag accepts, as the end of "must be ...". */
export function describeAccepts(spec: FlagSpec): string {
  switch (spec.type) {
    case "int":
      return `an integer${rangeText(spec.min, spec.max)}`;
    case "number":
      return `a number${rangeText(spec.min, spec.max)}`;
    case "duration-ms":
      return `a duration like 500ms, 2s, 1m (bare numbers are ms)${rangeText(spec.min ?? 0, spec.max, formatMs)}`;
    case "string":
      return spec.minLength ? `a string of at least ${spec.minLength} character${spec.minLength === 1 ? "" : "s"}` : "a string";
    case "bool":
      return "true or false";
    case "enum":
      return `one of ${spec.choices.join(", ")}`;
    case "list":
      return spec.choices ? `a comma-separated list of ${spec.choices.join(", ")}` : "a comma-separated list";
    case "port-range":
      return `a port or port range like 6380-6389 within ${spec.min ?? 1}..${spec.max ?? 65535}`;
  }
}

function placeholderOf(spec: FlagSpec): string {
  if (spec.placeholder) return spec.placeholder;
  switch (spec.type) {
    case "int":
      return "<int>";
    case "number":
      return "<number>";
    case "duration-ms":
      return "<duration>";
    case "string":
      return "<string>";
    case "bool":
      return "";
    case "enum":
      return `<${spec.choices.join("|")}>`;
    case "list":
      return spec.choices ? `<${spec.choices.join(",")}>` : "<a,b,...>";
    case "port-range":
      return "<port[-port]>";
  }
}

function formatDefault(spec: FlagSpec, value: unknown): string {
  if (value === undefined) return spec.required ? "required" : "none";
  switch (spec.type) {
    case "duration-ms":
      return formatMs(value as number);
    case "list":
      return (value as string[]).length ? (value as string[]).join(",") : "none";
    case "port-range": {
      const r = value as PortRange;
      return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
    }
    case "string":
      return (value as string) === "" ? '""' : (value as string);
    default:
      return String(value);
  }
}

/** The TypeBox schema of one flag's typed value. */
export function flagSchema(spec: FlagSpec): TSchema {
  const description = spec.help;
  switch (spec.type) {
    case "int":
      return Type.Integer({ minimum: spec.min, maximum: spec.max, description });
    case "number":
      return Type.Number({ minimum: spec.min, maximum: spec.max, description });
    case "duration-ms":
      return Type.Number({ minimum: spec.min ?? 0, maximum: spec.max, description });
    case "string":
      return Type.String({ minLength: spec.minLength, description });
    case "bool":
      return Type.Boolean({ description });
    case "enum":
      return Type.Union(
        spec.choices.map((c) => Type.Literal(c)),
        { description },
      );
    case "list":
      return Type.Array(spec.choices ? Type.Union(spec.choices.map((c) => Type.Literal(c))) : Type.String(), { description });
    case "port-range": {
      const port = Type.Integer({ minimum: spec.min ?? 1, maximum: spec.max ?? 65535 });
      return Type.Object({ from: port, to: port }, { additionalProperties: false, description });
    }
  }
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

/** Thrown by the coercers: `what` is the accepts-text; the caller adds who and the raw value. */
class CoerceError extends Error {}

const INT_RE = /^([+-]?\d[\d_]*)([kKmM]?)$/;
const DURATION_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/;

function coerceString(spec: FlagSpec, raw: string): unknown {
  const s = raw.trim();
  switch (spec.type) {
    case "int": {
      const m = INT_RE.exec(s);
      if (!m) throw new CoerceError();
      const mult = m[2] === "" ? 1 : m[2] === "k" || m[2] === "K" ? 1000 : 1_000_000;
      const n = Number(m[1]!.replaceAll("_", "")) * mult;
      if (!Number.isSafeInteger(n)) throw new CoerceError();
      return n;
    }
    case "number": {
      if (s === "") throw new CoerceError();
      const n = Number(s.replaceAll("_", ""));
      if (!Number.isFinite(n)) throw new CoerceError();
      return n;
    }
    case "duration-ms": {
      const m = DURATION_RE.exec(s);
      if (!m) throw new CoerceError();
      const unit = m[2] ?? "ms";
      const mult = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000;
      return Math.round(Number(m[1]) * mult);
    }
    case "string":
      return raw;
    case "bool": {
      const w = s.toLowerCase();
      if (TRUE_WORDS.has(w)) return true;
      if (FALSE_WORDS.has(w)) return false;
      throw new CoerceError();
    }
    case "enum":
      return s;
    case "list":
      return s === "" ? [] : s.split(",").map((x) => x.trim()).filter((x) => x !== "");
    case "port-range": {
      const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(s);
      if (!m) throw new CoerceError();
      const from = Number(m[1]);
      const to = m[2] === undefined ? from : Number(m[2]);
      if (to < from) throw new CoerceError();
      return { from, to };
    }
  }
}

/** Config-file values: JSON types pass as they are; strings of durations, ranges and lists are parsed like argv. */
function coerceFileValue(spec: FlagSpec, v: unknown): unknown {
  if (typeof v !== "string") {
    if (spec.type === "port-range" && typeof v === "number") return { from: v, to: v };
    // A string flag that takes numbers among its words (`--workers 2|auto`) is written as a
    // JSON number in a file as often as a string: take its text, the flag's own check follows.
    if (spec.type === "string" && typeof v === "number" && Number.isFinite(v)) return String(v);
    return v;
  }
  if (spec.type === "duration-ms" || spec.type === "port-range" || spec.type === "list") return coerceString(spec, v);
  return v;
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
    return "--" + kebabCase(key);
  }

  envName(key: keyof F & string): string | undefined {
    const e = this.spec.flags[key]!.env;
    if (e === false) return undefined;
    return e ?? "MYRIAD_" + snakeUpper(key);
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
    const s = this.spec;
    const lines: string[] = [];
    const pos = (s.positionals ?? []).map((p) => (p.variadic ? `[${p.name}...]` : `<${p.name}>`)).join(" ");
    lines.push(`Usage: ${s.usage ?? `bun run ${s.name} [flags]${pos ? " " + pos : ""}`}`, "", s.summary, "");
    if (s.positionals?.length) {
      lines.push("Arguments:");
      for (const p of s.positionals) lines.push(`  ${p.name.padEnd(28)} ${p.help}`);
      lines.push("");
    }
    lines.push("Flags:");
    const rows: [string, string][] = [];
    for (const key of this.keys) {
      const f = s.flags[key]!;
      if (f.hidden) continue;
      const short = f.short ? `-${f.short}, ` : "    ";
      const ph = placeholderOf(f);
      const left = `${short}${this.flagName(key)}${f.type === "bool" ? `, --no-${kebabCase(key)}` : ""}${ph ? " " + ph : ""}`;
      const def = f.type === "bool" && f.default === undefined ? false : f.default;
      const env = this.envName(key);
      rows.push([left, `${f.help} (default: ${formatDefault(f, def)}${env ? `; env ${env}` : ""})`]);
    }
    rows.push(["-h, --help", "print this help and exit"]);
    const width = Math.min(40, Math.max(...rows.map((r) => r[0].length)) + 2);
    for (const [l, r] of rows) lines.push(l.length + 2 > width ? `  ${l}\n  ${"".padEnd(width)}${r}` : `  ${l.padEnd(width)}${r}`);
    lines.push("");
    if (s.configFlag)
      lines.push(
        `Settings come from, highest first: flags, environment (MYRIAD_*), the JSON file given by ${this.flagName(s.configFlag)} (keys: flag names in camelCase), defaults.`,
        "",
      );
    if (s.epilog) lines.push(s.epilog, "");
    return lines.join("\n");
  }
}
