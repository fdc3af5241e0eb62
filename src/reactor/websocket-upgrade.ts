/**
 * The HTTP/1.1 upgrade of a WebSocket connection: the request read (the common, hookless case
 * scanned without allocating; otherwise parsed into an UpgradeRequest for the upgrade hook,
 * which may decide asynchronously), permessage-deflate and subprotocol negotiation, then the
 * 101 and handler.open, or an HTTP error response and a close once it is sent.
 */
import {
  PLAIN_101_BYTES,
  errorResponse,
  negotiateDeflate,
  parseProtocolList,
  parseUpgradeRequest,
  switchingProtocolsResponse,
  type UpgradeRequest,
} from "../codec/index.ts";
import { NO_REF } from "../conn-table/index.ts";
import { MyriadRangeError } from "../errors.ts";
import { EXT_CLIENT_TAKEOVER, EXT_DEFLATE, EXT_SERVER_TAKEOVER, EXT_WINDOW_SHIFT } from "../websocket/index.ts";
import { refile } from "./deadlines.ts";
import { callOpen, enterEvent, handlerThrew, leaveEvent, report } from "./dispatch.ts";
import { resumeInput } from "./input.ts";
import { closeAfterFlush, writeSlot } from "./output.ts";
import { CORK_BYTES, F_GREETED, S_OPEN, SLOT_MASK } from "./state.ts";
import { R_PROTOCOL, R_SERVER } from "./stats.ts";
import { enterApp, leaveApp } from "./websocket-conn.ts";
import { OPENED, P_DONE, P_OPEN, P_UPGRADING, PHASE, writeString, type WsState } from "./websocket-state.ts";
import type { UpgradeDecision } from "./websocket-types.ts";

/** Answers the complete upgrade request buf[0, n) of h: opens it, refuses it, or leaves it P_UPGRADING for an async hook. */
export function handshake(w: WsState, h: number, slot: number, buf: Uint8Array, n: number): void {
  // The common case, allocating nothing: no hook, a plain valid request. Kept apart from the
  // rest (its own small functions), as it runs for every connection and is what the JIT
  // compiles: code that only unusual requests take is then never compiled.
  const scan = w.scan;
  if (w.app.upgrade === undefined && scan.scan(buf, 0, n)) {
    if ((w.opts.deflate === null || !scan.hasExtensions) && !scan.hasProtocols) return acceptPlain(w, h, slot, buf);
    return acceptScanned(w, h, slot, buf, n);
  }
  handshakeParsed(w, h, slot, buf, n);
}

/**
 * A scanned (valid, hookless) request that offers extensions or subprotocols: negotiate them,
 * then answer. An offer that is not a list of distinct tokens is refused as the full parse
 * refuses it, whether or not this server speaks any subprotocol.
 */
function acceptScanned(w: WsState, h: number, slot: number, buf: Uint8Array, n: number): void {
  const scan = w.scan;
  const deflate = w.opts.deflate !== null && scan.hasExtensions;
  let protocol = "";
  if (scan.hasProtocols) {
    const offered = parseProtocolList(scan.text(buf, "protocol"));
    if (offered === null) return handshakeParsed(w, h, slot, buf, n); // it names what is wrong
    protocol = w.opts.subprotocols.find((p) => offered.includes(p)) ?? "";
  }
  if (!deflate && protocol === "") return acceptPlain(w, h, slot, buf);
  accept(w, h, slot, scan.key(buf), deflate ? scan.text(buf, "extensions") : "", protocol, undefined);
}

/** A request the scan did not pass, or any request when there is an upgrade hook: parsed in full. */
function handshakeParsed(w: WsState, h: number, slot: number, buf: Uint8Array, n: number): void {
  const s = w.s;
  const parsed = parseUpgradeRequest(buf, 0, n, () => s.remoteAddress(h));
  if (!parsed.ok) return refuse(w, h, parsed.status, parsed.message, null, R_PROTOCOL);
  const req = parsed.request;
  let protocol = "";
  for (const p of w.opts.subprotocols) {
    if (req.protocols.includes(p)) {
      protocol = p;
      break;
    }
  }
  const hook = w.app.upgrade;
  if (hook === undefined) return accept(w, h, slot, parsed.key, parsed.extensions, protocol, undefined);
  let decision: unknown;
  const fw = enterApp(w, h);
  try {
    decision = hook.call(w.app, req, fw);
  } catch (err) {
    leaveApp(w, fw, undefined);
    report(s, h, err);
    return refuse(w, h, 500, "the server's upgrade hook failed", null, R_SERVER);
  }
  leaveApp(w, fw, decision);
  if (decision !== null && typeof decision === "object" && typeof (decision as { then?: unknown }).then === "function") {
    w.phase[slot] = P_UPGRADING;
    (decision as PromiseLike<UpgradeDecision>).then(
      (d) => decided(w, h, slot, parsed.key, parsed.extensions, protocol, req, d),
      (err: unknown) => decided(w, h, slot, parsed.key, parsed.extensions, protocol, req, undefined, err),
    );
    return;
  }
  apply(w, h, slot, parsed.key, parsed.extensions, protocol, req, decision as UpgradeDecision);
}

