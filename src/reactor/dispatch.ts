/**
 * Calling the application: the flyweight Conn, the event scope, frame delivery, hooks,
 * errors, and async callbacks.
 *
 * Every callback runs between enterEvent() and leaveEvent(), the one place that points the
 * flyweight at its connection, makes that connection the cork target (its writes gather into
 * one send), and puts both back afterwards: events nest (a handler's write or close can close another
 * connection, whose close hook then runs inside), and each level must find the flyweight and
 * cork as it left them. Callbacks get one flyweight Conn re-pointed per callback; an async
 * callback keeps the one it got (bound to its connection for good) and the server makes a
 * new one (settle).
 */
import { FRAME_TOO_LARGE } from "../codec/index.ts";
import { ConnRef } from "./connection.ts";
import { ProtocolError } from "./errors.ts";
import { closeNow, corkable, uncork } from "./output.ts";
import { F_GREETED, SLOT_MASK, type ReactorState } from "./state.ts";
import { R_ERROR, R_PROTOCOL, REASONS } from "./stats.ts";

/**
 * Begins an event of connection h (slot = h's slot): the flyweight points at h, and writes
 * to h gather in the cork buffer (what another connection had gathered is sent first), to
 * leave in one send at leaveEvent. Events nest (a callback that closes another connection
 * runs that one's close hook inside): a nested event saves what it changes (flyweight, cork
 * target, frame clock) on the server's event stack; an outermost one has nothing to save.
 * Every caller follows it with
 *   try { body } catch (err) { handlerThrew(s, h, err) }   and then   leaveEvent(s, h).
 * (A helper taking the body as a function would make that call polymorphic and keep the JIT
 * from inlining the data path: it cost ~15 ns per data event, measured.)
 */
export function enterEvent(s: ReactorState, h: number, slot: number): void {
  const fw = s.fw;
  if (fw.id !== -1) return enterNested(s, h, slot);
  fw.id = h;
  if (s.corkLen !== 0) uncork(s, s.corkSlot); // gathered outside any event (none today; cheap to be sure)
  s.corkSlot = slot;
  s.corkHandle = corkable(s, h);
}

function enterNested(s: ReactorState, h: number, slot: number): void {
  const outer = s.fw;
  const prev = outer.id;
  const d = s.eventDepth++;
  s.savedFw[d] = outer;
  const saved = s.savedNums;
  saved.push(prev, s.corkSlot, s.corkHandle, s.frameStartMs);
  // A callback nested in one on another connection gets a flyweight of its own: the outer
  // callback's conn is then never re-pointed under it, even if the inner one keeps it (async).
  if (prev === h) outer.id = h;
  else s.fw = new ConnRef(s, h);
  if (s.corkLen !== 0) uncork(s, s.corkSlot);
  s.corkSlot = slot;
  s.corkHandle = corkable(s, h);
}

/** Ends the event enterEvent(s, h, ...) began: sends what h's writes gathered, restores what was before. */
export function leaveEvent(s: ReactorState, h: number): void {
  if (s.corkLen !== 0) uncork(s, s.corkSlot);
  if (s.eventDepth !== 0) return leaveNested(s, h);
  s.fw.id = -1;
  s.corkSlot = -1;
  s.corkHandle = -1;
}

function leaveNested(s: ReactorState, h: number): void {
  const d = --s.eventDepth;
  const outer = s.savedFw[d]!;
  s.savedFw[d] = undefined; // a closed connection's flyweight is not kept alive by the stack
  const saved = s.savedNums;
  s.frameStartMs = saved.pop()!;
  const prevCorkHandle = saved.pop()!;
  s.corkSlot = saved.pop()!;
  s.corkHandle = prevCorkHandle === -1 ? -1 : corkable(s, prevCorkHandle);
  const prev = saved.pop()!;
  if (prev === h) s.fw.id = prev;
  else s.fw = outer;
}

/**
 * Hands one decoded frame to handler.message, inside h's event: counts it, ends the
 * handshake timeout, times it (measureLatency) and settles an async handler.
 */
export function deliver(s: ReactorState, h: number, slot: number, frame: unknown): void {
  s.framesIn++;
  // Read only by the handshake deadline: without one, no store per frame.
  if (s.handshakeTimeoutMs > 0) s.table.flags[slot]! |= F_GREETED;
  // Read per frame: an async handler takes the flyweight with it (settle).
  const conn = s.fw;
  const r: unknown = s.handler.message(conn, frame);
  if (s.measureLatency) {
    // The frame whose handler just returned, from frameStartMs (its decoding) to now; the
    // next frame of the same read starts now.
    const now = performance.now();
    s.latency.record(now - s.frameStartMs);
    s.frameStartMs = now;
  }
  if (r !== undefined) settle(s, conn, r, h);
}

