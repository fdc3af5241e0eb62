/** Stopping the processes a test started: by pid, bounded in time. */
import type { Subprocess } from "bun";

/** SIGTERM by pid, SIGKILL if it has not exited after graceMs; resolves once it exited. */
export async function terminate(proc: Subprocess, graceMs = 2_000): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    process.kill(proc.pid, "SIGTERM");
    const timer = setTimeout(() => {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, "SIGKILL");
    }, graceMs);
    await proc.exited;
    clearTimeout(timer);
  }
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
