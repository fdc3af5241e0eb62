/**
 * The `--help` text of a command and the "must be ..." words every error about a value uses,
 * both from the flag specs.
 */
import { envNameOf, flagNameOf, kebabCase, type CommandSpec, type FlagSpec, type PortRange } from "./spec.ts";

/** `60000` -> `1m`: the largest whole unit. */
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

/** The `--help` text of a command: usage, summary, one row per visible flag (with its default and environment variable), epilog. */
export function helpText<F extends Record<string, FlagSpec>>(s: CommandSpec<F>): string {
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
  for (const key of (Object.keys(s.flags) as (keyof F & string)[])) {
    const f = s.flags[key]!;
    if (f.hidden) continue;
    const short = f.short ? `-${f.short}, ` : "    ";
    const ph = placeholderOf(f);
    const left = `${short}${flagNameOf(key)}${f.type === "bool" ? `, --no-${kebabCase(key)}` : ""}${ph ? " " + ph : ""}`;
    const def = f.type === "bool" && f.default === undefined ? false : f.default;
    const env = envNameOf(key, f);
    rows.push([left, `${f.help} (default: ${formatDefault(f, def)}${env ? `; env ${env}` : ""})`]);
  }
  rows.push(["-h, --help", "print this help and exit"]);
  const width = Math.min(40, Math.max(...rows.map((r) => r[0].length)) + 2);
  for (const [l, r] of rows) lines.push(l.length + 2 > width ? `  ${l}\n  ${"".padEnd(width)}${r}` : `  ${l.padEnd(width)}${r}`);
  lines.push("");
  if (s.configFlag)
    lines.push(
      `Settings come from, highest first: flags, environment (MYRIAD_*), the JSON file given by ${flagNameOf(s.configFlag)} (keys: flag names in camelCase), defaults.`,
      "",
    );
  if (s.epilog) lines.push(s.epilog, "");
  return lines.join("\n");
}
