/**
 * A strict parser and validator of the Prometheus text exposition format 0.0.4, for tests.
 * It throws PromParseError (with the 1-based line number) on the first violation of:
 *
 * - the grammar: `# HELP name text`, `# TYPE name type`, other `#` comments, blank lines,
 *   `name{label="value",...} value [timestamp]`; the text ends with "\n";
 * - names: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 *   and do not start with "__"; no label twice in a sample;
 * - escapes: label values allow only \\, \" and \n; HELP text only \\ and \n;
 * - values: Go floats (decimal or exponent notation, +Inf, -Inf, NaN); timestamps integers;
 * - metadata: at most one HELP and one TYPE per family, both before the family's first
 *   sample; every family has a TYPE (and a HELP, unless requireHelp is false); a family's
 *   samples are contiguous; no series (name + label set) appears twice;
 * - counters: sample names end in `_total` (unless counterSuffix is false); values >= 0;
 * - histograms: only _bucket, _sum and _count samples; every _bucket has an `le`; per label
 *   set, le strictly increasing and ending with +Inf, cumulative counts non-decreasing,
 *   exactly one _sum and one _count, and _count equal to the +Inf bucket;
 * - optionally, every metric name starts with `prefix`.
 */

export class PromParseError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export type PromType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
  line: number;
}

export interface PromFamily {
  name: string;
  type: PromType;
  help: string | null;
  samples: PromSample[];
}

export interface PromParseOptions {
  /** Every family needs a # HELP line (default true). */
  requireHelp?: boolean;
  /** Counter samples must end in _total (default true). */
  counterSuffix?: boolean;
  /** Every metric name must start with this. */
  prefix?: string;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf)$/;
const TYPES = new Set<PromType>(["counter", "gauge", "histogram", "summary", "untyped"]);

/** Returns a Go-float string as a number; throws on anything else. */
export function parsePromFloat(s: string, line: number): number {
  if (s === "NaN") return NaN;
  if (!FLOAT.test(s)) throw new PromParseError(line, `not a float: ${JSON.stringify(s)}`);
  if (/^[+-]?[Ii]nf$/.test(s)) return s.startsWith("-") ? -Infinity : Infinity;
  return Number(s);
}

function unescapeHelp(s: string, line: number): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch !== "\\") {
      out += ch;
      continue;
    }
    const next = s[++i];
    if (next === "\\") out += "\\";
    else if (next === "n") out += "\n";
    else throw new PromParseError(line, `invalid escape \\${next ?? ""} in HELP (only \\\\ and \\n)`);
  }
  return out;
}

