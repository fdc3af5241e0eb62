/**
 * From text to a flag's typed value: argv and environment strings (`100k`, `2s`,
 * `6380-6389`, `a,b`), the JSON values of a config file, and the TypeBox schema every value
 * must then satisfy. Errors here carry no words: the parser says who and what is accepted.
 */
import { Type, type TSchema } from "@sinclair/typebox";
import type { FlagSpec } from "./spec.ts";

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

const TRUE_WORDS = new Set(["true", "1", "yes", "on", "y"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off", "n", ""]);

/** Thrown by the coercers when the text is not of the flag's type; the parser words the error (who, the raw value, what is accepted). */
export class CoerceError extends Error {}

const INT_RE = /^([+-]?\d[\d_]*)([kKmM]?)$/;
const DURATION_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/;

/** A flag's value from argv or environment text; throws CoerceError when the text is not of the flag's type. */
export function coerceString(spec: FlagSpec, raw: string): unknown {
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
export function coerceFileValue(spec: FlagSpec, v: unknown): unknown {
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


/**
 * A "count or auto" value (`--workers 4`, `--processes auto`): "auto", an integer from 1 to
 * `max`, or undefined when the text is neither (the caller names the flag in its error).
 */
export function countOrAuto(text: string, max: number): number | "auto" | undefined {
  const s = text.trim().toLowerCase();
  if (s === "auto") return "auto";
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= max ? n : undefined;
}
