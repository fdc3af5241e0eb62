/**
 * `bun run doctor [--connections N] [--json]`: reads this machine's limits from /proc and
 * says, for N concurrent connections, what fails first and the command that fixes it.
 * Exit code: 0 when ready for N, 1 when a check fails, 2 on a bad flag.
 */
import { defineCommand, runCommand } from "../config/index.ts";
import { diagnose, formatDoctorReport, readPageBytes, readSlabinfo, readSystemLimits } from "../system/index.ts";

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
      help: "the load generator runs on this machine too (both ends' sockets count); --no-loopback for the server side only",
      env: false,
    },
  },
  epilog: "Examples:\n  bun run doctor --connections 1m\n  bun run doctor -c 100k --json",
});

const { values } = runCommand(command);
const limits = readSystemLimits();
const slabs = readSlabinfo(undefined, readPageBytes());
const report = diagnose(limits, { connections: values.connections, loopback: values.loopback, slabs });
if (values.json) {
  // Infinity is not JSON: a limit that never bites is written as null.
  process.stdout.write(JSON.stringify({ limits, ...report }, (_k, v) => (v === Infinity ? null : v), 2) + "\n");
} else {
  process.stdout.write(formatDoctorReport(report, limits));
}
process.exit(report.ready ? 0 : 1);
