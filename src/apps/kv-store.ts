/**
 * The key-value store behind the RESP app: binary-safe values under latin1-string keys,
 * with per-key deadlines on a timing wheel (see kv-expiry.ts).
 *
 * Keys are latin1 strings (one char per byte), so any byte string is a key and the Map
 * hashes them natively. Values are Uint8Array copies owned by the store. Keys without a
 * deadline cost one Map entry; keys with one add an entry in `expiries` (key -> id).
 */
import { MyriadRangeError, MyriadTypeError } from "../errors.ts";
import { ExpiryIndex } from "./kv-expiry.ts";

/** What KvStore.set does about an existing key: Always, IfAbsent (NX) or IfPresent (XX). */
export const SetCondition = { Always: 0, IfAbsent: 1, IfPresent: 2 } as const;
/** One of SetCondition's values. */
export type SetCondition = (typeof SetCondition)[keyof typeof SetCondition];

/** Options of KvStore. */
export interface KvStoreOptions {
  /** Expiry wheel resolution in ms (default 10). */
  tickMs?: number;
  /** Most keys; set() of a new key past it returns false. Default unlimited. It also bounds the expiry wheel. */
  maxKeys?: number;
  /** Monotonic clock in ms (default performance.now); tests pass a fake one. */
  now?: () => number;
}

function checkKvOptions(opts: KvStoreOptions): void {
  if (typeof opts !== "object" || opts === null) {
    throw new MyriadTypeError("ERR_APP_OPTION", `KV store options must be an object like { maxKeys: 100000 }, got ${String(opts)}`);
  }
  const { maxKeys, tickMs, now } = opts;
  if (maxKeys !== undefined && maxKeys !== Infinity && !(Number.isInteger(maxKeys) && maxKeys >= 0)) {
    throw new MyriadRangeError("ERR_APP_OPTION", `KV store option maxKeys must be an integer >= 0 (or Infinity for no limit), got ${String(maxKeys)}`);
  }
  if (tickMs !== undefined && !(Number.isInteger(tickMs) && tickMs >= 1)) {
    throw new MyriadRangeError("ERR_APP_OPTION", `KV store option tickMs must be an integer number of milliseconds >= 1, got ${String(tickMs)}`);
  }
  if (now !== undefined && typeof now !== "function") {
    throw new MyriadTypeError("ERR_APP_OPTION", `KV store option now must be a function returning milliseconds, got ${typeof now}`);
  }
}

/** Binary-safe values under latin1 keys, with per-key deadlines; a key is never visible after its deadline. */
export class KvStore {
  private readonly values = new Map<string, Uint8Array>();
  /** key -> expiry id, only for keys with a deadline. */
  private readonly expiries = new Map<string, number>();
  private readonly expiry: ExpiryIndex;
  /** Most keys (Infinity when unlimited). */
  readonly maxKeys: number;
  /** Keys removed because their deadline passed (by the wheel or on access). */
  expiredKeys = 0;

  /**
   * An empty store. Throws MyriadRangeError / MyriadTypeError (ERR_APP_OPTION) naming a bad
   * option: maxKeys an integer >= 0 or Infinity, tickMs an integer >= 1, now a function.
   */
  constructor(opts: KvStoreOptions = {}) {
    checkKvOptions(opts);
    this.maxKeys = opts.maxKeys ?? Infinity;
    const maxIds = Number.isFinite(this.maxKeys) ? Math.max(1, this.maxKeys) : undefined;
    this.expiry = new ExpiryIndex({
      tickMs: opts.tickMs,
      now: opts.now,
      initialCapacity: Math.min(1024, maxIds ?? 1024),
      maxCapacity: maxIds,
      onExpire: (key) => {
        this.expiries.delete(key);
        if (this.values.delete(key)) this.expiredKeys++;
      },
    });
  }

  /** Live keys (keys past their deadline but not yet reaped count until touched or reaped). */
  get size(): number {
    return this.values.size;
  }

  /** Keys that have a deadline. */
  get expiresCount(): number {
    return this.expiries.size;
  }


