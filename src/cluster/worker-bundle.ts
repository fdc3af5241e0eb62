/**
 * The worker entry as one bundled JavaScript file, made once and shared by every worker.
 *
 * Why: a worker started from worker-main.ts makes Bun transpile and compile each of the
 * ~25 TypeScript modules it imports, in every worker. Measured on Bun 1.4.5 (an echo worker,
 * idle): 9.0 MiB of private memory from the sources against 5.7 MiB from the bundle, and
 * 1.8 MiB fewer file-backed pages. A c1m run has 55 workers: ~180 MiB of the machine.
 *
 * Only for the built-in apps (echo, kv): a module app imports myriad itself, and with the
 * bundle it would get a second copy of every class (instanceof ProtocolError false, codec
 * identity lost) and load the sources anyway. The supervisor runs those from the sources.
 *
 * Where: a folder of this user's own, `$TMPDIR/myriad-<uid>` (mode 0700, checked to be a
 * real directory owned by us), never a shared one: any local user could otherwise plant a
 * file under the bundle's predictable name and have our workers run it. The name is a hash
 * of the code and its source map, so concurrent supervisors share one file and a changed
 * checkout gets a new one; bundles not used for a week are deleted when a new one is written.
 * A linked source map beside each keeps a worker's stack traces pointing into the sources.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { MyriadError } from "../errors.ts";

/** The unbundled entry: what workers run when bundling is not possible. */
export const WORKER_MAIN_SOURCE = join(import.meta.dir, "worker-main.ts");
/** The folder holding src/: a second guess at the base of the source map's relative paths. */
const PROJECT_ROOT = resolve(import.meta.dir, "..", "..");
/** Bundles older than this (by mtime; a reuse refreshes it) are deleted when a new one is written. */
const STALE_MS = 7 * 24 * 3600 * 1000;

/** The build of this process, while its file is still there. */
let built: Promise<string> | undefined;

/**
 * Resolves to the path of the bundled worker entry, or null when it cannot be made or
 * written (the caller then runs WORKER_MAIN_SOURCE; `onFailure` hears why). Built at the
 * first call; later calls reuse it as long as the file exists (a temp cleaner may delete it
 * under a supervisor that runs for days: the next call builds it again). A failure is not
 * remembered: the next call tries again.
 */
export async function bundledWorkerEntry(onFailure: (message: string) => void = () => {}): Promise<string | null> {
  try {
    if (built !== undefined && !existsSync(await built)) built = undefined;
    built ??= build();
    return await built;
  } catch (err) {
    built = undefined;
    onFailure(
      `could not prepare the bundled worker entry (${err instanceof Error ? err.message : String(err)}); ` +
        `workers load the TypeScript sources instead (about 3 MiB more memory each)`,
    );
    return null;
  }
}

/** `$TMPDIR/myriad-<uid>`, made if missing; throws unless it is a directory only we can use. */
function privateDir(): string {
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `myriad-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid) throw new MyriadError("ERR_CLUSTER_BUNDLE", `${dir} is not a directory owned by uid ${uid}`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

async function build(): Promise<string> {
  const result = await Bun.build({ entrypoints: [WORKER_MAIN_SOURCE], target: "bun", sourcemap: "linked" });
  if (!result.success) throw new MyriadError("ERR_CLUSTER_BUNDLE", result.logs.map((l) => String(l)).join("; ") || "Bun.build failed");
  const entry = result.outputs.find((o) => o.kind === "entry-point");
  const map = result.outputs.find((o) => o.kind === "sourcemap");
  if (entry === undefined || result.outputs.some((o) => o.kind === "chunk")) {
    throw new MyriadError("ERR_CLUSTER_BUNDLE", `unexpected build outputs: ${result.outputs.map((o) => `${o.kind} ${o.path}`).join(", ")}`);
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
  const dir = privateDir();
  // The name hashes the map too: two checkouts with the same code must not share a bundle
  // whose map points into the other one's sources.
  const name = `myriad-worker-${Bun.hash(code + (mapText ?? "")).toString(36)}`;
  const path = join(dir, `${name}.js`);
  const mapPath = `${path}.map`;
  if (mapText !== undefined && !existsSync(mapPath)) writeAtomically(mapPath, mapText);
  if (existsSync(path)) {
    const now = new Date();
    for (const f of [path, mapPath]) if (existsSync(f)) utimesSync(f, now, now); // in use: not stale
    return path;
  }
  // The bundle names its map after the build's output file; point it at ours.
  const linked = code.replace(/\/\/# sourceMappingURL=\S+\s*$/, "") + (mapText === undefined ? "" : `//# sourceMappingURL=${name}.js.map\n`);
  writeAtomically(path, linked);
  deleteStale(dir, path);
  return path;
}

/** Written under a fresh name (`wx`: never through an existing file) then renamed: a reader never sees half a file. */
function writeAtomically(path: string, text: string): void {
  const part = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
  writeFileSync(part, text, { flag: "wx", mode: 0o600 });
  renameSync(part, path);
}

/** Deletes bundles (and maps, and leftover .part files) not touched for STALE_MS, except `keep`. */
function deleteStale(dir: string, keep: string): void {
  const cutoff = Date.now() - STALE_MS;
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (!f.startsWith("myriad-worker-") || p === keep || p === `${keep}.map`) continue;
    try {
      if (statSync(p).mtimeMs < cutoff) rmSync(p, { force: true });
    } catch {
      // gone meanwhile: another supervisor cleaned up
    }
  }
}
