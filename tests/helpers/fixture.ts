import { join } from "node:path";

/**
 * Runs tests/fixtures/<name> in a fresh bun process (a measurement that must not share the
 * test runner's heap) and returns the JSON of the last line it prints. Throws with its
 * output when it exits non-zero; kills it by pid after timeoutMs.
 */
export async function runFixture<T>(name: string, args: string[] = [], timeoutMs = 50_000): Promise<T> {
  const file = join(import.meta.dir, "..", "fixtures", name);
  const proc = Bun.spawn([process.execPath, file, ...args], { stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  if (code !== 0) throw new Error(`tests/fixtures/${name} exited ${code}:\n${err}${out}`);
  return JSON.parse(out.trim().split("\n").at(-1)!) as T;
}