  /** Deletes `key` when its deadline has passed; returns true when it did. */
  private reapIfDue(key: string): boolean {
    const id = this.expiries.get(key);
    if (id === undefined || this.expiry.deadlineOf(id) > this.expiry.clock()) return false;
    this.expiries.delete(key);
    this.expiry.remove(id);
    this.values.delete(key);
    this.expiredKeys++;
    return true;
  }

  /** The value of key, or undefined when absent or expired. The array is the store's: do not modify it. */
  get(key: string): Uint8Array | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    if (this.expiries.size !== 0 && this.reapIfDue(key)) return undefined;
    return v;
  }

  /** True when key exists (and has not expired). */
  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /**
   * Stores value under key (the array is kept as is: pass a copy). ttlMs > 0 gives it a
   * deadline; keepTtl keeps an existing deadline; otherwise any deadline is cleared.
   * Returns false when the condition fails or maxKeys would be exceeded (nothing changes).
   */
  set(key: string, value: Uint8Array, condition: SetCondition = SetCondition.Always, ttlMs = 0, keepTtl = false): boolean {
    if (condition !== SetCondition.Always || this.values.size >= this.maxKeys) {
      const exists = this.get(key) !== undefined;
      if (condition === SetCondition.IfAbsent ? exists : condition === SetCondition.IfPresent ? !exists : false) return false;
      if (!exists && this.values.size >= this.maxKeys) return false;
    }
    if (ttlMs > 0) {
      if (!this.setDeadline(key, this.expiry.clock() + ttlMs)) return false;
    } else if (!keepTtl && this.expiries.size !== 0) {
      this.clearDeadline(key);
    }
    this.values.set(key, value);
    return true;
  }

  /** Deletes key; true when it existed (and had not expired). */
  delete(key: string): boolean {
    if (this.expiries.size !== 0) {
      const id = this.expiries.get(key);
      if (id !== undefined) {
        const due = this.expiry.deadlineOf(id) <= this.expiry.clock();
        this.expiries.delete(key);
        this.expiry.remove(id);
        const existed = this.values.delete(key);
        if (due) this.expiredKeys++;
        return existed && !due;
      }
    }
    return this.values.delete(key);
  }

  /**
   * Gives an existing key a deadline ttlMs from now; ttlMs <= 0 deletes it at once.
   * Returns false when the key does not exist (or the expiry index is full).
   */
  expire(key: string, ttlMs: number): boolean {
    if (this.get(key) === undefined) return false;
    if (ttlMs <= 0) {
      this.delete(key);
      return true;
    }
    return this.setDeadline(key, this.expiry.clock() + ttlMs);
  }

  /** Removes key's deadline; true when it had one. */
  persist(key: string): boolean {
    if (this.get(key) === undefined) return false;
    return this.clearDeadline(key);
  }

  /** Milliseconds left before key expires: -2 when absent, -1 when it has no deadline. */
  ttlMs(key: string): number {
    if (this.get(key) === undefined) return -2;
    const id = this.expiries.get(key);
    if (id === undefined) return -1;
    return Math.max(0, this.expiry.deadlineOf(id) - this.expiry.clock());
  }

  /** Reaps every key whose deadline passed (normally the wheel's timer does); returns how many. */
  reapExpired(): number {
    return this.expiry.runDue();
  }

  /** Removes every key. */
  flush(): void {
    this.values.clear();
    this.expiries.clear();
    this.expiry.clear();
  }

  /** Stops the expiry timer; the store stays readable. */
  close(): void {
    this.expiry.close();
  }


  private setDeadline(key: string, deadlineMs: number): boolean {
    const id = this.expiries.get(key);
    if (id !== undefined) {
      this.expiry.update(id, deadlineMs);
      return true;
    }
    const nid = this.expiry.add(key, deadlineMs);
    if (nid < 0) return false;
    this.expiries.set(key, nid);
    return true;
  }

  private clearDeadline(key: string): boolean {
    const id = this.expiries.get(key);
    if (id === undefined) return false;
    this.expiries.delete(key);
    this.expiry.remove(id);
    return true;
  }
}
