/**
 * The layering of src/, checked over the whole tree so that it stays true:
 * - a folder imports another only through that folder's index.ts (its public surface);
 * - no folder imports the package root (src/index.ts re-exports every folder: importing it
 *   from inside is a cycle waiting to happen);
 * - no import cycle, between files or between folders.
 * Type-only imports count: they couple folders just as much.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findCycles, folderOf, readImportGraph, sourceFiles, type ImportEdge } from "./helpers/imports.ts";

const ROOT = join(import.meta.dir, "..");
const edges = readImportGraph(ROOT, "src");
const files = sourceFiles(ROOT, "src");
const isFolder = (name: string) => !name.endsWith(".ts");
const where = (e: ImportEdge) => `${e.from}:${e.line} imports "${e.specifier}"`;

describe("layering of src/", () => {
  test("the graph was read: every relative import resolves to a file", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(edges.filter((e) => e.to !== undefined).length).toBeGreaterThan(100);
    expect(edges.filter((e) => e.to !== undefined && !files.includes(e.to)).map(where)).toEqual([]);
  });

  test("a folder imports another only through its index.ts", () => {
    const past = edges.filter((e) => {
      if (e.to === undefined) return false;
      const target = folderOf(e.to);
      return isFolder(target) && target !== folderOf(e.from) && e.to !== `src/${target}/index.ts`;
    });
    expect(past.map(where)).toEqual([]);
  });

  test("nothing inside src/ imports the package root src/index.ts", () => {
    expect(edges.filter((e) => e.to === "src/index.ts").map(where)).toEqual([]);
  });

  test("no import cycle between files", () => {
    const next = new Map<string, string[]>();
    for (const e of edges) if (e.to !== undefined) (next.get(e.from) ?? next.set(e.from, []).get(e.from)!).push(e.to);
    expect(findCycles(files, (f) => next.get(f) ?? []).map((c) => c.join(" -> "))).toEqual([]);
  });

  test("no import cycle between folders", () => {
    const next = new Map<string, Set<string>>();
    for (const e of edges) {
      if (e.to === undefined) continue;
      const a = folderOf(e.from);
      const b = folderOf(e.to);
      if (a !== b) (next.get(a) ?? next.set(a, new Set()).get(a)!).add(b);
    }
    expect(findCycles(next.keys(), (f) => next.get(f) ?? []).map((c) => c.join(" -> "))).toEqual([]);
  });

  test("the checker finds what it must: a reach past index.ts, a cycle, an import inside a comment ignored", () => {
    // The helpers over a tree made here, so a checker that found nothing could not pass.
    const dir = mkdtempSync(join(tmpdir(), "layering-"));
    try {
      mkdirSync(join(dir, "src/a"), { recursive: true });
      mkdirSync(join(dir, "src/b"), { recursive: true });
      writeFileSync(join(dir, "src/a/index.ts"), 'export * from "./x.ts";\n');
      writeFileSync(join(dir, "src/a/x.ts"), 'import type { Y } from "../b/y.ts";\n/* import { z } from "../b/z.ts"; */\nexport const x = 1;\n');
      writeFileSync(join(dir, "src/b/index.ts"), 'export const y = await import("../a/index.ts");\n');
      writeFileSync(join(dir, "src/b/y.ts"), "export type Y = number; // from \"../a/x.ts\"\n");
      const g = readImportGraph(dir, "src");
      expect(g.map((e) => `${e.from}>${e.to}`).sort()).toEqual(["src/a/index.ts>src/a/x.ts", "src/a/x.ts>src/b/y.ts", "src/b/index.ts>src/a/index.ts"]);
      const cycle = findCycles(["p", "q", "r"], (n) => ({ p: ["q"], q: ["r"], r: ["p"] })[n] ?? []);
      expect(cycle).toEqual([["p", "q", "r", "p"]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
