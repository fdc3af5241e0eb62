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
import { clientAddressesFor } from "./options.ts";

/** Where the servers listen inside the namespace. */
export const SERVER_ADDRESS = "198.18.0.1";
/** The client addresses: load processes get aligned blocks from here. */
export const CLIENT_NETWORK = "198.19.0.0";
const CLIENT_NETWORK_ADDRESSES = 65_536;

/** A namespace or device that could not be made; the message says what is missing. */
class NetnsError extends MyriadError {
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

/** Deletes namespace `name`; returns ip's complaint when it could not (undefined when done or already gone). */
function deleteNamespace(name: string): string | undefined {
  const r = Bun.spawnSync(["ip", "netns", "del", name], { stdout: "ignore", stderr: "pipe" });
  return r.exitCode === 0 ? undefined : `ip netns del ${name}: ${r.stderr.toString().trim()}`;
}

/** Runs `ip args...`; throws NetnsError with ip's own message when it fails. */
export function ip(args: string[]): void {
  const r = Bun.spawnSync(["ip", ...args], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new NetnsError(`ip ${args.join(" ")} failed: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`);
}

/**
 * Whether this machine can run the TUN client: Linux, /dev/net/tun, iproute2's `ip`, root,
 * and the right to make a network namespace and a TUN device in it (tried, then undone:
 * root in a container may lack CAP_SYS_ADMIN or CAP_NET_ADMIN). `why` says what is missing
 * and how to get it.
 */
export function tunSupport(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== "linux") return { ok: false, why: "the TUN client needs Linux" };
  if (!existsSync("/dev/net/tun")) return { ok: false, why: "/dev/net/tun is missing: modprobe tun (or mkdir -p /dev/net && mknod /dev/net/tun c 10 200)" };
  if (Bun.which("ip") === null) return { ok: false, why: "`ip` is missing: apt-get install -y iproute2" };
  if (process.getuid?.() !== 0) return { ok: false, why: "the TUN client needs root (CAP_NET_ADMIN) to make a network namespace and TUN devices" };
  const name = `myriad-probe-${process.pid}`;
  try {
    ip(["netns", "add", name]);
    try {
      ip(["-n", name, "tuntap", "add", "dev", "myriad-probe", "mode", "tun"]);
    } finally {
      deleteNamespace(name);
    }
  } catch (e) {
    return { ok: false, why: `cannot make a network namespace with a TUN device (${(e as Error).message}): needs CAP_SYS_ADMIN and CAP_NET_ADMIN` };
  }
  return { ok: true };
}

/** Namespaces this process made and has not deleted: deleted on exit, whatever ends the process. */
const live = new Set<Netns>();
let exitHookInstalled = false;

/** Our namespaces are named myriad-<tag>-<pid>: those of a process that is gone were left by a killed run. */
function deleteStaleNamespaces(): void {
  const r = Bun.spawnSync(["ip", "netns", "list"], { stdout: "pipe", stderr: "ignore" });
  for (const line of r.stdout.toString().split("\n")) {
    const m = /^(myriad-[A-Za-z0-9]+-(\d+))\b/.exec(line);
    if (m === null || Number(m[2]) === process.pid || existsSync(`/proc/${m[2]}`)) continue;
    deleteNamespace(m[1]!);
  }
}

/**
 * A network namespace of our own, named `myriad-<tag>-<pid>`, with loopback up, the
 * servers' address on it, and an anchor process (`tail --pid`) living in it, through whose
 * /proc/<pid>/net the namespace's sockstat and netstat are read whichever of the
 * experiment's processes come and go. delete() kills the anchor and removes the namespace
 * (idempotent); sockets still in it go when its last process exits. A namespace not
 * deleted by the time the process exits (a second Ctrl-C, process.exit) is deleted then.
 */
export class Netns {
  readonly name: string;
  /** Pid of the anchor process inside the namespace. */
  readonly anchorPid: number;
  private deleted = false;

  private constructor(name: string, anchorPid: number) {
    this.name = name;
    this.anchorPid = anchorPid;
  }

  /** Creates the namespace; throws NetnsError (with ip's message) when it cannot. */
  static create(tag: string): Netns {
    deleteStaleNamespaces();
    const name = `myriad-${tag}-${process.pid}`;
    // A namespace of ours left by an earlier phase of this process would make `add` fail.
    deleteNamespace(name);
    ip(["netns", "add", name]);
    let anchorPid: number;
    try {
      ip(["-n", name, "link", "set", "lo", "up"]);
      ip(["-n", name, "addr", "add", `${SERVER_ADDRESS}/32`, "dev", "lo"]);
      // tail --pid ends by itself within a second of this process's end, however that comes.
      anchorPid = Bun.spawn(["ip", "netns", "exec", name, "tail", "-f", `--pid=${process.pid}`, "/dev/null"], { stdio: ["ignore", "ignore", "ignore"] }).pid;
    } catch (e) {
      deleteNamespace(name);
      throw e;
    }
    const ns = new Netns(name, anchorPid);
    live.add(ns);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        for (const n of live) n.delete();
      });
    }
    return ns;
  }

  /** The command prefix that runs a program inside the namespace (same pid: ip execs it). */
  get execPrefix(): string[] {
    return ["ip", "netns", "exec", this.name];
  }

  /**
   * A ProcReader (see src/system/proc.ts) that reads this namespace's /proc/net/* through the
   * anchor's /proc/<pid>/net: sockstat and netstat are per namespace, so the root
   * namespace's files do not show the experiment's sockets. Other paths read as they are.
   */
  procReader(read: (path: string) => string | undefined): (path: string) => string | undefined {
    const pid = this.anchorPid;
    return (path) => read(path.startsWith("/proc/net/") ? `/proc/${pid}/net/${path.slice("/proc/net/".length)}` : path);
  }

  /** Kills the anchor and deletes the namespace; returns ip's complaint when the delete failed (undefined when done). */
  delete(): string | undefined {
    if (this.deleted) return undefined;
    this.deleted = true;
    live.delete(this);
    try {
      process.kill(this.anchorPid, "SIGKILL");
    } catch {
      // already gone
    }
    return deleteNamespace(this.name);
  }
}
