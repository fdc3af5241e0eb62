/**
 * `bun run serve` as a child process for tests: started with arguments and environment,
 * awaited until its startup block is printed, its output collected as it arrives, stopped
 * by pid (SIGTERM, or SIGKILL in cleanup). Every wait is bounded in time.
 */
import { join } from "node:path";

import { alive } from "./process.ts";
import { GiveUp, until } from "./until.ts";

const ROOT = join(import.meta.dir, "..", "..");

/** Text of a stream as it arrives; `done` resolves at its end. */
export interface Collected {
  text: string;
  done: Promise<void>;
}

/** Collects a stream's text as it arrives. */
export function collect(stream: ReadableStream<Uint8Array>): Collected {
  const out: Collected = { text: "", done: Promise.resolve() };
  out.done = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of stream) out.text += dec.decode(chunk, { stream: true });
  })();
  return out;
}

/** A running `bun run serve`. */
export interface Served {
  /** `bun run`, which runs serve as its child. */
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** serve itself (the supervisor in cluster mode), from its startup block. */
  pid: number;
  out: Collected;
  err: Collected;
}

/** Every serve started here, for killAllServes(). */
const running: Served[] = [];

/**
 * Starts `bun run serve ...args` (environment: PATH, HOME and `env`) and resolves once its
 * startup block is printed; rejects with its stderr when it exits first. `prefix` runs it
 * under a command that execs it in place (e.g. ["ip", "netns", "exec", ns]).
 */
export async function startServe(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000, prefix: string[] = []): Promise<Served> {
  const proc = Bun.spawn([...prefix, process.execPath, "run", "serve", ...args], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
  });
  const s: Served = { proc, pid: 0, out: collect(proc.stdout), err: collect(proc.stderr) };
  running.push(s);
  await until(
    "serve's startup block",
    () => {
      if (proc.exitCode !== null) throw new GiveUp(`serve exited ${proc.exitCode}: ${s.err.text}`);
      return s.out.text.includes("  stop: ") ? true : undefined;
    },
    timeoutMs,
  );
  s.pid = Number(/(?:supervisor pid|kill -TERM) (\d+)/.exec(s.out.text)?.[1]);
  if (!(s.pid > 0)) throw new Error(`no pid in serve's startup block:\n${s.out.text}`);
  return s;
}

/** The worker pids a cluster serve printed in its startup block (empty for one process). */
export function workerPidsOf(s: Served): number[] {
  const line = s.out.text.split("\n").find((l) => l.startsWith("  workers: ")) ?? "";
  return [...line.matchAll(/worker-\d+ pid (\d+)/g)].map((m) => Number(m[1]));
}

/** Sends `signal` to serve by pid; resolves with its exit code (through `bun run`, -1 on timeout) and whole output. */
export async function stopServe(s: Served, signal: "SIGTERM" | "SIGINT" = "SIGTERM", timeoutMs = 20_000): Promise<{ code: number; out: string; err: string }> {
  process.kill(s.pid, signal);
  const code = await Promise.race([s.proc.exited, Bun.sleep(timeoutMs).then(() => -1)]);
  await Promise.race([Promise.all([s.out.done, s.err.done]), Bun.sleep(2000)]);
  return { code, out: s.out.text, err: s.err.text };
}

/** Kills (SIGKILL, by pid) every serve started here that still runs, and the given worker pids; for afterAll. */
export async function killAllServes(workerPids: Iterable<number> = []): Promise<void> {
  for (const s of running.splice(0)) {
    if (s.proc.exitCode === null && s.proc.signalCode === null) {
      if (s.pid > 0 && alive(s.pid)) process.kill(s.pid, "SIGKILL");
      s.proc.kill("SIGKILL");
      await s.proc.exited;
    }
  }
  for (const pid of workerPids) if (alive(pid)) process.kill(pid, "SIGKILL");
}

/** Stderr lines other than `bun run`'s echo of the command. */
export function errLines(err: string): string[] {
  return err.split("\n").filter((l) => l && !l.startsWith("$ "));
}
