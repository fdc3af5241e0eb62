/**
 * The network namespace a TUN-client experiment runs in, and the addresses it uses.
 *
 * The servers and the userland client (engine.ts) run inside a namespace the experiment
 * creates and deletes: the TUN devices, their routes and every packet stay in it, and
 * nothing of the machine's own network is touched. Addresses come from 198.18.0.0/15, the
 * block RFC 2544 reserves for benchmarking: the servers answer on SERVER_ADDRESS (on the
 * namespace's loopback device) and load process p owns an aligned block of client
 * addresses in 198.19.0.0/16, routed to its own TUN device, so the replies to each
 * process's connections come back to that process.
 */
import { existsSync } from "node:fs";
import { MyriadError } from "../../errors.ts";
import { parseIPv4, formatIPv4 } from "../targets.ts";
import { clientAddressesFor } from "./engine.ts";

/** Where the servers listen inside the namespace. */
export const SERVER_ADDRESS = "198.18.0.1";
/** The client addresses: load processes get aligned blocks from here. */
export const CLIENT_NETWORK = "198.19.0.0";
const CLIENT_NETWORK_ADDRESSES = 65_536;

export class NetnsError extends MyriadError {
  constructor(message: string) {
    super("ERR_NETNS", message);
  }
}

/** One load process's share of the client addresses: first address, prefix length (a route covers exactly its block). */
export interface ClientBlock {
  firstIp: number;
  prefixLength: number;
  /** "198.19.0.0/28" */
  cidr: string;
}

/**
 * Splits the client network into `processes` aligned blocks, each big enough for the
 * largest share (connections ÷ processes, rounded up). Throws NetnsError when they do not fit.
 */
export function clientBlocks(connections: number, processes: number): ClientBlock[] {
  const share = Math.ceil(connections / processes);
  let size = 1;
  while (size < clientAddressesFor(share)) size *= 2;
  if (size * processes > CLIENT_NETWORK_ADDRESSES)
    throw new NetnsError(`${processes} load processes of ${size} client addresses each do not fit in ${CLIENT_NETWORK}/16: use fewer processes`);
  const base = parseIPv4(CLIENT_NETWORK)!;
  const prefixLength = 32 - Math.log2(size);
  const out: ClientBlock[] = [];
  for (let p = 0; p < processes; p++) {
    const firstIp = base + p * size;
    out.push({ firstIp, prefixLength, cidr: `${formatIPv4(firstIp)}/${prefixLength}` });
  }
  return out;
}

/** Runs `ip args...`; throws NetnsError with ip's own message when it fails. */
export function ip(args: string[]): void {
  const r = Bun.spawnSync(["ip", ...args], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new NetnsError(`ip ${args.join(" ")} failed: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`);
}

/**
 * Whether this machine can run the TUN client: Linux, /dev/net/tun, iproute2's `ip`, and
 * root (CAP_NET_ADMIN, to make namespaces and devices). `why` says what is missing and how to get it.
 */
export function tunSupport(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== "linux") return { ok: false, why: "the TUN client needs Linux" };
  if (!existsSync("/dev/net/tun")) return { ok: false, why: "/dev/net/tun is missing: modprobe tun (or mkdir -p /dev/net && mknod /dev/net/tun c 10 200)" };
  if (Bun.which("ip") === null) return { ok: false, why: "`ip` is missing: apt-get install -y iproute2" };
  if (process.getuid?.() !== 0) return { ok: false, why: "the TUN client needs root (CAP_NET_ADMIN) to make a network namespace and TUN devices" };
  return { ok: true };
}

/**
 * A network namespace of our own, named `myriad-<tag>-<pid>`, with loopback up and the
 * servers' address on it. delete() removes it (idempotent); sockets still in it go when
 * its last process exits.
 */
export class Netns {
  readonly name: string;
  private deleted = false;

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates the namespace; throws NetnsError (with ip's message) when it cannot. */
  static create(tag: string): Netns {
    const name = `myriad-${tag}-${process.pid}`;
    // A namespace of ours left by a killed run of the same pid would make `add` fail.
    Bun.spawnSync(["ip", "netns", "del", name], { stdout: "ignore", stderr: "ignore" });
    ip(["netns", "add", name]);
    const ns = new Netns(name);
    try {
      ip(["-n", name, "link", "set", "lo", "up"]);
      ip(["-n", name, "addr", "add", `${SERVER_ADDRESS}/32`, "dev", "lo"]);
    } catch (e) {
      ns.delete();
      throw e;
    }
    return ns;
  }

  /** The command prefix that runs a program inside the namespace (same pid: ip execs it). */
  get execPrefix(): string[] {
    return ["ip", "netns", "exec", this.name];
  }

  /** Deletes the namespace. */
  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    Bun.spawnSync(["ip", "netns", "del", this.name], { stdout: "ignore", stderr: "ignore" });
  }
}

/**
 * A ProcReader (see cluster/limits.ts) that reads /proc/net/* of the namespace process `pid`
 * lives in: sockstat and netstat are per namespace, so the root namespace's files do not
 * show the experiment's sockets. Other paths read as they are.
 */
export function procReaderIn(pid: number, read: (path: string) => string | undefined): (path: string) => string | undefined {
  return (path) => read(path.startsWith("/proc/net/") ? `/proc/${pid}/net/${path.slice("/proc/net/".length)}` : path);
}