/** Parses `{a="x",b="y"}` starting at s[i] === "{"; returns the labels and the index after "}". */
function parseLabels(s: string, start: number, line: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  const skipBlanks = () => {
    while (s[i] === " " || s[i] === "\t") i++;
  };
  skipBlanks();
  while (s[i] !== "}") {
    const nameStart = i;
    while (i < s.length && /[a-zA-Z0-9_]/.test(s[i] as string)) i++;
    const name = s.slice(nameStart, i);
    if (!LABEL_NAME.test(name)) throw new PromParseError(line, `invalid label name ${JSON.stringify(name)}`);
    if (name.startsWith("__")) throw new PromParseError(line, `label name ${name} is reserved (starts with __)`);
    if (Object.hasOwn(labels, name)) throw new PromParseError(line, `label ${name} given twice`);
    skipBlanks();
    if (s[i] !== "=") throw new PromParseError(line, `expected = after label ${name}`);
    i++;
    skipBlanks();
    if (s[i] !== '"') throw new PromParseError(line, `expected " to open the value of label ${name}`);
    i++;
    let value = "";
    for (;;) {
      if (i >= s.length) throw new PromParseError(line, `unterminated value of label ${name}`);
      const ch = s[i] as string;
      if (ch === '"') break;
      if (ch === "\\") {
        const next = s[i + 1];
        if (next === "\\") value += "\\";
        else if (next === '"') value += '"';
        else if (next === "n") value += "\n";
        else throw new PromParseError(line, `invalid escape \\${next ?? ""} in label ${name} (only \\\\, \\" and \\n)`);
        i += 2;
        continue;
      }
      value += ch;
      i++;
    }
    i++; // closing quote
    labels[name] = value;
    skipBlanks();
    if (s[i] === ",") {
      i++;
      skipBlanks();
    } else if (s[i] !== "}") {
      throw new PromParseError(line, `expected , or } after label ${name}`);
    }
  }
  return { labels, end: i + 1 };
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return name + JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Parses and validates `text`; returns its families by name, in order of appearance. */
export function parsePrometheusText(text: string, opts: PromParseOptions = {}): Map<string, PromFamily> {
  const requireHelp = opts.requireHelp ?? true;
  const counterSuffix = opts.counterSuffix ?? true;
  const families = new Map<string, PromFamily>();
  const closed = new Set<string>(); // families whose sample group has ended
  const series = new Set<string>();
  let current: string | null = null;

  if (text.length > 0 && !text.endsWith("\n")) throw new PromParseError(text.split("\n").length, "the text must end with a line feed");
  const lines = text.split("\n");
  lines.pop(); // the empty string after the final "\n"

  const family = (name: string): PromFamily => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", help: null, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const typed = new Set<string>();

  for (let idx = 0; idx < lines.length; idx++) {
    const n = idx + 1;
    const raw = lines[idx] as string;
    if (raw.includes("\r")) throw new PromParseError(n, "carriage return in line (lines end with \\n only)");
    const line = raw.replace(/^[ \t]+/, "");
    if (line === "") continue;

    if (line.startsWith("#")) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kw, name, rest = ""] = m as unknown as [string, "HELP" | "TYPE", string, string | undefined];
      if (!METRIC_NAME.test(name)) throw new PromParseError(n, `invalid metric name ${JSON.stringify(name)} in ${kw}`);
      if (opts.prefix !== undefined && !name.startsWith(opts.prefix)) throw new PromParseError(n, `${name} lacks the prefix ${opts.prefix}`);
      const f = family(name);
      if (f.samples.length > 0 || closed.has(name)) throw new PromParseError(n, `${kw} for ${name} after its samples`);
      if (kw === "HELP") {
        if (f.help !== null) throw new PromParseError(n, `second HELP for ${name}`);
        f.help = unescapeHelp(rest, n);
      } else {
        if (typed.has(name)) throw new PromParseError(n, `second TYPE for ${name}`);
        const t = rest.trim() as PromType;
        if (!TYPES.has(t)) throw new PromParseError(n, `unknown type ${JSON.stringify(rest)} for ${name}`);
        f.type = t;
        typed.add(name);
      }
      continue;
    }

    // A sample.
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) throw new PromParseError(n, `expected a metric name at ${JSON.stringify(line.slice(0, 20))}`);
    const name = nm[0];
    if (opts.prefix !== undefined && !name.startsWith(opts.prefix)) throw new PromParseError(n, `${name} lacks the prefix ${opts.prefix}`);
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === "{") {
      const r = parseLabels(line, i, n);
      labels = r.labels;
      i = r.end;
    }
    const tail = line.slice(i);
    if (!/^[ \t]/.test(tail)) throw new PromParseError(n, `expected a blank before the value of ${name}`);
    const parts = tail.trim().split(/[ \t]+/);
    if (parts.length < 1 || parts.length > 2 || parts[0] === "") throw new PromParseError(n, `expected "value [timestamp]" after ${name}, got ${JSON.stringify(tail.trim())}`);
    const value = parsePromFloat(parts[0] as string, n);
    let timestampMs: number | undefined;
    if (parts.length === 2) {
      if (!/^-?\d+$/.test(parts[1] as string)) throw new PromParseError(n, `timestamp must be an integer, got ${parts[1]}`);
      timestampMs = Number(parts[1]);
    }

    // Which family: a histogram's or summary's suffixed sample belongs to its base name.
    let famName = name;
    const sfx = /_(bucket|sum|count)$/.exec(name);
    if (sfx) {
      const base = name.slice(0, -sfx[0].length);
      const bf = families.get(base);
      if (bf && (bf.type === "histogram" || (bf.type === "summary" && sfx[1] !== "bucket"))) famName = base;
    }
    const f = families.get(famName);
    if (!f || !typed.has(famName)) throw new PromParseError(n, `sample ${name} without a preceding # TYPE`);
    if (requireHelp && f.help === null) throw new PromParseError(n, `sample ${name} without a preceding # HELP`);
    if (famName !== current) {
      if (closed.has(famName)) throw new PromParseError(n, `samples of ${famName} are not contiguous`);
      if (current !== null) closed.add(current);
      current = famName;
    }
    const key = seriesKey(name, labels);
    if (series.has(key)) throw new PromParseError(n, `duplicate series ${name}${JSON.stringify(labels)}`);
    series.add(key);

    if (f.type === "counter") {
      if (counterSuffix && !name.endsWith("_total")) throw new PromParseError(n, `counter ${name} must end in _total`);
      if (!(value >= 0)) throw new PromParseError(n, `counter ${name} has a negative or NaN value ${parts[0]}`);
    }
    if (f.type === "histogram") {
      if (name === famName) throw new PromParseError(n, `histogram ${famName} sample without _bucket/_sum/_count suffix`);
      if (name.endsWith("_bucket") && !Object.hasOwn(labels, "le")) throw new PromParseError(n, `${name} without an le label`);
      if (!name.endsWith("_bucket") && Object.hasOwn(labels, "le")) throw new PromParseError(n, `${name} must not have an le label`);
      if (name.endsWith("_bucket")) parsePromFloat(labels.le as string, n);
    }
    f.samples.push({ name, labels, value, timestampMs, line: n });
  }

  for (const f of families.values()) {
    if (!typed.has(f.name)) throw new PromParseError(0, `family ${f.name} has HELP but no TYPE`);
    if (f.type === "histogram") validateHistogram(f);
  }
  return families;
}

