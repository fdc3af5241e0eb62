import { MyriadError } from "../errors.ts";

/**
 * A SegmentPool ref that is not in use was passed to release(), grow(), buffer(), offset()
 * or capacity(): released twice, never acquired, or not a ref at all. Code ERR_SEGMENT_REF.
 * Thrown before the pool changes, so its free lists stay intact.
 */
export class SegmentRefError extends MyriadError {
  /** The offending ref as given. */
  readonly ref: number;
  constructor(op: string, ref: number) {
    super(
      "ERR_SEGMENT_REF",
      `SegmentPool.${op}: ref ${String(ref)} is not in use (released already, or never returned by acquire()/grow()); ` +
        `release each ref exactly once and stop using it after release() or grow()`,
    );
    this.ref = ref;
  }
}
