// A small CLI over src/config, run as a subprocess by tests/config.test.ts to check exit codes.
import { defineCommand, runCommand } from "../src/config/index.ts";

const cmd = defineCommand({
  name: "demo",
  summary: "Prints its parsed settings as JSON.",
  configFlag: "config",
  flags: {
    config: { type: "string", help: "JSON config file", placeholder: "<path>" },
    port: { type: "int", default: 6380, min: 0, max: 65535, help: "TCP port", short: "p" },
    app: { type: "enum", choices: ["kv", "echo"], default: "kv", help: "which app" },
    verbose: { type: "bool", help: "say more" },
    idleTimeoutMs: { type: "duration-ms", default: 0, help: "idle timeout" },
  },
});
const { values, sources } = runCommand(cmd);
console.log(JSON.stringify({ values, sources }));
