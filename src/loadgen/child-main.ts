/**
 * Entry of one load process (spawned by coordinator.ts with an IPC channel). Its settings
 * come in MYRIAD_LOADGEN_CHILD (JSON EngineOptions plus progressIntervalMs and
 * maxLifetimeMs). It imports only the engine and the codecs: a light baseline matters when a
 * million connections need ~55 of these.
 *
 * IPC, parent → child: start | traffic | stop-connecting | progress | report | stop.
 * child → parent: ready | progress (counters) | report (counters + histograms, still
 * running) | final (the same after closing everything) | fatal.
 * It exits by itself when the parent goes away (IPC disconnect) or after maxLifetimeMs.
 */
import { LoadEngine } from "./engine.ts";
import type { EngineOptions } from "./options.ts";
import type { ChildConfig, ChildToParent, ParentToChild } from "./protocol.ts";

const raw = process.env.MYRIAD_LOADGEN_CHILD;
if (raw === undefined || typeof process.send !== "function") {
  console.error("src/loadgen/child-main.ts is started by the load generator (bun run load), not by hand");
  process.exit(2);
}
const cfg = JSON.parse(raw) as ChildConfig;
const send = (m: ChildToParent) => {
  try {
    process.send!(m);
  } catch {
    // the parent is gone: the disconnect handler exits
  }
};

/** What this process drives: a socket engine, or the TUN engine (idle only: it has no traffic to start). */
interface ChildEngine {
  start(): Promise<void>;
  startTraffic(): void;
  stopConnecting(): void;
  counters(): ReturnType<LoadEngine["counters"]>;
  report(): ReturnType<LoadEngine["report"]>;
  stop(): Promise<void>;
}

let engine: ChildEngine;
try {
  if (cfg.tun !== undefined) {
    // Loaded only here: a socket load process keeps its light baseline.
    const { createTunEngine } = await import("./tun/child.ts");
    engine = createTunEngine(cfg.engine, cfg.tun);
  } else {
    engine = await LoadEngine.create(cfg.engine as EngineOptions);
  }
} catch (e) {
  send({ t: "fatal", message: (e as Error).message });
  process.exit(1);
}

let stopping = false;
const progress = setInterval(() => send({ t: "progress", counters: engine.counters() }), cfg.progressIntervalMs);
const lifetime = setTimeout(() => void finish("lifetime"), cfg.maxLifetimeMs);

async function finish(why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(progress);
  clearTimeout(lifetime);
  await engine.stop();
  send({ t: "final", report: engine.report(), why });
  // Give the IPC message a moment to leave before the process ends.
  setTimeout(() => process.exit(0), 50);
}

process.on("message", (m: ParentToChild) => {
  switch (m.t) {
    case "start":
      void engine.start().then(() => send({ t: "progress", counters: engine.counters() }));
      break;
    case "traffic":
      engine.startTraffic();
      break;
    case "stop-connecting":
      engine.stopConnecting();
      break;
    case "progress":
      send({ t: "progress", counters: engine.counters(), id: m.id });
      break;
    case "report":
      send({ t: "report", report: engine.report(), id: m.id });
      break;
    case "stop":
      void finish("stop");
      break;
  }
});
process.on("disconnect", () => process.exit(0));
// Ctrl-C reaches the whole process group: the parent decides when this process stops.
process.on("SIGINT", () => {});
send({ t: "ready", pid: process.pid });
