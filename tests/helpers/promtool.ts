/**
 * Prometheus's own checker of the text exposition format: `promtool check metrics` (Debian's
 * prometheus package), an independent second opinion beside tests/helpers/prom-parse.ts. It
 * parses the text with Prometheus's parser and lints it (names, types, HELP, counter
 * suffixes, histogram buckets); a missing promtool is an error that says how to install it.
 */

const INSTALL_HINT =
  "promtool not found on PATH: install it with `apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu; " +
  "bash .ci/run does) or from https://prometheus.io/download/ — the /metrics tests check the output with Prometheus's own parser";

/** What `promtool check metrics` said: its exit code (0: no problem) and its output. */
export interface PromtoolResult {
  code: number;
  output: string;
}

/** Pipes `text` through `promtool check metrics`; throws, naming the install command, when promtool is missing. */
export async function promtoolCheckMetrics(text: string): Promise<PromtoolResult> {
  const bin = Bun.which("promtool");
  if (bin === null) throw new Error(INSTALL_HINT);
  const proc = Bun.spawn([bin, "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  try {
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, output: (out + err).trim() };
  } finally {
    clearTimeout(timer);
  }
}
