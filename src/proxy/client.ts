/**
 * A client connection's state in the proxy, kept only while it needs some: replies in
 * flight, a transaction, subscriptions. A client idle for a second or two has none (its
 * memory is the reactor's slot); a busy one keeps its state from request to request, and
 * states are recycled rather than made per burst.
 *
 * Replies go back in the client's request order whatever server answers first: every
 * request takes the next sequence number, its reply waits in a ring under that number, and
 * the ring is written out from its head as far as replies are there. What becomes writable
 * during one turn of the event loop goes out in one write (see PoolCore's flush, pool-core.ts).
 */
import type { DedicatedConnection } from "./dedicated.ts";
import type { Subscription } from "./subscription.ts";
import type { ReplySink, Upstream } from "./upstream.ts";

/** A reply not yet there. */
export const PENDING = new Uint8Array(0);

/** The cost (ClientState.costs) that marks a sequence as a pub/sub delivery, not a request's reply. */
export const PUSH_COST = -1;

/** What a client is doing. */
export const enum Mode {
  /** Requests go down the shared connections. */
  Normal,
  /** After MULTI, before its first keyed command tells the server: commands are queued here. */
  MultiUnbound,
  /** On a dedicated connection of its own (a transaction or WATCH) until EXEC/DISCARD/UNWATCH. */
  Pinned,
  /** Subscribed: only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT and RESET. */
  Subscribed,
}

/** A blocking command's dedicated connection, held until its reply. */
export interface Blocked {
  conn: DedicatedConnection;
  up: Upstream;
}

/** What puts a client's replies in order and writes them (the pool). */
export interface ReplyFiller {
  /** The reply of sequence `seq` of client c arrived. */
  fill(c: ClientState, seq: number, bytes: Uint8Array): void;
}

/** One client connection's state while it has some (see the file comment); recycled, never per request. */
export class ClientState implements ReplySink {
  /** The reactor's connection handle. */
  id = -1;
  /** Its pool, which fills its replies. */
  filler: ReplyFiller | null = null;
  /** The connection closed: late replies are dropped. */
  closed = false;
  /** QUIT (or a lost pinned connection): close once the reply with this sequence is written. */
  closeAt = -1;
  /** Frames after QUIT are ignored. */
  quitting = false;

  ring: Uint8Array[] = new Array<Uint8Array>(16).fill(PENDING);
  /** Per sequence, beside ring: the request bytes it holds in flight (its copy in an upstream queue). */
  costs: number[] = new Array<number>(16).fill(0);
  mask = 15;
  /** Bytes of the requests in flight (the sum of costs from head to tail, deliveries left out). */
  inFlightBytes = 0;
  /**
   * Sequences from head to tail that are pub/sub deliveries (reservePush), not replies to
   * requests: they queue only behind a request of the subscriber still unanswered, and are not
   * in flight for the bounds of PoolCore.limitInFlight (a subscriber is not paused for what
   * the servers push to it).
   */
  pushes = 0;
  /** Reading this client is paused until its requests in flight fall to half the bound (PoolCore.limitInFlight). */
  readPaused = false;
  /** Next sequence to write. */
  head = 0;
  /** Next sequence to hand out. */
  tail = 0;

  /** Replies ready to write in the next flush. */
  out: Uint8Array[] = [];
  outBytes = 0;
  dirty = false;

  mode = Mode.Normal;
  /**
   * Requests held (copies) while the client waits for something it must not overtake: a
   * blocking command's reply, a dedicated connection being acquired, EXEC's reply. Null
   * when requests are handled as they come.
   */
  backlog: Uint8Array[] | null = null;
  backlogBytes = 0;

  /** MULTI not yet bound to a server: the commands queued so far. */
  txnFrames: Uint8Array[] = [];
  /** A queued command was refused: EXEC answers EXECABORT (as redis does). */
  txnDirty = false;
  /** Pinned and inside MULTI (as opposed to only WATCHing). */
  inMulti = false;
  pinned: DedicatedConnection | null = null;
  pinnedUp: Upstream | null = null;

  blocked: Blocked | null = null;
  sub: Subscription | null = null;

  /**
   * Work waiting until every reply before sequence `gateSeq` is written: a move to a
   * dedicated connection must not overtake the client's requests still on the shared ones.
   */
  gateSeq = -1;
  gateStart: (() => void) | null = null;

  /** Requests whose reply is not written yet. */
  get pending(): number {
    return this.tail - this.head;
  }

  /** A request used the state since the last sweep of idle states (PoolCore). */
  used = false;

  /** A shared connection's reply to the request of sequence `seq` (ReplySink). */
  reply(seq: number, bytes: Uint8Array): void {
    this.filler!.fill(this, seq, bytes);
  }

  /** Takes the next sequence number for a reply to come; `cost`: the request bytes held until it comes. */
  reserve(cost = 0): number {
    this.used = true;
    if (this.tail - this.head > this.mask) this.grow();
    const seq = this.tail++;
    this.ring[seq & this.mask] = PENDING;
    this.costs[seq & this.mask] = cost;
    this.inFlightBytes += cost;
    return seq;
  }

  /** Takes the next sequence number for a pub/sub delivery (counted in pushes, not in flight). */
  reservePush(): number {
    this.used = true;
    if (this.tail - this.head > this.mask) this.grow();
    const seq = this.tail++;
    this.ring[seq & this.mask] = PENDING;
    this.costs[seq & this.mask] = PUSH_COST;
    this.pushes++;
    return seq;
  }

  /** Requests in flight: sequences not written yet, deliveries left out. */
  get requestsInFlight(): number {
    return this.tail - this.head - this.pushes;
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const ring = new Array<Uint8Array>(cap).fill(PENDING);
    const costs = new Array<number>(cap).fill(0);
    for (let s = this.head; s < this.tail; s++) {
      ring[s & (cap - 1)] = this.ring[s & this.mask]!;
      costs[s & (cap - 1)] = this.costs[s & this.mask]!;
    }
    this.ring = ring;
    this.costs = costs;
    this.mask = cap - 1;
  }

  /** True when nothing is in flight or held and no mode is active: the state can be recycled. */
  get idle(): boolean {
    return this.head === this.tail && this.mode === Mode.Normal && this.backlog === null && this.blocked === null && !this.dirty && this.gateStart === null;
  }

  /** Clears everything for reuse by another connection of `filler`'s pool. */
  reset(id: number, filler: ReplyFiller): void {
    this.id = id;
    this.filler = filler;
    this.closed = false;
    this.closeAt = -1;
    this.quitting = false;
    this.head = this.tail = 0;
    if (this.ring.length > 64) {
      this.ring = new Array<Uint8Array>(16).fill(PENDING);
      this.costs = new Array<number>(16).fill(0);
      this.mask = 15;
    }
    this.inFlightBytes = 0;
    this.pushes = 0;
    this.readPaused = false;
    this.out.length = 0;
    this.outBytes = 0;
    this.dirty = false;
    this.mode = Mode.Normal;
    this.backlog = null;
    this.backlogBytes = 0;
    if (this.txnFrames.length > 0) this.txnFrames = [];
    this.txnDirty = false;
    this.inMulti = false;
    this.pinned = null;
    this.pinnedUp = null;
    this.blocked = null;
    this.sub = null;
    this.gateSeq = -1;
    this.gateStart = null;
  }
}