function validateHistogram(f: PromFamily): void {
  type Group = { les: number[]; counts: number[]; lines: number[]; sum: number | null; count: number | null; countLine: number };
  const groups = new Map<string, Group>();
  const group = (labels: Record<string, string>): Group => {
    const rest = { ...labels };
    delete rest.le;
    const k = seriesKey("", rest);
    let g = groups.get(k);
    if (!g) {
      g = { les: [], counts: [], lines: [], sum: null, count: null, countLine: 0 };
      groups.set(k, g);
    }
    return g;
  };
  for (const s of f.samples) {
    const g = group(s.labels);
    if (s.name === `${f.name}_bucket`) {
      const le = parsePromFloat(s.labels.le as string, s.line);
      const prevLe = g.les[g.les.length - 1];
      if (prevLe !== undefined && !(le > prevLe)) throw new PromParseError(s.line, `${f.name}: le=${s.labels.le} not above the previous bucket's le`);
      const prevCount = g.counts[g.counts.length - 1];
      if (!(s.value >= 0)) throw new PromParseError(s.line, `${f.name}: negative bucket count`);
      if (prevCount !== undefined && s.value < prevCount) throw new PromParseError(s.line, `${f.name}: bucket le=${s.labels.le} count ${s.value} below the previous bucket's ${prevCount} (buckets are cumulative)`);
      g.les.push(le);
      g.counts.push(s.value);
      g.lines.push(s.line);
    } else if (s.name === `${f.name}_sum`) {
      if (g.sum !== null) throw new PromParseError(s.line, `${f.name}: second _sum`);
      g.sum = s.value;
    } else if (s.name === `${f.name}_count`) {
      if (g.count !== null) throw new PromParseError(s.line, `${f.name}: second _count`);
      g.count = s.value;
      g.countLine = s.line;
    } else {
      throw new PromParseError(s.line, `${s.name} does not belong to histogram ${f.name}`);
    }
  }
  for (const g of groups.values()) {
    const line = g.lines[0] ?? g.countLine;
    if (g.les.length === 0) throw new PromParseError(line, `${f.name}: a series without buckets`);
    if (g.les[g.les.length - 1] !== Infinity) throw new PromParseError(line, `${f.name}: last bucket must be le="+Inf"`);
    if (g.sum === null) throw new PromParseError(line, `${f.name}: missing _sum`);
    if (g.count === null) throw new PromParseError(line, `${f.name}: missing _count`);
    if (g.count !== g.counts[g.counts.length - 1]) throw new PromParseError(g.countLine, `${f.name}: _count ${g.count} differs from the +Inf bucket ${g.counts[g.counts.length - 1]}`);
  }
}

/** Returns the samples of `family` named `name` (default: the family name) whose labels
 *  include every entry of `match`. */
export function samples(families: Map<string, PromFamily>, family: string, match: Record<string, string> = {}, name = family): PromSample[] {
  const f = families.get(family);
  if (!f) return [];
  return f.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Returns the value of the one sample matching, throwing when there is not exactly one. */
export function sampleValue(families: Map<string, PromFamily>, family: string, match: Record<string, string> = {}, name = family): number {
  const found = samples(families, family, match, name);
  if (found.length !== 1) throw new Error(`expected one ${name}${JSON.stringify(match)}, found ${found.length}`);
  return (found[0] as PromSample).value;
}
