/**
 * The private temporary directory of `bun run proxy --workers N --share-upstream`, where the
 * hub's unix sockets live, and the cleaning up of such directories that a killed run left.
 *
 * The directory is named by the supervisor's pid (myriad-proxy-hub-<pid>-XXXXXX). A clean
 * stop removes it; a supervisor that is SIGKILLed cannot, so the hub removes it when its IPC
 * channel to the supervisor closes (proxy-worker.ts). When the hub dies with the supervisor
 * (the whole group killed, the OOM killer), nothing is left running to remove it: each run
 * then removes, at start, the directories of runs that are gone, those owned by this user
 * whose supervisor pid no longer runs and whose sockets accept no connection.
 */
import { connect } from "node:net";
import { lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

const PREFIX = "myriad-proxy-hub-";
/** mkdtemp's six random characters after the pid. */
const NAME = /^myriad-proxy-hub-(\d+)-[A-Za-z0-9]{6}$/;

/** Makes this run's hub directory (mode 0700) in the temporary directory (TMPDIR) and returns its path. */
export function makeHubDir(): string {
  return mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
}

/** Removes `dir` if it is named as a hub directory (never anything else, whatever it is given). */
export function removeHubDir(dir: string): void {
  if (NAME.test(basename(dir))) rmSync(dir, { recursive: true, force: true });
}

/** True while a process with this pid exists (EPERM: it does, as another user's). */
function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/**
 * True when nothing accepts a connection on the unix socket at `path`. Only a refusal counts
 * (a listener that is gone, or no socket there): anything else, a timeout included, means a
 * hub may still live there, in a pid namespace that does not see its supervisor.
 */
function socketDead(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const timer = setTimeout(() => done(false), 1000);
    const done = (dead: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(dead);
    };
    s.once("connect", () => done(false));
    s.once("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED" || e.code === "ENOENT"));
  });
}

/**
 * Removes the hub directories of runs that are gone (see the file comment) from the
 * temporary directory, and resolves with the paths removed; never rejects (a directory it
 * cannot read or remove is left as it is).
 */
export async function removeStaleHubDirs(): Promise<string[]> {
  const root = tmpdir();
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith(PREFIX));
  } catch {
    return removed;
  }
  const uid = process.getuid?.() ?? -1;
  for (const name of names) {
    const m = NAME.exec(name);
    if (m === null || pidRuns(Number(m[1]))) continue;
    const dir = join(root, name);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== uid) continue;
      const sockets = readdirSync(dir).filter((n) => n.endsWith(".sock"));
      const dead = await Promise.all(sockets.map((n) => socketDead(join(dir, n))));
      if (!dead.every(Boolean)) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // gone meanwhile, or not ours to read: left alone
    }
  }
  return removed;
}
