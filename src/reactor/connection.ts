import type { CloseReason, Conn } from "./types.ts";

/** The handle-based operations a Conn forwards to (the server implements them). */
export interface ConnOps {
  write(id: number, data: Uint8Array | string): boolean;
  send(id: number, message: unknown): boolean;
  close(id: number, reason?: CloseReason): void;
  pauseReading(id: number): void;
  resumeReading(id: number): void;
  isOpen(id: number): boolean;
  remoteAddress(id: number): string;
  remotePort(id: number): number;
  localAddress(id: number): string;
  localPort(id: number): number;
}

/**
 * A connection handle wrapped in the Conn interface. The server owns ONE of these as the
 * flyweight it re-points (`id`) before each callback, so no sync event allocates; conn.ref()
 * makes another one bound for good, and so does an async callback: the flyweight it
 * received is left bound to its connection and the server makes itself a new one. All
 * state lives in the server's ConnTable: a ConnRef is just (server, handle), and every
 * method is generation-checked through the handle.
 *
 * Why not a Conn object per connection: at 10^6 connections every object costs ~50-100 bytes
 * of heap and GC tracing; why not only handles: handler code reads better with conn.write().
 */
export class ConnRef implements Conn {
  /** The handle; the server rewrites it on its flyweight before every callback. */
  id: number;
  private readonly ops: ConnOps;

  constructor(ops: ConnOps, id: number) {
    this.ops = ops;
    this.id = id;
  }

  write(data: Uint8Array | string): boolean {
    return this.ops.write(this.id, data);
  }

  send(message: unknown): boolean {
    return this.ops.send(this.id, message);
  }

  close(reason?: CloseReason): void {
    this.ops.close(this.id, reason);
  }

  pauseReading(): void {
    this.ops.pauseReading(this.id);
  }

  resumeReading(): void {
    this.ops.resumeReading(this.id);
  }

  get remoteAddress(): string {
    return this.ops.remoteAddress(this.id);
  }

  get remotePort(): number {
    return this.ops.remotePort(this.id);
  }

  get localAddress(): string {
    return this.ops.localAddress(this.id);
  }

  get localPort(): number {
    return this.ops.localPort(this.id);
  }

  get isOpen(): boolean {
    return this.ops.isOpen(this.id);
  }

  ref(): Conn {
    return new ConnRef(this.ops, this.id);
  }
}
