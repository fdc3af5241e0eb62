/**
 * What the benchmark scripts measure processes with and how they summarise it.
 */
import { readFileSync } from "node:fs";

/** CPU time (user + system) of process `pid` so far, in ms, from /proc/<pid>/stat (10 ms resolution). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in USER_HZ (100)
}

/** Resident memory of process `pid`, in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/**
 * Private anonymous resident memory of process `pid` (default: this one), in bytes: RssAnon,
 * i.e. RSS without the file-backed pages (the bun or node binary's code, paged in as it is
 * first run and shared by every process that maps it). NaN where /proc does not say.
 */
export function rssAnonBytes(pid: number | "self" = "self"): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m === null ? NaN : Number(m[1]) * 1024;
}

/** The median of xs (the mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The positive integer after `name` in args, dflt when absent; exits 2 naming the flag when it is not one. */
export function intFlag(args: readonly string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`${name}: expected a positive integer, got ${JSON.stringify(args[i + 1])}`);
    process.exit(2);
  }
  return v;
}
