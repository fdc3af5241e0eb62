/**
 * The worker entry as one bundled JavaScript file, made once and shared by every worker.
 *
 * Why: a worker started from worker-main.ts makes Bun transpile and compile each of the
 * ~25 TypeScript modules it imports, in every worker. Measured on Bun 1.4.5 (an echo worker,
 * idle): 9.0 MiB of private memory from the sources against 5.7 MiB from the bundle, and
 * 1.8 MiB fewer file-backed pages. A c1m run has 55 workers: ~180 MiB of the machine.
 *
 * The bundle is written to the OS temp directory under a name taken from a hash of its
 * contents, so concurrent supervisors share it, a changed myriad gets a new file, and a
 * supervisor killed by SIGKILL leaves nothing to clean up but that one file. A linked source
 * map beside it keeps a worker's stack traces pointing into the TypeScript sources.
 */
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

/** The unbundled entry: what workers run when bundling is not possible. */
export const WORKER_MAIN_SOURCE = join(import.meta.dir, "worker-main.ts");
/** The folder holding src/: a second guess at the base of the source map's relative paths. */
const PROJECT_ROOT = resolve(import.meta.dir, "..", "..");

let bundled: Promise<string | null> | undefined;

/**
 * Resolves to the path of the bundled worker entry, or null when Bun.build fails (the
 * caller then runs WORKER_MAIN_SOURCE, as before; `onFailure` hears why, once per process).
 * Built at the first call; later calls in the same process get the same path.
 */
export function bundledWorkerEntry(onFailure: (message: string) => void = () => {}): Promise<string | null> {
  bundled ??= build().catch((err: unknown) => {
    onFailure(`could not bundle the worker entry (${err instanceof Error ? err.message : String(err)}); workers load the TypeScript sources instead (about 3 MiB more memory each)`);
    return null;
  });
  return bundled;
}

async function build(): Promise<string> {
  const result = await Bun.build({ entrypoints: [WORKER_MAIN_SOURCE], target: "bun", sourcemap: "linked" });
  if (!result.success) throw new Error(result.logs.map((l) => String(l)).join("; ") || "Bun.build failed");
  const entry = result.outputs.find((o) => o.kind === "entry-point");
  const map = result.outputs.find((o) => o.kind === "sourcemap");
  if (entry === undefined || result.outputs.some((o) => o.kind === "chunk")) {
    throw new Error(`unexpected build outputs: ${result.outputs.map((o) => `${o.kind} ${o.path}`).join(", ")}`);
  }
  const code = await entry.text();
  let mapText: string | undefined;
  if (map !== undefined) {
    // The map names the sources by relative paths (Bun 1.4.5: relative to the working
    // directory, whatever `root` says); the bundle lives elsewhere, so make them absolute, or
    // stack traces would point at paths under the temp directory. The base is the one under
    // which the map's own name for worker-main.ts is that file.
    const json = JSON.parse(await map.text()) as { sources?: string[] };
    const sources = json.sources ?? [];
    const base = [process.cwd(), PROJECT_ROOT].find((dir) => sources.some((src) => resolve(dir, src) === WORKER_MAIN_SOURCE)) ?? process.cwd();
    json.sources = sources.map((src) => (isAbsolute(src) ? src : resolve(base, src)));
    mapText = JSON.stringify(json);
  }
  // The name hashes the map too: two checkouts with the same code must not share a bundle
  // whose map points into the other one's sources.
  const name = `myriad-worker-${Bun.hash(code + (mapText ?? "")).toString(36)}`;
  const path = join(tmpdir(), `${name}.js`);
  if (existsSync(path)) return path;
  // The bundle names its map after the build's output file; point it at ours.
  const linked = code.replace(/\/\/# sourceMappingURL=\S+\s*$/, "") + (mapText === undefined ? "" : `//# sourceMappingURL=${name}.js.map\n`);
  // Each written then renamed: a supervisor starting at the same moment never reads half a file.
  if (mapText !== undefined) writeAtomically(join(tmpdir(), `${name}.js.map`), mapText);
  writeAtomically(path, linked);
  return path;
}

function writeAtomically(path: string, text: string): void {
  const part = `${path}.${process.pid}.part`;
  writeFileSync(part, text);
  renameSync(part, path);
}
