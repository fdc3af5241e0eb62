/**
 * The application's side of the WebSocket stage: WsConn, the WebSocketConn flyweight every
 * callback gets (a handle re-pointed per callback; a new one only for a nested or async
 * callback), and the adapter handler through which the reactor's dispatch (events, corking,
 * latency, async settling, error reporting) calls the application's WebSocketHandler.
 */
import { CLOSE_NORMAL } from "../codec/index.ts";
import type { ConnRef } from "./connection.ts";
import type { CloseReason, Handler } from "./types.ts";
import { isSubscribed, publish, subscribe, unsubscribe } from "./websocket-publish.ts";
import { closeConn, ping, send, terminate } from "./websocket-send.ts";
import type { FlyweightConn, WsState } from "./websocket-state.ts";
import type { WebSocketConn } from "./websocket-types.ts";

/** The WebSocketConn handed to callbacks: a handle and the stage, every method generation-checked. */
export class WsConn implements FlyweightConn {
  id: number;
  private readonly w: WsState;

  constructor(w: WsState, id: number) {
    this.w = w;
    this.id = id;
  }

  send(data: string | Uint8Array, compress?: boolean): boolean {
    return send(this.w, this.id, data, compress);
  }

  close(code = CLOSE_NORMAL, reason = ""): void {
    closeConn(this.w, this.id, code, reason);
  }

  terminate(): void {
    terminate(this.w, this.id);
  }

  ping(data?: string | Uint8Array): boolean {
    return ping(this.w, this.id, data);
  }

  subscribe(topic: string): boolean {
    return subscribe(this.w, this.id, topic);
  }

  unsubscribe(topic: string): boolean {
    return unsubscribe(this.w, this.id, topic);
  }

  isSubscribed(topic: string): boolean {
    return isSubscribed(this.w, this.id, topic);
  }

  publish(topic: string, data: string | Uint8Array, compress?: boolean): number {
    return publish(this.w, topic, data, compress, this.id);
  }

  get protocol(): string {
    return this.w.protocolOf(this.id);
  }

  get remoteAddress(): string {
    return this.w.s.remoteAddress(this.id);
  }

  get remotePort(): number {
    return this.w.s.remotePort(this.id);
  }

  get isOpen(): boolean {
    return this.w.isOpen(this.id);
  }

  ref(): WebSocketConn {
    return new WsConn(this.w, this.id);
  }
}

/** The WebSocketConn for a callback on id: the flyweight, or a new one when it is in use (a nested callback). */
export function enterApp(w: WsState, id: number): FlyweightConn {
  const fw = w.fw;
  if (fw.id !== -1) return new WsConn(w, id);
  fw.id = id;
  return fw;
}

/** After a callback: an async one keeps its conn for good (a new flyweight replaces it). */
export function leaveApp(w: WsState, fw: FlyweightConn, r: unknown): unknown {
  if (fw === w.fw) {
    if (r !== undefined && r !== null && typeof (r as { then?: unknown }).then === "function") w.fw = new WsConn(w, -1);
    else fw.id = -1;
  }
  return r;
}

/** The handler the reactor calls for w's server: it forwards to the application's, with WebSocketConns. */
export function reactorHandlerOf(w: WsState): Handler<any> {
  w.fw = new WsConn(w, -1);
  const app = w.app;
  return {
    open(conn: ConnRef) {
      if (app.open === undefined) return undefined;
      const fw = enterApp(w, conn.id);
      return leaveApp(w, fw, app.open.call(app, fw));
    },
    message(conn: ConnRef, data: string | Uint8Array) {
      const fw = enterApp(w, conn.id);
      return leaveApp(w, fw, app.message.call(app, fw, data));
    },
    close(conn: ConnRef, _reason: CloseReason) {
      // Read first: a nested close (this handler closing another connection) overwrites them.
      const code = w.closingCode;
      const reason = w.closingReason;
      if (app.close === undefined) return undefined;
      const fw = enterApp(w, conn.id);
      return leaveApp(w, fw, app.close.call(app, fw, code, reason));
    },
    drain: app.drain === undefined
      ? undefined
      : (conn: ConnRef) => {
          const fw = enterApp(w, conn.id);
          return leaveApp(w, fw, app.drain!.call(app, fw));
        },
    error: app.error === undefined
      ? undefined
      : (conn: ConnRef, err: Error) => {
          const fw = enterApp(w, conn.id);
          return leaveApp(w, fw, app.error!.call(app, fw, err));
        },
  };
}
