/** How a TUN load run splits over its processes: each one's device, client addresses and servers. */
import type { TunChildConfig } from "../protocol.ts";
import { LoadError, type LoadOptions } from "../run-options.ts";
import { parseIPv4 } from "../targets.ts";
import { MAX_TUN_WINDOW } from "./options.ts";
import { clientBlocks, type ClientBlock } from "./netns.ts";

/** Each TUN process's device, client block and servers (`window`: its connects in flight); throws LoadError for options the TUN client cannot run. */
export function tunConfigs(opts: LoadOptions, processes: number, window: number): TunChildConfig[] {
  if ((opts.mode ?? "idle") !== "idle") throw new LoadError("ERR_LOADGEN_TUN", `the TUN client holds idle connections only, not mode ${opts.mode}`);
  const protocol = opts.protocol ?? "echo";
  if (protocol !== "echo" && protocol !== "websocket") throw new LoadError("ERR_LOADGEN_TUN", `the TUN client speaks echo or websocket, not ${protocol}`);
  // Its WebSocket is the confirm probe (the upgrade and one message): without it no upgrade is sent.
  if (protocol === "websocket" && opts.confirm !== true) throw new LoadError("ERR_LOADGEN_TUN", "the TUN client upgrades WebSocket connections only with confirm (the upgrade and an echoed message are its probe)");
  const hosts = new Set(opts.targets.map((t) => t.host));
  const host = opts.targets[0]?.host;
  const serverIp = host === undefined ? undefined : parseIPv4(host);
  if (hosts.size !== 1 || serverIp === undefined)
    throw new LoadError("ERR_LOADGEN_TUN", `the TUN client needs every target on one IPv4 address (the servers' address in the namespace), got ${[...hosts].join(", ") || "none"}`);
  const ports = [...new Set(opts.targets.map((t) => t.port))];
  if (window > MAX_TUN_WINDOW)
    throw new LoadError("ERR_LOADGEN_TUN", `a TUN process keeps at most ${MAX_TUN_WINDOW} connects in flight: connectWindow ${opts.connectWindow} over ${processes} processes is ${window} each`);
  let blocks: ClientBlock[];
  try {
    blocks = clientBlocks(opts.connections, processes);
  } catch (e) {
    throw new LoadError("ERR_LOADGEN_TUN", (e as Error).message);
  }
  return blocks.map((b, p) => ({ device: `myriad-tun${p}`, clientFirstIp: b.firstIp, clientCidr: b.cidr, serverIp, ports }));
}
