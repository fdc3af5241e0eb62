/**
 * Intrusive doubly-linked FIFO of waiter nodes. The links live in the nodes themselves, so
 * removing a waiter that timed out or was aborted is O(1) and allocates nothing, and a node
 * knows whether it is still queued.
 */

/** The fields a node carries to live in a WaiterList. */
export interface ListNode<N> {
  prev: N | null;
  next: N | null;
  /** True while the node is in a list. */
  queued: boolean;
}

/** A FIFO of intrusive nodes: push/unshift/shift/peek and O(1) remove of any queued node. */
export class WaiterList<N extends ListNode<N>> {
  private head: N | null = null;
  private tail: N | null = null;
  /** Nodes in the list. */
  size = 0;

  /** Appends `node` (which must not be queued) at the tail. */
  push(node: N): void {
    node.prev = this.tail;
    node.next = null;
    if (this.tail === null) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    node.queued = true;
    this.size++;
  }

  /** Inserts `node` (which must not be queued) at the head: it is served next. */
  unshift(node: N): void {
    node.next = this.head;
    node.prev = null;
    if (this.head === null) this.tail = node;
    else this.head.prev = node;
    this.head = node;
    node.queued = true;
    this.size++;
  }

  /** Removes and returns the head, or null when empty. */
  shift(): N | null {
    const node = this.head;
    if (node !== null) this.remove(node);
    return node;
  }

  /** The head without removing it, or null. */
  peek(): N | null {
    return this.head;
  }

  /** Unlinks `node`; returns false (and does nothing) when it is not queued. O(1). */
  remove(node: N): boolean {
    if (!node.queued) return false;
    const { prev, next } = node;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    node.prev = null;
    node.next = null;
    node.queued = false;
    this.size--;
    return true;
  }
}
