/**
 * Pool options: the typed interface, the TypeBox schema that checks them, and the defaults.
 * An unknown option, a missing one or a bad value throws PoolOptionError naming the option,
 * the value given and what is accepted.
 */
import { type TObject, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { PoolOptionError } from "./errors.ts";
import { MAX_TIMER_MS, waitMs } from "./time.ts";

/** What create() receives. */
export interface CreateContext {
  /** Aborted when createTimeoutMs passes or the pool drains: stop connecting and reject. */
  readonly signal: AbortSignal;
  /** 1 for a first try, n for the n-th consecutive try after failures. */
  readonly attempt: number;
}

/** Pool<T> options. Times are milliseconds; Infinity means "never" where allowed. */
export interface PoolOptions<T> {
  /** Opens one resource (a connection). May reject; failures back off exponentially. */
  create(ctx: CreateContext): T | Promise<T>;
  /** Closes one resource. Called once per resource; errors are reported through onWarning. */
  destroy?(resource: T): void | Promise<void>;
  /** Async liveness check run on borrow when the resource sat idle >= validateAfterIdleMs; false drops it. */
  validate?(resource: T): boolean | Promise<boolean>;
  /**
   * Cheap synchronous liveness check (e.g. "socket closed"), run on borrow and on release: a
   * broken resource is destroyed and replaced, never handed out. Resources that learn of
   * their own death should also call pool.invalidate(resource) so an idle one goes at once.
   */
  isBroken?(resource: T): boolean;
  /** Where warnings go (leaks, destroy errors). Default console.warn. */
  onWarning?(message: string): void;
  /** Name used in error messages and stats. Default "pool". */
  name?: string;
  /** Resources created at start and kept (0..max). Default 0. */
  min?: number;
  /** Most resources alive at once (idle + borrowed + being created). Required, >= 1. */
  max: number;
  /** Longest acquire() waits before it rejects. Default 10_000. Infinity waits forever. */
  acquireTimeoutMs?: number;
  /** Longest create() may take before it counts as failed (its signal aborts). Default 5_000. */
  createTimeoutMs?: number;
  /** An idle resource beyond `min` is destroyed after this long unused. Default 30_000; Infinity keeps it. */
  idleTimeoutMs?: number;
  /**
   * A resource is retired after this long (when idle, or at release). Each resource gets up
   * to 10% less, at random, so resources created together do not expire together.
   * Default 1_800_000 (30 min); Infinity keeps it forever.
   */
  maxLifetimeMs?: number;
  /** With `validate`, validate on borrow only when the resource sat idle at least this long. Default 500. */
  validateAfterIdleMs?: number;
  /** Most callers queued in acquire(); beyond it acquire() rejects at once (ERR_POOL_QUEUE_FULL). Default Infinity. */
  maxWaiting?: number;
  /** Warn (once per borrow, with the acquiring stack) when a resource is held longer. 0 = off (default). */
  leakDetectionMs?: number;
  /** First backoff ceiling after a failed create. Default 50. */
  createBackoffInitialMs?: number;
  /** Highest backoff ceiling; the delay is random in [0, ceiling] (full jitter). Default 1_000. */
  createBackoffMaxMs?: number;
  /**
   * After this many consecutive create failures the circuit opens: an acquire that would have
   * to wait for a new resource (none idle, none borrowed) rejects at once with
   * ERR_POOL_CIRCUIT_OPEN. The first successful create closes it. Default 3; Infinity never.
   */
  failFastAfterCreateErrors?: number;
  /** How often idle resources are checked for idleTimeoutMs / maxLifetimeMs / isBroken. Default 1_000. */
  reapIntervalMs?: number;
}

/** The options after defaults. */
export interface ResolvedPoolOptions<T> extends Required<Omit<PoolOptions<T>, "destroy" | "validate" | "isBroken">> {
  destroy: PoolOptions<T>["destroy"];
  validate: PoolOptions<T>["validate"];
  isBroken: PoolOptions<T>["isBroken"];
}

const ms = (allowed: string) => Type.Number({ minimum: 0, description: allowed });
const msOrInfinity = (allowed: string) =>
  Type.Union([Type.Number({ minimum: 0 }), Type.Literal(Infinity)], { description: allowed });
const fn = (allowed: string) => Type.Function([], Type.Unknown(), { description: allowed });

/** The TypeBox schema of PoolOptions (functions are checked to be functions). */
export const PoolOptionsSchema = Type.Object(
  {
    create: fn("a function (ctx) => resource | Promise<resource>"),
    destroy: Type.Optional(fn("a function (resource) => void | Promise<void>")),
    validate: Type.Optional(fn("a function (resource) => boolean | Promise<boolean>")),
    isBroken: Type.Optional(fn("a function (resource) => boolean")),
    onWarning: Type.Optional(fn("a function (message: string) => void")),
    name: Type.Optional(Type.String({ minLength: 1, description: "a non-empty string" })),
    min: Type.Optional(Type.Integer({ minimum: 0, description: "an integer >= 0 and <= max" })),
    max: Type.Integer({ minimum: 1, maximum: 2 ** 30, description: "an integer in 1..2^30" }),
    acquireTimeoutMs: Type.Optional(msOrInfinity("milliseconds >= 0, or Infinity to wait forever")),
    createTimeoutMs: Type.Optional(msOrInfinity("milliseconds >= 0, or Infinity for no limit")),
    idleTimeoutMs: Type.Optional(msOrInfinity("milliseconds >= 0, or Infinity to keep idle resources")),
    maxLifetimeMs: Type.Optional(msOrInfinity("milliseconds > 0, or Infinity for no limit")),
    validateAfterIdleMs: Type.Optional(ms("milliseconds >= 0")),
    maxWaiting: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.Literal(Infinity)], { description: "an integer >= 0, or Infinity" }),
    ),
    leakDetectionMs: Type.Optional(ms("milliseconds >= 0 (0 = off)")),
    createBackoffInitialMs: Type.Optional(ms("milliseconds >= 0 and <= createBackoffMaxMs")),
    createBackoffMaxMs: Type.Optional(ms("milliseconds >= 0")),
    failFastAfterCreateErrors: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1 }), Type.Literal(Infinity)], { description: "an integer >= 1, or Infinity to never fail fast" }),
    ),
    reapIntervalMs: Type.Optional(Type.Number({ minimum: 1, maximum: MAX_TIMER_MS, description: "milliseconds in 1..2^31-1" })),
  },
  { additionalProperties: false },
);

