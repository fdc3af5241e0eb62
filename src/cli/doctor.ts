/**
 * `bun run doctor [--connections N] [--json]`: reads this machine's limits from /proc and
 * says, for N concurrent connections, what fails first and the command that fixes it.
 * By default it plans for the load client `bun run c1m` would pick here (the TUN client where
 * the machine allows it: one kernel socket per connection) and says so; --client sockets
 * plans for kernel-socket clients (two per connection), --no-loopback for the server alone.
 * Exit code: 0 when ready for N, 1 when a check fails, 2 on a bad flag.
 */
import { defineCommand, runCommand } from "../config/index.ts";
import { tunSupport } from "../loadgen/index.ts";
import { diagnose, formatDoctorReport, readPageBytes, readSlabinfo, readSystemLimits, type LoadClientKind } from "../system/index.ts";

const command = defineCommand({
  name: "doctor",
  summary:
    "Checks ulimit -n, fs.file-max, fs.nr_open, ip_local_port_range, somaxconn, tcp_max_syn_backlog, tcp_mem, tcp_rmem/wmem, nf_conntrack and memory against a target connection count; says what fails first and how to fix it.",
  flags: {
    connections: { type: "int", min: 1, max: 100_000_000, default: 1_000_000, short: "c", help: "target concurrent connections (100k, 1m accepted)", env: false },
    json: { type: "bool", help: "print the report as JSON (limits, checks, plan)", env: false },
    loopback: {
      type: "bool",
      default: true,
      help: "the load generator runs on this machine too (its processes and client count); --no-loopback for the server side only",
      env: false,
    },
    client: {
      type: "enum",
      choices: ["auto", "tun", "sockets"],
      default: "auto",
      help: "the load client to plan for: auto = what bun run c1m picks here (tun where the machine allows it), tun = userland TCP on TUN devices (one kernel socket per connection), sockets = kernel sockets on loopback (two per connection)",
      env: false,
    },
  },
  epilog: "Examples:\n  bun run doctor --connections 1m\n  bun run doctor -c 10m --client sockets   # the two-socket plan\n  bun run doctor -c 100k --json",
});

const { values } = runCommand(command);
let client: LoadClientKind = values.client === "tun" ? "tun" : "sockets";
let note: string | undefined;
if (!values.loopback) {
  note = undefined;
} else if (values.client === "auto") {
  // The same test c1m makes before it picks its client.
  const support = tunSupport();
  client = support.ok ? "tun" : "sockets";
  note = support.ok
    ? "load client: tun, the one bun run c1m picks on this machine (--client sockets for kernel-socket clients, two sockets per connection; --no-loopback for the server alone)"
    : `load client: sockets, the one bun run c1m picks on this machine: the TUN client is not available (${support.why})`;
} else {
  note = `load client: ${client} (--client); bun run c1m picks its own with --client auto`;
}
const limits = readSystemLimits();
const slabs = readSlabinfo(undefined, readPageBytes());
const report = diagnose(limits, { connections: values.connections, loopback: values.loopback, client, slabs });
if (values.json) {
  // Infinity is not JSON: a limit that never bites is written as null.
  process.stdout.write(JSON.stringify({ limits, ...report }, (_k, v) => (v === Infinity ? null : v), 2) + "\n");
} else {
  process.stdout.write(formatDoctorReport(report, limits, note));
}
process.exit(report.ready ? 0 : 1);
