/** The pool's acquire-wait histogram: the shared fixed-bucket histogram (src/histogram.ts) with the pool's bounds. */
import { FixedHistogram, type HistogramBuckets } from "../histogram.ts";
import { PoolOptionError } from "./errors.ts";

/** Bucket upper bounds in ms. 0 gets its own bucket: an acquire served at once waits 0 ms. */
export const WAIT_BOUNDS_MS: readonly number[] = [
  0, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
];

/** A copy of a Histogram: percentiles and max in ms (0 when empty), bucket counts, sum and count. */
export interface HistogramSnapshot extends HistogramBuckets {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * The pool's histogram: src/histogram.ts's FixedHistogram over WAIT_BOUNDS_MS (or given
 * bounds), with its arguments checked (PoolOptionError) and a snapshot with percentiles.
 */
export class Histogram extends FixedHistogram {
  /** `boundsMs`: bucket upper bounds, finite and strictly ascending (at least one); throws PoolOptionError otherwise. */
  constructor(boundsMs: readonly number[] = WAIT_BOUNDS_MS) {
    const ok =
      Array.isArray(boundsMs) &&
      boundsMs.length > 0 &&
      boundsMs.every((b, i) => typeof b === "number" && Number.isFinite(b) && (i === 0 || b > (boundsMs[i - 1] as number)));
    if (!ok) {
      throw new PoolOptionError("boundsMs", `Histogram boundsMs=${JSON.stringify(boundsMs)} is invalid: expected finite numbers in strictly ascending order, at least one`);
    }
    super(boundsMs);
  }

  /** The value below which a fraction `q` (0..1) of the recorded values lie, estimated; 0 when empty. Throws PoolOptionError for q outside 0..1. */
  override quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) throw new PoolOptionError("q", `Histogram quantile q=${String(q)} is invalid: expected a fraction in 0..1`);
    return super.quantile(q);
  }

  /** A copy of the current state with p50/p90/p99. */
  snapshot(): HistogramSnapshot {
    return { p50: this.quantile(0.5), p90: this.quantile(0.9), p99: this.quantile(0.99), max: this.max, ...this.buckets() };
  }
}
