/**
 * A lab of machines on one machine: one network namespace per "machine", all on one
 * Ethernet segment (a bridge in a namespace of its own), addresses from 10.77.0.0/16. Every
 * packet stays inside the lab's namespaces; the machine's own network is never touched.
 * Namespaces are named `<prefix>-<pid>-<machine>` and removed by close(), on any exit of the
 * process, and (for runs that died without cleaning up) by the next lab that starts.
 */
import { existsSync, readdirSync } from "node:fs";

const LAB_NET = "10.77";

/** One machine of the lab: its namespace and address. */
export interface Machine {
  name: string;
  netns: string;
  address: string;
}

function run(args: string[]): string {
  const r = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${args.join(" ")}: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`);
  return r.stdout.toString();
}

/** Why this machine cannot host a lab (not root, no ip, no namespaces), or undefined when it can. */
export function labUnsupported(): string | undefined {
  if (process.getuid?.() !== 0) return "the fleet lab makes network namespaces: run it as root";
  if (!Bun.which("ip")) return "ip (iproute2) not found: apt-get install iproute2";
  return undefined;
}

export class Lab {
  readonly machines = new Map<string, Machine>();
  private readonly bridgeNs: string;
  private nextHost = 2;
  private closed = false;
  private readonly onExit = () => this.close();

  constructor(private readonly prefix = "myrfleet") {
    const why = labUnsupported();
    if (why) throw new Error(why);
    removeStaleLabs(prefix);
    this.bridgeNs = `${prefix}-${process.pid}-sw`;
    process.on("exit", this.onExit);
    run(["ip", "netns", "add", this.bridgeNs]);
    run(["ip", "-n", this.bridgeNs, "link", "add", "br0", "type", "bridge"]);
    run(["ip", "-n", this.bridgeNs, "link", "set", "br0", "up"]);
  }

  /** Adds a machine on the segment with the next free address (or `hostNumber` of 10.77.0.x). */
  add(name: string, extraAddresses = 0): Machine {
    const netns = `${this.prefix}-${process.pid}-${name}`;
    const host = this.nextHost++;
    const address = `${LAB_NET}.0.${host}`;
    run(["ip", "netns", "add", netns]);
    const port = `v${host}`;
    run(["ip", "-n", this.bridgeNs, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    run(["ip", "-n", this.bridgeNs, "link", "set", port, "master", "br0", "up"]);
    run(["ip", "-n", netns, "addr", "add", `${address}/16`, "dev", "eth0"]);
    // More addresses for a machine that opens more connections than one source address has ports.
    for (let i = 1; i <= extraAddresses; i++) run(["ip", "-n", netns, "addr", "add", `${LAB_NET}.${host}.${i}/16`, "dev", "eth0"]);
    run(["ip", "-n", netns, "link", "set", "eth0", "up"]);
    run(["ip", "-n", netns, "link", "set", "lo", "up"]);
    // Each machine tuned as the doctor advises a server or a client of many connections.
    for (const [k, v] of [
      ["net.ipv4.ip_local_port_range", "1024 65535"],
      ["net.core.somaxconn", "65535"],
      ["net.ipv4.tcp_max_syn_backlog", "65535"],
    ]) Bun.spawnSync(["ip", "netns", "exec", netns, "sysctl", "-qw", `${k}=${v}`]);
    const m = { name, netns, address };
    this.machines.set(name, m);
    return m;
  }

  /** The extra source addresses add() gave machine `name`. */
  extraAddresses(name: string, count: number): string[] {
    const host = Number(this.machines.get(name)!.address.split(".")[3]);
    return Array.from({ length: count }, (_, i) => `${LAB_NET}.${host}.${i + 1}`);
  }

  /** argv prefix that runs a command on machine `name`. */
  on(name: string): string[] {
    const m = this.machines.get(name);
    if (!m) throw new Error(`no machine ${name} in the lab`);
    return ["ip", "netns", "exec", m.netns];
  }

  /** Deletes every namespace of the lab (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    process.off("exit", this.onExit);
    for (const m of this.machines.values()) killNamespace(m.netns);
    killNamespace(this.bridgeNs);
  }
}

/** Kills what still runs in a namespace, then deletes it. */
function killNamespace(netns: string): void {
  const pids = Bun.spawnSync(["ip", "netns", "pids", netns], { stdout: "pipe", stderr: "ignore" }).stdout.toString().trim();
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
  Bun.spawnSync(["ip", "netns", "del", netns], { stdout: "ignore", stderr: "ignore" });
}

/** Labs whose process is gone leave namespaces behind if it was killed: remove them. */
function removeStaleLabs(prefix: string): void {
  if (!existsSync("/var/run/netns")) return;
  for (const name of readdirSync("/var/run/netns")) {
    const m = new RegExp(`^${prefix}-(\\d+)-`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) killNamespace(name);
  }
}
