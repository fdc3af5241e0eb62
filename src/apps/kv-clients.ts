/**
 * The KV app's per-connection state (what redis keeps in its client struct and CLIENT LIST
 * shows), for the connections of one server, in columns indexed by the connection's slot.
 *
 * Slots: a connection's id is its server's ConnTable handle, whose low bits are its slot
 * (src/conn-table: `handle & (MAX_CAPACITY - 1)`); live connections of one server never
 * share a slot. Two servers do hand out the same ids, so an app serving several listeners
 * keeps one KvClients per server and gives each an id base (CLIENT ID = base + conn.id).
 *
 * A connection costs a flags byte, two doubles (opened, last command), a pointer to its last
 * command's name (a shared constant) and one bound Conn, for CLIENT LIST's addresses of
 * other connections (subscribers reuse it in pubsub.ts): 17 bytes of columns and about 110
 * bytes of heap (200,000 opens measured on Bun 1.4.5), the bound Conn most of it. The
 * columns grow by doubling as higher slots show up.
 *
 * Times come from a coarse clock (CoarseClock) so that no command reads the system clock:
 * age and idle are whole seconds, as redis prints them.
 */
import { MAX_CAPACITY } from "../conn-table/index.ts";
import type { Conn } from "../reactor/index.ts";

const SLOT_MASK = MAX_CAPACITY - 1;
const INITIAL_SLOTS = 256;

/** KvClients.flags bit: the slot holds an open connection. */
export const CLIENT_OPEN = 1;
/** KvClients.flags bit: the connection may run every command (AUTH done, or no password). */
export const CLIENT_AUTHED = 2;
/** KvClients.flags bit: QUIT or a refusal closes it; the rest of its batch is ignored. */
export const CLIENT_CLOSING = 4;

/** The slot of a connection id (see the file comment). */
export function slotOf(id: number): number {
  return id & SLOT_MASK;
}

/**
 * A clock read about once a second instead of once per command: `nowMs` is performance.now()
 * as of the last refresh. It refreshes on a timer only while `holders` is above zero (an
 * unref'd timer: it never keeps the process alive), and at every explicit refresh().
 */
export class CoarseClock {
  /** performance.now() at the last refresh. */
  nowMs = performance.now();
  private timer: ReturnType<typeof setInterval> | undefined;
  private holders = 0;
  private readonly tick = (): void => {
    this.nowMs = performance.now();
  };

  /** Reads the clock now; returns the new nowMs. */
  refresh(): number {
    return (this.nowMs = performance.now());
  }

  /** One more user of the clock (an open connection): the timer runs while there is one. */
  hold(): void {
    if (this.holders++ === 0) {
      this.timer = setInterval(this.tick, 1000);
      this.timer.unref?.();
    }
  }

  /** One user fewer: the timer stops with the last one. */
  release(): void {
    if (--this.holders === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Stops the timer for good (the app's close()). */
  stop(): void {
    this.holders = 0;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * The connection whose request is being answered: the dispatcher re-points it before each
 * command (no allocation), so it is valid during the command only.
 */
export interface CurrentClient {
  /** The table of the server the connection belongs to. */
  clients: KvClients;
  /** Its slot in that table. */
  slot: number;
  /** Its id over the whole app: clients.idBase + conn.id (CLIENT ID, pub/sub). */
  id: number;
}

/** The open connections of one server and what the app knows about each (see the file comment). */
export class KvClients {
  /** Added to a connection's id to give its id over the whole app (CLIENT ID, pub/sub keys). */
  readonly idBase: number;
  /** CLIENT_* bits by slot; 0: no connection. */
  flags = new Uint8Array(INITIAL_SLOTS);
  /** CoarseClock time of the open, by slot. */
  openedAtMs = new Float64Array(INITIAL_SLOTS);
  /** CoarseClock time of the last request, by slot. */
  lastCommandAtMs = new Float64Array(INITIAL_SLOTS);
  /** The last command's name as CLIENT LIST prints it ("get", "client|list"), by slot. */
  lastCommand: (string | undefined)[] = [];
  /** A Conn bound to each open connection, by slot. */
  conns: (Conn | undefined)[] = [];
  /** CLIENT SETNAME names, by slot (only connections that set one). */
  readonly names = new Map<number, string>();
  /** Open connections. */
  size = 0;

  constructor(idBase: number) {
    this.idBase = idBase;
  }

  /** Records conn as open with `flags` (CLIENT_OPEN is added) at nowMs; returns its slot. */
  open(conn: Conn, flags: number, nowMs: number): number {
    const slot = conn.id & SLOT_MASK;
    if (slot >= this.flags.length) this.grow(slot + 1);
    this.flags[slot] = flags | CLIENT_OPEN;
    this.openedAtMs[slot] = nowMs;
    this.lastCommandAtMs[slot] = nowMs;
    this.lastCommand[slot] = undefined;
    this.conns[slot] = conn.ref();
    this.size++;
    return slot;
  }

  /** Forgets the connection in slot (its close). */
  close(slot: number): void {
    if (slot >= this.flags.length || this.flags[slot] === 0) return;
    this.flags[slot] = 0;
    this.conns[slot] = undefined;
    this.lastCommand[slot] = undefined;
    if (this.names.size !== 0) this.names.delete(slot);
    this.size--;
  }

  /** The slots of open connections, in slot order. */
  openSlots(): number[] {
    const out: number[] = [];
    const flags = this.flags;
    for (let s = 0, seen = 0; s < flags.length && seen < this.size; s++) {
      if (flags[s] !== 0) {
        out.push(s);
        seen++;
      }
    }
    return out;
  }

  private grow(min: number): void {
    let n = this.flags.length * 2;
    while (n < min) n *= 2;
    n = Math.min(n, MAX_CAPACITY);
    const flags = new Uint8Array(n);
    flags.set(this.flags);
    this.flags = flags;
    const opened = new Float64Array(n);
    opened.set(this.openedAtMs);
    this.openedAtMs = opened;
    const last = new Float64Array(n);
    last.set(this.lastCommandAtMs);
    this.lastCommandAtMs = last;
  }
}
