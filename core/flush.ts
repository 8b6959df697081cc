/**
 * Write coalescing for stream transports. A sink queues the frames it is
 * given and registers with a {@link FlushScheduler}; the scheduler flushes
 * every sink with something queued together, so a connection that gets many
 * messages between two flushes pays one write (one syscall) for all of them
 * instead of one each. At a few thousand messages a second, per-message
 * syscalls are most of a server's CPU time (see docs/performance.md).
 */

/** Something holding queued output until {@link flush}. */
export interface Flushable {
  /** Hands what is queued to the transport. */
  flush(): void;
}

/**
 * Flushes registered sinks together, at most once per `intervalMs`:
 *
 * - after a quiet spell (no flush in the last `intervalMs`), at the end of
 *   the current event-loop turn (`setImmediate`, once every input event of
 *   the turn has been handled) — a lone message or reply waits for nothing;
 * - under steady traffic, `intervalMs` after the previous flush, so each
 *   connection gets one write per interval with everything queued meanwhile.
 *
 * `intervalMs` 0 flushes at the end of every turn that queued something.
 * A larger interval trades latency (at most the interval, plus timer slack)
 * for fewer, larger writes. One scheduler serves many sinks: one timer per
 * flush, not one per sink or per message, and no closure per write.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private spare: Flushable[] = [];
  private scheduled = false;
  /** When the last flush ran (`performance.now()`). */
  private last = -Infinity;

  constructor(readonly intervalMs: number) {}

  /** Flushes `sink` with the next batch. Call once per batch: when it goes from nothing queued to something. */
  add(sink: Flushable): void {
    this.dirty.push(sink);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.intervalMs > 0 ? this.last + this.intervalMs - performance.now() : 0;
    if (wait > 0) setTimeout(this.run, wait);
    else setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    if (this.intervalMs > 0) this.last = performance.now();
    // Swap the lists, so a sink that queues again while being flushed joins the next batch.
    const batch = this.dirty;
    this.dirty = this.spare;
    this.spare = batch;
    for (let i = 0; i < batch.length; i++) batch[i]!.flush();
    batch.length = 0;
  };
}
