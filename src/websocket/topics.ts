/**
 * Topics: which connections subscribed to what, for server.publish.
 *
 * No object per subscription: a subscription is one record in typed arrays (its topic, the
 * next record of the same connection, its index in the topic's member list: 12 bytes), and each topic keeps its members' handles in one dense
 * Uint32Array (plus their record numbers, 8 bytes per member), which publish walks in a
 * plain loop. A topic is the one object (its name, its arrays) and lives only while it has
 * subscribers. Per connection: the head of its record list (4 bytes per slot, written only
 * by a connection that subscribes).
 *
 * subscribe / unsubscribe walk the connection's own list (as long as its topics: a few);
 * removing a member swaps the topic's last member into its place, O(1).
 */

/** A topic and its members (handles) in subscription order modulo removals. */
export interface Topic {
  readonly name: string;
  /** Index into the registry's topic list; what records store. */
  readonly index: number;
  /** Members' handles in [0, size). */
  handles: Uint32Array;
  /** Members' record numbers, parallel to handles. */
  records: Int32Array;
  size: number;
}

const SLOT_MASK = 0xfffff;

/** Subscriptions of every connection of one server (see the file comment). */
export class Topics {
  private readonly byName = new Map<string, Topic>();
  private readonly byIndex: (Topic | undefined)[] = [];
  private readonly freeIndices: number[] = [];
  /** Per slot: first record + 1 (0: none), so an untouched page means "no subscriptions". */
  private readonly head: Int32Array;
  // Records (grown by doubling).
  private recTopic = new Int32Array(64);
  /** Next record of the same connection + 1; on the free list, the next free record + 1. */
  private recNext = new Int32Array(64);
  private recPos = new Int32Array(64);
  private recCount = 0;
  private freeRec = 0; // first free record + 1
  /** Live subscriptions over all topics. */
  subscriptions = 0;
  /**
   * Called with (name, true) when a topic gets its first subscriber and (name, false) when it
   * loses its last: a node bus subscribes to exactly the topics this server has members of.
   */
  onActive: ((name: string, active: boolean) => void) | null = null;

  /** A registry for `capacity` connection slots. */
  constructor(capacity: number) {
    this.head = new Int32Array(capacity);
  }

  /** The number of topics with at least one subscriber. */
  get topicCount(): number {
    return this.byName.size;
  }

  /** The topic called name, or undefined when nobody subscribes to it. */
  get(name: string): Topic | undefined {
    return this.byName.get(name);
  }

  /** Subscribes the connection with handle h to name; false when it already was. */
  subscribe(h: number, name: string): boolean {
    const slot = h & SLOT_MASK;
    let topic = this.byName.get(name);
    if (topic !== undefined && this.find(slot, topic.index) >= 0) return false;
    if (topic === undefined) topic = this.open(name);
    const rec = this.newRecord();
    this.recTopic[rec] = topic.index;
    this.recNext[rec] = this.head[slot]!;
    this.head[slot] = rec + 1;
    if (topic.size === topic.handles.length) {
      const handles = new Uint32Array(topic.size * 2);
      handles.set(topic.handles);
      topic.handles = handles;
      const records = new Int32Array(topic.size * 2);
      records.set(topic.records);
      topic.records = records;
    }
    this.recPos[rec] = topic.size;
    topic.handles[topic.size] = h;
    topic.records[topic.size] = rec;
    topic.size++;
    this.subscriptions++;
    return true;
  }

  /** Unsubscribes h from name; false when it was not subscribed. */
  unsubscribe(h: number, name: string): boolean {
    const topic = this.byName.get(name);
    if (topic === undefined) return false;
    const slot = h & SLOT_MASK;
    // Walk the connection's list keeping the previous record, to unlink.
    let prev = -1;
    let r = this.head[slot]! - 1;
    while (r >= 0 && this.recTopic[r] !== topic.index) {
      prev = r;
      r = this.recNext[r]! - 1;
    }
    if (r < 0) return false;
    if (prev < 0) this.head[slot] = this.recNext[r]!;
    else this.recNext[prev] = this.recNext[r]!;
    this.removeMember(topic, r);
    this.freeRecord(r);
    return true;
  }

  /** True when h is subscribed to name. */
  isSubscribed(h: number, name: string): boolean {
    const topic = this.byName.get(name);
    return topic !== undefined && this.find(h & SLOT_MASK, topic.index) >= 0;
  }

  /** Removes every subscription of the connection in slot (it is closing). */
  removeAll(slot: number): void {
    let r = this.head[slot]! - 1;
    if (r < 0) return;
    this.head[slot] = 0;
    while (r >= 0) {
      const next = this.recNext[r]! - 1;
      this.removeMember(this.byIndex[this.recTopic[r]!]!, r);
      this.freeRecord(r);
      r = next;
    }
  }

  /** The names of h's topics (allocates the array). */
  topicsOf(h: number): string[] {
    const out: string[] = [];
    for (let r = this.head[h & SLOT_MASK]! - 1; r >= 0; r = this.recNext[r]! - 1) out.push(this.byIndex[this.recTopic[r]!]!.name);
    return out;
  }

  private find(slot: number, index: number): number {
    for (let r = this.head[slot]! - 1; r >= 0; r = this.recNext[r]! - 1) if (this.recTopic[r] === index) return r;
    return -1;
  }

  private open(name: string): Topic {
    const index = this.freeIndices.length > 0 ? this.freeIndices.pop()! : this.byIndex.length;
    const topic: Topic = { name, index, handles: new Uint32Array(4), records: new Int32Array(4), size: 0 };
    this.byIndex[index] = topic;
    this.byName.set(name, topic);
    this.onActive?.(name, true);
    return topic;
  }

  private removeMember(topic: Topic, rec: number): void {
    const pos = this.recPos[rec]!;
    const last = topic.size - 1;
    if (pos !== last) {
      const moved = topic.records[last]!;
      topic.handles[pos] = topic.handles[last]!;
      topic.records[pos] = moved;
      this.recPos[moved] = pos;
    }
    topic.size = last;
    this.subscriptions--;
    if (last === 0) {
      this.byName.delete(topic.name);
      this.byIndex[topic.index] = undefined;
      this.freeIndices.push(topic.index);
      this.onActive?.(topic.name, false);
    } else if (topic.handles.length > 64 && last < topic.handles.length >>> 2) {
      // Give memory back when a topic shrank to a quarter.
      topic.handles = topic.handles.slice(0, topic.handles.length >>> 1);
      topic.records = topic.records.slice(0, topic.records.length >>> 1);
    }
  }

  private newRecord(): number {
    if (this.freeRec !== 0) {
      const r = this.freeRec - 1;
      this.freeRec = this.recNext[r]!;
      return r;
    }
    if (this.recCount === this.recTopic.length) {
      const n = this.recCount * 2;
      this.recTopic = grow(this.recTopic, new Int32Array(n));
      this.recNext = grow(this.recNext, new Int32Array(n));
      this.recPos = grow(this.recPos, new Int32Array(n));
    }
    return this.recCount++;
  }

  private freeRecord(r: number): void {
    this.recNext[r] = this.freeRec;
    this.freeRec = r + 1;
  }
}

function grow<T extends Int32Array | Uint32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