/** An async upgrade hook settled: answer (as h's event) and pass on what input waited. */
function decided(w: WsState, h: number, slot: number, key: string, extensions: string, protocol: string, req: UpgradeRequest, d: UpgradeDecision, err?: unknown): void {
  const s = w.s;
  if (!s.table.isLive(h) || s.table.state[slot] !== S_OPEN || (w.phase[slot]! & PHASE) !== P_UPGRADING) return;
  enterEvent(s, h, slot);
  try {
    if (err !== undefined) {
      report(s, h, err);
      refuse(w, h, 500, "the server's upgrade hook failed", null, R_SERVER);
    } else {
      apply(w, h, slot, key, extensions, protocol, req, d);
      if (w.readable(h, slot)) resumeInput(s, h, slot);
    }
  } catch (e) {
    handlerThrew(s, h, e);
  }
  leaveEvent(s, h);
}

/** Acts on the hook's decision. */
function apply(w: WsState, h: number, slot: number, key: string, extensions: string, protocol: string, req: UpgradeRequest, d: UpgradeDecision): void {
  if (d === undefined || d === true) return accept(w, h, slot, key, extensions, protocol, undefined);
  if (d === false) return refuse(w, h, 403, "forbidden", null, R_SERVER);
  if (d === null || typeof d !== "object") return hookError(w, h, `upgrade hook returned ${String(d)}: expected undefined, a boolean or an object`);
  const headers = (d as { headers?: Record<string, string> }).headers;
  if ("status" in d) {
    const status = d.status;
    if (typeof status !== "number" || !Number.isInteger(status) || status < 400 || status > 599) {
      return hookError(w, h, `upgrade hook refused with status ${String(status)}: expected 400..599`);
    }
    return refuse(w, h, status, d.message ?? "refused", headers ?? null, R_SERVER);
  }
  const chosen = d.protocol ?? protocol;
  if (chosen !== "" && !req.protocols.includes(chosen)) {
    return hookError(w, h, `upgrade hook chose subprotocol ${JSON.stringify(chosen)}, which the client did not offer (${req.protocols.join(", ") || "none"})`);
  }
  accept(w, h, slot, key, extensions, chosen, headers);
}

function hookError(w: WsState, h: number, message: string): void {
  report(w.s, h, new MyriadRangeError("ERR_WEBSOCKET_UPGRADE", message));
  refuse(w, h, 500, "the server's upgrade hook failed", null, R_SERVER);
}

/** Answers 101 (no subprotocol, no extension) from the scanned request's bytes, and opens. */
function acceptPlain(w: WsState, h: number, slot: number, buf: Uint8Array): void {
  const s = w.s;
  if (slot === s.corkSlot && s.table.outRef[slot]! === NO_REF && s.corkLen + PLAIN_101_BYTES <= CORK_BYTES) {
    // Written where the event's writes gather: no copy and no garbage (a view made per
    // upgrade costs memory at a burst of them: the GC heap grows and stays grown).
    s.corkLen += w.scan.write101(buf, s.corkBuf, s.corkLen);
  } else {
    const n = w.scan.write101(buf, w.scratch, 0);
    if (writeSlot(s, slot, w.scratch, 0, n) < 0) return;
  }
  opened(w, h, slot);
}

/** Answers 101 and opens the connection: handler.open, then frames. */
function accept(w: WsState, h: number, slot: number, key: string, extensions: string, protocol: string, headers: Record<string, string> | undefined): void {
  const s = w.s;
  let ext = 0;
  let extResponse = "";
  const deflate = w.opts.deflate;
  if (deflate !== null) {
    const agreed = negotiateDeflate(extensions, deflate);
    if (agreed !== null) {
      const p = agreed.params;
      ext = EXT_DEFLATE | ((p.serverMaxWindowBits - 8) << EXT_WINDOW_SHIFT);
      if (!p.clientNoContextTakeover) ext |= EXT_CLIENT_TAKEOVER;
      if (!p.serverNoContextTakeover) ext |= EXT_SERVER_TAKEOVER;
      extResponse = agreed.response;
    }
  }
  let response: string;
  try {
    response = switchingProtocolsResponse(key, protocol, extResponse, headers);
  } catch (err) {
    report(s, h, err);
    return refuse(w, h, 500, "the server's upgrade hook failed", null, R_SERVER);
  }
  if (!writeString(s, slot, response)) return;
  if (ext !== 0) w.framer.ext[slot] = ext;
  if (protocol !== "") w.protocolIndex[slot] = w.internProtocol(protocol);
  opened(w, h, slot);
}

/** The 101 is written: the connection is open (timers, counters, handler.open). */
function opened(w: WsState, h: number, slot: number): void {
  const s = w.s;
  w.phase[slot] = P_OPEN | OPENED;
  w.openCount++;
  w.upgraded++;
  s.table.flags[slot]! |= F_GREETED;
  if (w.timed) {
    const nowF = performance.now();
    s.table.lastActivity[slot] = nowF >>> 0;
    refile(s, slot, nowF);
  }
  if (w.app.open !== undefined) callOpen(s, h, slot);
}

/** Answers an HTTP error and closes once it is sent. */
export function refuse(w: WsState, h: number, status: number, message: string, headers: Record<string, string> | null, reason: number): void {
  const s = w.s;
  const slot = h & SLOT_MASK;
  w.refused.set(status, (w.refused.get(status) ?? 0) + 1);
  w.phase[slot] = P_DONE;
  let text: string;
  try {
    text = errorResponse(status, message, headers ?? undefined);
  } catch (err) {
    report(s, h, err);
    text = errorResponse(500, "the server's upgrade hook failed");
  }
  writeString(s, slot, text);
  closeAfterFlush(s, h, reason);
}
