/**
 * A network namespace whose ephemeral port range is two ports (40000-40001), made before a
 * test file's tests and deleted after them: a connect to one of those ports with nothing
 * listening lands on itself (TCP self-connect) for certain, not by luck.
 */
import { afterAll, beforeAll } from "bun:test";

function ip(args: string[]): void {
  const r = Bun.spawnSync(["ip", ...args], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")} failed: ${r.stderr.toString().trim()}`);
}

/** Registers the namespace's setup and removal for this file; returns its name (`<prefix>-<pid>`). */
export function narrowPortNamespace(prefix: string): string {
  const ns = `${prefix}-${process.pid}`;
  beforeAll(() => {
    if (Bun.which("ip") === null) throw new Error("`ip` not found: install iproute2 (apt-get install -y iproute2); this test makes a network namespace");
    if (process.getuid?.() !== 0) throw new Error("this test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to make a network namespace");
    ip(["netns", "add", ns]);
    ip(["-n", ns, "link", "set", "lo", "up"]);
    ip(["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40001"]);
  });
  afterAll(() => {
    Bun.spawnSync(["ip", "netns", "del", ns], { stdout: "ignore", stderr: "ignore" });
  });
  return ns;
}