/** Calls handler.open for h, as its event (a throw or rejection closes it "error"). */
export function callOpen(s: ReactorState, h: number, slot: number): void {
  enterEvent(s, h, slot);
  try {
    const conn = s.fw;
    const r: unknown = s.handler.open!.call(s.handler, conn);
    if (r !== undefined) settle(s, conn, r, h);
  } catch (err) {
    handlerThrew(s, h, err);
  }
  leaveEvent(s, h);
}

/** Calls handler.close for h with reason code `code`, as its event; a throw or rejection is only reported. */
export function callClose(s: ReactorState, h: number, slot: number, code: number): void {
  enterEvent(s, h, slot);
  const conn = s.fw;
  try {
    const r: unknown = s.handler.close!.call(s.handler, conn, REASONS[code]!);
    // It is closing already: a rejection is reported, not acted on.
    if (r !== undefined && isThenable(r)) {
      if (conn === s.fw) s.fw = new ConnRef(s, h);
      r.then(undefined, (err: unknown) => report(s, h, err));
    }
  } catch (err) {
    report(s, h, err);
  }
  leaveEvent(s, h);
}

/** Calls handler.drain for h inside its event (the caller's try closes it "error" on a throw). */
export function callDrain(s: ReactorState, h: number): void {
  const conn = s.fw;
  const r: unknown = s.handler.drain!.call(s.handler, conn);
  if (r !== undefined) settle(s, conn, r, h);
}

/** A handler threw or rejected: report it, close h with "error". */
export function handlerThrew(s: ReactorState, h: number, err: unknown): void {
  report(s, h, err);
  closeNow(s, h, R_ERROR, false);
}

/** Hands err to handler.error, or logs it when there is none. */
export function report(s: ReactorState, h: number, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  if (s.handler.error !== undefined) callError(s, h, e);
  else console.error(`myriad: connection ${h}:`, e);
}

/** Calls handler.error for h, as its event; its own failure is only logged (no recursion). */
function callError(s: ReactorState, h: number, err: Error): void {
  enterEvent(s, h, h & SLOT_MASK);
  const conn = s.fw;
  try {
    const r: unknown = s.handler.error!.call(s.handler, conn, err);
    if (r !== undefined && isThenable(r)) {
      // An async error hook keeps its conn; its own failure is only logged (no recursion).
      if (conn === s.fw) s.fw = new ConnRef(s, h);
      r.then(undefined, logErrorHookFailure);
    }
  } catch (e) {
    logErrorHookFailure(e);
  }
  leaveEvent(s, h);
}

/** The codec said FRAME_TOO_LARGE or FRAME_MALFORMED (code): tell handler.error, close h "protocol". */
export function protocolError(s: ReactorState, h: number, code: number): void {
  if (s.handler.error !== undefined) {
    const err =
      code === FRAME_TOO_LARGE
        ? new ProtocolError("ERR_FRAME_TOO_LARGE", `frame over maxFrameBytes (${s.maxFrameBytes}); raise maxFrameBytes if such frames are legitimate`)
        : new ProtocolError("ERR_FRAME_MALFORMED", `bytes that are not ${s.codec.name} frames`);
    callError(s, h, err);
  }
  closeNow(s, h, R_PROTOCOL, false);
}

/**
 * A callback on h returned r. When r is a thenable (an async handler), the conn it was
 * given lives on in its continuation: that object stays bound to h for good (a ConnRef,
 * generation-checked: once h closes its writes answer false), the server takes a fresh
 * flyweight (one small object per async call, beside the call's own Promise), and a
 * rejection takes the path of a synchronous throw (handlerThrew). A sync handler's
 * return value (undefined, or whatever an arrow function returns) costs one test.
 */
function settle(s: ReactorState, conn: ConnRef, r: unknown, h: number): void {
  if (!isThenable(r)) return;
  if (conn === s.fw) s.fw = new ConnRef(s, h);
  try {
    r.then(undefined, (err: unknown) => handlerThrew(s, h, err));
  } catch (err) {
    handlerThrew(s, h, err);
  }
}

/** True for a promise or any object with a then method (what an async handler returns). */
function isThenable(r: unknown): r is PromiseLike<unknown> {
  return (typeof r === "object" || typeof r === "function") && r !== null && typeof (r as { then?: unknown }).then === "function";
}

function logErrorHookFailure(e: unknown): void {
  console.error("myriad: handler.error threw:", e);
}
