/**
 * Connection table and byte-segment pool: the per-connection state of a server, kept in
 * typed arrays so that a connection costs bytes, not objects.
 */
export { ConnTable, MAX_CAPACITY, SLOT_MASK, STATE_FREE, STATE_ALLOCATED } from "./conn-table.ts";
export {
  SegmentPool,
  FALLBACK_REF_BASE,
  NO_REF,
  MAX_BUFFER_BYTES,
  MAX_SEGMENT_BYTES,
  MAX_CHUNK_BYTES,
  type SegmentPoolOptions,
  type SegmentPoolStats,
} from "./segment-pool.ts";
export { SegmentRefError } from "./errors.ts";
