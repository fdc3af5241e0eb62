/**
 * An HDR-style log-linear histogram of non-negative integers (latencies in microseconds).
 *
 * Values below 2^subBucketBits each have their own bucket (exact); above, every power of two
 * is split into 2^subBucketBits equal buckets, so a bucket's width is at most
 * 1/2^subBucketBits of its lower bound: with the default 7 bits, every percentile is within
 * 0.79% of the true value. Recording is O(1) and allocates nothing; two histograms with the
 * same subBucketBits merge by adding counts, so load processes ship theirs to the parent
 * (toJSON / fromJSON, sparse) and the parent's percentiles are exact over all of them.
 */
import { MyriadRangeError } from "../errors.ts";

/** A histogram as JSON (sparse buckets): what load processes ship to the parent, which merges them exactly. */
export interface HistogramJSON {
  subBucketBits: number;
  maxExponent: number;
  count: number;
  min: number;
  max: number;
  sum: number;
  /** Sparse counts: [bucketIndex, count, bucketIndex, count, ...]. */
  buckets: number[];
}

/** Percentiles reported everywhere (values in the histogram's unit). */
export interface PercentileSummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** The log-linear histogram of the file comment: O(1) record, exact merge, percentiles within 2^-subBucketBits. */
export class LogHistogram {
  readonly subBucketBits: number;
  /** Largest exponent: values at or above 2^(maxExponent+1) are clamped into the last bucket. */
  readonly maxExponent: number;
  private readonly subCount: number;
  private readonly counts: Float64Array;
  private _count = 0;
  private _min = Infinity;
  private _max = 0;
  private _sum = 0;

  /**
   * subBucketBits (1..12, default 7) sets the precision; values up to 2^(maxExponent+1) - 1
   * (default maxExponent 40: 12.7 days in µs) are kept, bigger ones count as that maximum.
   */
  constructor(opts: { subBucketBits?: number; maxExponent?: number } = {}) {
    const bits = opts.subBucketBits ?? 7;
    const maxExp = opts.maxExponent ?? 40;
    if (!Number.isInteger(bits) || bits < 1 || bits > 12) throw new MyriadRangeError("ERR_LOADGEN_OPTION", `LogHistogram: subBucketBits must be an integer 1..12, got ${bits}`);
    if (!Number.isInteger(maxExp) || maxExp < bits || maxExp > 52) throw new MyriadRangeError("ERR_LOADGEN_OPTION", `LogHistogram: maxExponent must be an integer ${bits}..52, got ${maxExp}`);
    this.subBucketBits = bits;
    this.maxExponent = maxExp;
    this.subCount = 1 << bits;
    this.counts = new Float64Array((maxExp - bits + 2) * this.subCount);
  }

  /** Largest value kept exactly in range (bigger values are clamped to it). */
  get highestTrackable(): number {
    return 2 ** (this.maxExponent + 1) - 1;
  }

  /** Bucket index of an integer value in range. */
  indexOf(value: number): number {
    if (value < this.subCount) return value;
    const e = Math.floor(Math.log2(value));
    // log2 may round up just below a power of two: correct by one.
    const exp = 2 ** e > value ? e - 1 : e;
    const shift = exp - this.subBucketBits;
    const sub = Math.floor(value / 2 ** shift) - this.subCount;
    return (shift + 1) * this.subCount + sub;
  }

  /** Smallest value that falls in bucket `index`. */
  lowestOf(index: number): number {
    if (index < this.subCount) return index;
    const shift = Math.floor(index / this.subCount) - 1;
    const sub = index % this.subCount;
    return (this.subCount + sub) * 2 ** shift;
  }

  /** Largest value that falls in bucket `index`. */
  highestOf(index: number): number {
    if (index < this.subCount) return index;
    const shift = Math.floor(index / this.subCount) - 1;
    return this.lowestOf(index) + 2 ** shift - 1;
  }

  /** Records one value: negative or NaN counts as 0, fractions are floored, too big is clamped. */
  record(value: number): void {
    this.recordN(value, 1);
  }

  /** Records `n` (> 0) occurrences of value. */
  recordN(value: number, n: number): void {
    let v = value >= 0 ? Math.floor(value) : 0;
    if (v > this.highestTrackable) v = this.highestTrackable;
    this.counts[this.indexOf(v)]! += n;
    this._count += n;
    this._sum += v * n;
    if (v < this._min) this._min = v;
    if (v > this._max) this._max = v;
  }

  get count(): number {
    return this._count;
  }
  /** Smallest recorded value; 0 when empty. */
  get min(): number {
    return this._count === 0 ? 0 : this._min;
  }
  get max(): number {
    return this._max;
  }
  get sum(): number {
    return this._sum;
  }
  get mean(): number {
    return this._count === 0 ? 0 : this._sum / this._count;
  }

  /**
   * The value at percentile q (0..100): the top of the bucket that holds the ceil(q% × count)-th
   * smallest value, clamped to [min, max]. Never below the true nearest-rank percentile and at
   * most 2^-subBucketBits above it. 0 when empty.
   */
  percentile(q: number): number {
    if (this._count === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, q)) / 100) * this._count));
    let seen = 0;
    const counts = this.counts;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i]!;
      if (seen >= rank) return Math.max(this._min, Math.min(this._max, this.highestOf(i)));
    }
    return this._max;
  }

  /** count, min, mean, p50, p90, p99, p99.9, max. */
  summary(): PercentileSummary {
    return {
      count: this._count,
      min: this.min,
      mean: this.mean,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: this._max,
    };
  }

  /** Adds every count of `other` (same subBucketBits and maxExponent, else MyriadRangeError ERR_LOADGEN_OPTION). */
  merge(other: LogHistogram | HistogramJSON): this {
    if (other.subBucketBits !== this.subBucketBits || other.maxExponent !== this.maxExponent) {
      throw new MyriadRangeError(
        "ERR_LOADGEN_OPTION",
        `LogHistogram.merge: cannot merge histograms of different shapes (subBucketBits ${other.subBucketBits} vs ${this.subBucketBits}, maxExponent ${other.maxExponent} vs ${this.maxExponent})`,
      );
    }
    if (other.count === 0) return this;
    if (other instanceof LogHistogram) {
      for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    } else {
      const b = other.buckets;
      for (let i = 0; i + 1 < b.length; i += 2) this.counts[b[i]!]! += b[i + 1]!;
    }
    this._count += other.count;
    this._sum += other.sum;
    if (other.min < this._min) this._min = other.min;
    if (other.max > this._max) this._max = other.max;
    return this;
  }

  /** Forgets everything. */
  reset(): void {
    this.counts.fill(0);
    this._count = 0;
    this._min = Infinity;
    this._max = 0;
    this._sum = 0;
  }

  /** A sparse, JSON-safe copy (only non-empty buckets). */
  toJSON(): HistogramJSON {
    const buckets: number[] = [];
    const counts = this.counts;
    for (let i = 0; i < counts.length; i++) if (counts[i] !== 0) buckets.push(i, counts[i]!);
    return {
      subBucketBits: this.subBucketBits,
      maxExponent: this.maxExponent,
      count: this._count,
      min: this.min,
      max: this._max,
      sum: this._sum,
      buckets,
    };
  }

  /** The histogram `toJSON` described. */
  static fromJSON(j: HistogramJSON): LogHistogram {
    const h = new LogHistogram({ subBucketBits: j.subBucketBits, maxExponent: j.maxExponent });
    h.merge(j);
    return h;
  }
}
