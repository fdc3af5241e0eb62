/**
 * What a command declares: its flags (one spec per flag, by type), what parsing returns, and
 * how a flag's name is spelled on the command line and in the environment. Types only, and
 * the naming rules: flags.ts parses, coerce.ts turns text into values, help.ts writes --help.
 */
import type { TObject } from "@sinclair/typebox";

/** A `port-range` value: `6380` is `{ from: 6380, to: 6380 }`; `6380-6389` is both ends, inclusive. */
export interface PortRange {
  from: number;
  to: number;
}

/** What every flag spec has, whatever its type. */
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
/** Any text; `minLength: 1` refuses the empty string. */
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
/** One of `choices` (kept as literal types by defineCommand). */
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

/** One flag's declaration, by its `type`. */
export type FlagSpec = IntFlag | NumberFlag | DurationFlag | StringFlag | BoolFlag | EnumFlag | ListFlag | PortRangeFlag;

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

/** A command's declaration: its name, summary, flags, and what --help adds. */
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

/** What parsing returns: the values, where each came from, and the positional arguments. */
export interface ParsedCommand<F extends Record<string, FlagSpec>> {
  /** True when `--help` / `-h` was given: the values are then only the defaults. */
  help: boolean;
  values: FlagValues<F>;
  positionals: string[];
  sources: { [K in keyof F]: ValueSource | undefined };
}

/** Options of Command.parse. */
export interface ParseOptions {
  /** Environment to read `MYRIAD_*` from; default `process.env`. Pass `{}` to ignore it. */
  env?: Record<string, string | undefined>;
}

/** A declared command: parses argv (with environment and config file), prints --help, checks config objects. */
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


/** `maxConnections` -> `max-connections`. */
export function kebabCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}
/** `maxConnections` -> `MAX_CONNECTIONS`. */
function snakeUpper(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

/** The command-line spelling of a flag: `maxConnections` -> `--max-connections`. */
export function flagNameOf(key: string): string {
  return "--" + kebabCase(key);
}

/** The environment variable of a flag: its own `env`, else `MYRIAD_<SNAKE_NAME>`; undefined with `env: false`. */
export function envNameOf(key: string, spec: FlagSpec): string | undefined {
  if (spec.env === false) return undefined;
  return spec.env ?? "MYRIAD_" + snakeUpper(key);
}
