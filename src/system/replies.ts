/**
 * Asking child processes for a report over IPC and waiting for the answers: the supervisor
 * asks its workers for stats, the load generator its load processes for counters. A child
 * also reports on its own, so a request carries an id and only the answer that carries it
 * (or a later one) counts: a periodic report that left before the request is not an answer.
 */

/** The requests waiting on one child: each resolves on the answer to its id, or when the child is gone. */
export class ReplyWaiters {
  private waiting: Array<{ id: number; resolve: () => void }> = [];

  /** Resolves once an answer to request `id` or a later one arrived, or release() was called. */
  wait(id: number): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push({ id, resolve }));
  }

  /**
   * A report arrived answering request `id`: every wait for it or an earlier request
   * resolves. undefined (a report nobody asked for) answers none; Infinity (a child's last
   * report) answers all.
   */
  answered(id: number | undefined): void {
    if (id === undefined || this.waiting.length === 0) return;
    const keep: ReplyWaiters["waiting"] = [];
    for (const w of this.waiting) {
      if (w.id <= id) w.resolve();
      else keep.push(w);
    }
    this.waiting = keep;
  }

  /** The child is gone: every wait resolves (there will be no answer). */
  release(): void {
    const all = this.waiting;
    this.waiting = [];
    for (const w of all) w.resolve();
  }
}

/** Resolves true once every promise in `waits` resolved, false when timeoutMs passed first (the rest are left to settle). */
export async function allWithin(waits: readonly Promise<unknown>[], timeoutMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([Promise.all(waits).then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
