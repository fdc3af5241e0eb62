/**
 * `bun run bench [filter...]`: runs every mitata microbenchmark (bench/*.bench.ts), one
 * process each so that one benchmark's garbage and JIT state do not colour the next.
 * A filter keeps the files whose name contains it. Exits non-zero if any benchmark fails.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log("usage: bun run bench [filter...]\n  runs bench/*.bench.ts (mitata); a filter keeps files whose name contains it");
  process.exit(0);
}
const unknown = args.find((a) => a.startsWith("-"));
if (unknown) {
  console.error(`bench: unknown flag ${unknown}; accepted: --help, or words that filter bench/*.bench.ts by name`);
  process.exit(2);
}
const dir = import.meta.dir;
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => args.length === 0 || args.some((a) => f.includes(a)))
  .sort();
if (files.length === 0) {
  console.error(`bench: no benchmark matches ${args.join(" ")}`);
  process.exit(2);
}
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f}`);
  const proc = Bun.spawn([process.execPath, "--expose-gc", join(dir, f)], { stdout: "inherit", stderr: "inherit" });
  const code = await proc.exited;
  if (code !== 0) {
    failed++;
    console.error(`bench: ${f} exited with ${code}`);
  }
}
process.exit(failed ? 1 : 0);
