/**
 * The import graph of src/, read from the sources as text: every `import ... from`,
 * `export ... from`, side-effect `import "x"` and `import("x")` (type-only ones included:
 * they couple folders as much as the others). Used by tests/layering.test.ts.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** One import: the file that has it, the module it names (as written) and, when relative, the file it resolves to. */
export interface ImportEdge {
  from: string;
  specifier: string;
  /** Path relative to the root given to readImportGraph; undefined for a package import. */
  to: string | undefined;
  /** 1-based line of the import. */
  line: number;
}

/** Every .ts file under `dir`, recursively, as paths relative to `root`. */
export function sourceFiles(root: string, dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) out.push(...sourceFiles(root, path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** The text with comments blanked out (newlines kept, so line numbers hold); strings are left alone. */
function withoutComments(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === "`") {
      // Copy the string whole, so a "//" inside it is not taken for a comment.
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const PATTERNS = [
  /\b(?:import|export)\s+(?:type\s+)?[^;]*?\bfrom\s*["']([^"']+)["']/g,
  /\bimport\s*["']([^"']+)["']/g,
  /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
];

/** The imports of every .ts file under `dir` (relative to `root`). */
export function readImportGraph(root: string, dir = "src"): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const file of sourceFiles(root, dir)) {
    const text = withoutComments(readFileSync(join(root, file), "utf8"));
    for (const re of PATTERNS) {
      for (const m of text.matchAll(re)) {
        const specifier = m[1]!;
        const line = text.slice(0, m.index).split("\n").length;
        const to = specifier.startsWith(".") ? relative(root, resolve(root, dirname(file), specifier)) : undefined;
        edges.push({ from: file, specifier, to, line });
      }
    }
  }
  return edges;
}

/** The top-level part of src/ a file belongs to: "reactor" for src/reactor/server.ts, "errors.ts" for src/errors.ts. */
export function folderOf(path: string, dir = "src"): string {
  return relative(dir, path).split("/")[0]!;
}

/** Every cycle of the directed graph, each once (as found by a depth-first search: enough to name them). */
export function findCycles(nodes: Iterable<string>, next: (node: string) => Iterable<string>): string[][] {
  const state = new Map<string, 1 | 2>(); // 1: on the current path, 2: done
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string): void => {
    state.set(n, 1);
    stack.push(n);
    for (const m of next(n)) {
      const s = state.get(m);
      if (s === 1) cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (s === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of nodes) if (!state.has(n)) visit(n);
  return cycles;
}
