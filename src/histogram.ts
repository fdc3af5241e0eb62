/**
 * A fixed-bucket histogram of milliseconds, Prometheus style: bucket i counts values at or
 * below boundsMs[i] and above the bound before it; the last bucket counts what is above the
 * last bound (+Inf). Recording is a short scan over the bounds and allocates nothing, cheap
 * enough for once per frame; percentiles are estimated by linear interpolation inside the
 * bucket that holds the rank, capped by the exact maximum. The one implementation behind the
 * reactor's request latency and the pool's acquire waits; a root module so that neither
 * imports the other.
 */

/** A histogram's buckets as plain data: what ServerStats and PoolStats carry, and what sums add. */
export interface HistogramBuckets {
  boundsMs: number[];
  /** Length boundsMs.length + 1; non-cumulative; the last counts values above the last bound. */
  counts: number[];
  sumMs: number;
  count: number;
}

/** The histogram of the file comment. Bounds are the caller's: finite and strictly ascending (not checked here). */
export class FixedHistogram {
  protected readonly bounds: Float64Array;
  protected readonly counts: Float64Array;
  protected sum = 0;
  protected n = 0;
  protected maxValue = 0;

  /** A histogram over `boundsMs` (upper bounds in ms, ascending). */
  constructor(boundsMs: readonly number[]) {
    this.bounds = new Float64Array(boundsMs);
    this.counts = new Float64Array(boundsMs.length + 1);
  }

  /** Counts one value of `ms` (>= 0). */
  record(ms: number): void {
    const b = this.bounds;
    const last = b.length;
    let i = 0;
    while (i < last && ms > b[i]!) i++;
    this.counts[i]!++;
    this.sum += ms;
    this.n++;
    if (ms > this.maxValue) this.maxValue = ms;
  }

  /** Counts one value of exactly 0 (the first bucket, when its bound is 0 or more), cheaper than record(0). */
  recordZero(): void {
    this.counts[0]!++;
    this.n++;
  }

  /** The value below which a fraction `q` (0..1) of the recorded values lie, estimated; 0 when empty. */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = q * this.n;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i]!;
      if (c > 0 && seen + c >= rank) {
        const lo = i === 0 ? 0 : this.bounds[i - 1]!;
        const hi = i < this.bounds.length ? this.bounds[i]! : this.maxValue;
        const v = lo + (hi - lo) * ((rank - seen) / c);
        return Math.min(v, this.maxValue);
      }
      seen += c;
    }
    return this.maxValue;
  }

  /** The largest value recorded (0 when empty). */
  get max(): number {
    return this.maxValue;
  }

  /** A copy of the buckets, sum and count. */
  buckets(): HistogramBuckets {
    return { boundsMs: Array.from(this.bounds), counts: Array.from(this.counts), sumMs: this.sum, count: this.n };
  }
}
