/**
 * A growable FIFO ring buffer: push at the tail, shift at the head, both O(1) amortised, no
 * allocation once it has grown to its working size. Capacity is a power of two so an index
 * wraps with a mask.
 */
export class Ring<T> {
  private items: (T | undefined)[];
  private mask: number;
  private head = 0;
  /** Items held. */
  length = 0;

  /** `initialCapacity` is rounded up to a power of two (at least 4). */
  constructor(initialCapacity = 16) {
    let cap = 4;
    while (cap < initialCapacity) cap <<= 1;
    this.items = new Array<T | undefined>(cap);
    this.mask = cap - 1;
  }

  /** Appends `item` at the tail. */
  push(item: T): void {
    if (this.length > this.mask) this.grow();
    this.items[(this.head + this.length) & this.mask] = item;
    this.length++;
  }

  /** Removes and returns the head item, or undefined when empty. */
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.length--;
    return item;
  }

  /** The head item without removing it, or undefined. */
  peek(): T | undefined {
    return this.length === 0 ? undefined : this.items[this.head];
  }

  /** The item `i` places behind the head (0 = head); undefined past the end. */
  at(i: number): T | undefined {
    return i < this.length ? this.items[(this.head + i) & this.mask] : undefined;
  }

  /** Removes every item. */
  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.length = 0;
  }

  private grow(): void {
    const old = this.items;
    const cap = old.length * 2;
    const next = new Array<T | undefined>(cap);
    for (let i = 0; i < this.length; i++) next[i] = old[(this.head + i) & this.mask];
    this.items = next;
    this.mask = cap - 1;
    this.head = 0;
  }
}
