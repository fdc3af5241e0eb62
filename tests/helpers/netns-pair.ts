/**
 * Two network namespaces joined by a veth pair: two machines for a test that needs a client
 * on another host than the server (not loopback). The test's processes run in them through
 * `ip netns exec`; nothing of the machine's own network is touched, and remove() (or the
 * next run, for namespaces a killed run left behind) deletes both.
 */
import { alive } from "./process.ts";

/** Where each end sits: `server` answers on SERVER_ADDRESS, `client` on CLIENT_ADDRESS. */
export const SERVER_ADDRESS = "198.18.0.1";
/** The client namespace's address on the veth (RFC 2544's benchmarking block, inside the namespaces only). */
export const CLIENT_ADDRESS = "198.18.0.2";

/** The two namespaces of one test run. */
export interface NamespacePair {
  /** The namespace the server runs in: loopback up, SERVER_ADDRESS on its veth end. */
  readonly server: string;
  /** The namespace of the remote clients: loopback up, CLIENT_ADDRESS on its veth end. */
  readonly client: string;
  /** argv running `argv` inside namespace `ns` (ip netns exec execs it: the pid is the command's). */
  exec(ns: string, argv: string[]): string[];
  /** Deletes both namespaces (and with them the veth pair); safe to call twice. */
  remove(): void;
}

/** Why this machine cannot make the pair (undefined when it can): root and iproute2 are needed. */
export function namespacePairMissing(): string | undefined {
  if (Bun.which("ip") === null) return "`ip` not found: install iproute2 (apt-get install -y iproute2)";
  if (process.getuid?.() !== 0) return "making network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): run the suite as root, as .ci/run does";
  return undefined;
}

function ip(args: string[]): void {
  const r = Bun.spawnSync(["ip", ...args], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")} failed: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`);
}

/** Deletes namespaces named `<prefix>-<pid>-...` whose pid is gone (runs killed before their cleanup). */
function removeStale(prefix: string): void {
  const r = Bun.spawnSync(["ip", "netns", "list"], { stdout: "pipe", stderr: "ignore" });
  for (const line of r.stdout.toString().split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = new RegExp(`^${prefix}-(\\d+)-`).exec(name);
    if (m && !alive(Number(m[1]))) Bun.spawnSync(["ip", "netns", "del", name], { stdout: "ignore", stderr: "ignore" });
  }
}

/**
 * Makes the pair, named `<prefix>-<pid>-server` and `-client`. Throws, saying what is
 * missing, on a machine that cannot (see namespacePairMissing), after undoing what it made.
 */
export function makeNamespacePair(prefix: string): NamespacePair {
  const missing = namespacePairMissing();
  if (missing !== undefined) throw new Error(missing);
  removeStale(prefix);
  const server = `${prefix}-${process.pid}-server`;
  const client = `${prefix}-${process.pid}-client`;
  let removed = false;
  const pair: NamespacePair = {
    server,
    client,
    exec: (ns, argv) => ["ip", "netns", "exec", ns, ...argv],
    remove() {
      if (removed) return;
      removed = true;
      for (const ns of [server, client]) Bun.spawnSync(["ip", "netns", "del", ns], { stdout: "ignore", stderr: "ignore" });
    },
  };
  try {
    ip(["netns", "add", server]);
    ip(["netns", "add", client]);
    // Interface names are per namespace: both ends may be called veth0.
    ip(["-n", server, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", client]);
    for (const [ns, address] of [
      [server, SERVER_ADDRESS],
      [client, CLIENT_ADDRESS],
    ] as const) {
      ip(["-n", ns, "addr", "add", `${address}/30`, "dev", "veth0"]);
      ip(["-n", ns, "link", "set", "veth0", "up"]);
      ip(["-n", ns, "link", "set", "lo", "up"]);
    }
  } catch (e) {
    pair.remove();
    throw e;
  }
  return pair;
}
