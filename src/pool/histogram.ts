/**
 * Fixed-bucket latency histogram (Prometheus style: bucket i counts values <= boundsMs[i]
 * and above the previous bound; the last bucket is +Inf). Recording is a short scan over
 * the bounds and allocates nothing; percentiles are estimated by linear interpolation inside
 * the bucket that holds the rank, capped by the exact maximum.
 */
import { PoolOptionError } from "./errors.ts";

/** Bucket upper bounds in ms. 0 gets its own bucket: an acquire served at once waits 0 ms. */
export const WAIT_BOUNDS_MS: readonly number[] = [
  0, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
];

/** A copy of a Histogram: percentiles and max in ms (0 when empty), bucket counts, sum and count. */
export interface HistogramSnapshot {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  boundsMs: number[];
  /** Length boundsMs.length + 1; non-cumulative; the last counts values above the last bound. */
  counts: number[];
  sumMs: number;
  count: number;
}

/** A fixed-bucket latency histogram over WAIT_BOUNDS_MS (or given bounds); see the file comment. */
export class Histogram {
  private readonly bounds: readonly number[];
  private readonly counts: Float64Array;
  private sum = 0;
  private n = 0;
  private maxValue = 0;

  /** `boundsMs`: bucket upper bounds, finite and strictly ascending (at least one); throws PoolOptionError otherwise. */
  constructor(boundsMs: readonly number[] = WAIT_BOUNDS_MS) {
    const ok =
      Array.isArray(boundsMs) &&
      boundsMs.length > 0 &&
      boundsMs.every((b, i) => typeof b === "number" && Number.isFinite(b) && (i === 0 || b > (boundsMs[i - 1] as number)));
    if (!ok) {
      throw new PoolOptionError("boundsMs", `Histogram boundsMs=${JSON.stringify(boundsMs)} is invalid: expected finite numbers in strictly ascending order, at least one`);
    }
    this.bounds = boundsMs.slice();
    this.counts = new Float64Array(boundsMs.length + 1);
  }

  /** Counts one value of `ms` (>= 0). */
  record(ms: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && ms > (b[i] as number)) i++;
    this.counts[i]!++;
    this.sum += ms;
    this.n++;
    if (ms > this.maxValue) this.maxValue = ms;
  }

  /** Counts one value of exactly 0 (the first bucket), cheaper than record(0). */
  recordZero(): void {
    this.counts[0]!++;
    this.n++;
  }

  /** The value below which a fraction `q` (0..1) of the recorded values lie, estimated; 0 when empty. Throws PoolOptionError for q outside 0..1. */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) throw new PoolOptionError("q", `Histogram quantile q=${String(q)} is invalid: expected a fraction in 0..1`);
    if (this.n === 0) return 0;
    const rank = q * this.n;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i] as number;
      if (c > 0 && seen + c >= rank) {
        const lo = i === 0 ? 0 : (this.bounds[i - 1] as number);
        const hi = i < this.bounds.length ? (this.bounds[i] as number) : this.maxValue;
        const v = lo + (hi - lo) * ((rank - seen) / c);
        return Math.min(v, this.maxValue);
      }
      seen += c;
    }
    return this.maxValue;
  }

  /** A copy of the current state with p50/p90/p99. */
  snapshot(): HistogramSnapshot {
    return {
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      max: this.maxValue,
      boundsMs: this.bounds.slice(),
      counts: Array.from(this.counts),
      sumMs: this.sum,
      count: this.n,
    };
  }
}
