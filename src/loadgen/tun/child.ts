/**
 * The TUN side of a load process (child-main.ts loads it when its config has `tun`): makes
 * the process's own TUN device, routes its client addresses to it, and runs a TunEngine
 * with the process's share of the connections. The process runs inside the experiment's
 * namespace (netns.ts), so the device and the route exist only there.
 */
import { MyriadError } from "../../errors.ts";
import type { EngineOptions } from "../options.ts";
import type { TunChildConfig } from "../protocol.ts";
import { TunDevice } from "./device.ts";
import { TunEngine } from "./engine.ts";
import { wsProbe } from "./options.ts";
import { ip } from "./netns.ts";

/**
 * Device queue length: a ramp's burst of SYN-ACKs (and, with confirm, echoes and ACKs: up to
 * 3 packets per connect in flight) must not overflow the default 500 before we read them.
 */
function txQueueLen(window: number): number {
  return Math.max(10_000, 4 * window);
}

/** Opens and configures the device, then creates the engine (which starts reading at once). */
export function createTunEngine(engine: EngineOptions, tun: TunChildConfig): TunEngine {
  if ((engine.mode ?? "idle") !== "idle") throw new MyriadError("ERR_LOADGEN_TUN", `the TUN client holds idle connections only (mode ${engine.mode} asked)`);
  const dev = TunDevice.open(tun.device);
  try {
    ip(["link", "set", "dev", tun.device, "up", "txqueuelen", String(txQueueLen(engine.connectWindow ?? 1024))]);
    ip(["route", "add", tun.clientCidr, "dev", tun.device]);
    return new TunEngine(dev, {
      connections: engine.connections,
      clientFirstIp: tun.clientFirstIp,
      serverIp: tun.serverIp,
      ports: tun.ports,
      connectWindow: engine.connectWindow,
      connectRatePerSec: engine.connectRatePerSec,
      connectTimeoutMs: engine.connectTimeoutMs,
      retries: engine.retries,
      confirm: engine.confirm,
      probe: engine.protocol === "websocket" ? wsProbe() : undefined,
    });
  } catch (e) {
    dev.close();
    throw e;
  }
}
