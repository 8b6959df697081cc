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
 * - under steady traffic, at the end of the first turn that queues something
 *   `intervalMs` or more after the previous flush ({@link touch}), so each
 *   connection gets one write per interval with everything queued meanwhile;
 * - when traffic stops before then, by a timer. Node's timers tick in whole
 *   milliseconds and fire late under load, so the timer is only the
 *   backstop: waiting on it alone made a 1 ms interval cost 1–2 ms.
 *
 * `intervalMs` 0 flushes at the end of every turn that queued something.
 * A larger interval trades latency (about the interval) for fewer, larger
 * writes. One scheduler serves many sinks: one timer per flush, not one per
 * sink or per message, and no closure per write.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private spare: Flushable[] = [];
  /** A flush is coming at the end of this turn. */
  private immediate = false;
  /** The backstop timer of a batch waiting for its interval (due at `last + intervalMs`), while there is one. */
  private timer: NodeJS.Timeout | undefined;
  /** When the last flush ran (`performance.now()`). */
  private last = -Infinity;

  constructor(readonly intervalMs: number) {}

  /** Flushes `sink` with the next batch. Call once per batch: when it goes from nothing queued to something. */
  add(sink: Flushable): void {
    this.dirty.push(sink);
    if (this.immediate) return;
    if (this.timer) return this.touch();
    const wait = this.intervalMs > 0 ? this.last + this.intervalMs - performance.now() : 0;
    if (wait > 0) {
      this.timer = setTimeout(this.run, wait);
    } else {
      this.immediate = true;
      setImmediate(this.run);
    }
  }

  /**
   * Tells the scheduler that a sink already waiting for the flush queued
   * more: when the batch is due, it goes at the end of this turn rather
   * than at the timer's next tick. Cheap enough to call per frame.
   */
  touch(): void {
    if (this.timer && performance.now() >= this.last + this.intervalMs) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.immediate = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    this.immediate = false;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.intervalMs > 0) this.last = performance.now();
    // Swap the lists, so a sink that queues again while being flushed joins the next batch.
    const batch = this.dirty;
    this.dirty = this.spare;
    this.spare = batch;
    for (let i = 0; i < batch.length; i++) batch[i]!.flush();
    batch.length = 0;
  };
}
