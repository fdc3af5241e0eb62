/**
 * Timers: one hierarchical timing wheel per process holds every connection's deadline
 * (idle, handshake, write stall) and every key's expiry, as ids in typed arrays.
 */
export { TimingWheel, type TimingWheelOptions } from "./wheel.ts";
export { TimerRangeError, TimerTypeError, TimerReentrancyError } from "./errors.ts";
