/**
 * docs/deploy.md's balancer configurations, as written there, pass HAProxy's and nginx's own
 * checkers (haproxy -c, nginx -t); the node command's flags are ones serve accepts.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const doc = await Bun.file(`${import.meta.dir}/../docs/deploy.md`).text();
const dir = mkdtempSync(join(tmpdir(), "myriad-deploy-doc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function block(lang: string): string {
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(doc);
  if (!m) throw new Error(`docs/deploy.md has no \`\`\`${lang} block`);
  return m[1]!;
}

function tool(name: string, pkg: string): string {
  const found = Bun.which(name) ?? Bun.which(name, { PATH: "/usr/sbin:/sbin" });
  if (!found) throw new Error(`${name} not found: apt-get install ${pkg}`);
  return found;
}

test("the haproxy.cfg of docs/deploy.md is valid for haproxy -c", () => {
  const path = join(dir, "haproxy.cfg");
  writeFileSync(path, block("haproxy"));
  const r = Bun.spawnSync([tool("haproxy", "haproxy"), "-c", "-f", path], { stdout: "pipe", stderr: "pipe" });
  expect(`${r.stdout}${r.stderr}`).toContain("Configuration file is valid");
  expect(r.exitCode).toBe(0);
});

test("the nginx stream block of docs/deploy.md passes nginx -t", () => {
  const path = join(dir, "nginx.conf");
  // Only where nginx keeps its pid and error log differs from a system install.
  writeFileSync(path, block("nginx").replace("events {}", `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}`));
  const r = Bun.spawnSync([tool("nginx", "nginx-light libnginx-mod-stream"), "-t", "-c", path], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toContain("test is successful");
  expect(r.exitCode).toBe(0);
});

test("the node command of docs/deploy.md uses flags serve accepts", () => {
  const cmd = block("sh").split("\n").filter((l) => l.includes("--"));
  const flags = [...cmd.join(" ").matchAll(/(--[a-z-]+)/g)].map((m) => m[1]!);
  const help = Bun.spawnSync([process.execPath, `${import.meta.dir}/../src/cli/serve.ts`, "--help"]).stdout.toString();
  expect(flags.length).toBeGreaterThan(5);
  const known = new Set([...help.matchAll(/(--[a-z-]+)/g)].map((m) => m[1]!));
  for (const f of flags) expect(known.has(f) ? f : `${f} (unknown to serve)`).toBe(f);
});
