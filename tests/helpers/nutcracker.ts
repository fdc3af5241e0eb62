/**
 * Debian's nutcracker (twemproxy 0.5.0), started by a test with a configuration it writes,
 * its stats on a free port, awaited until every pool listens, and stopped by pid. A missing
 * nutcracker is an error that says how to install it.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { terminate } from "./process.ts";
import { GiveUp, until } from "./until.ts";

const INSTALL_HINT =
  "nutcracker not found (looked on PATH and in /usr/sbin): install it (Debian/Ubuntu: apt-get install nutcracker) — the proxy's placement tests compare with twemproxy 0.5.0";

/** The nutcracker binary: on PATH, or Debian's /usr/sbin/nutcracker (sbin is often off PATH). */
export function nutcrackerPath(): string {
  const found = Bun.which("nutcracker") ?? Bun.which("nutcracker", { PATH: "/usr/sbin:/usr/local/sbin" });
  if (found === null) throw new Error(INSTALL_HINT);
  return found;
}

/** True once a TCP connection to 127.0.0.1:port succeeds. */
async function listening(port: number): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, error() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}

export class Nutcracker {
  private constructor(
    private readonly proc: Subprocess,
    private readonly dir: string,
  ) {}

  /**
   * Writes `yaml` to a temporary file, runs nutcracker on it and resolves once every port in
   * `ports` accepts connections (rejects with nutcracker's log if it exits or takes over 10 s).
   */
  static async start(yaml: string, ports: readonly number[]): Promise<Nutcracker> {
    const bin = nutcrackerPath();
    const dir = mkdtempSync(join(tmpdir(), "myriad-nutcracker-"));
    const conf = join(dir, "nutcracker.yml");
    const log = join(dir, "nutcracker.log");
    writeFileSync(conf, yaml);
    const proc = Bun.spawn([bin, "-c", conf, "-s", String(freePort()), "-a", "127.0.0.1", "-o", log, "-v", "4"], {
      stdout: "ignore",
      stderr: "pipe",
    });
    const n = new Nutcracker(proc, dir);
    for (const port of ports) {
      try {
        await until(`nutcracker to listen on 127.0.0.1:${port}`, async () => {
          if (proc.exitCode !== null || proc.signalCode !== null) throw new GiveUp(`nutcracker exited (${proc.exitCode ?? proc.signalCode})`);
          return listening(port);
        }, 10_000);
      } catch (e) {
        const err = proc.stderr instanceof ReadableStream ? await new Response(proc.stderr).text() : "";
        let logText = "";
        try {
          logText = await Bun.file(log).text();
        } catch {
          // no log yet
        }
        await n.stop();
        throw new Error(`nutcracker did not listen on 127.0.0.1:${port} (${(e as Error).message}): ${err.trim()} ${logText.trim().split("\n").slice(-5).join(" | ")}`);
      }
    }
    return n;
  }

  /** Runs `nutcracker -t` on `yaml`: its exit code and output. */
  static check(yaml: string): { code: number; output: string } {
    const dir = mkdtempSync(join(tmpdir(), "myriad-nutcracker-"));
    try {
      const conf = join(dir, "nutcracker.yml");
      writeFileSync(conf, yaml);
      const r = Bun.spawnSync([nutcrackerPath(), "-t", "-c", conf]);
      return { code: r.exitCode, output: `${r.stdout.toString()}${r.stderr.toString()}` };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** SIGTERM by pid (SIGKILL after 2 s), then removes its files. */
  async stop(): Promise<void> {
    await terminate(this.proc);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