function show(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "number" || typeof value === "bigint" || value === null || value === undefined) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Checks `value` against an object schema whose properties carry a `description` of what
 * they accept. Returns normally when valid; throws PoolOptionError naming the first bad
 * option, its value and what is allowed. `what` names the options in the message ("Pool").
 */
export function checkOptions(schema: TObject, value: unknown, what: string): void {
  if (typeof value !== "object" || value === null) {
    throw new PoolOptionError("", `${what} options must be an object, got ${show(value)}`);
  }
  const props = schema.properties as Record<string, TSchema>;
  const accepted = Object.keys(props).join(", ");
  for (const key of Object.keys(value)) {
    if (!(key in props)) {
      throw new PoolOptionError(key, `unknown ${what} option "${key}"; accepted options: ${accepted}`);
    }
  }
  for (const [key, sub] of Object.entries(props)) {
    const v = (value as Record<string, unknown>)[key];
    const required = schema.required?.includes(key) ?? false;
    if (v === undefined) {
      if (required) throw new PoolOptionError(key, `${what} option "${key}" is required: ${sub.description ?? ""}`);
      continue;
    }
    if (!Value.Check(sub, v)) {
      throw new PoolOptionError(key, `${what} option ${key}=${show(v)} is invalid: expected ${sub.description ?? "a valid value"}`);
    }
  }
}

/** Validates `opts` (throws PoolOptionError) and fills in the defaults. */
export function resolvePoolOptions<T>(opts: PoolOptions<T>): ResolvedPoolOptions<T> {
  checkOptions(PoolOptionsSchema, opts, "Pool");
  const min = opts.min ?? 0;
  if (min > opts.max) {
    throw new PoolOptionError("min", `Pool option min=${min} is invalid: expected an integer >= 0 and <= max (max=${opts.max})`);
  }
  const createBackoffMaxMs = Math.min(opts.createBackoffMaxMs ?? 1_000, MAX_TIMER_MS);
  const createBackoffInitialMs = opts.createBackoffInitialMs ?? Math.min(50, createBackoffMaxMs);
  if (createBackoffInitialMs > createBackoffMaxMs) {
    throw new PoolOptionError(
      "createBackoffInitialMs",
      `Pool option createBackoffInitialMs=${createBackoffInitialMs} is invalid: expected milliseconds >= 0 and <= createBackoffMaxMs (${createBackoffMaxMs})`,
    );
  }
  if (opts.maxLifetimeMs === 0) {
    throw new PoolOptionError("maxLifetimeMs", "Pool option maxLifetimeMs=0 is invalid: expected milliseconds > 0, or Infinity for no limit");
  }
  return {
    create: opts.create,
    destroy: opts.destroy,
    validate: opts.validate,
    isBroken: opts.isBroken,
    onWarning: opts.onWarning ?? ((m: string) => console.warn(m)),
    name: opts.name ?? "pool",
    min,
    max: opts.max,
    // Beyond what a timer can wait (~24.8 days) is forever.
    acquireTimeoutMs: waitMs(opts.acquireTimeoutMs ?? 10_000),
    createTimeoutMs: waitMs(opts.createTimeoutMs ?? 5_000),
    idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
    maxLifetimeMs: opts.maxLifetimeMs ?? 1_800_000,
    validateAfterIdleMs: opts.validateAfterIdleMs ?? 500,
    maxWaiting: opts.maxWaiting ?? Infinity,
    leakDetectionMs: Math.min(opts.leakDetectionMs ?? 0, MAX_TIMER_MS),
    createBackoffInitialMs,
    createBackoffMaxMs,
    failFastAfterCreateErrors: opts.failFastAfterCreateErrors ?? 3,
    reapIntervalMs: opts.reapIntervalMs ?? 1_000,
  };
}
