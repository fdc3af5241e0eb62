/**
 * Module apps: an application in a file of its own, run by `bun run serve --app ./my-app.ts`
 * (in this process or in every cluster worker) or by runCluster({ app: { kind: "module" } }).
 *
 *   // my-app.ts
 *   import { createRespClient } from "myriad";
 *   export default function (options, ctx) {
 *     const redis = createRespClient({ port: 6379, pool: { max: 4 } });
 *     ctx.registerPool("redis", redis.pool); // shown by the admin server, per worker
 *     return { protocol: "resp", handler: { message(conn, args) { ... } }, close: () => redis.close() };
 *   }
 *
 * The factory runs once per process (per worker); `options` is what the caller passed
 * (serve passes none: read settings from the environment, which workers inherit).
 */
import { MyriadError, MyriadTypeError } from "../errors.ts";
import type { PoolRegistry, StatsPool } from "../pool/index.ts";
import type { ServerOptions } from "../reactor/index.ts";

/** What a module app's factory gets besides its options. */
export interface AppContext {
  /** This process's worker index, 0-based (0 in a single process). */
  readonly workerIndex: number;
  /** How many workers run the app (1 in a single process). */
  readonly workers: number;
  /**
   * Shows `pool` in the admin server (/stats, /metrics with pool and worker labels, the
   * dashboard's pool chart) under `name`; its stats() is read at every stats report.
   * Registering a name again replaces the pool shown under it.
   */
  registerPool(name: string, pool: StatsPool): void;
}

/** What a module app's factory returns (or resolves to). */
export interface ModuleApp {
  /** The framing by name, or `codec` for a codec object; neither: the server's default. */
  protocol?: ServerOptions["protocol"];
  codec?: ServerOptions["codec"];
  handler: ServerOptions["handler"];
  /**
   * Optional: a handler for each further listener (`serve --host a,b` or a --port range runs
   * one server per address in a process). Servers hand out overlapping connection ids, so an
   * app that keeps state by conn.id gives each server its own handler; without this, every
   * server gets `handler`.
   */
  handlerForListener?(): ServerOptions["handler"];
  /** Called once the server has stopped (close upstream clients here). */
  close?(): void | Promise<void>;
}

/** A module app's factory: the module's default export (or the export named in its spec). */
export type AppFactory = (options: unknown, ctx: AppContext) => ModuleApp | Promise<ModuleApp>;

/** Which module app to load. */
export interface ModuleAppSpec {
  /** An absolute path, a file URL or a package name (a relative path is resolved by import). */
  module: string;
  /** The export holding the factory. Default "default". */
  export?: string;
  /** Passed to the factory as its first argument. */
  options?: unknown;
}

/**
 * Imports `spec.module` and runs its factory with `spec.options` and a context whose
 * registerPool writes to `registry`. Resolves the app. Rejects with MyriadError ERR_APP_MODULE
 * (the original error as `cause`) when the module cannot be imported, the export is not a
 * function, the factory throws, or its result has no handler; MyriadTypeError
 * (ERR_APP_MODULE) when spec is not { module: string }.
 */
export async function loadModuleApp(
  spec: ModuleAppSpec,
  where: { workerIndex: number; workers: number },
  registry: PoolRegistry,
): Promise<ModuleApp> {
  if (spec === null || typeof spec !== "object" || typeof spec.module !== "string" || spec.module === "") {
    throw new MyriadTypeError("ERR_APP_MODULE", `loadModuleApp: spec must be { module: "<path or package>", export?, options? }, got ${String(spec)}`);
  }
  const name = spec.export ?? "default";
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec.module)) as Record<string, unknown>;
  } catch (cause) {
    throw new MyriadError("ERR_APP_MODULE", `cannot import app module ${spec.module}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
  const factory = mod[name];
  if (typeof factory !== "function") {
    throw new MyriadError("ERR_APP_MODULE", `${spec.module} has no function export "${name}" (it must return { protocol?, codec?, handler, close? })`);
  }
  const ctx: AppContext = {
    workerIndex: where.workerIndex,
    workers: where.workers,
    registerPool: (poolName, pool) => registry.register(poolName, pool),
  };
  let app: ModuleApp | undefined;
  try {
    app = (await (factory as AppFactory)(spec.options, ctx)) as ModuleApp | undefined;
  } catch (cause) {
    throw new MyriadError("ERR_APP_MODULE", `${spec.module}: export "${name}" threw: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
  if (app === null || typeof app !== "object" || app.handler === null || typeof app.handler !== "object" || typeof app.handler.message !== "function") {
    throw new MyriadError("ERR_APP_MODULE", `${spec.module}: export "${name}" must return { protocol?, codec?, handler: { message(conn, frame) }, close? }`);
  }
  return app;
}
